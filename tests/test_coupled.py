"""The coupled model 2024-2040: interfaces, determinism by seed, disruptions, XMILE round trip."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import multivector as mv
from multivector.interfaces.cli import app
from multivector.model.randomness import draw_disruption, uniform_stream

runner = CliRunner()


@pytest.fixture(scope="module")
def kz():
    return mv.load("kazakhstan")


@pytest.fixture(scope="module")
def default_run(kz):
    return mv.simulate(kz, seed=0)


def test_default_run_spans_2024_2040_with_index_and_test(default_run):
    ds = default_run
    assert list(ds["year"].values) == list(range(2024, 2041))
    idx = ds["middle_power_index"].values[0]
    assert np.all(np.isfinite(idx)) and np.all((idx >= 0) & (idx <= 1))
    assert ds["consolidated"].dtype == bool
    assert bool(ds["converged"].all())


def test_run_json_has_political_keys():
    r = runner.invoke(app, ["run", "kazakhstan", "--json", "--seed", "5", "--seeds", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["years"][0] == 2024 and doc["years"][-1] == 2040
    assert len(doc["middle_power_index"]) == 17
    assert isinstance(doc["consolidated"], bool)
    assert doc["seed"] == 5
    assert {"diplomatic_capital", "russia_tolerance", "new_rail_km", "fiscal_space"} <= set(doc["stocks"])
    assert all(len(v) == 17 for v in doc["stocks"].values())
    for c in ("northern", "middle", "southern", "sea"):
        assert len(doc["corridors"][c]["teu"]) == 17


def test_coupling_moves_the_network(default_run):
    p = default_run["coupled_parameter"].isel(run=0)
    # the rail programme raises Kazakh rail capacity; 2024 starts on the calibrated network
    rail = p.sel(coupled="capacity_factor_kz_rail").values
    assert rail[-1] > rail[0]
    assert default_run["political"].sel(variable="new_rail_km").values[0, -1] > 1000


def test_same_seed_same_trajectory_whatever_the_batch(kz):
    samples = pd.DataFrame({"cpc_weather_rate": [2.0, 1.5, 1.0, 0.5],
                            "mediation_activity": [2.0, 4.0, 6.0, 8.0]})
    batch = mv.simulate(kz, samples=samples, seed=11)
    one = mv.simulate(kz, samples=samples.iloc[[2]].reset_index(drop=True), seed=11, run_ids=[2])
    np.testing.assert_allclose(batch["political"].isel(run=2).values, one["political"].isel(run=0).values,
                               rtol=1e-12)
    np.testing.assert_allclose(batch["teu"].isel(run=2).values, one["teu"].isel(run=0).values, rtol=1e-12)
    reverse = mv.simulate(kz, samples=samples.iloc[::-1].reset_index(drop=True), seed=11, run_ids=[3, 2, 1, 0])
    np.testing.assert_allclose(batch["political"].values[::-1], reverse["political"].values, rtol=1e-12)


def test_random_stream_is_a_function_of_seed_run_and_year():
    a = uniform_stream(3, np.arange(1000), 2030)
    assert np.all((a > 0) & (a < 1)) and abs(a.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(a[[5, 7]], uniform_stream(3, np.array([5, 7]), 2030))
    assert not np.array_equal(a, uniform_stream(4, np.arange(1000), 2030))
    loss = draw_disruption(1, np.arange(20000), 2030, np.full(20000, 2.0), 0.33, 0.1)
    assert loss.mean() == pytest.approx(2.0 * 0.033, rel=0.05)   # Poisson mean × severity × duration


def test_cpc_disruptions_cut_cpc_throughput(kz):
    calm = mv.simulate(kz, overrides={"cpc_war_rate": 0.0, "cpc_weather_rate": 0.14, "cpc_political_rate": 0.04}, seed=2)
    rough = mv.simulate(kz, overrides={"cpc_war_rate": 0.5, "cpc_war_severity": 0.5, "cpc_war_duration": 0.27,
                                       "cpc_weather_rate": 2.0, "cpc_weather_duration": 0.2}, seed=2)
    cpc = lambda ds: float(ds["tonnes"].sel(corridor="oil_cpc").sum())
    assert cpc(rough) < cpc(calm)


def test_years_before_the_political_horizon_run_the_network_alone(kz):
    ds = mv.simulate(kz, years=[2022, 2023, 2024])
    assert "political" not in ds and list(ds["year"].values) == [2022, 2023, 2024]
    with pytest.raises(mv.InputError, match="2024 to 2040"):
        mv.simulate(kz, years=[2040, 2041], coupled=True)


def test_params_loops_and_claims_commands():
    rows = json.loads(runner.invoke(app, ["params", "--json"]).stdout)
    names = {r["name"]: r for r in rows}
    for lever in ("rail_build_rate", "locomotive_procurement", "ferry_procurement", "port_investment",
                  "border_digitalisation", "tariff_policy", "mediation_activity"):
        assert names[lever]["kind"] == "lever" and names[lever]["source"]
    for p in ("cpc_political_rate", "eu_investment_willingness", "russia_tolerance_sensitivity"):
        assert names[p]["min"] <= names[p]["default"] <= names[p]["max"]
    loops = json.loads(runner.invoke(app, ["loops", "--json"]).stdout)
    polarity = {l["name"]: l["polarity"] for l in loops}
    assert {"R1": "reinforcing", "R2": "reinforcing", "B1": "balancing", "B2": "balancing",
            "B3": "balancing"}.items() <= polarity.items()
    claims = json.loads(runner.invoke(app, ["claims", "--json"]).stdout)
    rail = next(c for c in claims if c["id"] == "C-RAIL-5000")
    assert rail["claimed"] == 5000 and rail["model"] > 0 and rail["verdict"]


@pytest.mark.requires_pysd
def test_xmile_export_runs_in_pysd_with_the_same_stocks(kz, tmp_path):
    pysd = pytest.importorskip("pysd")
    out = tmp_path / "kz.xmile"
    r = runner.invoke(app, ["export", "xmile", str(out), "--seed", "3", "--set", "cpc_weather_rate=1.8"])
    assert r.exit_code == 0, r.output
    ours = mv.simulate(kz, seed=3, overrides={"cpc_weather_rate": 1.8})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pysd.read_xmile(str(out))
        theirs = model.run(return_timestamps=list(range(2024, 2041)))
    columns = {c.lower(): c for c in theirs.columns}
    for stock in kz.politics.sd.stock_names:
        a = ours["political"].sel(variable=stock).values[0]
        b = theirs[columns[stock]].to_numpy()
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9 * max(1.0, np.abs(a).max()))


def test_a_placed_outage_cuts_that_years_cpc_and_oil_revenue():
    """--event cpc_outage:2025:0.34 takes a third of the CPC's 2025 capacity in every run (same streams)."""
    kz = mv.load("kazakhstan")
    base = mv.simulate(kz, 4, years=[2024, 2025, 2026])
    hit = mv.simulate(kz, 4, years=[2024, 2025, 2026], events={("cpc_outage", 2025): 0.34})
    cpc = lambda ds: ds["tonnes"].sel(corridor="oil_cpc", year=2025).values
    oil = lambda ds: ds["political"].sel(variable="oil_revenue", year=2025).values
    assert (cpc(hit) < cpc(base)).all() and (oil(hit) < oil(base)).all()
    assert (hit["political"].sel(variable="cpc_disruption", year=2025).values >= 0.34).all()
    same = lambda ds: ds["tonnes"].sel(corridor="oil_cpc", year=2024).values
    assert (same(hit) == same(base)).all()


@pytest.mark.parametrize("event, message", [
    ("cpc_outage:2045:0.3", "outside the run"),
    ("pipeline_fire:2025:0.3", "unknown event"),
    ("cpc_outage:2025", "is not NAME:YEAR:SHARE"),
    ("cpc_outage:2025:1.5", "must lie in [0, 1]"),
])
def test_bad_events_are_refused(event, message):
    r = runner.invoke(app, ["run", "kazakhstan", "--seeds", "1", "--event", event])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_the_index_decomposes_into_its_declared_components(kz):
    """[outcomes] components: weight x value / sum of weights, summing to the index in every run and year."""
    from multivector.views.tables import index_change

    ds = mv.simulate(kz, 3)
    total = ds["index_component"].sum("component")
    np.testing.assert_allclose(total.values, ds["middle_power_index"].values, rtol=1e-12, atol=1e-12)
    change = index_change(ds)
    assert change["change"].sum() == pytest.approx(change.attrs["total"])
    assert set(change["component"]) == {"diplomatic_capital", "corridor_relevance", "fdi_diversification",
                                        "fiscal_resilience", "autonomy"}
    r = runner.invoke(app, ["run", "kazakhstan", "--seeds", "2", "--json"])
    assert set(json.loads(r.stdout)["index_components"]) == set(change["component"])
