"""The free coefficients' posterior (calibrate --posterior), its checks at load, and the back-test that
draws from it or refits first (validate --from posterior, --fit-until)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import multivector as mv
from multivector.errors import InputError
from multivector.interfaces.cli import app

emcee = pytest.importorskip("emcee")
DATA = Path(__file__).parent / "data"


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """The tiny dataset with a posterior written by the CLI (40 steps of 16 walkers)."""
    folder = tmp_path_factory.mktemp("post") / "tiny"
    shutil.copytree(DATA / "tiny", folder)
    r = cli("calibrate", folder, "--posterior", "--steps", 40, "--write", "--json")
    assert r.exit_code == 0, r.output
    return folder, json.loads(r.stdout)


def test_the_posterior_is_stored_checked_and_reproducible(sampled):
    folder, doc = sampled
    s = mv.load(folder)
    p = s.parameters["logit_scale_container"]
    samples = s.posterior_samples
    assert list(samples.columns) == ["logit_scale_container", "discrepancy", "log_prob"]
    prov = s.posterior_provenance
    assert len(samples) == 16 * (20 // prov["thin"])                 # walkers x kept steps after burn-in
    assert samples["logit_scale_container"].between(p.min, p.max).all()
    prov = s.posterior_provenance
    assert prov["walkers"] == 16 and prov["burn_in"] == 20 and prov["targets_until"] == 2024
    assert prov["prior"]["logit_scale_container"]["scale"] == "log-uniform"
    assert prov["prior"]["discrepancy"] == {"min": 0.01, "max": 2.0, "scale": "log-uniform"}
    assert "Student-t" in prov["likelihood"] and (samples["discrepancy"] > 0).all()
    assert 0 < prov["acceptance_fraction"] < 1
    # the same seed gives the same chain
    again = cli("calibrate", folder, "--posterior", "--steps", 40, "--json")
    assert json.loads(again.stdout)["coefficients"] == doc["coefficients"]


def test_the_posterior_reproduces_its_target(sampled):
    """One 10,000 TEU target at ±10%: the posterior's draws put the modelled value around it."""
    _, doc = sampled
    (target,) = doc["targets"]
    assert target["observed"] == 10000
    assert abs(math.log(target["median"] / 10000)) < 0.1
    assert target["p5"] < 10000 < target["p95"] and target["within"]


def test_the_likelihood_is_a_student_t_with_the_discrepancy_added_to_the_error():
    from scipy.stats import t

    from multivector.model.posterior import STUDENT_DF, log_likelihood

    miss, error = np.array([[0.3, -0.1, 0.0]]), np.array([0.05, 0.1, 0.2])
    observed = np.array([2.0, 5.0, 1.0])
    model = observed * np.exp(miss)
    for delta in (0.01, 0.4):
        expected = t.logpdf(miss, STUDENT_DF, scale=np.sqrt(error ** 2 + delta ** 2)).sum()
        assert log_likelihood(model, observed, error, [delta])[0] == pytest.approx(expected, rel=1e-12)


def test_counts_with_absolute_errors_are_matched_on_their_plain_miss_even_at_zero():
    """A coded count (errors in events, years with none) has no logarithm: its miss is modelled - observed
    with scale sqrt(error² + (δ·modelled)²); relative rows beside it keep the log form."""
    from scipy.stats import t

    from multivector.model.posterior import STUDENT_DF, log_likelihood

    model, observed = np.array([[0.7, 3.0, 110.0]]), np.array([0.0, 6.0, 100.0])
    error, absolute = np.array([1.0, 2.0, 0.05]), np.array([True, True, False])
    delta = 0.2
    expected = (t.logpdf([0.7, -3.0], STUDENT_DF, scale=np.sqrt(error[:2] ** 2 + (delta * model[0, :2]) ** 2)).sum()
                + t.logpdf(np.log(1.1), STUDENT_DF, scale=np.sqrt(0.05 ** 2 + delta ** 2)))
    got = log_likelihood(model, observed, error, [delta], absolute)[0]
    assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("second, low, high", [(10000, 0.0, 0.15), (round(10000 * math.e), 0.35, 1.6)])
def test_the_discrepancy_measures_what_no_coefficient_can_fit(tmp_path, second, low, high):
    """Two observations of one quantity: when they agree the discrepancy stays small; one log unit apart
    (at ±1% each), no coefficient fits both, and δ's posterior sits at the scale of that half-unit miss
    each way (under a normal the marginal likelihood's mode would be |log b/a| / √2 ≈ 0.71)."""
    folder = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", folder)
    (folder / "targets.csv").write_text(
        "id,year,metric,observed,unit,source,note,error\n"
        "T1,2024,corridor:middle:teu,10000,TEU,A-TOY,toy target,0.01\n"
        f"T2,2024,corridor:middle:teu,{second},TEU,A-TOY,toy target,0.01\n")
    from multivector.model.posterior import sample_posterior

    post = sample_posterior(mv.load(folder), steps=150, seed=3)
    assert low < post.samples["discrepancy"].median() < high


def test_a_ceiling_met_costs_the_posterior_nothing(tmp_path):
    """A ceiling twice the count (``bound`` = upper) is met wherever the count is: the discrepancy stays at
    the scale of agreeing observations (as a count, 20,000 against 10,000 would push it toward 0.5), the
    draws sit at the count, and the predictive table marks the ceiling and holds it."""
    folder = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", folder)
    (folder / "targets.csv").write_text(
        "id,year,metric,observed,unit,source,note,error,bound\n"
        "T1,2024,corridor:middle:teu,10000,TEU,A-TOY,toy target,0.01,\n"
        "T2,2024,corridor:middle:teu,20000,TEU,A-TOY,toy ceiling,0.01,upper\n")
    from multivector.model.posterior import predictive_targets, sample_posterior

    s = mv.load(folder)
    post = sample_posterior(s, steps=150, seed=3)
    assert post.samples["discrepancy"].median() < 0.15
    table = predictive_targets(s, post, n=40, seed=3).set_index("target")
    assert table.loc["T2", "bound"] == "upper" and table.loc["T1", "bound"] == ""
    assert table.loc["T2", "within"] and table.loc["T1", "median"] == pytest.approx(10000, rel=0.05)


def test_validate_draws_from_the_posterior(sampled, tmp_path):
    folder, _ = sampled
    obs = tmp_path / "obs.csv"
    obs.write_text("output,year,value,source\ncorridors.middle.teu,2024,10000,A-TOY\n")
    r = cli("validate", folder, "--observations", obs, "--from", "posterior", "--runs", 40, "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["rows"]
    assert row["p5"] < row["median"] < row["p95"], "draws of the coefficient give the band a width"
    assert row["in_band"]


def test_the_discrepancy_widens_volumes_but_leaves_a_share_inside_0_and_1(sampled, tmp_path):
    """The discrepancy was learnt on volumes: a volume's band carries it (wider than the coefficients'
    spread alone), a share's does not (a log-scale spread would carry it past 1)."""
    from multivector.model.posterior import posterior_of
    from multivector.views.validation import backtest, read_observations

    folder, _ = sampled
    obs = tmp_path / "obs.csv"
    obs.write_text("output,year,value,source\ncorridors.middle.teu,2024,10000,A-TOY\n"
                   "focus_overland_share,2024,0.9,A-TOY\n")
    s = mv.load(folder)
    table = backtest(s, read_observations(obs), runs=60, ensemble="posterior").set_index("output")
    plain = backtest(s, read_observations(obs), runs=60, ensemble="default").set_index("output")
    assert table.loc["focus_overland_share", "p95"] <= 1.0
    assert posterior_of(s).samples["discrepancy"].min() > 0
    band = table.loc["corridors.middle.teu", "p95"] / table.loc["corridors.middle.teu", "p5"]
    assert band > plain.loc["corridors.middle.teu", "p95"] / plain.loc["corridors.middle.teu", "p5"]


@pytest.mark.parametrize("damage, where", [
    (lambda f: (f / "posterior.toml").unlink(), "posterior.toml"),
    (lambda f: (f / "posterior.csv").write_text("vot_container,log_prob\n1.0,-1\n"), "columns must be"),
    (lambda f: (f / "posterior.csv").write_text("logit_scale_container,log_prob\n0.003,-1\n"),
     "predates the model discrepancy"),
    (lambda f: (f / "posterior.csv").write_text("logit_scale_container,discrepancy,log_prob\n0.003,0.1,-1\n"
                                                 "7,0.1,-2\n"), "row 3, column 'logit_scale_container'"),
    (lambda f: (f / "posterior.csv").write_text("logit_scale_container,discrepancy,log_prob\n0.003,0.1,nan\n"),
     "column 'log_prob'"),
    (lambda f: (f / "posterior.csv").write_text("logit_scale_container,discrepancy,log_prob\n0.003,0,-1\n"),
     "column 'discrepancy'"),
])
def test_a_damaged_posterior_is_refused_at_load(sampled, tmp_path, damage, where):
    folder = tmp_path / "tiny"
    shutil.copytree(sampled[0], folder)
    damage(folder)
    with pytest.raises(InputError, match="posterior") as exc:
        mv.load(folder)
    assert where in str(exc.value) and "--posterior --write" in str(exc.value)
    r = cli("run", folder)
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_without_a_posterior_validate_says_how_to_make_one(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", folder)
    obs = tmp_path / "obs.csv"
    obs.write_text("output,year,value,source\ncorridors.middle.teu,2024,10000,A-TOY\n")
    r = cli("validate", folder, "--observations", obs, "--from", "posterior")
    assert r.exit_code == 2 and "no posterior" in r.output and "calibrate" in r.output


def test_sampler_arguments_are_checked(tmp_path):
    from multivector.model.posterior import sample_posterior

    s = mv.load(DATA / "tiny")
    with pytest.raises(InputError, match="walkers"):
        sample_posterior(s, walkers=3)
    with pytest.raises(InputError, match="steps"):
        sample_posterior(s, steps=1)


def test_fit_until_refuses_a_file_with_nothing_after_the_year(tmp_path):
    obs = tmp_path / "obs.csv"
    obs.write_text("output,year,value,source\ncorridors.middle.tonnes,2023,2764000,TITR-05\n")
    r = cli("validate", "kazakhstan", "--observations", obs, "--fit-until", 2023, "--runs", 1)
    assert r.exit_code == 2 and "no observation after 2023" in r.output


def test_fit_until_refuses_a_year_without_targets(tmp_path):
    obs = tmp_path / "obs.csv"
    obs.write_text("output,year,value,source\ncorridors.middle.teu,2024,10000,A-TOY\n")
    r = cli("validate", DATA / "tiny", "--observations", obs, "--fit-until", 2023, "--runs", 1)
    assert r.exit_code == 2 and "no observation up to 2023" in r.output


def _refit_case(tmp_path):
    """The toy network with a 2023 demand and target, and a 2024 observation to hold out."""
    folder = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", folder)
    with open(folder / "demand.csv", "a") as fh:
        fh.write("XIAN,DUISBURG,container,2023,90000,A-TOY\n")
    with open(folder / "targets.csv", "a") as fh:
        fh.write("T0,2023,corridor:middle:teu,9000,TEU,A-TOY,toy target a year earlier\n")
    obs = tmp_path / "obs_2024.csv"
    obs.write_text("output,year,value,source\ncorridors.middle.teu,2024,10000,A-TOY\n")
    return folder, obs


def test_a_back_test_reports_the_progress_of_each_long_step(tmp_path):
    """A refitting back-test takes minutes on the default dataset: stderr shows the refit's evaluations,
    the refit's posterior's steps and the ensemble's years as they go (a line each without a terminal)."""
    folder, obs = _refit_case(tmp_path)
    r = cli("validate", folder, "--observations", obs, "--fit-until", 2023, "--runs", 2, "--from", "posterior")
    assert r.exit_code == 0, r.output
    for stage in ("refitting to the targets up to 2023: ", "sampling the posterior to 2023: ", "simulating 2 runs: "):
        lines = [x for x in r.stderr.splitlines() if x.startswith(stage)]
        assert lines, (stage, r.stderr[-500:])
        done, total = lines[-1][len(stage):].split()[0].split("/")
        assert done == total
    assert "held-out observations (after 2023)" in r.stdout


def test_a_2024_file_back_tested_on_a_refit_to_2023(tmp_path):
    """The rolling-origin back-test of the done-when, with a known answer: the toy network carries the
    same share of its demand on the middle corridor in 2023 and 2024 (9,000 of 90,000 and 10,000 of
    100,000 TEU), so the coefficient refitted on 2023 alone predicts the held-out 2024 value."""
    folder, obs = _refit_case(tmp_path)
    r = cli("validate", folder, "--observations", obs, "--fit-until", 2023, "--runs", 2, "--from", "default",
            "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (row,) = doc["rows"]
    assert row["held_out"] and abs(row["rel_error"]) < 0.01
    assert doc["summary"]["fit_until"] == 2023 and doc["summary"]["within_20pct"] == 1.0
    # the refit saw 2023 only: it is the fit of T0 alone
    from multivector.model.calibrate import calibrate, with_fit

    alone = calibrate(with_fit(mv.load(folder), {}), until=2023)
    assert doc["summary"]["refit"] == pytest.approx(alone.values)
    assert list(alone.table["target"]) == ["T0"]


def test_a_back_test_refits_from_several_starts(tmp_path):
    """validate --fit-until --starts N refits as calibrate --starts N does (seeded by --seed), and
    says so; on the toy network every start finds the same one-coefficient fit."""
    folder, obs = _refit_case(tmp_path)
    r = cli("validate", folder, "--observations", obs, "--fit-until", 2023, "--runs", 2, "--from", "default",
            "--starts", 3, "--seed", 5, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)["summary"]
    from multivector.model.calibrate import calibrate, with_fit

    several = calibrate(with_fit(mv.load(folder), {}), until=2023, starts=3, seed=5)
    assert summary["starts"] == 3 and summary["refit"] == pytest.approx(several.values)
    r = cli("validate", folder, "--observations", obs, "--fit-until", 2023, "--runs", 2, "--starts", 0)
    assert r.exit_code != 0 and "starts must be 1 or more" in r.output and "Traceback" not in r.output


def test_explore_draws_the_free_coefficients_from_the_posterior(tmp_path):
    """explore --from posterior: each run's free coefficients are one of the posterior's samples, the
    design remembers it, and a stored run replays to the same outcomes."""
    from multivector.explore.ensemble import replay
    from multivector.explore.store import Store

    db = tmp_path / "post.duckdb"
    r = cli("explore", "kazakhstan", "--n", 6, "--params", "mediation_activity,capital_decay_rate",
            "--from", "posterior", "--db", db, "--run-id", "p6", "--json")
    assert r.exit_code == 0, r.output
    kz = mv.load("kazakhstan")
    free = kz.model["calibration"]["free"]
    with Store(db, read_only=True) as store:
        runs = store.experiments("p6")
        assert store.get_run("p6")["design"]["posterior"] is True
        _, ds, run, _ = replay(store, "p6", 3, keep_routes=False)
    samples = {tuple(row) for row in kz.posterior_samples[free].itertuples(index=False)}
    assert all(tuple(row) in samples for row in runs[free].itertuples(index=False))
    assert runs[free].drop_duplicates().shape[0] > 1, "different runs, different draws"
    assert float(ds.sel(parameter="vot_container")["parameter_value"].values[0]) == runs.loc[3, "vot_container"]


def test_a_sensitivity_design_keeps_posterior_parameters_and_maps_them_through_their_marginals():
    """Morris and Sobol need every input varied on its own: a posterior-sampled parameter they name stays
    in the design (so it gets an index), its values the posterior marginal's quantiles at the design
    values' place in the prior range, order kept. A Latin hypercube leaves it out and draws it jointly."""
    from multivector.explore.ensemble import design_samples, make_design

    kz = mv.load("kazakhstan")
    names = ["vot_container", "capital_decay_rate"]
    posterior = kz.posterior_samples["vot_container"].to_numpy(float)
    for sampler, n in (("morris", 4), ("sobol", 4)):
        design = make_design(kz, n, sampler, seed=3, names=names, posterior=True)
        assert design.names == names
        raw, mapped = design.samples()["vot_container"].to_numpy(), design_samples(kz, design)["vot_container"].to_numpy()
        assert posterior.min() <= mapped.min() and mapped.max() <= posterior.max()
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(mapped[order]) >= 0), "a higher design value never maps lower"
        lo, hi = design.bounds[0]
        np.testing.assert_allclose(mapped, np.quantile(posterior, (raw - lo) / (hi - lo)))
    lhs = make_design(kz, 4, "lhs", seed=3, names=names, posterior=True)
    assert lhs.names == ["capital_decay_rate"]
    assert set(design_samples(kz, lhs)["vot_container"]) <= set(posterior)


def test_explore_from_posterior_needs_one(tmp_path):
    r = cli("explore", DATA / "landlocked", "--n", 2, "--from", "posterior", "--db", tmp_path / "x.duckdb")
    assert r.exit_code == 2 and "no posterior" in r.output and not (tmp_path / "x.duckdb").exists()
    r = cli("explore", DATA / "landlocked", "--n", 2, "--from", "nowhere", "--db", tmp_path / "x.duckdb")
    assert r.exit_code == 2 and "prior or posterior" in r.output
