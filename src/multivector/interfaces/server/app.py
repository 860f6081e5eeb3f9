"""``create_app``: the FastAPI application, its limits and how errors are answered.

Every error is ``{"detail": ..., "hint": ...}``: bad input (``InputError``, an invalid body) is 422;
a request that starts work without the server's token 401 with ``WWW-Authenticate: Bearer``; an
unknown scenario, run, job or file 404; a body over the size limit 413; too much running 429 with
Retry-After; an optional dependency missing on the server (``MissingDependency``) 503 — the request
was fine, the installation lacks a piece — and so is a worker process lost during a run.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from pathlib import Path

from multivector.errors import InputError, MissingDependency
from multivector.io import require


def create_app(db: str | Path = "multivector.duckdb", max_n: int = 20_000, max_jobs: int = 2,
               max_queued_runs: int = 32, datasets: Sequence[str | Path] = (), workers: int | None = None,
               token: str | None = None):
    """The FastAPI application: JSON API under /api, the dashboard at /. ``datasets`` are dataset
    folders served beside the built-in scenarios, by their names. Single runs go to ``workers``
    processes (default: one per available core), at most ``max_queued_runs`` waiting beyond them.
    With a ``token``, requests that start work must carry ``Authorization: Bearer <token>``."""
    require("fastapi", "serve", "the HTTP API")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from multivector import __version__
    from multivector.interfaces.server import (routes_explorations, routes_pages, routes_runs, routes_scenarios,
                                               routes_server)
    from multivector.interfaces.server.auth import Unauthorized, checked_token
    from multivector.interfaces.server.deps import ServerState
    from multivector.interfaces.server.runner import RunPool, available_cpus
    from multivector.interfaces.server.state import JobBoard, Limits, ScenarioLookup, ServerBusy, StoreFile, WorkerLost

    limits = Limits(max_n=max_n, max_jobs=max_jobs, max_queued_runs=max_queued_runs)
    runs = RunPool(available_cpus() if workers is None else workers, max_queued_runs)
    token = checked_token(token)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        runs.close()

    app = FastAPI(title="multivector", version=__version__, lifespan=lifespan,
                  description="Run the coupled freight-and-politics model, start explorations, and read "
                              "their analyses. Requests name built-in scenarios and run ids, never files. "
                              f"Limits: request bodies ≤ {limits.max_body_bytes // 1024} KiB; an exploration ≤ "
                              f"{max_n:,} runs; {max_jobs} explorations at once; {runs.workers} single runs "
                              f"at once and {max_queued_runs} waiting (429 beyond). "
                              + ("Starting runs and explorations needs `Authorization: Bearer <token>` (401 "
                                 "without). " if token else "")
                              + "Errors: `{detail, hint}`.")
    app.state.server = ServerState(limits=limits, scenarios=ScenarioLookup(datasets), store_file=StoreFile(db),
                                   runs=runs, jobs=JobBoard(max_jobs), token=token)
    weakref.finalize(app, runs.close, False)     # an app dropped without its lifespan ending (a test client)

    def error(status: int, detail: str, hint: str = "", headers: dict | None = None):
        return JSONResponse(status_code=status, content={"detail": detail, "hint": hint}, headers=headers)

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError):
        return error(422, exc.message, exc.hint or "")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return error(422, "invalid request: " + "; ".join(problems)[:2000], "see the schema at /docs or /openapi.json")

    @app.exception_handler(LookupError)          # NotFound, and any lookup the library could not make
    async def not_found(request: Request, exc: LookupError):
        return error(404, str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(ServerBusy)
    async def busy(request: Request, exc: ServerBusy):
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(WorkerLost)
    async def worker_lost(request: Request, exc: WorkerLost):
        return error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized):
        challenge = 'Bearer error="invalid_token"' if exc.wrong else "Bearer"
        return error(401, str(exc), "send the header 'Authorization: Bearer <token>' with the server's token "
                                    "(ask whoever runs it)", headers={"WWW-Authenticate": challenge})

    @app.exception_handler(MissingDependency)
    async def missing_dependency(request: Request, exc: MissingDependency):
        return error(503, str(exc).removesuffix(f" ({exc.hint})"), exc.hint)

    @app.middleware("http")
    async def limit_body_size(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > limits.max_body_bytes):
            return error(413, f"request body over {limits.max_body_bytes // 1024} KiB")
        return await call_next(request)

    for module in (routes_pages, routes_server, routes_scenarios, routes_explorations, routes_runs):
        app.include_router(module.router)
    return app
