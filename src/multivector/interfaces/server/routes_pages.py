"""The dashboard page and its static files, all served from the package (nothing fetched from outside,
so the dashboard works offline). plotly.js comes from the installed plotly package."""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from multivector.interfaces.server.state import NotFound
from multivector.io import require

WEB_PACKAGE = "multivector.interfaces.web"
STATIC_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

router = APIRouter(include_in_schema=False)


def _web_file(name: str) -> str:
    return resources.files(WEB_PACKAGE).joinpath(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    return require("plotly.offline", "serve", "the dashboard").get_plotlyjs()


@router.get("/", response_class=HTMLResponse)
def dashboard():
    return HTMLResponse(_web_file("index.html"))


@router.get("/static/{name}")
def static_file(name: str):
    if name == "plotly.min.js":
        return Response(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})
    if name not in STATIC_FILES:
        raise NotFound(f"no file '{name[:80]}'")
    return Response(_web_file(name), media_type=STATIC_FILES[name])
