"""Interruption, faults and extreme values: kill -9 at random points, a Dask worker killed, a full
disk, concurrent HTTP load, and corner-case parameters. Each checks that nothing is lost."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import edit_csv, serving
from conftest import store_tables as tables
from multivector.interfaces.cli import app
from multivector.explore.ensemble import explore
from multivector.explore.store import Store

runner = CliRunner()
FEW = ["cpc_weather_rate", "mediation_activity", "eu_investment_willingness"]
KILLS = int(os.environ.get("MULTIVECTOR_KILLS", "20"))



def _has_run(db, run_id) -> bool:
    if not db.exists():
        return False
    with Store(db, read_only=True) as s:
        return s.get_run(run_id, missing_ok=True) is not None


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_identical(tmp_path):
    """Up to KILLS (default 20, at least half of them) SIGKILLs at random moments of one exploration; after
    each the store passes its integrity check; the resumed result equals an uninterrupted run."""
    db = tmp_path / "k.duckdb"
    base = [sys.executable, "-m", "multivector", "explore"]
    # enough work that half the kills land before it finishes (600 runs did, until the route choice got
    # 1.25 times faster: then 9 of 20 kills landed on one CI run)
    runs = 1200
    new = ["kazakhstan", "--n", str(runs), "--chunk-size", "4", "--seed", "9", "--params", ",".join(FEW),
           "--run-id", "k", "--db", str(db)]
    rng = random.Random(2026)
    kills = finished_early = 0
    while kills < KILLS:
        cmd = base + (["--resume", "k", "--db", str(db)] if _has_run(db, "k") else new)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=rng.uniform(1.5, 6.0))
            finished_early += 1
            break                                   # it finished: nothing left to interrupt
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        if db.exists() and _has_run(db, "k"):
            with Store(db, read_only=True) as s:
                assert s.integrity("k") == [], f"after kill {kills}"
    # how far each attempt gets depends on the machine's speed; at least half the planned kills must land
    assert kills >= KILLS // 2, f"the run finished after {kills} kills; give it more work"
    r = runner.invoke(app, ["explore", "--resume", "k", "--db", str(db)])
    assert r.exit_code == 0, r.output
    explore("kazakhstan", n=runs, seed=9, names=FEW, db=tmp_path / "ref.duckdb", run_id="ref", chunk_size=40)
    y1, r1, e1, problems = tables(db, "k")
    y2, r2, e2, _ = tables(tmp_path / "ref.duckdb", "ref")
    assert problems == [] and len(r1) == runs
    pd.testing.assert_frame_equal(y1, y2)
    pd.testing.assert_frame_equal(r1, r2)
    pd.testing.assert_frame_equal(e1, e2)


@pytest.mark.requires_dask
def test_a_dask_worker_killed_mid_run_changes_nothing(tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        pids = list(client.run(os.getpid).values())
        killed = []

        def progress(done, total):
            if done >= 4 and not killed:          # the first chunk is in: kill a worker mid-run
                os.kill(pids[0], signal.SIGKILL)
                killed.append(done)

        explore("kazakhstan", n=24, chunk_size=4, seed=3, names=FEW, db=tmp_path / "d.duckdb", run_id="d",
                scheduler=cluster.scheduler_address, progress=progress)
    finally:
        client.close()
        cluster.close()
    assert killed and killed[0] < 24
    explore("kazakhstan", n=24, chunk_size=24, seed=3, names=FEW, db=tmp_path / "ref.duckdb", run_id="ref")
    y1, r1, e1, problems = tables(tmp_path / "d.duckdb", "d")
    y2, r2, e2, _ = tables(tmp_path / "ref.duckdb", "ref")
    assert problems == []
    pd.testing.assert_frame_equal(y1, y2)
    pd.testing.assert_frame_equal(e1, e2)


def test_a_full_disk_gives_a_clear_error_and_no_corruption(tmp_path):
    """The file-size limit (RLIMIT_FSIZE) stands in for a full disk: writes past it fail."""
    db = tmp_path / "full.duckdb"
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000)); "
            "from multivector.interfaces.cli import app; sys.argv = ['multivector'] + sys.argv[1:]; app()")
    cmd = [sys.executable, "-c", code, "explore", "kazakhstan", "--n", "400", "--chunk-size", "20", "--seed", "4",
           "--params", ",".join(FEW), "--run-id", "f", "--db", str(db)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "store" in proc.stderr and "disk" in proc.stderr, proc.stderr[-2000:]
    with Store(db, read_only=True) as s:
        assert s.integrity("f") == []
        done = len(s.run_outcomes("f")) if s._has_table("run_outcomes") else 0
    assert done < 400
    r = runner.invoke(app, ["explore", "--resume", "f", "--db", str(db)])
    assert r.exit_code == 0, r.output
    explore("kazakhstan", n=400, seed=4, names=FEW, db=tmp_path / "ref.duckdb", run_id="ref", chunk_size=200)
    pd.testing.assert_frame_equal(tables(db, "f")[0], tables(tmp_path / "ref.duckdb", "ref")[0])


# ------------------------------------------------------------------------------------------------
# numerics: extreme but valid values

def test_parameter_corners_give_finite_results_and_report_non_convergence():
    import multivector as mv

    s = mv.load("kazakhstan")
    names = list(s.parameters)
    lo = {k: s.parameters[k].min for k in names}
    hi = {k: s.parameters[k].max for k in names}
    rng = np.random.default_rng(0)
    rows = [lo, hi] + [{k: (lo[k] if rng.random() < 0.5 else hi[k]) for k in names} for _ in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = mv.simulate(s, samples=pd.DataFrame(rows))
    for v in ("middle_power_index", "tonnes", "teu", "share", "political", "flow_mt", "delay_h"):
        assert np.isfinite(ds[v].values).all(), v
    unconverged = ~ds["converged"].values.all(axis=1)
    # a run that did not reach the gap is flagged, and said out loud
    assert unconverged.any() == any("did not converge" in str(w.message) for w in caught)


def test_zero_demand_and_zero_capacity(tiny_dir):
    edit_csv(tiny_dir / "demand.csv", 0, "volume", "0")
    r = runner.invoke(app, ["run", str(tiny_dir), "--json"])
    assert r.exit_code == 0, r.output
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout
    doc = json.loads(r.stdout)
    assert all(c["tonnes"] == [0.0] for c in doc["corridors"].values())
    edit_csv(tiny_dir / "links.csv", 0, "capacity_mt", "0")
    r = runner.invoke(app, ["run", str(tiny_dir)])
    assert r.exit_code == 2 and "capacity must be > 0" in r.output and "links.csv" in r.output


def test_huge_disruption_rate_stays_finite(tmp_path):
    r = runner.invoke(app, ["data", "copy", "kazakhstan", str(tmp_path / "kz")])
    assert r.exit_code == 0, r.output
    p = tmp_path / "kz" / "politics.toml"
    text = p.read_text()
    i = text.index("[constants.cpc_weather_rate]")
    j = text.index("[constants.", i + 10)
    block = text[i:j].replace("max = 2.0", "max = 1000.0")
    p.write_text(text[:i] + block + text[j:])
    r = runner.invoke(app, ["run", str(tmp_path / "kz"), "--set", "cpc_weather_rate=1000", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert all(np.isfinite(doc["middle_power_index"])) and all(doc["convergence"]["converged"])
    assert max(doc["corridors"]["oil_cpc"]["tonnes"][1:]) < 1e3      # tonnes: CPC shut every year after the first


# ------------------------------------------------------------------------------------------------
# HTTP under concurrent load

@pytest.fixture(scope="module")
def live(small_store, tmp_path_factory):
    pytest.importorskip("fastapi")
    import shutil

    from multivector.interfaces.server import create_app

    db = tmp_path_factory.mktemp("live") / "live.duckdb"
    shutil.copy(small_store, db)
    with serving(create_app(db=db, max_n=40, max_jobs=2, max_queued_runs=32)) as url:
        yield url


def test_fifty_concurrent_runs_are_answered(live):
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        with httpx.Client(timeout=300) as c:
            return c.post(f"{live}/api/scenarios/kazakhstan/run",
                          json={"overrides": {"mediation_activity": i % 10}, "seed": i}).status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(one, range(50)))
    assert len(codes) == 50 and set(codes) <= {200, 429}, codes
    assert codes.count(200) >= 32                       # the queue holds 32; the rest may be told to retry


def test_five_concurrent_explorations_respect_the_job_limit(live):
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    def start(i):
        with httpx.Client(timeout=60) as c:
            return c.post(f"{live}/api/explorations", json={"n": 8, "chunk_size": 4, "seed": i, "run_id": f"c{i}"})

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(start, range(5)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 202, 429, 429, 429], codes
    with httpx.Client(timeout=60) as c:
        urls = [a.json()["status_url"] for a in answers if a.status_code == 202]
        deadline = time.time() + 600
        states = []
        while time.time() < deadline:
            states = [c.get(live + u).json() for u in urls]
            if all(s["status"] in ("finished", "failed") for s in states):
                break
            time.sleep(0.5)
        assert [s["status"] for s in states] == ["finished", "finished"], states
        for s in states:
            assert c.get(f"{live}/api/runs/{s['run_id']}").json()["problems"] == []


def test_an_unconverged_year_says_whether_the_gap_or_the_prices_missed():
    """A run can reach the route-choice gap and still leave its capacity prices unsettled; the warning
    had said every such run 'did not reach gap 1e-06' while printing a worst gap of 3e-10."""
    from types import SimpleNamespace

    from multivector.freight.model import _unconverged_message

    res = SimpleNamespace(gap=np.array([1e-9, 3e-3, 1e-12, 1e-8]), converged=np.array([True, False, False, True]))
    msg = _unconverged_message(2030, res, 1e-6, 3000)
    assert msg.startswith("2030: 2 of 4 runs did not converge in 3000 Newton steps: ")
    assert "1 did not reach the route-choice gap 1e-06 (worst 3.00e-03)" in msg
    assert "1 reached it with capacity prices unsettled" in msg
    prices_only = SimpleNamespace(gap=np.array([1e-12, 1e-10]), converged=np.array([False, True]))
    assert "route-choice gap" not in _unconverged_message(2030, prices_only, 1e-6, 3000)
