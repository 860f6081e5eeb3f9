"""The HTTP API and the dashboard: FastAPI over the same data path as the CLI.

``create_app(db=...)`` builds the application; ``multivector serve`` runs it with uvicorn. Requests
name built-in scenarios and run ids only — never file paths — and both are checked against what
exists before anything is opened. Single runs are synchronous (one scenario model is shared, so
runs of one scenario take turns under a lock; beyond ``max_queued_runs`` waiting, 429). Explorations
run as background jobs in threads writing to the store, at most ``max_jobs`` at once (429 beyond),
each at most ``max_n`` runs (422 beyond).
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from multivector.errors import InputError

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"
# The four parameters the analysis names, shown first on the dashboard (when the scenario has them)
DASHBOARD_PARAMETERS = ("cpc_disruption_rate", "capacity_factor_caspian", "eu_investment_willingness",
                        "russia_tolerance_baseline")
MAX_BODY_BYTES = 64 * 1024
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class RunRequest(BaseModel):
    """One run of a scenario: parameter and lever overrides, the disruption seed, the map's year."""

    model_config = ConfigDict(extra="forbid")
    overrides: dict[str, float] = Field(default_factory=dict, description="parameter or lever -> value",
                                        max_length=200)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    year: int | None = Field(None, ge=1900, le=2100, description="year of the map (default: the last)")

class ExploreRequest(BaseModel):
    """An exploration to start in the background."""

    model_config = ConfigDict(extra="forbid")
    scenario: str = Field("kazakhstan", max_length=80)
    n: int = Field(..., ge=1, le=10**7, description="runs (Sobol: base samples, a power of two)")
    sampler: Literal["lhs", "sobol", "morris"] = "lhs"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    levers: Literal["none", "all"] = "none"
    chunk_size: int = Field(250, ge=1, le=10_000)
    run_id: str | None = Field(None, pattern=RUN_ID_PATTERN)


def _require():
    try:
        import fastapi  # noqa: F401
        import pydantic  # noqa: F401
    except ImportError:
        raise InputError("the HTTP API needs FastAPI", hint="pip install 'multivector[serve]'") from None


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _fig_json(fig) -> dict:
    return json.loads(fig.to_json())


def _clean(x):
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


@dataclass
class Job:
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


class Service:
    """What the app holds between requests: the store path, the jobs, and the limits."""

    def __init__(self, db: Path, max_n: int, max_jobs: int, max_queued_runs: int):
        self.db = Path(db)
        self.max_n = max_n
        self.max_jobs = max_jobs
        self.max_queued_runs = max_queued_runs
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.run_locks: dict[str, threading.Lock] = {}
        self.waiting = 0

    def scenario(self, name: str):
        from multivector.ensemble import _scenario
        from multivector.scenario import builtin_datasets

        if name not in builtin_datasets():
            raise LookupError(f"no scenario '{name}'; scenarios: {', '.join(builtin_datasets())}")
        return _scenario(name)

    def store(self):
        from multivector.store import Store

        if not self.db.exists():
            raise LookupError(f"the store {self.db.name} holds no runs yet; start an exploration first")
        return Store(self.db)

    def running_jobs(self) -> int:
        return sum(j.status in ("queued", "running") for j in self.jobs.values())


def create_app(db: str | Path = "multivector.duckdb", max_n: int = 20_000, max_jobs: int = 2,
               max_queued_runs: int = 32):
    """The FastAPI application: JSON API under /api, the dashboard at /."""
    _require()
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from multivector import __version__

    svc = Service(Path(db), max_n, max_jobs, max_queued_runs)
    app = FastAPI(title="multivector", version=__version__,
                  description="Run the coupled freight-and-politics model, start explorations, and read "
                              "their analyses. Requests name built-in scenarios and run ids, never files. "
                              f"Limits: request bodies ≤ {MAX_BODY_BYTES // 1024} KiB; an exploration ≤ "
                              f"{max_n:,} runs; {max_jobs} explorations at once; {max_queued_runs} single "
                              "runs waiting (429 beyond).")
    app.state.service = svc

    def error(status: int, message: str, hint: str = "", headers: dict | None = None):
        return JSONResponse(status_code=status, content={"detail": message, "hint": hint}, headers=headers)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return error(422, exc.message if hasattr(exc, "message") else str(exc), getattr(exc, "hint", "") or "")

    @app.exception_handler(LookupError)
    async def _not_found(request: Request, exc: LookupError):
        return error(404, str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return error(422, "invalid request: " + "; ".join(problems)[:2000],
                     "see the schema at /docs or /openapi.json")

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return error(413, f"request body over {MAX_BODY_BYTES // 1024} KiB")
        return await call_next(request)

    def check_run_id(run_id: str) -> str:
        import re

        if not re.fullmatch(RUN_ID_PATTERN, run_id):
            raise LookupError(f"no run '{run_id[:80]}'")
        return run_id

    def with_store(run_id: str, fn):
        check_run_id(run_id)
        store = svc.store()
        try:
            if store.get_run(run_id, missing_ok=True) is None:
                raise LookupError(f"no run '{run_id}' in the store")
            return fn(store)
        finally:
            store.close()

    # -------------------------------------------------------------------------- pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard():
        return HTMLResponse(resources.files("multivector.web").joinpath("index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name == "plotly.min.js":
            return Response(_plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "max-age=86400"})
        if name not in STATIC:
            raise LookupError(f"no file '{name[:80]}'")
        text = resources.files("multivector.web").joinpath(name).read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name])

    # -------------------------------------------------------------------------- scenarios
    @app.get("/api/scenarios", summary="Built-in scenarios")
    def scenarios():
        from multivector.scenario import builtin_datasets

        out = []
        for name in builtin_datasets():
            s = svc.scenario(name)
            out.append({"name": name, "title": s.model.get("title", name), "coupled": s.politics is not None,
                        "parameters": len(s.parameters)})
        return out

    @app.get("/api/scenarios/{name}/parameters", summary="Parameters and levers: defaults, ranges, sources")
    def parameters(name: str):
        s = svc.scenario(name)
        defaults = s.defaults()
        titles = dict(zip(s.sources["id"], s.sources["title"]))
        kinds = dict(zip(s.sources["id"], s.sources["kind"]))
        featured = [p for p in DASHBOARD_PARAMETERS if p in s.parameters]
        rows = []
        for pname, p in s.parameters.items():
            rows.append({"name": pname, "kind": p.kind, "value": defaults[pname], "min": p.min, "max": p.max,
                         "unit": p.unit, "source": p.source, "source_kind": kinds.get(p.source, ""),
                         "source_title": titles.get(p.source, ""), "description": p.description,
                         "featured": pname in featured})
        return _clean({"scenario": name, "featured": featured, "parameters": rows})

    @app.post("/api/scenarios/{name}/run", summary="Simulate one run with overrides (synchronous)")
    def run(name: str, body: RunRequest):
        from multivector import figures
        from multivector.report import collect_run

        s = svc.scenario(name)
        s.check_names(body.overrides)
        for k, v in body.overrides.items():
            p = s.parameters[k]
            if not (p.min <= v <= p.max):
                raise InputError(f"{k} = {v:g} is outside its range [{p.min:g}, {p.max:g}] {p.unit}",
                                 hint="choose a value inside the range (see /api/scenarios/{name}/parameters)")
        with svc.lock:
            if svc.waiting >= svc.max_queued_runs:
                return error(429, f"{svc.waiting} runs are waiting; try again shortly", headers={"Retry-After": "2"})
            svc.waiting += 1
            lock = svc.run_locks.setdefault(name, threading.Lock())
        try:
            t = time.perf_counter()
            with lock:
                data = collect_run(s, seed=body.seed, overrides=body.overrides)
            years = sorted(int(y) for y in data.map_flows["year"].unique()) if len(data.map_flows) else []
            year = body.year if body.year is not None else (years[-1] if years else None)
            if years and year not in years:
                raise InputError(f"year {year} is outside the run ({years[0]}–{years[-1]})")
            flows = data.map_flows[data.map_flows["year"] == year]
            series = {k: v["p50"].tolist() for k, v in data.bands.items()}
            index = data.bands.get("middle_power_index")
            doc = {"scenario": name, "seed": body.seed, "overrides": body.overrides,
                   "years": [int(y) for y in (index.index if index is not None else years)],
                   "series": series, "headline": data.headline,
                   "final_index": float(index["p50"].iloc[-1]) if index is not None else None,
                   "consolidated": data.headline.get("consolidated") == "yes",
                   "bottlenecks": data.bottlenecks.head(8).to_dict(orient="records"),
                   "figures": {"map": _fig_json(figures.corridor_map(data.nodes, data.network_links, flows,
                                                                     title=f"Freight flows by corridor, {year}")),
                               "series": _fig_json(figures.time_series(data.bands, data.corridors, False))},
                   "seconds": time.perf_counter() - t}
            return _clean(doc)
        finally:
            with svc.lock:
                svc.waiting -= 1

    # -------------------------------------------------------------------------- explorations
    @app.post("/api/explorations", status_code=202, summary="Start an exploration as a background job")
    def start_exploration(body: ExploreRequest):
        from multivector.ensemble import explore, make_design, new_run_id

        s = svc.scenario(body.scenario)
        if s.politics is None:
            raise InputError(f"scenario '{body.scenario}' has no political register to explore")
        total = make_design(s, body.n, body.sampler, body.seed, None if body.levers == "none" else "all").total
        if total > svc.max_n:
            raise InputError(f"{total:,} runs is over this server's limit of {svc.max_n:,}",
                             hint="ask for fewer runs, or run 'multivector explore' from the command line")
        with svc.lock:
            if svc.running_jobs() >= svc.max_jobs:
                return error(429, f"{svc.max_jobs} explorations are already running; try again when one ends",
                             headers={"Retry-After": "30"})
            run_id = body.run_id or new_run_id(body.scenario)
            if any(j.run_id == run_id for j in svc.jobs.values()):
                raise InputError(f"run '{run_id}' already exists", hint="choose another run_id")
            if svc.db.exists():
                store = svc.store()
                try:
                    if store.get_run(run_id, missing_ok=True) is not None:
                        raise InputError(f"run '{run_id}' already exists", hint="choose another run_id")
                finally:
                    store.close()
            job = Job(id=uuid.uuid4().hex[:12], run_id=run_id, scenario=body.scenario, n=total)
            svc.jobs[job.id] = job

        def progress(done, all_):
            job.done, job.total = done, all_

        def work():
            job.status = "running"
            try:
                explore(body.scenario, n=body.n, sampler=body.sampler, seed=body.seed,
                        levers=None if body.levers == "none" else "all", run_id=run_id, db=svc.db,
                        chunk_size=body.chunk_size, progress=progress)
                job.status = "finished"
            except Exception as exc:  # the job reports what went wrong; the server stays up
                job.status, job.error = "failed", str(exc)
            finally:
                job.finished = time.time()

        threading.Thread(target=work, name=f"explore-{job.id}", daemon=True).start()
        return job.public() | {"status_url": f"/api/explorations/{job.id}"}

    @app.get("/api/explorations", summary="Exploration jobs started by this server")
    def jobs():
        return [j.public() for j in svc.jobs.values()]

    @app.get("/api/explorations/{job_id}", summary="Status and progress of an exploration job")
    def job_status(job_id: str):
        job = svc.jobs.get(job_id)
        if job is None:
            raise LookupError(f"no job '{job_id[:40]}'")
        return job.public()

    # -------------------------------------------------------------------------- the store
    @app.get("/api/runs", summary="Explorations in the store")
    def runs():
        if not svc.db.exists():
            return []
        store = svc.store()
        try:
            frame = store.list_runs()
        finally:
            store.close()
        frame["created"] = frame["created"].astype(str) if "created" in frame else None
        return _clean(frame.to_dict(orient="records"))

    @app.get("/api/runs/{run_id}", summary="One exploration: its design and progress")
    def run_meta(run_id: str):
        def fn(store):
            meta = store.get_run(run_id)
            return _clean({k: v for k, v in meta.items()} | {"outcomes": store.outcome_names(),
                                                             "problems": store.integrity(run_id)})
        return with_store(run_id, fn)

    @app.get("/api/runs/{run_id}/ensemble", summary="Percentile bands per year and the final-index distribution")
    def ensemble(run_id: str):
        from multivector import figures
        from multivector.ensemble import _scenario

        def fn(store):
            meta = store.get_run(run_id)
            s = _scenario(meta["scenario"])
            corridors = [c for c in s.corridors if c != "other"]
            bands = store.yearly_percentiles(run_id, ["middle_power_index", "kazakhstan_overland_share",
                                                      *[f"{c}_mt" for c in corridors]])
            res = store.run_outcomes(run_id)
            final = res["middle_power_index_final"].rename("final middle-power index")
            return _clean({"run_id": run_id, "runs": int(len(res)), "consolidated": float(res["consolidated"].mean()),
                           "bands": {k: v.reset_index().to_dict(orient="list") for k, v in bands.items()},
                           "figures": {"series": _fig_json(figures.time_series(bands, corridors, True)),
                                       "histogram": _fig_json(figures.histogram(
                                           final, f"Final middle-power index over {len(res):,} runs"))}})
        return with_store(run_id, fn)

    @app.get("/api/runs/{run_id}/outcomes", summary="One outcome per run: sampled values and the outcome")
    def outcomes(run_id: str, outcome: str = Query("middle_power_index_final", max_length=80),
                 year: int | None = Query(None, ge=1900, le=2100), limit: int = Query(10_000, ge=1, le=100_000),
                 offset: int = Query(0, ge=0)):
        from multivector.analysis import _outcome_vector

        def fn(store):
            values, yr = _outcome_vector(store, run_id, outcome, year)
            exp = store.experiments(run_id).loc[values.index]
            frame = exp.assign(**{outcome: values}).reset_index().iloc[offset:offset + limit]
            return _clean({"run_id": run_id, "outcome": outcome, "year": yr, "total": int(len(values)),
                           "offset": offset, "rows": frame.to_dict(orient="records")})
        return with_store(run_id, fn)

    @app.get("/api/runs/{run_id}/sensitivity", summary="Sobol, Morris or RBD-FAST indices of an outcome")
    def sensitivity(run_id: str, outcome: str = Query("middle_power_index_final", max_length=80),
                    year: int | None = Query(None, ge=1900, le=2100)):
        from multivector.analysis import sensitivity as analyse

        def fn(store):
            frame = analyse(store, run_id, outcome, year)
            return _clean({"outcome": outcome, "year": frame.attrs["year"], "method": frame.attrs["method"],
                           "indices": frame.reset_index().to_dict(orient="records")})
        return with_store(run_id, fn)

    @app.get("/api/runs/{run_id}/discover", summary="PRIM: where the outcome occurs")
    def discover(run_id: str, outcome: str = Query("consolidated", max_length=80),
                 threshold: float | None = Query(None), below: bool = False,
                 year: int | None = Query(None, ge=1900, le=2100)):
        from multivector import figures
        from multivector.analysis import discover as prim
        from multivector.ensemble import _scenario

        if threshold is not None and not math.isfinite(threshold):
            raise InputError("threshold must be a finite number")

        def fn(store):
            meta = store.get_run(run_id)
            s = _scenario(meta["scenario"])
            res = prim(store, run_id, outcome, year, threshold, below,
                       units={k: p.unit for k, p in s.parameters.items()})
            box = res.box
            return _clean({"outcome": outcome, "stats": res.stats,
                           "trajectory": res.trajectory.to_dict(orient="list"),
                           "box": box.reset_index().rename(columns={"index": "parameter"}).to_dict(orient="records"),
                           "figures": {"tradeoff": _fig_json(figures.prim_tradeoff(res.trajectory, res.chosen))}})
        return with_store(run_id, fn)

    @app.get("/api/runs/{run_id}/report", response_class=HTMLResponse, summary="The HTML report of an exploration")
    def report(run_id: str):
        from multivector.report import collect_exploration, render

        return HTMLResponse(with_store(run_id, lambda store: render(collect_exploration(store, run_id))))

    return app
