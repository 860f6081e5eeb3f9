"""The HTTP API: runs, explorations as jobs, analyses from the store, limits and 4xx errors."""

import json
import sys
import time
import warnings

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from multivector.interfaces.server import create_app


@pytest.fixture(scope="module")
def client(small_store):
    return TestClient(create_app(db=small_store, max_n=200, max_jobs=1))


def test_scenarios_and_parameters(client):
    assert client.get("/api/scenarios").json()[0]["name"] == "kazakhstan"
    doc = client.get("/api/scenarios/kazakhstan/parameters").json()
    assert doc["featured"] == ["cpc_political_rate", "capacity_factor_caspian", "eu_investment_willingness",
                               "russia_tolerance_baseline"]
    p = {r["name"]: r for r in doc["parameters"]}
    assert p["mediation_activity"]["kind"] == "lever" and p["cpc_political_rate"]["source"] == "A-POL-CPC-POL"
    assert p["cpc_political_rate"]["min"] <= p["cpc_political_rate"]["value"] <= p["cpc_political_rate"]["max"]


def test_run_with_overrides_changes_the_index_and_is_deterministic(client):
    url = "/api/scenarios/kazakhstan/run"
    base = client.post(url, json={}).json()
    more = client.post(url, json={"overrides": {"mediation_activity": 9}, "seed": 0}).json()
    again = client.post(url, json={"overrides": {"mediation_activity": 9}, "seed": 0}).json()
    index = base["index"]
    assert index == "middle_power_index"
    assert base["years"][0] == 2024 and base["years"][-1] == 2040
    assert more[index][-1] == again[index][-1] != base[index][-1]
    assert more["figures"]["map"]["data"] and more["figures"]["series"]["data"]
    assert len(more["middle_power_index"]) == 17 and len(more["focus_overland_share"]) == 17


@pytest.mark.parametrize("seeds", [1, 4])
def test_run_answers_the_cli_run_document_plus_the_dashboard_keys(client, seeds):
    from typer.testing import CliRunner

    from multivector.interfaces.cli import app

    answer = client.post("/api/scenarios/kazakhstan/run",
                         json={"overrides": {"mediation_activity": 9}, "seed": 3, "seeds": seeds}).json()
    cli = CliRunner().invoke(app, ["run", "kazakhstan", "--json", "--seed", "3", "--seeds", str(seeds),
                                   "--set", "mediation_activity=9"])
    assert cli.exit_code == 0, cli.output
    extras = {"overrides", "index", "headline", "figures", "seconds"}
    assert extras <= set(answer)
    assert {k: v for k, v in answer.items() if k not in extras} == json.loads(cli.stdout)
    assert answer["overrides"] == {"mediation_activity": 9} and answer["seed"] == 3


def test_a_missing_optional_dependency_is_a_503_with_the_pip_hint(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)      # as if plotly were not installed
    r = client.get("/api/runs/lhs64/discover")
    assert r.status_code == 503, r.text
    assert r.json()["hint"] == "pip install 'multivector[report]'" and "plotly" in r.json()["detail"]


@pytest.mark.parametrize("path, body, status, message", [
    ("/api/scenarios/kazakhstan/run", {"overrides": {"nope": 1}}, 422, "unknown parameter 'nope'"),
    ("/api/scenarios/kazakhstan/run", {"overrides": {"cpc_political_rate": 40}}, 422, "outside its range"),
    ("/api/scenarios/kazakhstan/run", {"overrides": {"cpc_political_rate": "many"}}, 422, "overrides.cpc_political_rate"),
    ("/api/scenarios/kazakhstan/run", {"seed": -1}, 422, "seed"),
    ("/api/scenarios/kazakhstan/run", {"colour": "red"}, 422, "colour"),
    ("/api/scenarios/kazakhstan/run", {"year": 2050}, 422, "outside the run"),
    ("/api/scenarios/nowhere/run", {}, 404, "no scenario 'nowhere'"),
    ("/api/scenarios/..%2F..%2Fetc/run", {}, 404, ""),
    ("/api/explorations", {"n": 10_000}, 422, "over this server's limit of 200"),
    ("/api/explorations", {"n": 100, "sampler": "sobol"}, 422, "power of two"),
    ("/api/explorations", {"n": 4, "run_id": "../../x"}, 422, "run_id"),
    ("/api/explorations", {"n": 4, "run_id": "lhs64"}, 422, "already exists"),
])
def test_bad_requests_get_a_clear_4xx(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_reads_are_checked_and_limited(client):
    assert client.get("/api/runs/nosuch/ensemble").status_code == 404
    assert client.get("/api/runs/a%20b;drop/ensemble").status_code == 404
    assert client.get("/static/..%2Fserver.py").status_code == 404
    big = client.post("/api/scenarios/kazakhstan/run", content=b"{" + b" " * 70_000 + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413
    r = client.get("/api/runs/lhs64/discover", params={"outcome": "middle_power_index_final"})
    assert r.status_code == 422 and "threshold" in r.json()["detail"]


def test_store_analyses(client):
    runs = client.get("/api/runs").json()
    assert runs[0]["run_id"] == "lhs64" and runs[0]["status"] == "finished"
    ens = client.get("/api/runs/lhs64/ensemble").json()
    assert ens["runs"] == 64 and len(ens["bands"]["middle_power_index"]["p50"]) == 17
    sens = client.get("/api/runs/lhs64/sensitivity").json()
    assert sens["method"] == "rbd_fast" and len(sens["indices"]) == 5
    prim = client.get("/api/runs/lhs64/discover").json()
    assert 0 < prim["stats"]["coverage"] <= 1 and prim["figures"]["tradeoff"]["data"]
    rows = client.get("/api/runs/lhs64/outcomes", params={"outcome": "middle_power_index", "year": 2035,
                                                          "limit": 10, "offset": 60}).json()
    assert rows["total"] == 64 and len(rows["rows"]) == 4 and rows["year"] == 2035
    assert {"run", "mediation_activity", "middle_power_index"} <= set(rows["rows"][0])
    page = client.get("/api/runs/lhs64/report")
    assert page.status_code == 200 and "Where the shift consolidates" in page.text


def test_exploration_job_runs_in_the_background_and_limits_concurrency(client):
    r = client.post("/api/explorations", json={"n": 8, "chunk_size": 4, "seed": 5, "run_id": "job8"})
    assert r.status_code == 202, r.text
    job = r.json()
    second = client.post("/api/explorations", json={"n": 4, "run_id": "job4"})
    assert second.status_code == 429 and "Retry-After" in second.headers
    deadline = time.time() + 300
    while time.time() < deadline:
        status = client.get(job["status_url"]).json()
        if status["status"] in ("finished", "failed"):
            break
        time.sleep(0.5)
    assert status["status"] == "finished" and status["done"] == status["total"] == 8, status
    assert client.get("/api/runs/job8").json()["problems"] == []
    assert client.get("/api/explorations/nosuch").status_code == 404


def test_openapi_spec_lists_the_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/scenarios/{name}/run", "/api/explorations", "/api/runs/{run_id}/discover"} <= set(spec["paths"])


# ------------------------------------------------------------------------------------------------
# a server for a team: the token, the loopback rule, the pool of workers

TOKEN = "team-token-0123456789abcdef"
PATH_VALUES = {"name": "kazakhstan", "run_id": "lhs64", "job_id": "nosuch"}


@pytest.fixture(scope="module")
def guarded(small_store, tmp_path_factory):
    import shutil

    db = tmp_path_factory.mktemp("guarded") / "g.duckdb"
    shutil.copy(small_store, db)
    return TestClient(create_app(db=db, max_n=200, max_jobs=1, token=TOKEN))


def _operations(client, write: bool):
    """(method, path) of every operation in the OpenAPI spec that writes or starts work, or that only reads."""
    spec = client.get("/openapi.json").json()
    return [(method, path.format(**PATH_VALUES)) for path, ops in spec["paths"].items() for method in ops
            if (method not in ("get", "head")) == write]


def test_everything_that_starts_work_needs_the_token(guarded):
    writes = _operations(guarded, write=True)
    assert ("post", "/api/scenarios/kazakhstan/run") in writes and ("post", "/api/explorations") in writes
    for method, path in writes:
        missing = guarded.request(method, path, json={"n": 2})
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["WWW-Authenticate"] == "Bearer" and "needs a token" in missing.json()["detail"]
        for header in ("Bearer not-the-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"):
            wrong = guarded.request(method, path, json={"n": 2}, headers={"Authorization": header})
            assert wrong.status_code == 401, (method, path, header, wrong.text)
            assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.app.state.server.runs.status()["started"] is False      # nothing refused reached a worker
    assert guarded.get("/api/explorations").json() == []


def test_the_token_lets_runs_and_explorations_start(guarded):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    run = guarded.post("/api/scenarios/kazakhstan/run", json={"overrides": {"mediation_activity": 9}}, headers=auth)
    assert run.status_code == 200, run.text
    assert run.json()["index"] == "middle_power_index" and len(run.json()["middle_power_index"]) == 17
    bad = guarded.post("/api/scenarios/kazakhstan/run", json={"overrides": {"nope": 1}}, headers=auth)
    assert bad.status_code == 422                                            # past the token, checked as before
    job = guarded.post("/api/explorations", json={"n": 2, "chunk_size": 2, "run_id": "with-token"}, headers=auth)
    assert job.status_code == 202, job.text
    deadline = time.time() + 300
    while time.time() < deadline and (status := guarded.get(job.json()["status_url"]).json())["status"] in (
            "queued", "running"):
        time.sleep(0.5)
    assert status["status"] == "finished", status
    assert guarded.get("/api/runs/with-token").json()["problems"] == []


def test_reading_needs_no_token(guarded):
    reads = _operations(guarded, write=False)
    assert ("get", "/api/runs/lhs64/ensemble") in reads
    for method, path in reads + [("get", "/"), ("get", "/static/dashboard.js"), ("get", "/openapi.json")]:
        r = guarded.request(method, path)
        assert r.status_code == (404 if path == "/api/explorations/nosuch" else 200), (path, r.text[:200])
    assert guarded.get("/api/server").json()["token_required"] is True


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LocalHost", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("10.0.0.1", False), ("example.org", False),
    ("", False),
])
def test_which_hosts_are_loopback(host, loopback):
    from multivector.interfaces.server.auth import is_loopback

    assert is_loopback(host) is loopback


@pytest.fixture
def serve_calls(monkeypatch):
    """``multivector serve`` as typed, with uvicorn.run recording its arguments instead of binding."""
    uvicorn = pytest.importorskip("uvicorn")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.delenv("MULTIVECTOR_TOKEN", raising=False)
    return calls


def _serve(args, env=None):
    from typer.testing import CliRunner

    from multivector.interfaces.cli import app

    return CliRunner().invoke(app, ["serve", *args], env=env)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_serve_refuses_an_open_address_without_a_token(serve_calls, host, tmp_path):
    r = _serve(["--host", host, "--db", str(tmp_path / "s.duckdb")])
    assert r.exit_code == 2 and serve_calls == []
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert f"--host {host}" in r.output and "needs a token" in r.output and "MULTIVECTOR_TOKEN" in r.output
    assert not (tmp_path / "s.duckdb").exists()


def test_serve_takes_the_token_from_the_option_or_the_environment(serve_calls, tmp_path):
    db = str(tmp_path / "s.duckdb")
    r = _serve(["--host", "0.0.0.0", "--db", db, "--token", TOKEN, "--workers", "3"])
    assert r.exit_code == 0, r.output
    r = _serve(["--host", "0.0.0.0", "--db", db], env={"MULTIVECTOR_TOKEN": TOKEN})
    assert r.exit_code == 0, r.output
    assert TOKEN not in r.output                                              # never printed
    r = _serve(["--db", db])                                                  # loopback: a token is optional
    assert r.exit_code == 0, r.output
    (first, kw1), (second, kw2), (local, kw3) = serve_calls
    assert kw1["host"] == kw2["host"] == "0.0.0.0" and kw3["host"] == "127.0.0.1"
    assert first.state.server.token == second.state.server.token == TOKEN and local.state.server.token is None
    assert first.state.server.runs.workers == 3
    with TestClient(second) as c:
        assert c.post("/api/explorations", json={"n": 2}).status_code == 401


@pytest.mark.parametrize("token, message", [("short", "at least 16"), ("with a space in the token", "printable")])
def test_serve_refuses_a_weak_or_malformed_token(serve_calls, token, message):
    r = _serve(["--token", token])
    assert r.exit_code == 2 and message in r.output and serve_calls == []


def test_the_pool_bounds_what_waits_and_survives_a_lost_worker():
    import asyncio
    import os

    from multivector.interfaces.server.runner import RunPool
    from multivector.interfaces.server.state import ServerBusy, WorkerLost

    async def scenario():
        pool = RunPool(workers=1, max_waiting=1)
        try:
            admitted = [asyncio.create_task(pool.run(divmod, 7, 2)) for _ in range(2)]
            await asyncio.sleep(0)                        # both are in the pool now, neither answered yet
            with pytest.raises(ServerBusy) as busy:
                await pool.run(divmod, 9, 4)
            assert busy.value.retry_after > 0 and type(busy.value) is ServerBusy
            assert await asyncio.gather(*admitted) == [3, 3]
            assert await pool.run(divmod, 9, 4) == 2      # room again once they are answered
            with pytest.raises(WorkerLost):
                await pool.run(os._exit, 1)               # a worker killed mid-run
            assert await pool.run(divmod, 9, 4) == 2      # a fresh pool takes the next run
        finally:
            pool.close()

    asyncio.run(scenario())


def test_concurrent_runs_are_served_by_several_workers_at_once(small_store):
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    from conftest import serving

    app = create_app(db=small_store, workers=2, token=TOKEN)
    with serving(app) as url:
        def one(i):
            with httpx.Client(timeout=600, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                return c.post(f"{url}/api/scenarios/kazakhstan/run",
                              json={"overrides": {"mediation_activity": i}, "seed": i})

        with ThreadPoolExecutor(8) as threads:
            answers = list(threads.map(one, range(8)))
        assert [a.status_code for a in answers] == [200] * 8, [a.text[:200] for a in answers]
        indices = [a.json()["middle_power_index"][-1] for a in answers]
        assert len(set(indices)) > 1                                           # eight different runs
        served = list(app.state.server.runs.served)
    assert len(served) == 8 and len({s.pid for s in served}) == 2
    overlapping = [(a, b) for a in served for b in served
                   if a.pid != b.pid and a.started < b.ended and b.started < a.ended]
    assert overlapping, served                                                 # two runs at the same time
    assert app.state.server.runs.status()["started"] is False                 # the server's end stopped them
