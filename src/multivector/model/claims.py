"""Quantified claims (speeches, targets) set against the data and a model run.

A dataset's ``claims.csv`` lists each claim with its source, year, claimed value and the model
metric that answers it: ``focus:overland_share``, ``political:<variable>`` or ``corridor:<id>:mt|teu``;
or ``data`` for a statement that only the gathered data can answer, whose ``observed`` column holds
the data's figure. An optional ``test`` says how the claim reads: ``about`` (within 10%, the default),
``at_least`` or ``at_most``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from multivector.dataset import Scenario, check_source_id
from multivector.errors import InputError
from multivector.model.compiled import simulate

TOLERANCE = 0.10
TESTS = ("about", "at_least", "at_most")


def verdict(claimed: float, value: float, test: str, what: str) -> str:
    """Whether ``value`` (the model's or the data's) bears out a claim read as ``test``."""
    if test == "at_least":
        return "consistent" if value >= claimed else f"{what} below by {1 - value / claimed:.0%}"
    if test == "at_most":
        return "consistent" if value <= claimed else f"{what} above by {value / claimed - 1:.0%}"
    ratio = value / claimed if claimed else np.nan
    if abs(ratio - 1) <= TOLERANCE:
        return "consistent"
    return f"{what} {'below' if ratio < 1 else 'above'} by {abs(ratio - 1):.0%}"


def model_value(ds, metric: str, year: int) -> float:
    """The value of a claim's metric in a coupled run (run 0)."""
    if year not in ds["year"].values:
        raise InputError(f"claims: year {year} is outside the simulated years")
    d = ds.sel(year=year).isel(run=0)
    if metric == "focus:overland_share":
        return float(d["focus_overland_share"])
    kind, _, rest = metric.partition(":")
    if kind == "political":
        if rest not in ds["variable"].values:
            raise InputError(f"claims: unknown political variable '{rest}'")
        return float(d["political"].sel(variable=rest))
    if kind == "corridor":
        ident, _, unit = rest.partition(":")
        if ident not in ds["corridor"].values or unit not in ("mt", "teu"):
            raise InputError(f"claims: metric '{metric}' must be corridor:<id>:mt or corridor:<id>:teu")
        return float(d["tonnes"].sel(corridor=ident)) / 1e6 if unit == "mt" else float(d["teu"].sel(corridor=ident))
    raise InputError(f"claims: unknown metric '{metric}'",
                     hint="focus:overland_share, political:<variable> or corridor:<id>:mt|teu")


def evaluate_claims(scenario: Scenario, seed: int = 0, overrides: Mapping | None = None) -> list[dict]:
    """One row per claim: claimed, modelled, verdict and what the data say."""
    path = scenario.path / "claims.csv" if scenario.path else None
    if path is None or not path.is_file():
        raise InputError(f"scenario '{scenario.name}' has no claims.csv")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = [_claim_row(scenario, r, path, i + 2) for i, r in table.iterrows()]   # refuse bad rows before simulating
    ds = simulate(scenario, overrides=overrides, seed=seed) if any(r["metric"] != "data" for r in rows) else None
    for r in rows:
        if r["metric"] == "data":
            r["model"], r["verdict"] = None, verdict(r["claimed"], r["observed"], r["test"], "data")
        else:
            r["model"] = model_value(ds, r["metric"], r["year"])
            r["verdict"] = verdict(r["claimed"], r["model"], r["test"], "model")
    return [{k: r[k] for k in ("id", "claim", "source", "year", "test", "claimed", "unit", "model", "observed",
                               "verdict", "data_says")} for r in rows]


def _claim_row(scenario: Scenario, r, path, row: int) -> dict:
    """One row of claims.csv, checked: numbers, a known test, a known source, the data's figure."""
    try:
        claimed, year = float(r["claimed"]), int(r["year"])
    except ValueError:
        raise InputError("claimed and year must be numbers", file=path, row=row) from None
    test = r.get("test") or "about"
    if test not in TESTS:
        raise InputError(f"test '{test}' is not one of {', '.join(TESTS)}", file=path, row=row, column="test")
    check_source_id(scenario, r["source"], path, row, "source")
    observed = None
    if r["metric"] == "data":
        try:
            observed = float(r.get("observed", ""))
        except ValueError:
            raise InputError("a claim the data answer (metric 'data') needs its figure in 'observed'",
                             file=path, row=row, column="observed") from None
    return {"id": r["id"], "claim": r["claim"], "source": r["source"], "year": year, "test": test,
            "claimed": claimed, "unit": r["unit"], "metric": r["metric"], "observed": observed,
            "data_says": r["data_says"]}
