"""Single runs in a pool of worker processes, so that runs asked for at the same time proceed in
parallel up to the workers (one per core by default) instead of taking turns.

The model is NumPy-heavy Python: threads would share one interpreter lock, so each worker is a
process of its own (started with ``spawn``: a clean interpreter, not a fork of the server's threads)
that loads and compiles a scenario the first time a run of it comes its way and keeps it
(:func:`multivector.explore.ensemble.cached_scenario`). The worker also builds the figures and
the JSON, so the server's own process only parses requests and passes bytes on.

:class:`RunPool` bounds what it holds: ``workers`` running and ``max_waiting`` waiting; beyond
that a request is told to retry (:class:`ServerBusy`, 429).
"""

from __future__ import annotations

import asyncio
import collections
import json
import multiprocessing
import os
import pickle
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from multivector.errors import InputError
from multivector.interfaces.server.state import ServerBusy, WorkerLost
from multivector.io import retain_freed_memory

#: Keys a run's answer adds to the run document.
RUN_EXTRAS = ("overrides", "index", "headline", "figures", "seconds")


def available_cpus() -> int:
    """The cores this process may run on (its affinity where the system tells it, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Served:
    """Which worker process answered a run, and when (wall clock) it started and ended there."""

    pid: int
    started: float
    ended: float


def answer_run(source: str, overrides: dict[str, float], seed: int, seeds: int, year: int | None):
    """One run of the scenario ``source`` as the API answers it: the run document of
    ``multivector run --json`` plus the dashboard's keys (:data:`RUN_EXTRAS`), as JSON bytes. Runs in a worker process; returns ``(body, Served)``."""
    started = time.time()
    try:
        body = _answer(source, overrides, seed, seeds, year)
    except Exception as exc:
        raise _picklable(exc)
    return body, Served(os.getpid(), started, time.time())


def _answer(source, overrides, seed, seeds, year) -> bytes:
    from multivector.explore.ensemble import cached_scenario
    from multivector.interfaces.encode import figure_json, json_safe
    from multivector.model import simulate
    from multivector.views import figures
    from multivector.views.document import RUN_BOTTLENECKS, run_document
    from multivector.views.report import collect_run

    scenario = cached_scenario(source)
    t = time.perf_counter()
    n = seeds if scenario.politics is not None and scenario.politics.disruption else 1
    ds = simulate(scenario, n, seed=seed, overrides=overrides, keep_routes=True)
    document = run_document(ds, top=RUN_BOTTLENECKS)
    data = collect_run(scenario, seed=seed, overrides=overrides, ds=ds)
    seconds = time.perf_counter() - t
    years = document["years"]
    year = years[-1] if year is None else year
    if year not in years:
        raise InputError(f"year {year} is outside the run ({years[0]}–{years[-1]})")
    flows = data.map_flows[data.map_flows["year"] == year]
    gateways = data.gateways[data.gateways["year"] == year] if data.gateways is not None else None
    figs = {"map": figures.corridor_map(data.nodes, data.network_links, flows, data.colours,
                                        title=f"Freight flows by corridor, {year}", gateways=gateways),
            "series": figures.time_series(data.bands, data.corridors, data.many, data.colours, data.focus_name,
                                          data.index)}
    extras = {"overrides": overrides, "index": data.index, "headline": data.headline,
              "figures": {name: figure_json(fig) for name, fig in figs.items()}, "seconds": seconds}
    return json.dumps(json_safe(document | extras), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def _picklable(exc: Exception) -> Exception:
    """``exc`` if it survives the trip back to the server, else a RuntimeError with its message (an
    exception that cannot be rebuilt on the other side would break the whole pool)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class RunPool:
    """Worker processes for single runs, started on the first run; at most ``workers`` run and
    ``max_waiting`` wait at once, beyond which :meth:`run` raises :class:`ServerBusy`."""

    def __init__(self, workers: int, max_waiting: int):
        if workers < 1:
            raise InputError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.max_waiting = max_waiting
        self.served: collections.deque[Served] = collections.deque(maxlen=1000)   # the latest runs
        self._guard = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight = 0

    def status(self) -> dict:
        with self._guard:
            in_flight = self._in_flight
        return {"workers": self.workers, "running": min(in_flight, self.workers),
                "waiting": max(0, in_flight - self.workers), "max_waiting": self.max_waiting,
                "started": self._executor is not None}

    async def run(self, fn, *args):
        """``fn(*args)`` in a worker, awaited without holding a server thread. ``fn`` returns
        ``(answer, Served)``; the answer is returned."""
        with self._guard:
            if self._in_flight >= self.workers + self.max_waiting:
                raise ServerBusy(f"{self.workers} runs are running and {self.max_waiting} waiting; try again "
                                 "shortly", retry_after=2)
            self._in_flight += 1
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=retain_freed_memory)
            executor = self._executor
        try:
            answer, served = await asyncio.wrap_future(executor.submit(fn, *args))
        except BrokenProcessPool:
            self._replace(executor)
            raise WorkerLost("a worker process ended during the run; try again", retry_after=1) from None
        finally:
            with self._guard:
                self._in_flight -= 1
        self.served.append(served)
        return answer

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A worker died (killed, out of memory): the next run starts a fresh pool."""
        with self._guard:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self, wait: bool = True) -> None:
        """Stop the workers (a later run starts them again)."""
        with self._guard:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)
