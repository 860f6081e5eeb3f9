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
