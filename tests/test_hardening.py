"""Hardening: every case of the broken-input corpus (tests/corpus.py) gets a clear error — a non-zero
exit or a 4xx naming the problem — never a traceback or a 5xx, and writes nothing."""

import warnings

import pytest

from corpus import all_cases, run_cli, run_http

CASES = all_cases()


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "cli"], ids=lambda c: c.id)
def test_cli_case(case, tmp_path):
    ok, why = run_cli(case, tmp_path)
    assert ok, why


@pytest.fixture(scope="module")
def client(small_store):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from multivector.interfaces.server import create_app

    return TestClient(create_app(db=small_store, max_n=1000), raise_server_exceptions=False)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "http"], ids=lambda c: c.id)
def test_http_case(case, client):
    ok, why = run_http(case, client)
    assert ok, why


def test_corpus_is_large_enough():
    assert len(CASES) >= 200
