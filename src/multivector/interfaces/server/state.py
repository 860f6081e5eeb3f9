"""What the server holds between requests: its limits, the scenario lookup, the store file and the
exploration jobs (the pool of single runs is :mod:`.runner`).

Plain classes without FastAPI, one per concern, so that each route asks (through :mod:`.deps`) for
the piece it uses. Overload is a :class:`ServerBusy` (429 with Retry-After); anything not there is a
:class:`NotFound` (404).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from multivector.dataset import Scenario, builtin_datasets
from multivector.errors import InputError
from multivector.explore.ensemble import cached_scenario
from multivector.explore.store import Store

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"


class NotFound(LookupError):
    """A scenario, run, job or file the request names does not exist (404)."""


class ServerBusy(Exception):
    """Too much is running or waiting; the client should retry after ``retry_after`` seconds (429)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class WorkerLost(ServerBusy):
    """A worker process ended during a run (killed, out of memory); the pool was renewed (503)."""


@dataclass(frozen=True)
class Limits:
    """What one server accepts: request body size, exploration size and how many run at once."""

    max_n: int = 20_000                 # runs in one exploration
    max_jobs: int = 2                   # explorations running at once
    max_queued_runs: int = 32           # single runs waiting for a worker
    max_body_bytes: int = 64 * 1024


class ScenarioLookup:
    """Scenarios by name: the built-in ones and the dataset folders the operator served
    (``serve --dataset DIR``), each loaded and compiled once per process. Requests name them; no
    request value ever reaches the file system."""

    def __init__(self, folders: Sequence[str | Path] = ()):
        self._sources = {name: name for name in builtin_datasets()}
        for folder in folders:
            source = str(Path(folder).resolve())
            name = cached_scenario(source).name
            if name in self._sources:
                raise InputError(f"--dataset {folder}: a scenario named '{name}' is already served",
                                 hint="give the dataset another [model] name")
            self._sources[name] = source

    def names(self) -> list[str]:
        return list(self._sources)

    def source(self, name: str) -> str:
        """What :func:`multivector.explore.ensemble.explore` loads for a scenario name."""
        if name not in self._sources:
            raise NotFound(f"no scenario '{name[:80]}'; scenarios: {', '.join(self._sources)}")
        return self._sources[name]

    def get(self, name: str) -> Scenario:
        return cached_scenario(self.source(name))

    def of_stored_run(self, meta: dict) -> Scenario:
        """The scenario a stored exploration ran (the store, not the request, names it)."""
        return cached_scenario(meta["scenario"])


class StoreFile:
    """The DuckDB store the server reads explorations from and writes its jobs to."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def open(self) -> Store:
        if not self.exists():
            raise NotFound(f"the store {self.path.name} holds no runs yet; start an exploration first")
        return Store(self.path)

    def holds_run(self, run_id: str) -> bool:
        if not self.exists():
            return False
        with Store(self.path) as store:
            return store.get_run(run_id, missing_ok=True) is not None


def checked_run_id(run_id: str) -> str:
    """``run_id`` if it could name a run; anything else (a path, SQL) is simply not found."""
    if not re.fullmatch(RUN_ID_PATTERN, run_id):
        raise NotFound(f"no run '{run_id[:80]}'")
    return run_id


@dataclass
class Job:
    """One exploration started by this server and its progress."""

    id: str
    run_id: str
    scenario: str
    n: int
    status: str = "queued"            # queued, running, finished, failed
    done: int = 0
    total: int = 0
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def public(self) -> dict:
        return {"job": self.id, "run_id": self.run_id, "scenario": self.scenario, "status": self.status,
                "done": self.done, "total": self.total or self.n, "error": self.error,
                "progress": (self.done / self.total) if self.total else 0.0,
                "seconds": (self.finished or time.time()) - self.created}

    def report_progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total


class JobBoard:
    """Exploration jobs: at most ``max_running`` queued or running at once, each in its own thread."""

    def __init__(self, max_running: int):
        self.max_running = max_running
        self._jobs: dict[str, Job] = {}
        self._guard = threading.Lock()

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job '{job_id[:40]}'")
        return job

    def running(self) -> int:
        return sum(j.status in ("queued", "running") for j in self._jobs.values())

    def reserve(self, run_id: str, scenario: str, total: int, already_stored: Callable[[str], bool]) -> Job:
        """A new queued job for ``run_id``, unless too many run (ServerBusy) or the id is taken."""
        with self._guard:
            if self.running() >= self.max_running:
                raise ServerBusy(f"{self.max_running} explorations are already running; try again when one ends",
                                 retry_after=30)
            if any(j.run_id == run_id for j in self._jobs.values()) or already_stored(run_id):
                raise InputError(f"run '{run_id}' already exists", hint="choose another run_id")
            job = Job(id=uuid.uuid4().hex[:12], run_id=run_id, scenario=scenario, n=total)
            self._jobs[job.id] = job
            return job

    def start(self, job: Job, work: Callable[[Callable[[int, int], None]], object]) -> None:
        """Run ``work(progress)`` in a thread; the job records how it ended (the server stays up)."""

        def run():
            job.status = "running"
            try:
                work(job.report_progress)
                job.status = "finished"
            except Exception as exc:
                job.status, job.error = "failed", str(exc)
            finally:
                job.finished = time.time()

        threading.Thread(target=run, name=f"explore-{job.id}", daemon=True).start()
