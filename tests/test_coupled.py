"""The coupled model 2024-2040: interfaces, determinism by seed, disruptions, XMILE round trip."""

import importlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import multivector as mv
from multivector.errors import InputError
from multivector.interfaces.cli import app
from multivector.model.randomness import draw_disruption, latin_hypercube, poisson_quantile, uniform_stream

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
    """A run's answer is the same to the bit alone, in a batch and in another order: every variable, the
    political trajectory, flows and prices, the corridors' shares and the gateways' sums alike (the sums
    over commodities once differed in the last bit with the batch's memory layout)."""
    samples = pd.DataFrame({"cpc_weather_rate": [2.0, 1.5, 1.0, 0.5],
                            "mediation_activity": [2.0, 4.0, 6.0, 8.0],
                            "vot_bulk": [0.05, 0.3, 0.12, 0.2]})
    batch = mv.simulate(kz, samples=samples, seed=11)
    one = mv.simulate(kz, samples=samples.iloc[[2]].reset_index(drop=True), seed=11, run_ids=[2])
    reverse = mv.simulate(kz, samples=samples.iloc[::-1].reset_index(drop=True), seed=11, run_ids=[3, 2, 1, 0])
    per_run = [name for name in batch.data_vars if "run" in batch[name].dims]
    assert {"political", "flow_mt", "capacity_price", "share", "gateway_tonnes"} <= set(per_run)
    for name in per_run:
        np.testing.assert_array_equal(batch[name].isel(run=2).values, one[name].isel(run=0).values, err_msg=name)
        np.testing.assert_array_equal(batch[name].values[::-1], reverse[name].values, err_msg=name)


def test_a_large_batch_runs_in_passes_with_the_answers_of_one_batch(kz, monkeypatch):
    """Above PASS_RUNS runs, simulate works in passes (faster, bounded memory); every number is the one
    a single batch gives, run numbers and run ids run on, and the iterations are the most any pass took."""
    compiled_module = importlib.import_module("multivector.model.compiled")   # the package exports a function of that name
    model = compiled_module.compiled(kz)
    samples = pd.DataFrame({"cpc_weather_rate": np.linspace(0.3, 2.0, 10),
                            "mediation_activity": np.linspace(1.0, 9.0, 10)})
    one = model._simulate_batch(samples=samples, seed=4, run_ids=np.arange(100, 110))
    steps = []
    monkeypatch.setattr(compiled_module, "PASS_RUNS", 4)                  # passes of 4, 4 and 2 runs
    monkeypatch.setattr(compiled_module, "thread_count", lambda: 2)      # two side by side, on any machine
    passes = mv.simulate(kz, samples=samples, seed=4, run_ids=np.arange(100, 110),
                         progress=lambda done, total: steps.append((done, total)))
    assert set(passes.data_vars) == set(one.data_vars)
    for name in one.data_vars:
        np.testing.assert_array_equal(passes[name].values, one[name].values, err_msg=name)
    assert list(passes["run"].values) == list(range(10))
    assert list(passes["run_id"].values) == list(range(100, 110))
    assert steps[-1] == (51, 51) and steps == sorted(steps)                # 3 passes of 17 years
    network = {"tariff_sea": np.linspace(0.03, 0.2, 10)}                 # a per-run override is cut with its runs
    np.testing.assert_array_equal(
        mv.simulate(kz, 10, years=[2023], coupled=False, overrides=network)["teu"].values,
        model._simulate_batch(10, years=[2023], coupled=False, overrides=network)["teu"].values)


def test_passes_side_by_side_are_sized_evenly_and_one_failing_stops_the_others(kz, monkeypatch):
    """A batch is cut into even passes, one a core where each keeps MIN_PASS_RUNS; where one pass fails, its
    error reaches the caller and the passes beside it stop at their next year instead of finishing."""
    compiled_module = importlib.import_module("multivector.model.compiled")
    assert compiled_module.pass_bounds(10, 2) == [(0, 10)]                    # too few to share
    assert compiled_module.pass_bounds(40, 2) == [(0, 20), (20, 40)]
    assert compiled_module.pass_bounds(600, 2) == [(0, 200), (200, 400), (400, 600)]
    assert compiled_module.pass_bounds(1000, 1) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    monkeypatch.setattr(compiled_module, "thread_count", lambda: 2)
    monkeypatch.setattr(compiled_module, "MIN_PASS_RUNS", 1)
    real = compiled_module.simulate_coupled
    years_of_healthy_pass = []

    def second_pass_fails(model, n, **kw):
        if kw["run_ids"][0] == 1:
            raise InputError("the second pass's input is bad")
        step = kw["progress"]
        kw["progress"] = lambda done, total: (years_of_healthy_pass.append(done), step(done, total))
        return real(model, n, **kw)

    monkeypatch.setattr(compiled_module, "simulate_coupled", second_pass_fails)
    with pytest.raises(InputError, match="second pass"):
        mv.simulate(kz, 2)
    assert len(years_of_healthy_pass) < 17


def test_random_stream_is_a_function_of_seed_run_and_year():
    a = uniform_stream(3, np.arange(1000), 2030)
    assert np.all((a > 0) & (a < 1)) and abs(a.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(a[[5, 7]], uniform_stream(3, np.array([5, 7]), 2030))
    assert not np.array_equal(a, uniform_stream(4, np.arange(1000), 2030))
    loss = draw_disruption(1, np.arange(20000), 2030, np.full(20000, 2.0), 0.33, 0.1)
    assert loss.mean() == pytest.approx(2.0 * 0.033, rel=0.05)   # Poisson mean × severity × duration
    # several causes drawn at once draw what each draws on its own stream
    streams = uniform_stream(3, np.arange(1000), 2030, np.array([1, 2, 3]))
    for k in range(3):
        np.testing.assert_array_equal(streams[k], uniform_stream(3, np.arange(1000), 2030, k + 1))
    hazard = np.array([np.full(50, 0.5), np.full(50, 2.0)])
    both = draw_disruption(1, np.arange(50), 2030, hazard, 0.33, 0.1, stream=np.array([1, 2]))
    np.testing.assert_array_equal(both[1], draw_disruption(1, np.arange(50), 2030, hazard[1], 0.33, 0.1, stream=2))


def test_the_runs_draws_are_scipy_stats_own():
    """Disruption counts are Poisson quantiles and the verdict's definitions a Latin hypercube, computed
    without importing scipy.stats: the numbers must be the ones scipy.stats gives."""
    from scipy.stats import poisson, qmc

    u = uniform_stream(3, np.arange(20_000), 2030)
    for mean in (0.0, 1e-6, 0.05, 0.4, 1.0, 7.5):
        np.testing.assert_array_equal(poisson_quantile(u, mean), poisson.ppf(u, mean))
    mixed = np.linspace(0.0, 3.0, len(u))
    np.testing.assert_array_equal(poisson_quantile(u, mixed), poisson.ppf(u, mixed))
    assert poisson_quantile(1.0, 0.3) == poisson.ppf(1.0, 0.3) == np.inf
    for d, n, seed in ((1, 1, 0), (4, 200, 0), (7, 33, 12)):
        np.testing.assert_array_equal(latin_hypercube(d, n, seed), qmc.LatinHypercube(d=d, seed=seed).random(n))


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


def test_the_verdict_is_the_gain_over_the_counterfactual_in_the_same_future(kz):
    """Each run is also simulated under 'balancing as before' with its own random stream: running the
    counterfactual's levers as a policy reproduces the counterfactual index exactly, and the verdict is
    the margin test on the difference."""
    from multivector.model.verdict import passes

    cf = kz.politics.counterfactual
    assert cf.label == "balancing as before" and {"mediation_activity", "rail_build_rate"} <= set(cf.levers)
    ds = mv.simulate(kz, 4, seed=11)
    alone = mv.simulate(kz, 4, seed=11, overrides=cf.levers)
    np.testing.assert_allclose(ds["counterfactual_index"].values, alone["middle_power_index"].values, rtol=1e-9)
    gain = ds["middle_power_index"].values - ds["counterfactual_index"].values
    assert np.all(gain[:, 0] == 0), "both start from the same 2024 state"
    c = kz.politics.consolidation
    d = kz.defaults()
    expected = passes(gain, ds["year"].values, d[c["threshold"]], d[c["floor"]], d[c["year"]])
    assert list(ds["consolidated"].values) == list(expected)
    # against balancing itself, the gain is zero: a margin above 0 cannot be met
    same = mv.simulate(kz, 2, seed=11, overrides=cf.levers)
    assert not same["consolidated"].any()


def test_passes_reads_the_margin_in_the_year_and_the_floor_after():
    from multivector.model.verdict import passes

    years = np.array([2030, 2035, 2040])
    score = np.array([[0.0, 0.06, 0.03],     # meets 0.05 in 2035, keeps 0.025 after: yes
                      [0.0, 0.06, 0.02],     # gives back more than the floor allows: no
                      [0.1, 0.04, 0.09]])    # short of the margin in the year itself: no
    assert list(passes(score, years, 0.05, 0.025, 2035)) == [True, False, False]
    assert list(passes(score, years, 0.05, 0.025, 2045)) == [False, False, False]   # the year is not simulated


def test_the_verdict_over_its_own_definition(kz):
    """Re-scoring the recorded components under drawn definitions agrees with simulating one of them."""
    from multivector.model.verdict import definition_ranges

    ds = mv.simulate(kz, 2, seed=3)
    share = ds["consolidated_over_definitions"].values
    assert np.all((share >= 0) & (share <= 1)) and ds["consolidated_over_definitions"].attrs["draws"] == 200
    ranges = definition_ranges(kz.politics)
    assert set(kz.politics.components.values()) <= set(ranges) and "consolidation_margin" in ranges
    # the mildest definition (smallest margin and floor) passes where the harshest fails, in this future
    mild = mv.simulate(kz, 2, seed=3, overrides={"consolidation_margin": 0.03, "consolidation_floor": 0.0})
    harsh = mv.simulate(kz, 2, seed=3, overrides={"consolidation_margin": 0.08, "consolidation_floor": 0.05})
    assert mild["consolidated"].all() and not harsh["consolidated"].any()
    assert 0 < share.mean() < 1
    # the draws fill each half of every range equally, so the two halves average to the whole
    halves = ds["consolidated_by_definition_half"]
    assert set(halves["definition"].values) == set(ranges) and list(halves["half"].values) == ["lower", "upper"]
    np.testing.assert_allclose(halves.mean("half").values, np.repeat(share[:, None], len(ranges), axis=1), atol=1e-12)
    doc = json.loads(runner.invoke(app, ["run", "kazakhstan", "--seeds", "2", "--json"]).stdout)
    assert doc["counterfactual"]["label"] == "balancing as before"
    assert 0 < doc["p_consolidated_over_definitions"] < 1 and doc["definition_draws"] == 200
    margin = doc["p_consolidated_by_definition"]["consolidation_margin"]
    assert margin["lower"] > margin["upper"]          # a harder test passes less often
    shown = runner.invoke(app, ["run", "kazakhstan", "--seeds", "2"]).stdout
    assert "it turns most on consolidation_margin" in " ".join(shown.split())


def test_what_the_verdict_turns_on_within_its_definition(kz):
    """Split by the half of each constant's range its draws fall in, the verdict's share tells which
    constant decides it: here a made-up verdict that holds exactly where the margin is below the
    middle of its range and the year is late."""
    from multivector.model.verdict import by_definition_half, definition_ranges
    from multivector.views.tables import definition_turns

    ranges = definition_ranges(kz.politics)
    rng = np.random.default_rng(0)
    definition = pd.DataFrame({k: rng.uniform(lo, hi, 400) for k, (lo, hi) in ranges.items()})
    low_margin = definition["consolidation_margin"] < sum(ranges["consolidation_margin"]) / 2
    ok = np.stack([low_margin, low_margin & (definition["consolidation_year"] > 2034)], axis=1)     # [draw, run]
    names, halves = by_definition_half(definition, ok, kz.politics)
    assert halves.shape == (2, len(ranges), 2)
    m = names.index("consolidation_margin")
    assert halves[0, m, 0] == 1.0 and halves[0, m, 1] == 0.0          # the first run: the margin alone
    turns = definition_turns(kz, {n: {"lower": halves[:, i, 0].mean(), "upper": halves[:, i, 1].mean()}
                                  for i, n in enumerate(names)})
    assert [t[0] for t in turns] == ["consolidation_margin", "consolidation_year"]
    assert turns[0][1:3] == ranges["consolidation_margin"]
    # a definition whose constants are all fixed (declared without ranges) has nothing to split
    fixed = definition.iloc[:, :0]
    names, halves = by_definition_half(fixed, ok, kz.politics)
    assert names == [] and halves.shape == (2, 0, 2)


def test_the_verdict_read_back_from_a_result_is_the_one_it_carries(kz):
    """The coupled model scores the verdict from its arrays before it builds the Dataset; read back from
    the finished Dataset (``Scores.from_dataset``, as the dead-parameter scan reads it), the same runs
    give the same yes/no and the same share over the verdict's own definitions."""
    from multivector.model.verdict import Scores, consolidated, judge_definitions

    ds = mv.simulate(kz, 4, seed=5, overrides={"mediation_activity": np.array([1.0, 3.0, 6.0, 9.0])})
    scores = Scores.from_dataset(ds, kz.politics)
    table = pd.DataFrame(ds["parameter_value"].values, columns=ds["parameter"].values)
    assert np.array_equal(consolidated(scores, table, kz.politics), ds["consolidated"].values)
    np.testing.assert_allclose(judge_definitions(scores, kz.politics, seed=5)[1].mean(axis=0),
                               ds["consolidated_over_definitions"].values, atol=1e-12)


def test_results_share_their_static_labels_read_only(kz):
    """A result's labels that depend on neither its runs nor its years are built once per model and shared
    by every result: changing one in place is refused, so no later result can inherit the change."""
    first, second = mv.simulate(kz), mv.simulate(kz, years=[2024, 2025])
    with pytest.raises(ValueError, match="read-only"):
        first["resource_label"].values[0] = "changed"
    assert second["resource_label"].values[0] != "changed"
    assert list(second["year"].values) == [2024, 2025] and list(first["run"].values) == [0]


@pytest.mark.parametrize("body, message", [
    ('[outcomes.counterfactual.mediation_activity]\nvalue = 1.0\nsource = "P-17"\n', "needs a label"),
    ('[outcomes.counterfactual]\nlabel = "x"\n[outcomes.counterfactual.no_such_lever]\nvalue = 1.0\nsource = "P-17"\n',
     "'no_such_lever', which is not a constant"),
    ('[outcomes.counterfactual]\nlabel = "x"\n[outcomes.counterfactual.mediation_activity]\nvalue = 99.0\nsource = "P-17"\n',
     "must be a number in [0, 10]"),
    ('[outcomes.counterfactual]\nlabel = "x"\n[outcomes.counterfactual.mediation_activity]\nvalue = 1.0\nsource = "NOPE-1"\n',
     "source 'NOPE-1'"),
])
def test_a_bad_counterfactual_is_refused_at_load(tmp_path, body, message):
    import shutil

    from multivector.errors import InputError

    target = tmp_path / "kz"
    shutil.copytree(mv.load("kazakhstan").path, target)
    path = target / "politics.toml"
    text = path.read_text()
    text = text[:text.index("\n[outcomes.counterfactual]\n") + 1] + body
    path.write_text(text)
    with pytest.raises(InputError) as err:
        mv.load(target)
    assert message in str(err.value) and "politics.toml" in str(err.value)


def test_claims_the_data_answer_carry_their_verdict():
    """Rows with metric 'data' are judged on the gathered figure: FDI holds by bloc but not by country;
    the Armenia-Azerbaijan talks Astana hosted were 16 months before UNGA, not weeks."""
    from multivector.model.claims import verdict

    rows = {r["id"]: r for r in json.loads(runner.invoke(app, ["claims", "--json"]).stdout)}
    assert rows["C-FDI-WEST"]["verdict"] == "consistent" and rows["C-FDI-WEST"]["model"] is None
    assert rows["C-FDI-ONLY-BLOC"]["verdict"] == "consistent"
    assert rows["C-FDI-ONLY-COUNTRY"]["verdict"] != "consistent"
    assert rows["C-AZAM-WEEKS"]["verdict"].startswith("data above")
    assert verdict(1.0, 0.95, "about", "model") == "consistent"
    assert verdict(1.0, 0.5, "at_least", "data") == "data below by 50%"
    assert verdict(2.0, 3.0, "at_most", "data") == "data above by 50%"


def test_a_bad_claims_row_is_refused(tmp_path):
    import shutil

    target = tmp_path / "kz"
    shutil.copytree(mv.load("kazakhstan").path, target)
    path = target / "claims.csv"
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].replace(",at_most,data,16.4,", ",at_most,data,,")
    path.write_text("\n".join(lines) + "\n")
    r = runner.invoke(app, ["claims", str(target)])
    assert r.exit_code == 2 and "observed" in r.output and "claims.csv" in r.output and "Traceback" not in r.output


def test_a_ceasefire_stops_war_outages_but_not_the_others(kz):
    """war_end_year: strikes on the CPC stop from that year; political and weather outages go on."""
    war = list(kz.politics.disruption.causes).index("war")
    on = mv.simulate(kz, 40, seed=2)
    off = mv.simulate(kz, 40, seed=2, overrides={"war_end_year": 2027})
    years = on["year"].values
    lost_on, lost_off = on["disruption_by_cause"].values, off["disruption_by_cause"].values
    assert lost_on[:, years >= 2027, war].sum() > 0 and lost_off[:, years >= 2027, war].sum() == 0
    np.testing.assert_array_equal(lost_on[:, years < 2027, war], lost_off[:, years < 2027, war])
    assert float(off["political"].sel(variable="oil_revenue").sum()) >= float(on["political"].sel(variable="oil_revenue").sum())


def test_an_observed_years_timeline_holds_over_a_fitted_coefficient_not_over_a_sampled_one(kz):
    """2023's sea rate is observed (timeline.csv): a calibration's trial value or a posterior draw
    (``fitted``) does not move that year, an exploration's sample or a user's override does, and a
    parameter cannot be both sampled and fitted."""
    kw = dict(years=[2023], coupled=False)
    plain = mv.simulate(kz, **kw)["tonnes"].values
    cheap = pd.DataFrame({"tariff_sea": [0.2]})
    fitted = mv.simulate(kz, fitted=cheap, **kw)
    assert np.array_equal(fitted["tonnes"].values, plain)
    assert float(fitted["parameter_value"].sel(parameter="tariff_sea")[0]) == 0.2   # recorded as given
    assert not np.allclose(mv.simulate(kz, samples=cheap, **kw)["tonnes"].values, plain)
    assert not np.allclose(mv.simulate(kz, overrides={"tariff_sea": 0.2}, fitted=cheap, **kw)["tonnes"].values, plain)
    with pytest.raises(mv.InputError, match="tariff_sea both sampled and fitted"):
        mv.simulate(kz, samples=cheap, fitted=cheap, **kw)


@pytest.mark.parametrize("metric, message", [
    ("corridor:polar:mt", "unknown corridor 'polar'"),
    ("commodity:coal:mt", "unknown commodity 'coal'"),
    ("corridor:middle:barrels", "unit must be mt or teu"),
    ("max_utilisation:nowhere", "no resource in group(s) nowhere"),
    ("unserved:crude:teu", "must be unserved:COMMODITY:mt"),
    ("focus:tea", "unknown network output 'focus:tea'"),
])
def test_a_bad_network_output_is_refused_before_the_first_year(tmp_path, monkeypatch, metric, message):
    """A ``[coupling.from_network]`` metric the network cannot give names itself and the fix before any
    year is solved."""
    import shutil

    from multivector.errors import InputError
    from multivector.freight.model import FreightModel

    def unreachable(*args, **kwargs):
        raise AssertionError("a year was solved before the metrics were read")

    monkeypatch.setattr(FreightModel, "solve_year", unreachable)

    target = tmp_path / "kz"
    shutil.copytree(mv.load("kazakhstan").path, target)
    path = target / "politics.toml"
    path.write_text(path.read_text().replace('middle_corridor_mt = "corridor:middle:mt"',
                                             f'middle_corridor_mt = "{metric}"'))
    with pytest.raises(InputError) as err:
        mv.simulate(mv.load(target), years=[2024])
    assert "[coupling.from_network] middle_corridor_mt" in str(err.value) and message in str(err.value)
