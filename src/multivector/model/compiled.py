"""The coupled model: one object that owns a scenario's compiled forms and exposes ``simulate``.

A :class:`Model` is built once per scenario (``compiled(scenario)``) and keeps what is costly to make:
the layered network and its route sets, the freight model's static arrays, the timeline by year.
Every interface reaches the model through :func:`simulate`; a single run is a batch of one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np
import pandas as pd
import xarray as xr

from multivector.dataset import Scenario, check_sources_table, run_values, table_values, timeline_by_year, year_values
from multivector.errors import InputError
from multivector.freight.model import FreightModel, results_dataset
from multivector.freight.network import Network, cached_network
from multivector.freight.sue import EQUILIBRIUM_TOL, MAX_NEWTON_STEPS, on_this_thread, thread_count
from multivector.model.coupled import simulate_coupled

#: The most runs one pass of :meth:`Model.simulate` holds. On 2 cores a batch of 1,000 coupled runs ran
#: 1.3x faster in passes of 250 than at once, and 1.65x as four separate calls (125 and 250 alike; 500
#: 1.3x): a pass's yearly arrays, some tens of MB, stay in cache, and the memory one pass frees serves
#: the next (bench/results/coupled.md). Explorations' chunks are as large by default.
PASS_RUNS = 250
#: The fewest runs worth a pass of their own beside another: passes run side by side, one a core, each
#: with its equilibrium on its own thread. A pass's NumPy and SciPy work between the equilibria runs on
#: one core, so one pass alone left the other core idle for 40% of a batch's time (500 runs: 10.1-10.8 s
#: side by side against 13.2-14.9 s one after the other, bench/results/coupled.md).
MIN_PASS_RUNS = 16


def pass_bounds(total: int, workers: int) -> list[tuple[int, int]]:
    """The passes ``[a, b)`` a batch of ``total`` runs is simulated in: none above :data:`PASS_RUNS`, and
    one for each of ``workers`` side by side where each keeps :data:`MIN_PASS_RUNS`; of equal sizes."""
    count = max(-(-total // PASS_RUNS), min(workers, total // MIN_PASS_RUNS), 1)
    size = -(-total // count)
    return [(a, min(a + size, total)) for a in range(0, total, size)]


class _Stopped(Exception):
    """A pass told to stop at its next year, because another failed or the caller was interrupted."""


class Model:
    """A scenario compiled for simulation. The constructor only stores; parts are built on first use."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._network: Network | None = None
        self._freight: FreightModel | None = None
        self._timeline: dict | None = None
        self._lock = threading.Lock()

    @property
    def network(self) -> Network:
        """The layered graph and its route sets (route enumeration is the costly step)."""
        with self._lock:
            if self._network is None:
                self._network = cached_network(self.scenario)
        return self._network

    @property
    def freight(self) -> FreightModel:
        net = self.network
        with self._lock:
            if self._freight is None:
                self._freight = FreightModel(self.scenario, net)
        return self._freight

    @property
    def timeline(self) -> dict:
        if self._timeline is None:
            self._timeline = timeline_by_year(self.scenario)
        return self._timeline

    def simulate(self, n: int = 1, *, years: Sequence[int] | None = None, overrides: Mapping | None = None,
                 samples: pd.DataFrame | None = None, fitted: pd.DataFrame | None = None, seed: int = 0,
                 tol: float | None = None, max_iter: int = MAX_NEWTON_STEPS, keep_routes: bool = False,
                 coupled: bool | None = None, run_ids=None, events: Mapping | None = None,
                 progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
        """Simulate a batch of runs over years and return labelled results.

        ``samples`` (a DataFrame, one row per run) sets sampled parameters; ``overrides`` sets names to
        scalars or ``[N]`` arrays for every run. Both hold in every year. ``fitted`` (one row per run)
        sets coefficients under estimation or drawn from their posterior: like the dataset's own values,
        they give way to ``timeline.csv`` in the years it covers (:func:`~multivector.dataset.run_values`).
        With a political register (``politics.toml``) the two registers are coupled year by year over
        its horizon unless ``coupled=False``; without one, the network alone is solved for ``years``
        (default: the base year). ``seed`` and ``run_ids`` fix
        each run's random stream; ``events`` places outages (``{(name, year): share}``, coupled runs only).
        ``tol`` is the route-choice gap to reach (default ``EQUILIBRIUM_TOL``, 1e-6). Results:
        ``xarray.Dataset`` with dimensions ``run``, ``year``, ``resource``, ``corridor``, ``commodity``
        (and ``variable`` for the political trajectory).
        ``progress(done, total)`` is called after each solved year (years solved, years to solve).
        A batch is simulated in passes (:func:`pass_bounds`), side by side on threads, one a core, and
        joined: a run's answer does not depend on its batch (to the bit), passes of at most
        :data:`PASS_RUNS` keep a year's arrays in cache and the batch's memory bounded, and a pass's
        NumPy work between its equilibria leaves the other cores to the other passes.
        """
        total = len(samples) if samples is not None else len(fitted) if fitted is not None else int(n)
        batch = dict(years=years, seed=seed, tol=tol, max_iter=max_iter, keep_routes=keep_routes, coupled=coupled,
                     events=events)
        workers = thread_count()
        bounds = pass_bounds(total, workers)
        if len(bounds) == 1:
            return self._simulate_batch(n, overrides=overrides, samples=samples, fitted=fitted, run_ids=run_ids,
                                        progress=progress, **batch)
        ids = np.arange(total) if run_ids is None else np.asarray(run_ids)
        _ = self.freight, self.timeline      # built here, once, rather than by the passes at the same time
        done = [0] * len(bounds)
        stop = threading.Event()
        lock = threading.Lock()

        def one_pass(k: int, a: int, b: int) -> xr.Dataset:
            def step(years_done: int, of: int) -> None:
                if stop.is_set():
                    raise _Stopped
                if progress is not None:
                    with lock:
                        done[k] = years_done
                        progress(sum(done), len(bounds) * of)

            rows = lambda t: None if t is None else t.iloc[a:b].reset_index(drop=True)
            each = {name: (v[a:b] if np.ndim(v) == 1 and len(v) == total else v)
                    for name, v in (overrides or {}).items()}
            with on_this_thread():
                return self._simulate_batch(b - a, overrides=each, samples=rows(samples), fitted=rows(fitted),
                                            run_ids=ids[a:b], progress=step, **batch)

        if workers == 1:
            return _joined([one_pass(k, a, b) for k, (a, b) in enumerate(bounds)])
        pool = ThreadPoolExecutor(max_workers=min(workers, len(bounds)), thread_name_prefix="multivector-pass")
        try:
            passes = [pool.submit(one_pass, k, a, b) for k, (a, b) in enumerate(bounds)]
            wait(passes, return_when=FIRST_EXCEPTION)
            failed = [p.exception() for p in passes if p.done() and p.exception() is not None]
            if failed:
                raise failed[0]
            return _joined([p.result() for p in passes])
        except BaseException:      # an error in one pass, or an interrupt: the others stop at their next year
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _simulate_batch(self, n: int = 1, *, years=None, overrides=None, samples=None, fitted=None, seed=0,
                        tol=None, max_iter=MAX_NEWTON_STEPS, keep_routes=False, coupled=None, run_ids=None,
                        events=None, progress=None) -> xr.Dataset:
        """:meth:`simulate` for one pass of runs."""
        s = self.scenario
        if coupled is None:  # couple when there is a political register and the years lie in its horizon
            coupled = s.politics is not None and (years is None or min(years) >= s.politics.sd.spec.sim.start)
        if coupled:
            if s.politics is None:
                raise InputError(f"scenario '{s.name}' has no political register (politics.toml)")
            return simulate_coupled(self, n, years=years, overrides=overrides, samples=samples, fitted=fitted,
                                    seed=seed, run_ids=run_ids, tol=tol, max_iter=max_iter,
                                    keep_routes=keep_routes, events=events, progress=progress)
        if events:
            raise InputError("--event needs the coupled model (a political register and its years)")
        tol = EQUILIBRIUM_TOL if tol is None else tol
        freight = self.freight
        table, fixed = run_values(s, n, overrides, samples, fitted)
        years = list(years) if years is not None else [s.base_year]
        values = table_values(table)
        per_year = []
        for y in years:
            per_year.append(freight.solve_year(year_values(self.timeline, values, y, fixed), y, tol, max_iter))
            if progress:
                progress(len(per_year), len(years))
        return results_dataset(s, freight, table, years, per_year, seed, keep_routes)


def _joined(parts: list[xr.Dataset]) -> xr.Dataset:
    """Passes of one batch joined along ``run`` (numbered anew): a variable a pass lacks (a verdict not
    every pass could rescore) is dropped, as a single batch would have dropped it; ``iterations`` is the
    most any pass took."""
    common = set.intersection(*(set(p.data_vars) for p in parts))
    parts = [p.drop_vars(sorted(set(p.data_vars) - common)) for p in parts]
    ds = xr.concat(parts, dim="run", data_vars="minimal", coords="minimal", compat="override",
                   combine_attrs="override")
    ds = ds.assign_coords(run=np.arange(ds.sizes["run"]))
    if "iterations" in ds:
        ds["iterations"] = xr.concat([p["iterations"] for p in parts], dim="pass").max("pass")
    return ds


_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def compiled(scenario: Scenario) -> Model:
    """The scenario's :class:`Model`, built once per scenario object and kept while the scenario lives."""
    with _GUARD:
        model = _MODELS.get(scenario)
        if model is None:
            model = _MODELS[scenario] = Model(scenario)
    return model


def check(scenario: Scenario) -> list[str]:
    """Everything ``data check`` verifies beyond loading: the sources table, and a route for every OD
    (compiling the network raises an InputError naming the OD otherwise). Returns the sources' problems."""
    problems = check_sources_table(scenario)
    compiled(scenario).network
    return problems


def simulate(scenario: Scenario, n: int = 1, **kwargs) -> xr.Dataset:
    """``compiled(scenario).simulate(n, ...)``: the one entry every interface calls."""
    return compiled(scenario).simulate(n, **kwargs)
