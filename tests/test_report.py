"""The HTML report: self-contained, all sections, PNG export, and clear errors."""

import re

import pytest
from typer.testing import CliRunner

from multivector.interfaces.cli import app

pytest.importorskip("plotly")
runner = CliRunner()


def _self_contained(text: str) -> bool:
    """No script, stylesheet or image is fetched from anywhere: everything is inline."""
    return not re.search(r'<(script|link|img)[^>]*(src|href)="(https?:)?//', text)


def test_report_of_one_run_is_offline_and_complete(tmp_path):
    out = tmp_path / "one.html"
    r = runner.invoke(app, ["report", "--scenario", "kazakhstan", "--set", "mediation_activity=8",
                            "--seed", "3", "--out", str(out), "--png", str(tmp_path / "png")])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert _self_contained(text) and "Plotly.newPlot" in text
    for section in ("Corridor map", "Time series", "Bottlenecks", "Feedback loops", "What rests on assumptions",
                    "Provenance", "mediation_activity=8"):
        assert section in text
    assert "Sensitivity needs an ensemble" in text           # says what a single run cannot show
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["map.png", "series.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (tmp_path / "png").iterdir())


def test_report_of_an_exploration_has_sensitivity_prim_and_provenance(tmp_path, small_store):
    out = tmp_path / "ens.html"
    r = runner.invoke(app, ["report", "lhs64", "--db", str(small_store), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert _self_contained(text)
    assert "rbd_fast indices of the final-year middle-power index over 64 runs" in text
    assert 'id="fig-sensitivity"' in text and 'id="fig-loops"' in text and 'id="fig-map"' in text
    assert "lhs64" in text and "scenario hash" in text
    assert re.search(r"Assumption-backed parameters account for <b>\d+%</b>", text)


def test_loop_diagram_links_have_measured_polarity():
    import multivector as mv
    from multivector.model.structure import NETWORK_NODE, causal_links

    s = mv.load("kazakhstan")
    links = causal_links(s, mv.simulate(s)).set_index(["source", "target"])["polarity"]
    # Western-facing mediation builds capital and erodes Russia's tolerance (loop B1 begins here) ...
    assert links[("diplomatic_capital", "russia_tolerance")] == "−"
    assert links[("diplomatic_capital", "eu_investment_committed")] == "+"
    # ... and more ferries mean more Caspian capacity for the network
    assert links[("caspian_ferry_capacity", NETWORK_NODE)] == "+"


@pytest.mark.parametrize("args, message", [
    (["report", "nosuchrun"], "no run 'nosuchrun'"),
    (["report"], "give a run id or --scenario"),
    (["report", "--scenario", "kazakhstan", "--out", "r.pdf"], "the report is HTML"),
    (["report", "--scenario", "kazakhstan", "--set", "nope=1"], "unknown parameter 'nope'"),
    (["report", "--scenario", "kazakhstan", "--out", "no/such/folder/r.html"], "does not exist"),
])
def test_report_bad_input(tmp_path, small_store, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, args + (["--db", str(small_store)] if args[1:2] == ["nosuchrun"] else []))
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".report-*"))


def test_report_of_an_unfinished_exploration_says_so(tmp_path):
    from multivector.explore.ensemble import explore

    db = tmp_path / "u.duckdb"

    def stop_after_first_chunk(done, total):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        explore("kazakhstan", n=8, chunk_size=4, names=["mediation_activity"], db=db, run_id="half",
                progress=stop_after_first_chunk)
    out = tmp_path / "half.html"
    r = runner.invoke(app, ["report", "half", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "unfinished (4 of 8 runs)" in text and "4 of 8" in text
