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
    # the calibration, for people to check: prior, fit and posterior of each free coefficient, each target
    assert "Calibration: what the observations say" in text and "fig-calibration" in text
    assert "logit_scale_container" in text and "posterior median" in text and "T-NR-2022" in text
    # the political register's history match: its constants and the observed stocks against the draws
    assert "The political register's history" in text and "fig-history" in text and "nf_transfer_2024" in text
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["map.png", "series.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (tmp_path / "png").iterdir())


def test_calibration_tables_read_the_stored_fit_and_posterior():
    import numpy as np

    import multivector as mv
    from multivector.views.tables import calibration_tables

    kz = mv.load("kazakhstan")
    coefficients, targets = calibration_tables(kz)
    assert list(coefficients["coefficient"]) == [*kz.model["calibration"]["free"], "discrepancy"]
    post = kz.posterior_samples
    row = coefficients.set_index("coefficient").loc["vot_container"]
    assert row["fit"] == kz.calibration["values"]["vot_container"]
    assert row["posterior median"] == post["vot_container"].median()
    assert row["prior min"] <= row["posterior p5"] <= row["posterior p95"] <= row["prior max"]
    # a target is inside when the fit's log miss is within the stated error; a ceiling's band reaches zero
    ceiling = targets["band_low"] == 0
    log_miss = np.log(np.maximum(targets["modelled"], 1e-300) / targets["observed"])
    inside = np.where(ceiling, log_miss, np.abs(log_miss)) <= np.log(targets["band_high"] / targets["observed"]) + 1e-12
    assert (targets["inside"] == inside).all() and len(targets) == len(kz.targets)
    assert set(targets.loc[ceiling, "target"]) == set(kz.targets.loc[kz.targets["bound"] == "upper", "id"])
    assert calibration_tables(mv.load(__import__("pathlib").Path(__file__).parent / "data" / "tiny")) is None


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
    assert re.search(r"never sampled against observations\) for <b>\d+%</b>", text)
    assert re.search(r"runs whose route choice did not converge<b>\d+ \(\d+\.\d%\)</b>", text)


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


def test_the_series_figure_draws_observations_beside_the_model():
    """Observed corridor tonnes and the observed overland share are crosses on the series panels, in
    the plotted years only (an observation from before the run's first year is not drawn)."""
    import pandas as pd

    from multivector.views.figures import time_series

    years = [2024, 2025, 2026]
    band = lambda v: pd.DataFrame({f"p{p}": v for p in (5, 25, 50, 75, 95)}, index=years)
    observed = {("corridors.middle.tonnes", 2024): 4.484e6, ("corridors.middle.tonnes", 2021): 1.0e6,
                ("focus_overland_share", 2025): 0.8, ("corridors.northern.teu", 2024): 412_000}
    fig = time_series({"middle_mt": band([3.0, 3.2, 3.4]), "focus_overland_share": band([0.7, 0.8, 0.9])},
                      ["middle"], False, {"middle": "#123456"}, "Kazakhstan", None, observed=observed)
    marks = {t.name: (list(t.x), list(t.y)) for t in fig.data if t.name.endswith("observed")}
    assert marks == {"middle observed": ([2024], [pytest.approx(4.484)]),
                     "overland share observed": ([2025], [0.8])}


def test_the_series_png_draws_observations_beside_the_model(tmp_path, monkeypatch):
    """The matplotlib version of the series (report --png) draws the same crosses."""
    import pandas as pd

    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from multivector.views import plotting

    years = [2024, 2025]
    band = pd.DataFrame({f"p{p}": [3.0, 3.2] for p in (5, 25, 50, 75, 95)}, index=years)
    drawn, scatter = [], plt.Axes.scatter
    monkeypatch.setattr(plt.Axes, "scatter",
                        lambda self, x, y, **kw: drawn.append((list(x), list(y), kw.get("label"))) or scatter(self, x, y, **kw))
    plotting.bands_png({"middle_mt": band}, ["middle"], False, tmp_path / "series.png", {"middle": "#123456"},
                       "Kazakhstan", None, observed={("corridors.middle.tonnes", 2024): 4.484e6,
                                                     ("corridors.middle.tonnes", 2019): 1e6})
    assert drawn == [([2024], [pytest.approx(4.484)], "middle observed")]
    assert (tmp_path / "series.png").stat().st_size > 0
