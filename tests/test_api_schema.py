"""Schemathesis against the OpenAPI spec: generated requests to every operation, no server error."""

import shutil
import warnings

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(small_store, tmp_path_factory):
    from multivector.interfaces.server import create_app

    db = tmp_path_factory.mktemp("schema") / "s.duckdb"
    shutil.copy(small_store, db)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(db=db, max_n=8, max_jobs=1)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
