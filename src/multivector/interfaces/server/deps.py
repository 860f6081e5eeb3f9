"""FastAPI dependencies: how a route receives the server's state (see :mod:`.state`).

``create_app`` puts one :class:`ServerState` on ``app.state.server``; each dependency hands a route
the part it needs, and ``Annotated`` aliases keep route signatures short. Routes over a stored run
receive a :class:`StoredRun` — the store already opened, the run id checked and found — and the
store is closed when the request ends. Every route that starts computation or writes the store
lists :data:`WRITE_ACCESS` among its dependencies: with a token set, it is refused (401) unless the
request carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from multivector.dataset import Scenario
from multivector.explore.store import Store
from multivector.interfaces.server.auth import Unauthorized, token_matches
from multivector.interfaces.server.runner import RunPool
from multivector.interfaces.server.state import JobBoard, Limits, NotFound, ScenarioLookup, StoreFile, checked_run_id


@dataclass
class ServerState:
    """Everything the routes share, built once by ``create_app``."""

    limits: Limits
    scenarios: ScenarioLookup
    store_file: StoreFile
    runs: RunPool
    jobs: JobBoard
    token: str | None = None            # None: anyone who reaches the server may start work


def server_state(request: Request) -> ServerState:
    return request.app.state.server


def limits(request: Request) -> Limits:
    return server_state(request).limits


def scenario_lookup(request: Request) -> ScenarioLookup:
    return server_state(request).scenarios


def store_file(request: Request) -> StoreFile:
    return server_state(request).store_file


def run_pool(request: Request) -> RunPool:
    return server_state(request).runs


def job_board(request: Request) -> JobBoard:
    return server_state(request).jobs


LimitsDep = Annotated[Limits, Depends(limits)]
ScenariosDep = Annotated[ScenarioLookup, Depends(scenario_lookup)]
StoreFileDep = Annotated[StoreFile, Depends(store_file)]
RunPoolDep = Annotated[RunPool, Depends(run_pool)]
JobsDep = Annotated[JobBoard, Depends(job_board)]


bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="the server's token (`multivector serve --token`, or MULTIVECTOR_TOKEN); "
                                "needed to start runs and explorations when the server has one")


def write_access(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Let the request start work if the server has no token or the request carries it (else 401)."""
    expected = server_state(request).token
    if expected is None:
        return
    if credentials is None:
        raise Unauthorized("this server needs a token to start runs and explorations", wrong=False)
    if not token_matches(credentials.credentials, expected):
        raise Unauthorized("the token is not this server's", wrong=True)


#: ``dependencies=`` of every route that starts computation or writes the store.
WRITE_ACCESS = [Depends(write_access)]
UNAUTHORIZED = {401: {"description": "the server has a token and the request did not carry it"}}


def scenario_in_path(name: str, scenarios: ScenariosDep) -> Scenario:
    """The built-in scenario the path's ``{name}`` names (404 otherwise)."""
    return scenarios.get(name)


ScenarioInPath = Annotated[Scenario, Depends(scenario_in_path)]


@dataclass
class StoredRun:
    """An exploration in the store: its id, its metadata and the open store to read it from."""

    run_id: str
    meta: dict
    store: Store


def stored_run(run_id: str, file: StoreFileDep) -> Iterator[StoredRun]:
    """The path's ``{run_id}`` in the store (404 for a malformed or unknown id); closes the store after."""
    checked_run_id(run_id)
    store = file.open()
    try:
        meta = store.get_run(run_id, missing_ok=True)
        if meta is None:
            raise NotFound(f"no run '{run_id}' in the store")
        yield StoredRun(run_id, meta, store)
    finally:
        store.close()


StoredRunDep = Annotated[StoredRun, Depends(stored_run)]
