"""The example notebooks in ``examples/``: each runs from top to bottom in a fresh kernel (nbclient, the
engine of nbmake), writes nothing beside itself and leaves no temporary folder behind, and is committed
without outputs, so that git holds what an analyst reads and not the numbers of one machine's run.

``python tests/test_examples.py`` strips the outputs of every notebook in ``examples/`` in place.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: The notebooks the README's "Examples" section names.
NAMED = ["01_first_run.ipynb", "02_seed_question.ipynb", "03_robust_strategies.ipynb", "04_edit_a_dataset.ipynb"]
#: A quoted absolute path in a notebook's code: '/home/...', "C:\\...", '~/...'.
ABSOLUTE = re.compile(r"""["'](?:/|~/|[A-Za-z]:[\\/])""")


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def test_the_named_examples_are_there():
    assert [p.name for p in NOTEBOOKS if p.name in NAMED] == NAMED
    assert (EXAMPLES / "policies.csv").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs_and_no_absolute_paths(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, (f"{path.name}: cells {dirty} hold outputs or execution counts; "
                       "strip them with: python tests/test_examples.py")
    for c in code:
        assert not ABSOLUTE.search(c.source), f"{path.name}: an absolute path in\n{c.source}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    """Run every cell in a new kernel started in ``examples/`` (as Jupyter starts one); a cell that
    raises fails the test. The kernel's temporary folder is ``tmp_path``, so a notebook that does not
    clean up after itself is seen; the route-set cache is the test session's (conftest.py)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    before = _files(EXAMPLES)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {}))
    assert images, f"{path.name} drew no figure"
    assert _files(EXAMPLES) == before, f"{path.name} wrote into examples/"
    left = sorted(p.name for p in tmp_path.glob("multivector-*"))
    assert not left, f"{path.name} left temporary folders: {left}"


def strip(paths) -> list[Path]:
    """Remove outputs, execution counts and timings from notebooks in place; return those that changed."""
    from multivector.io import atomic_write

    changed = []
    for path in paths:
        before = Path(path).read_text(encoding="utf-8")
        nb = nbformat.reads(before, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                cell.metadata.pop("execution", None)      # nbclient's timings
        text = nbformat.writes(nb) + "\n"          # as nbformat.write ends a file
        if text != before:
            atomic_write(path, text)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for p in strip(NOTEBOOKS):
        print(f"stripped {p.relative_to(EXAMPLES.parent)}", file=sys.stderr)
