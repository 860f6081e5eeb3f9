"""The dashboard and the report in real headless Chromium (Debian's, driven by Playwright).

Skipped where Chromium or Playwright is missing, except under CI (CI=true), where .ci/run installs
both and a skip would hide a broken page. Set MULTIVECTOR_SCREENSHOTS=DIR to keep the screenshots
(the README's come from here).
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import serving

CHROMIUM = "/usr/bin/chromium"


def _need_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright (pip install playwright)")
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("browser tests need " + " and ".join(missing))
        pytest.skip("needs " + " and ".join(missing))


pytestmark = pytest.mark.requires_browser


def _keep(path: Path):
    target = os.environ.get("MULTIVECTOR_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


@pytest.fixture(scope="module")
def server(small_store):
    pytest.importorskip("fastapi")
    from multivector.interfaces.server import create_app

    with serving(create_app(db=small_store)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _page(browser, errors):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    return page


#: points of the "land" trace and filled SVG paths of a plotly map (its outlines drawn, not fetched)
_OUTLINES = """(id) => {
  const el = document.getElementById(id);
  const land = (el.data || []).find((t) => t.name === "land");
  return {points: land ? land.x.filter((v) => v !== null).length : 0,
          fills: el.querySelectorAll(".scatterlayer path.js-fill").length};
}"""


def _assert_outlines_drawn(page, div_id):
    drawn = page.evaluate(_OUTLINES, div_id)
    assert drawn["points"] > 2000 and drawn["fills"] >= 2, drawn      # land and the inland seas


def test_dashboard_slider_updates_chart_and_index(server, browser, tmp_path):
    errors = []
    page = _page(browser, errors)
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:")) else None)
    page.goto(server + "/")
    page.wait_for_function("Number(document.body.dataset.updates || 0) >= 1", timeout=120_000)
    index_before = page.locator("[data-testid=index]").inner_text()
    series_before = page.evaluate("JSON.stringify(document.getElementById('series').data.map(t => t.y))")
    assert page.locator("#map .main-svg").count() > 0 and page.locator("#series .main-svg").count() > 0
    _assert_outlines_drawn(page, "map")

    page.locator("[data-testid=slider-mediation_activity]").fill("10")
    t = time.perf_counter()
    page.wait_for_function("Number(document.body.dataset.updates || 0) >= 2", timeout=120_000)
    print(f"dashboard update after a slider move: {time.perf_counter() - t:.2f} s")
    assert page.locator("[data-testid=index]").inner_text() != index_before
    assert page.evaluate("JSON.stringify(document.getElementById('series').data.map(t => t.y))") != series_before
    assert page.locator("[data-testid=status]").inner_text() == "up to date"

    page.select_option("[data-testid=run]", "lhs64")
    page.wait_for_selector("#prim table, #prim p", timeout=120_000)
    page.wait_for_function("document.getElementById('ensemble-hist').data !== undefined", timeout=120_000)
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    _keep(shot)
    assert errors == [] and outside == []


def test_dashboard_asks_for_the_token_of_a_server_that_has_one(small_store, browser):
    from multivector.interfaces.server import create_app

    token = "browser-token-0123456789"
    errors = []
    with serving(create_app(db=small_store, token=token)) as url:
        page = _page(browser, errors)
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('status').textContent.includes('token')", timeout=60_000)
        assert page.locator("[data-testid=token]").is_visible()
        assert page.evaluate("document.body.dataset.updates") is None          # nothing was run without it
        page.locator("[data-testid=token]").fill(token)
        page.locator("[data-testid=token]").press("Enter")
        page.wait_for_function("Number(document.body.dataset.updates || 0) >= 1", timeout=120_000)
        assert page.locator("[data-testid=status]").inner_text() == "up to date"
        assert page.evaluate("sessionStorage.getItem('multivector-token')") == token
        page.close()
    assert errors == []


def test_report_renders_offline_in_the_browser(browser, small_store, tmp_path):
    from multivector.io import atomic_write
    from multivector.views.report import collect_exploration, render
    from multivector.explore.store import Store

    with Store(small_store) as store:
        path = atomic_write(tmp_path / "report.html", render(collect_exploration(store, "lhs64")))
    errors = []
    page = _page(browser, errors)
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri())
    page.wait_for_selector("#fig-loops .main-svg", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() >= 5
    _assert_outlines_drawn(page, "fig-map")
    # the year slider's first year: other flows over the same outlines
    shown = "document.getElementById('fig-map').data.map((t) => t.visible !== false)"
    before = page.evaluate(shown)
    page.locator("#fig-map .slider-rail-touch-rect").click(position={"x": 3, "y": 5})
    page.wait_for_function(f"JSON.stringify({shown}) !== {json.dumps(json.dumps(before))}", timeout=10_000)
    after = page.evaluate(shown)
    assert after[:3] == [True, True, True] and after[3:] != before[3:]
    _assert_outlines_drawn(page, "fig-map")
    shot = tmp_path / "report.png"
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.screenshot(path=str(shot))
    _keep(shot)
    assert errors == [] and outside == []
