import contextlib
import json
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def network_cache(tmp_path_factory):
    """Compiled route sets are cached in a folder of the test session, never in the user's cache."""
    folder = tmp_path_factory.mktemp("network-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MULTIVECTOR_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def tiny_dir(tmp_path):
    """An editable copy of the three-corridor test dataset."""
    target = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", target)
    return target


def strict_json(text: str):
    """Parse a command's ``--json`` output as a strict parser (a browser's) does: NaN and Infinity are
    not JSON, and their presence fails the test."""
    def refuse(token):
        raise AssertionError(f"{token} in JSON output (a missing value must be null)")
    return json.loads(text, parse_constant=refuse)


def edit_csv(path, row, column, value):
    """Set one cell of a CSV file (row counts data rows from 0)."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
        fields = list(rows[0].keys()) if rows else []
    rows[row][column] = value
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


SMALL_NAMES = ["cpc_weather_rate", "mediation_activity", "eu_investment_willingness",
               "capital_gain_per_event", "capital_decay_rate"]


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """A store holding one finished 64-run LHS exploration ('lhs64') over five parameters."""
    from multivector.explore.ensemble import explore

    db = tmp_path_factory.mktemp("store") / "small.duckdb"
    explore("kazakhstan", n=64, seed=2, names=SMALL_NAMES, db=db, run_id="lhs64", chunk_size=32)
    return db


@contextlib.contextmanager
def serving(app):
    """Run an ASGI app with uvicorn on a free local port in a thread; yield its base URL."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.1)
    assert srv.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def store_tables(db, run_id):
    """A run's yearly outcomes, run outcomes, experiments and integrity problems, from the store."""
    from multivector.explore.store import Store

    with Store(db, read_only=True) as s:
        return s.outcomes(run_id), s.run_outcomes(run_id), s.experiments(run_id), s.integrity(run_id)
