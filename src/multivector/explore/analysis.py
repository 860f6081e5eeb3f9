"""Questions asked of an exploration in the store: which parameters matter (SALib), which regions
make the shift consolidate (PRIM), and which policies hold up across the uncertainty (regret, Pareto).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from multivector.errors import InputError
from multivector.explore.store import Store


def outcome_vector(store: Store, run_id: str, outcome: str | None, year: int | None) -> tuple[pd.Series, int | None]:
    """One value per run (indexed by run) of a run-level or yearly outcome; ``None`` is the headline
    index's final value."""
    run_level = store.run_outcomes(run_id)
    outcome = outcome or store.headline(run_id)
    if outcome in run_level.columns and outcome != "converged":
        return run_level[outcome].astype(float), None
    yearly = store.outcomes(run_id)
    if outcome not in yearly.columns or outcome in ("run", "year"):
        choices = sorted(set(yearly.columns) - {"run", "year"}) + [c for c in run_level.columns if c != "converged"]
        close = difflib.get_close_matches(outcome, choices, n=4)
        raise InputError(f"unknown outcome '{outcome}'",
                         hint=("did you mean " + ", ".join(close) + "?") if close else "outcomes: " + ", ".join(choices))
    years = sorted(yearly["year"].unique())
    year = int(years[-1]) if year is None else int(year)
    if year not in years:
        raise InputError(f"no outcomes for {year}", hint=f"years {years[0]}–{years[-1]}")
    sel = yearly[yearly["year"] == year].set_index("run")[outcome]
    return sel.astype(float), year


# ------------------------------------------------------------------------------------------------
# sensitivity

def sensitivity(store: Store, run_id: str, outcome: str, year: int | None = None) -> pd.DataFrame:
    """Sobol first/total-order indices (Saltelli design), Morris mu*/sigma (Morris design), or
    RBD-FAST first-order indices (Latin hypercube)."""
    meta = store.get_run(run_id)
    design = meta["design"]
    if design.get("policies"):
        raise InputError("sensitivity needs a run without fixed policies (--levers FILE)",
                         hint="sample the levers instead: --levers all")
    problem = {"num_vars": len(design["names"]), "names": design["names"], "bounds": design["bounds"]}
    y, year = outcome_vector(store, run_id, outcome, year)
    if len(y) != meta["n"]:
        raise InputError(f"run {run_id} is not finished ({len(y)} of {meta['n']} runs)",
                         hint=f"multivector explore --resume {run_id}")
    y = y.sort_index().to_numpy()
    if not np.all(np.isfinite(y)):
        raise InputError(f"outcome '{outcome}' has non-finite values in {int((~np.isfinite(y)).sum())} runs")
    if meta["sampler"] == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, y, calc_second_order=False, seed=int(meta["seed"]))
        frame = pd.DataFrame({"S1": res["S1"], "S1_conf": res["S1_conf"], "ST": res["ST"],
                              "ST_conf": res["ST_conf"]}, index=design["names"])
        frame = frame.sort_values("ST", ascending=False)
    elif meta["sampler"] == "morris":
        from SALib.analyze import morris

        x = store.experiments(run_id)[design["names"]].sort_index().to_numpy()
        res = morris.analyze(problem, x, y, num_levels=4, seed=int(meta["seed"]))
        frame = pd.DataFrame({"mu_star": res["mu_star"], "mu_star_conf": res["mu_star_conf"],
                              "sigma": res["sigma"]}, index=design["names"])
        frame = frame.sort_values("mu_star", ascending=False)
    else:
        # RBD-FAST estimates first-order indices from any space-filling sample, so a Latin
        # hypercube exploration gets S1 (with bootstrap intervals) without a second design.
        from SALib.analyze import rbd_fast

        if len(y) < 60:   # its bootstrap divides by zero on very small samples
            raise InputError(f"RBD-FAST indices need at least 60 runs; run {run_id} has {len(y)}",
                             hint="explore more runs, or use --sampler sobol or morris")
        x = store.experiments(run_id)[design["names"]].sort_index().to_numpy()
        res = rbd_fast.analyze(problem, x, y, seed=int(meta["seed"]))
        frame = pd.DataFrame({"S1": res["S1"], "S1_conf": res["S1_conf"]}, index=design["names"])
        frame = frame.sort_values("S1", ascending=False)
    frame.index.name = "parameter"
    frame.attrs.update({"outcome": outcome, "year": year,
                        "method": {"lhs": "rbd_fast"}.get(meta["sampler"], meta["sampler"])})
    return frame


# ------------------------------------------------------------------------------------------------
# PRIM

def _quantile(values: np.ndarray, q: float) -> float:
    """The peeling quantile: the midpoint between the two order statistics around ``q``, moving past
    ties so that a peel always removes something (as in sdtoolkit)."""
    data = np.sort(values)
    i = (len(data) - 1) * q
    lo, hi = int(math.floor(i)), int(math.ceil(i))
    if q > 0.5:
        while data[lo] == data[hi] and lo > 0:
            lo -= 1
    else:
        while data[lo] == data[hi] and hi < len(data) - 1:
            hi += 1
    return float((data[lo] + data[hi]) / 2)


@dataclass
class PrimResult:
    trajectory: pd.DataFrame            # step, coverage, density, mass, n_restricted
    boxes: list[pd.DataFrame]           # limits (min, max) per parameter at each step
    chosen: int                         # index of the chosen box on the trajectory
    names: list[str]
    units: dict = field(default_factory=dict)

    @property
    def box(self) -> pd.DataFrame:
        """The chosen box's restricted limits, with the full range for comparison."""
        limits = self.boxes[self.chosen]
        full = self.boxes[0]
        restricted = (limits["min"] > full["min"]) | (limits["max"] < full["max"])
        out = limits[restricted].copy()
        out["range_min"], out["range_max"] = full["min"][restricted], full["max"][restricted]
        out["unit"] = [self.units.get(n, "") for n in out.index]
        return out

    @property
    def stats(self) -> dict:
        row = self.trajectory.iloc[self.chosen]
        return {k: float(row[k]) for k in ("coverage", "density", "mass")} | {"step": int(self.chosen)}


def prim(x: pd.DataFrame, y: np.ndarray, peel_alpha: float = 0.05, mass_min: float = 0.05,
         threshold: float = 0.8) -> PrimResult:
    """Patient rule induction (peeling): a box in parameter space where ``y`` (0/1) is concentrated.

    Each step removes the ``peel_alpha`` tail of one parameter (lower or upper) that most raises the
    share of cases of interest per point removed (the 'lenient1' objective), until the box would hold
    less than ``mass_min`` of the points or no peel helps. The chosen box is the one of highest
    coverage among those with density at least ``threshold`` (or the last one).
    """
    y = np.asarray(y, dtype=float)
    if set(np.unique(y)) - {0.0, 1.0}:
        raise InputError("PRIM needs a yes/no outcome (0/1)", hint="use --threshold on a numeric outcome")
    if y.sum() == 0:
        raise InputError("no run is a case of interest: PRIM has nothing to find")
    values = x.to_numpy(dtype=float)
    n, names = len(y), list(x.columns)
    total = y.sum()
    inside = np.ones(n, dtype=bool)
    limits = pd.DataFrame({"min": values.min(axis=0), "max": values.max(axis=0)}, index=names)
    boxes, rows = [limits.copy()], []

    def record(mask, lim):
        k = mask.sum()
        restricted = int(((lim["min"] > boxes[0]["min"]) | (lim["max"] < boxes[0]["max"])).sum())
        rows.append({"coverage": y[mask].sum() / total, "density": y[mask].mean() if k else 0.0,
                     "mass": k / n, "n_restricted": restricted})

    record(inside, limits)
    while True:
        yi = y[inside]
        mean_old, n_old = yi.mean(), inside.sum()
        best = None
        for j, name in enumerate(names):
            xj = values[inside, j]
            for side, q in (("upper", 1 - peel_alpha), ("lower", peel_alpha)):
                cut = _quantile(xj, q)
                keep = xj <= cut if side == "upper" else xj >= cut
                n_new = keep.sum()
                mean_new = yi[keep].mean() if n_new else 0.0
                obj = 0.0
                if mean_new != mean_old and n_new != n_old:
                    obj = (mean_new - mean_old) / abs(n_old - n_new)
                lim = limits.copy()
                lim.loc[name, "max" if side == "upper" else "min"] = cut
                non_restricted = len(names) - int(((lim["min"] > boxes[0]["min"]) |
                                                   (lim["max"] < boxes[0]["max"])).sum())
                key = (obj, non_restricted)
                if best is None or key > best[0]:
                    best = (key, j, keep, lim)
        (obj, _), j, keep, lim = best
        new_inside = inside.copy()
        new_inside[np.flatnonzero(inside)] = keep
        if obj <= 0 or new_inside.sum() / n < mass_min or new_inside.sum() >= n_old:
            break
        inside, limits = new_inside, lim
        boxes.append(limits.copy())
        record(inside, limits)
    trajectory = pd.DataFrame(rows)
    trajectory.index.name = "step"
    ok = trajectory.index[trajectory["density"] >= threshold]
    chosen = int(trajectory.loc[ok, "coverage"].idxmax()) if len(ok) else len(trajectory) - 1
    return PrimResult(trajectory=trajectory, boxes=boxes, chosen=chosen, names=names)


def discover(store: Store, run_id: str, outcome: str = "consolidated", year: int | None = None,
             threshold: float | None = None, below: bool = False, peel_alpha: float = 0.05,
             mass_min: float = 0.05, density: float = 0.8, units: dict | None = None) -> PrimResult:
    """PRIM on an exploration: which regions of the sampled parameters give the outcome."""
    y, year = outcome_vector(store, run_id, outcome, year)
    if outcome != "consolidated" or threshold is not None:
        if threshold is None:
            raise InputError(f"'{outcome}' is numeric: give --threshold to turn it into yes/no")
        y = (y <= threshold) if below else (y >= threshold)
    x = store.experiments(run_id)
    meta = store.get_run(run_id)
    x = x.loc[y.index, meta["design"]["names"]]
    res = prim(x, y.to_numpy().astype(float), peel_alpha=peel_alpha, mass_min=mass_min, threshold=density)
    res.units = units or {}
    return res


# ------------------------------------------------------------------------------------------------
# strategies

def strategy_table(store: Store, run_id: str, outcome: str | None = None) -> pd.DataFrame:
    """Each policy over the shared ensemble: probability of consolidation, expected and worst outcome,
    regret (shortfall from the best policy in the same future), and whether it is on the Pareto front."""
    meta = store.get_run(run_id)
    policies = meta["design"].get("policies")
    if not policies:
        raise InputError(f"run {run_id} has no policies", hint="run 'multivector strategies --levers FILE'")
    exp = store.experiments(run_id)
    res = store.run_outcomes(run_id)
    outcome = outcome or store.headline(run_id)
    value, _ = outcome_vector(store, run_id, outcome, None)
    frame = pd.DataFrame({"policy": exp["policy"], "consolidated": res["consolidated"].astype(float),
                          "value": value})
    if "consolidated_over_definitions" in res:
        frame["over_definitions"] = res["consolidated_over_definitions"].to_numpy(dtype=float)
    frame["future"] = frame.groupby("policy").cumcount()
    wide = frame.pivot(index="future", columns="policy", values="value")
    regret = wide.max(axis=1).to_numpy()[:, None] - wide.to_numpy()
    order = [p["policy"] for p in policies]
    summary = pd.DataFrame({
        "p_consolidated": frame.groupby("policy")["consolidated"].mean(),
        "expected": wide.mean(),
        "worst": wide.min(),
        "p05": wide.quantile(0.05),
        "max_regret": pd.Series(regret.max(axis=0), index=wide.columns),
        "mean_regret": pd.Series(regret.mean(axis=0), index=wide.columns),
    }).reindex(order)
    if "over_definitions" in frame:      # beside the objectives, not one of them: the test's own robustness
        summary.insert(1, "p_over_definitions", frame.groupby("policy")["over_definitions"].mean().reindex(order))
    objectives = summary[["p_consolidated", "expected", "worst"]].to_numpy()
    objectives = np.column_stack([objectives, -summary["max_regret"].to_numpy()])
    summary["pareto"] = [not any(np.all(o >= objectives[i]) and np.any(o > objectives[i])
                                 for k, o in enumerate(objectives) if k != i) for i in range(len(objectives))]
    summary.index.name = "policy"
    summary.attrs["outcome"] = outcome
    return summary


# ------------------------------------------------------------------------------------------------
# a group's share of the variance

def group_share(store: Store, run_id: str, group: list[str], outcomes: list[str]) -> pd.DataFrame:
    """How much of each outcome's variance a group of parameters carries in a Sobol exploration: the sum
    of their first-order indices (what they explain alone) and of their total indices (with every
    interaction they take part in), beside the same sums over all sampled parameters."""
    meta = store.get_run(run_id)
    if meta["sampler"] != "sobol":
        raise InputError(f"run {run_id} is a {meta['sampler']} exploration; a share of variance needs Sobol indices",
                         hint="multivector explore SCENARIO --sampler sobol --n 64")
    names = meta["design"]["names"]
    missing = [p for p in group if p not in names]
    if missing:
        raise InputError(f"run {run_id} did not sample {', '.join(missing)}", hint="explore over them too")
    rows = []
    for outcome in outcomes:
        frame = sensitivity(store, run_id, outcome)
        rows.append({"outcome": outcome, "group_S1": float(frame.loc[group, "S1"].clip(lower=0).sum()),
                     "group_ST": float(frame.loc[group, "ST"].clip(lower=0).sum()),
                     "all_S1": float(frame["S1"].clip(lower=0).sum()), "all_ST": float(frame["ST"].clip(lower=0).sum()),
                     "top": ", ".join(frame.index[:3])})
    out = pd.DataFrame(rows).set_index("outcome")
    out.attrs.update({"group": list(group), "parameters": len(names), "runs": int(meta["n"])})
    return out
