import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tiny_dir(tmp_path):
    """An editable copy of the three-corridor test dataset."""
    target = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", target)
    return target


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


SMALL_NAMES = ["cpc_disruption_rate", "mediation_activity", "eu_investment_willingness",
               "capital_gain_per_event", "capital_decay_rate"]


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """A store holding one finished 64-run LHS exploration ('lhs64') over five parameters."""
    from multivector.ensemble import explore

    db = tmp_path_factory.mktemp("store") / "small.duckdb"
    explore("kazakhstan", n=64, seed=2, names=SMALL_NAMES, db=db, run_id="lhs64", chunk_size=32)
    return db
