"""Ensembles: the store, determinism across chunking and executors, resume after kill -9, analyses."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import store_tables as outcomes
from conftest import strict_json
from multivector.explore.analysis import prim
from multivector.interfaces.cli import app
from multivector.explore.ensemble import explore
from multivector.explore.store import Store
from multivector import load
from multivector.model.posterior import stored_posteriors

runner = CliRunner()
FEW = ["cpc_weather_rate", "mediation_activity", "eu_investment_willingness"]



def test_explore_writes_complete_chunks_and_lists_runs(tmp_path):
    db = tmp_path / "a.duckdb"
    r = runner.invoke(app, ["explore", "kazakhstan", "--n", "6", "--chunk-size", "4", "--db", str(db),
                            "--run-id", "first", "--params", ",".join(FEW), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["run_id"] == "first"
    yearly, per_run, exp, problems = outcomes(db, "first")
    assert problems == []
    # Kazakhstan stores posteriors, so each run also draws their parameters (explore's default)
    drawn = [c for post in stored_posteriors(load("kazakhstan")) for c in post.draw(1).columns]
    assert len(per_run) == 6 and len(yearly) == 6 * 17 and list(exp.columns) == FEW + drawn
    listing = json.loads(runner.invoke(app, ["runs", "--db", str(db), "--json"]).stdout)
    assert listing[0]["status"] == "finished" and listing[0]["done"] == 6
    again = runner.invoke(app, ["explore", "--n", "6", "--db", str(db), "--run-id", "first"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_same_seed_same_results_whatever_the_chunks_and_executor(tmp_path):
    kw = dict(n=6, seed=4, names=FEW)
    explore("kazakhstan", db=tmp_path / "a.duckdb", run_id="a", chunk_size=6, **kw)
    explore("kazakhstan", db=tmp_path / "b.duckdb", run_id="b", chunk_size=2, scheduler="processes", **kw)
    ya, ra, ea, _ = outcomes(tmp_path / "a.duckdb", "a")
    yb, rb, eb, _ = outcomes(tmp_path / "b.duckdb", "b")
    pd.testing.assert_frame_equal(ea, eb)
    pd.testing.assert_frame_equal(ya, yb)
    pd.testing.assert_frame_equal(ra, rb)


@pytest.mark.requires_dask
def test_dask_local_cluster_gives_the_same_results(tmp_path):
    pytest.importorskip("distributed")
    kw = dict(n=4, seed=9, names=FEW)
    explore("kazakhstan", db=tmp_path / "a.duckdb", run_id="a", chunk_size=4, **kw)
    explore("kazakhstan", db=tmp_path / "d.duckdb", run_id="d", chunk_size=2, scheduler="local", **kw)
    pd.testing.assert_frame_equal(outcomes(tmp_path / "a.duckdb", "a")[0], outcomes(tmp_path / "d.duckdb", "d")[0])


def test_resume_after_kill_9_gives_identical_results(tmp_path):
    db = tmp_path / "k.duckdb"
    cmd = [sys.executable, "-m", "multivector", "explore", "kazakhstan", "--n", "10", "--chunk-size", "2",
           "--db", str(db), "--run-id", "k", "--seed", "5", "--params", ",".join(FEW)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    # kill as soon as the first chunk is reported written (the log line comes after its commit)
    for line in proc.stderr:
        if "runs written" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(db, read_only=True) as s:
        assert s.integrity("k") == []
        done = len(s.run_outcomes("k")) if "k" in set(s.list_runs()["run_id"]) else 0
    assert done < 10, "the run finished before it could be killed"
    r = runner.invoke(app, ["explore", "--resume", "k", "--db", str(db)])
    assert r.exit_code == 0, r.output
    explore("kazakhstan", n=10, seed=5, names=FEW, db=tmp_path / "ref.duckdb", run_id="ref", chunk_size=5)
    y1, r1, e1, problems = outcomes(db, "k")
    y2, r2, e2, _ = outcomes(tmp_path / "ref.duckdb", "ref")
    assert problems == []
    pd.testing.assert_frame_equal(y1, y2)
    pd.testing.assert_frame_equal(e1, e2)


def test_sobol_and_morris_sensitivity(tmp_path):
    db = tmp_path / "s.duckdb"
    explore("kazakhstan", n=8, sampler="sobol", names=FEW, db=db, run_id="sob", chunk_size=40)
    r = runner.invoke(app, ["sensitivity", "sob", "--outcome", "middle_power_index", "--year", "2035",
                            "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    doc = strict_json(r.stdout)
    idx = {row["parameter"]: row for row in doc["indices"]}
    assert set(idx) == set(FEW) and doc["year"] == 2035
    assert all(np.isfinite(row["ST"]) and "ST_conf" in row for row in idx.values())
    # mediation drives diplomatic capital, the index's heaviest component
    assert idx["mediation_activity"]["ST"] == max(row["ST"] for row in idx.values())
    explore("kazakhstan", n=4, sampler="morris", names=FEW, db=db, run_id="mor", chunk_size=40)
    doc = strict_json(runner.invoke(app, ["sensitivity", "mor", "--outcome", "middle_power_index_final",
                                          "--db", str(db), "--json"]).stdout)
    assert {"mu_star", "sigma"} <= set(doc["indices"][0])
    bad = runner.invoke(app, ["sensitivity", "mor", "--outcome", "middle_powr_index", "--db", str(db)])
    assert bad.exit_code == 2 and "middle_power_index" in bad.output


def test_the_store_counts_runs_that_did_not_converge(small_store):
    from multivector.explore.store import Store

    with Store(small_store, read_only=True) as store:
        flags = store.run_outcomes("lhs64")["converged"].astype(bool)
        assert store.unconverged_runs("lhs64") == int((~flags).sum())


def test_explore_says_what_its_unconverged_runs_missed(tmp_path, monkeypatch):
    """The summary line counts the runs flagged unconverged and says what such a run missed: most end
    with a capacity price unsettled while their route choice is exact under it (the solver keeps its
    last steps for the loads), so "did not reach the route-choice equilibrium, the last iterate's" was
    wrong for them."""
    monkeypatch.setattr(Store, "unconverged_runs", lambda self, run_id: 2)
    r = runner.invoke(app, ["explore", "kazakhstan", "--n", "4", "--db", str(tmp_path / "u.duckdb"),
                            "--params", ",".join(FEW)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "2 runs (50.0%) did not converge in some year" in said and "capacity price" in said
    assert "last iterate" not in said


def test_prim_matches_ema_workbench():
    ema_prim = pytest.importorskip("ema_workbench.analysis.prim")
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.uniform(size=(2000, 4)), columns=["a", "b", "c", "d"])
    y = ((x["a"] > 0.6) & (x["b"] < 0.5)).to_numpy() | (rng.uniform(size=2000) < 0.03)
    ours = prim(x, y.astype(float), peel_alpha=0.05, mass_min=0.05, threshold=0.95)
    import logging
    logging.getLogger("EMA").setLevel(logging.ERROR)
    theirs = ema_prim.Prim(x, y.astype(int), threshold=0.8, peel_alpha=0.05, paste_alpha=0.05, mass_min=0.05)
    box = theirs.find_box()
    traj = box.peeling_trajectory
    n = min(len(traj), len(ours.trajectory))
    # EMA's trajectory also holds its pasting steps at the end; compare the peeling part
    np.testing.assert_allclose(ours.trajectory["coverage"].to_numpy()[:n - 1], traj["coverage"].to_numpy()[:n - 1],
                               atol=1e-12)
    np.testing.assert_allclose(ours.trajectory["density"].to_numpy()[:n - 1], traj["density"].to_numpy()[:n - 1],
                               atol=1e-12)
    chosen = ours.box
    assert set(chosen.index) == {"a", "b"}
    assert chosen.loc["a", "min"] == pytest.approx(0.6, abs=0.02)
    assert chosen.loc["b", "max"] == pytest.approx(0.5, abs=0.05)
    assert ours.stats["density"] >= 0.95 and ours.stats["coverage"] > 0.85


def test_discover_strategies_and_export(tmp_path):
    db = tmp_path / "p.duckdb"
    levers = tmp_path / "policies.csv"
    levers.write_text("policy,mediation_activity,rail_build_rate\nquiet,1,500\nactive,8,1000\n")
    r = runner.invoke(app, ["strategies", "kazakhstan", "--levers", str(levers), "--n", "4", "--db", str(db),
                            "--run-id", "pol", "--json"])
    assert r.exit_code == 0, r.output
    doc = strict_json(r.stdout)
    rows = {p["policy"]: p for p in doc["policies"]}
    assert set(rows) == {"quiet", "active"}
    assert rows["active"]["expected"] > rows["quiet"]["expected"]
    assert rows["active"]["pareto"] and min(p["max_regret"] for p in rows.values()) == 0
    r = runner.invoke(app, ["discover", "pol", "--outcome", "middle_power_index", "--threshold", "0.7",
                            "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    assert strict_json(r.stdout)["trajectory"][0]["mass"] == 1.0
    for fmt in ("parquet", "csv"):
        out = tmp_path / fmt
        r = runner.invoke(app, ["export", fmt, "pol", str(out), "--db", str(db)])
        assert r.exit_code == 0, r.output
        assert {p.name for p in out.iterdir()} == {f"{t}.{fmt}" for t in ("experiments", "outcomes", "run_outcomes")}
    assert len(pd.read_csv(tmp_path / "csv" / "run_outcomes.csv")) == 8


def test_bad_inputs(tmp_path):
    db = tmp_path / "e.duckdb"
    bad = tmp_path / "bad.csv"
    bad.write_text("policy,mediation_activity\nx,lots\n")
    r = runner.invoke(app, ["strategies", "--levers", str(bad), "--n", "2", "--db", str(db)])
    assert r.exit_code == 2 and "row 2" in r.output and "mediation_activity" in r.output
    r = runner.invoke(app, ["explore", "--n", "3", "--sampler", "sobol", "--db", str(db)])
    assert r.exit_code == 2 and "power of two" in r.output
    r = runner.invoke(app, ["explore", "--n", "3", "--params", "cpc_disruption_rat", "--db", str(db)])
    assert r.exit_code == 2 and "cpc_weather_rate" in r.output
    r = runner.invoke(app, ["runs", "--db", str(tmp_path / "none.duckdb")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(app, ["sensitivity", "nope", "--outcome", "x", "--db", str(tmp_path / "none.duckdb")])
    assert r.exit_code == 2


def test_runs_over_different_parameters_share_one_store(tmp_path):
    db = tmp_path / "mixed.duckdb"
    # the prior (``--from prior``): the experiments hold the named parameters only
    explore("kazakhstan", n=4, names=FEW, db=db, run_id="few", chunk_size=4, posterior=False)
    explore("kazakhstan", n=4, names=["capital_decay_rate"], db=db, run_id="one", chunk_size=4, posterior=False)
    _, _, exp_few, problems = outcomes(db, "few")
    _, _, exp_one, _ = outcomes(db, "one")
    assert problems == [] and list(exp_few.columns) == FEW and list(exp_one.columns) == ["capital_decay_rate"]
    r = runner.invoke(app, ["export", "parquet", "one", str(tmp_path / "out"), "--db", str(db)])
    assert r.exit_code == 0, r.output
    cols = pd.read_parquet(tmp_path / "out" / "experiments.parquet").columns.tolist()
    assert cols == ["run_id", "run", "capital_decay_rate"]


def test_the_public_explore_still_runs_after_its_subpackage_is_imported(tmp_path):
    """``import multivector.explore.<module>`` binds ``multivector.explore`` to the subpackage; the
    public ``multivector.explore(...)`` must still start an exploration."""
    import multivector as mv
    import multivector.explore.ensemble  # noqa: F401  (the import that used to shadow the function)
    from multivector.explore.store import Store

    run_id = mv.explore("kazakhstan", n=2, db=tmp_path / "x.duckdb", run_id="shadow")
    with Store(tmp_path / "x.duckdb", read_only=True) as store:
        assert run_id == "shadow" and store.outcomes(run_id)["run"].nunique() == 2


def test_a_future_is_a_morris_trajectory_a_saltelli_base_sample_or_one_sample_under_every_policy():
    from multivector.explore.ensemble import Design

    names, bounds = ["a", "b", "c"], [(0, 1)] * 3
    morris = Design(names, bounds, "morris", n=2, seed=0).futures()
    sobol = Design(names, bounds, "sobol", n=2, seed=0).futures()
    lhs = Design(names, bounds, "lhs", n=3, seed=0, policies=[{"policy": "p"}, {"policy": "q"}]).futures()
    assert morris.tolist() == [0] * 4 + [1] * 4
    assert sobol.tolist() == [0] * 5 + [1] * 5
    assert lhs.tolist() == [0, 1, 2, 0, 1, 2]
    for d in (Design(names, bounds, "morris", n=2, seed=0), Design(names, bounds, "sobol", n=2, seed=0)):
        assert len(d.futures()) == len(d.samples()) == d.total


def test_a_morris_step_changes_only_its_parameter_so_an_inert_one_has_no_effect(tmp_path):
    """Common random numbers along a trajectory: each step's runs share the disruption stream and the
    posterior draws, so a parameter that reaches no index (pressure_per_episode only scales the count of
    pressure episodes the history is matched to) has an elementary effect of exactly zero."""
    from multivector.explore.analysis import sensitivity

    db = tmp_path / "m.duckdb"
    explore("kazakhstan", n=2, sampler="morris", names=["pressure_per_episode", "capital_decay_rate"], db=db,
            run_id="m", chunk_size=3)
    with Store(db, read_only=True) as store:
        mu = sensitivity(store, "m", "middle_power_index_final")["mu_star"]
    assert mu["pressure_per_episode"] == 0.0 and mu["capital_decay_rate"] > 0.0


def test_policies_meet_each_future_with_the_same_random_stream(tmp_path):
    """Two policies with the same levers are the same runs: every future's disruptions and posterior
    draws are shared by the policies, so their outcomes are equal run for run."""
    db = tmp_path / "s.duckdb"
    levers = tmp_path / "twins.csv"
    levers.write_text("policy,mediation_activity\none,6\ntwin,6\n")
    explore("kazakhstan", n=3, levers=str(levers), db=db, run_id="t", chunk_size=4)
    _, per_run, _, _ = outcomes(db, "t")
    per_run = per_run.sort_index()
    assert len(per_run) == 6
    pd.testing.assert_frame_equal(per_run.iloc[:3].reset_index(drop=True), per_run.iloc[3:].reset_index(drop=True),
                                  check_exact=True)
