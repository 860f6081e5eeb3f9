"""Property-based checks (hypothesis): whatever a user types into a cell, an override or a request
body, the answer is a result or a clear error — never a traceback or a server error."""

import json
import shutil
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import DATA, edit_csv
from multivector.interfaces.cli import app
from multivector.errors import InputError

runner = CliRunner()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
cell_text = st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.integers(-10**12, 10**12).map(str))


def _clean_exit(result) -> bool:
    return result.exit_code in (0, 2) and (result.exception is None or isinstance(result.exception, SystemExit)) \
        and "Traceback" not in result.output and "internal error" not in result.output


@SETTINGS
@given(name=st.sampled_from(["vdf_alpha", "logit_scale_container", "nosuch", "", " vot_container "]), value=cell_text)
def test_any_override_is_a_result_or_a_clear_error(name, value):
    r = runner.invoke(app, ["run", str(DATA / "tiny"), "--set", f"{name}={value}", "--json"])
    assert _clean_exit(r), r.output
    if r.exit_code == 0:
        assert "NaN" not in r.stdout
    else:
        assert "error:" in r.output


@pytest.fixture(scope="module")
def tiny_copy(tmp_path_factory):
    target = tmp_path_factory.mktemp("prop") / "tiny"
    shutil.copytree(DATA / "tiny", target)
    return target


@SETTINGS
@given(column=st.sampled_from(["volume", "year", "origin", "commodity"]), value=cell_text)
def test_any_demand_cell_loads_or_names_its_place(tiny_copy, column, value):
    from multivector.dataset import load

    shutil.copy(DATA / "tiny" / "demand.csv", tiny_copy / "demand.csv")
    edit_csv(tiny_copy / "demand.csv", 0, column, value.replace("\n", " ").replace("\r", " "))
    try:
        load(tiny_copy)
    except InputError as exc:
        assert "demand.csv" in str(exc)


@pytest.fixture(scope="module")
def client(small_store):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from multivector.interfaces.server import create_app

    return TestClient(create_app(db=small_store, max_n=8, max_jobs=1), raise_server_exceptions=False)


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "overrides": st.dictionaries(st.sampled_from(["mediation_activity", "vdf_alpha", "x"]),
                                 st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=2),
    "seed": st.integers(-5, 2**40), "year": st.integers(1800, 2200)})))
def test_any_run_body_is_answered_without_a_server_error(client, body):
    r = client.post("/api/scenarios/kazakhstan/run", content=json.dumps(body),
                    headers={"content-type": "application/json"})
    assert r.status_code in (200, 404, 413, 422, 429), r.text[:300]
    if r.status_code != 200:
        assert r.json()["detail"]
