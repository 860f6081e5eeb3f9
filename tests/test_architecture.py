"""The package's shape: layers import only downwards, no cycles, and no country outside the datasets."""

from __future__ import annotations

import ast
import graphlib
import io
import re
import tokenize
from pathlib import Path

import pytest

import multivector as mv

SRC = Path(mv.__file__).parent
DATASETS = SRC / "datasets"

#: The layers, bottom to top: a module may import from its own layer and the ones before it.
LAYERS = [
    ("errors", "io", "sd"),
    ("dataset",),
    ("freight",),
    ("model",),
    ("explore",),
    ("views",),
    ("interfaces",),
    ("__init__", "__main__"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        if DATASETS in path.parents:
            continue
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["multivector", *parts])] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every multivector module ``name`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in this test and to docs/design.md")


def test_no_import_cycle_and_no_import_upwards():
    modules = _modules()
    graph = {m: _imports(m, p, modules) - {"multivector"} for m, p in modules.items() if m != "multivector"}
    graphlib.TopologicalSorter(graph).static_order()          # raises CycleError on any cycle
    upward = [(m, t) for m, targets in graph.items() for t in targets if _layer(t) > _layer(m)]
    assert upward == [], "imports running back up the layers: " + ", ".join(f"{a} -> {b}" for a, b in upward)


def test_the_engine_names_no_country_and_no_outcome_of_the_default_model():
    """Country codes, corridor names and political variables of the built-in dataset appear only in it."""
    kz = mv.load("kazakhstan")
    codes = {c for text in kz.nodes["country"] for c in text.split("/")}
    names = {n for n in kz.corridors if n not in ("sea",)}              # 'sea' is also a generic mode
    spec = kz.politics.sd.spec
    names |= set(spec.stocks) | set(spec.auxiliaries) | set(spec.flows) | set(spec.exogenous)
    names |= {p for p in kz.parameters if not re.match(r"(speed|tariff|vot|logit_scale|capacity_factor|risk|"
                                                        r"demand_growth|vdf|queue|transfer_time|focus)_", p)}
    from multivector.dataset.scenario import required_parameters

    names -= set(required_parameters(kz)) | {"base_year"}                 # the engine's own vocabulary
    words = names | {"kazakhstan", "kazakh", "astana"}
    hits = []
    for path in _modules().values():
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            if tok.type == tokenize.NAME and tok.string in names:
                hits.append(f"{path.name}:{tok.start[0]} {tok.string}")
            elif tok.type == tokenize.STRING:
                literal = tok.string.strip("'\"rbf")
                if literal in codes or any(re.search(rf"\b{c}/|/{c}\b", tok.string) for c in codes):
                    hits.append(f"{path.name}:{tok.start[0]} {literal!r}")
                for word in re.findall(r"[A-Za-z_][A-Za-z0-9_:]*", tok.string):
                    if word.lower() in words and (word.lower() not in {"middle"} or "_" in word):
                        hits.append(f"{path.name}:{tok.start[0]} {word!r}")
    assert hits == [], "the default dataset leaks into the engine: " + ", ".join(hits[:20])


@pytest.mark.parametrize("module", ["multivector.interfaces.cli"])
def test_the_run_command_does_not_import_the_server_plotting_or_dask(module):
    """Interfaces import lazily: a plain run must not pay for FastAPI, plotly or Dask."""
    import subprocess
    import sys

    code = (f"import sys, {module}; heavy = [m for m in ('fastapi', 'plotly', 'distributed', 'matplotlib') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_route_sets_read_from_the_cache_do_not_import_networkx(tmp_path):
    """networkx enumerates routes; a run whose route sets come from the disk cache never imports it."""
    import os
    import subprocess
    import sys

    tiny = str(Path(__file__).parent / "data" / "tiny")
    code = ("import sys, multivector as mv; from multivector.model.compiled import compiled; "
            f"compiled(mv.load({tiny!r})).network; print('networkx' in sys.modules)")
    env = {**os.environ, "MULTIVECTOR_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            .stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]      # compiled (and cached) first, then read back


def test_a_coupled_run_does_not_import_scipy_stats():
    """``scipy.stats`` takes a second to import; a run's draws (disruptions, the verdict's definitions)
    come from ``scipy.special`` and NumPy instead (``model/randomness.py``)."""
    import subprocess
    import sys

    code = ("import sys, warnings, multivector as mv; warnings.simplefilter('ignore'); "
            "ds = mv.simulate(mv.load('kazakhstan'), 2); assert 'consolidated_over_definitions' in ds, list(ds); "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_one_atomic_writer_and_one_optional_import_helper():
    """Files are written through multivector.io only; optional packages through io.require only."""
    offenders = []
    for name, path in _modules().items():
        if name == "multivector.io":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (r"\bmkstemp\b", r"\bos\.replace\b", r"except ImportError", r"except ModuleNotFoundError"):
            if re.search(pattern, text):
                offenders.append(f"{name}: {pattern}")
    assert offenders == []


def test_sql_lives_in_the_store_only():
    offenders = []
    for name, path in _modules().items():
        if name == "multivector.explore.store":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\.execute\(|\bSELECT\b|\bCOPY\b|\.con\b", text):
            offenders.append(name)
    assert offenders == []


def test_one_bpr():
    """The BPR curve is defined once (freight.vdf.Bpr); the SUE's delay and the UE's costs use it."""
    defining = [name for name, path in _modules().items()
                if re.search(r"^\s*class \w*bpr\w*\b", path.read_text(encoding="utf-8"), re.I | re.M)]
    assert defining == ["multivector.freight.vdf"]
    for name in ("multivector.freight.ue", "multivector.freight.model"):
        assert "multivector.freight.vdf" in _imports(name, _modules()[name], _modules())
