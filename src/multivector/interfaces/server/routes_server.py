"""The server itself: its limits, its pool of workers and whether starting work needs a token (so
that the dashboard knows to ask for one, and an operator sees how busy the server is)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from multivector import __version__
from multivector.interfaces.server.deps import server_state

router = APIRouter(prefix="/api/server", tags=["server"])


@router.get("", summary="Limits, the pool of single runs, and whether starting work needs a token")
def server_status(request: Request):
    state = server_state(request)
    return {"version": __version__, "token_required": state.token is not None,
            "runs": state.runs.status(),
            "explorations": {"running": state.jobs.running(), "max_running": state.limits.max_jobs,
                             "max_n": state.limits.max_n},
            "max_body_bytes": state.limits.max_body_bytes}
