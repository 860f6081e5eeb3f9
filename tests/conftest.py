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
