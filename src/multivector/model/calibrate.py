"""Fit free coefficients to observed volumes and transit times (up to 2024) by batched least squares.

The free coefficients and their bounds are named in ``model.toml`` (``[calibration] free = [...]``;
bounds are the parameters' ranges). The residual of each target is ``log(modelled / observed) / error``,
``error`` the observation's stated relative error (``targets.csv``, default 0.1): a 10 % miss weighs the
same on a 60 Mt pipeline and a 50,000 TEU port, and a published time range (±15 %) weighs less than a
port's count. A ceiling (``bound`` = upper: "test trains at most") misses only from above
(:func:`bounded`). The Jacobian is one batched ``simulate`` call: the base point and one perturbed run per
coefficient, side by side.

Route sets are enumerated at the dataset's default costs, which include the stored fit, so a new fit can
change which routes are offered. ``calibrate`` therefore refits on the route set of its own answer until
that set no longer changes (at most ``ROUTE_ROUNDS`` fits): the stored table is then what ``evaluate``
gives for the stored values.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from multivector.dataset import Scenario
from multivector.dataset.scenario import LAST_OBSERVED_YEAR, UPPER_BOUND
from multivector.errors import ConvergenceWarning, InputError
from multivector.io import atomic_write
from multivector.model.compiled import compiled, simulate


def metric_values(scenario: Scenario, ds: xr.Dataset, metric: str, year: int) -> np.ndarray:
    """Modelled value of a target metric for every run: ``[N]``."""
    parts = metric.split(":")
    if parts[0] == "gateway" and len(parts) in (3, 4):
        return directional_metric(ds.sel(year=year), metric, "gateway", *parts[1:])
    if parts[0] == "corridor" and len(parts) == 4 and parts[2] == "time_h":
        return commodity_time(ds.sel(year=year), metric, parts[1], parts[3])
    if parts[0] == "corridor" and len(parts) == 4:
        return directional_metric(ds.sel(year=year), metric, "corridor", *parts[1:])
    if len(parts) != 3:
        raise InputError(f"metric '{metric}' is not kind:id:unit",
                         hint="e.g. corridor:NAME:tonnes, link:LINK_ID:mt, transfer:NODE_ID:teu")
    kind, ident, unit = parts
    d = ds.sel(year=year)
    if kind == "corridor":
        if ident not in d["corridor"].values:
            raise InputError(f"metric '{metric}': unknown corridor '{ident}'")
        if unit == "time_h":
            return d["transit_time_h"].sel(corridor=ident).values
        if unit not in ("teu", "tonnes"):
            raise InputError(f"metric '{metric}': corridor unit must be teu, tonnes or time_h")
        return d[unit].sel(corridor=ident).values
    if kind in ("link", "transfer"):
        sel = (d["resource_link"].values == ident) & (d["resource_kind"].values == kind)
        if not sel.any():
            raise InputError(f"metric '{metric}': no {kind} '{ident}' in the network")
        if unit == "mt":
            return d["flow_mt"].values[:, sel].sum(axis=1)
        if unit == "teu":
            net = compiled(scenario).network
            if "route_flow" not in d:
                raise InputError("TEU metrics need route flows: simulate with keep_routes=True")
            teu_routes = np.array([scenario.commodities[net.od_commodity[o]].unit.upper() == "TEU"
                                   for o in net.route_od])
            # routes that pass the link (either direction) or the transfer, each counted once
            through = np.asarray(net.route_resources()[:, np.flatnonzero(sel)].sum(axis=1)).ravel() > 0
            return d["route_flow"].values[:, teu_routes & through].sum(axis=1)
        raise InputError(f"metric '{metric}': unit must be mt or teu")
    raise InputError(f"metric '{metric}': kind must be corridor, link, transfer or gateway")


def commodity_time(d: xr.Dataset, metric: str, corridor: str, commodity: str) -> np.ndarray:
    """``corridor:NAME:time_h:COMMODITY``: the mean time of one commodity's freight on a corridor in one
    year, ``[N]`` (a published transit time is a container train's; the corridor's mean weighs in bulk)."""
    if corridor not in d["corridor"].values:
        raise InputError(f"metric '{metric}': unknown corridor '{corridor}'")
    if commodity not in d["commodity"].values:
        raise InputError(f"metric '{metric}': unknown commodity '{commodity}'",
                         hint="one of " + ", ".join(map(str, d["commodity"].values)))
    return d["transit_time_h_by_commodity"].sel(corridor=corridor, commodity=commodity).values


def directional_metric(d: xr.Dataset, metric: str, kind: str, ident: str, unit: str,
                       direction: str | None = None) -> np.ndarray:
    """``gateway:NODE:tonnes|teu[:DIRECTION]`` (what crosses a gateway node; both ways without a
    direction) or ``corridor:NAME:tonnes|teu:DIRECTION`` (a corridor's freight of the ODs that go that
    way) in one year, ``[N]``."""
    if ident not in d[kind].values:
        raise InputError(f"metric '{metric}': no {kind} '{ident}' in the network")
    if unit not in ("tonnes", "teu"):
        raise InputError(f"metric '{metric}': a {kind}'s freight is in tonnes or teu")
    da = d[f"gateway_{unit}" if kind == "gateway" else f"{unit}_by_direction"].sel({kind: ident})
    if direction is None:
        return da.sum("direction").values
    if direction not in d["direction"].values:
        raise InputError(f"metric '{metric}': direction must be one of " + ", ".join(map(str, d["direction"].values)))
    return da.sel(direction=direction).values


@dataclass
class CalibrationResult:
    values: dict[str, float]
    table: pd.DataFrame          # target, metric, year, observed, modelled, unit, source, error, rel_error,
    #                              bound, within_error
    cost: float
    success: bool
    message: str
    rounds: int = 1              # fits needed for a stable route set
    starts: int = 1              # points the fit began from (the best one kept)


#: The relative error of an observation whose row in targets.csv states none.
DEFAULT_ERROR = 0.10


def _targets(scenario: Scenario, until: int | None = None) -> pd.DataFrame:
    """The targets up to ``until`` (default, and at most, ``LAST_OBSERVED_YEAR``)."""
    last = LAST_OBSERVED_YEAR if until is None else min(int(until), LAST_OBSERVED_YEAR)
    t = scenario.targets.copy()
    t["year"] = t["year"].astype(int)
    t["error"] = t["error"].fillna(DEFAULT_ERROR) if "error" in t.columns else DEFAULT_ERROR
    t["upper"] = t["bound"].eq(UPPER_BOUND) if "bound" in t.columns else False
    t = t[t["year"] <= last]
    if t.empty:
        raise InputError(f"targets.csv has no observation up to {last} to calibrate against",
                         hint=f"its years: {', '.join(map(str, sorted(set(scenario.targets['year'].astype(int)))))}")
    return t


def bounded(model: np.ndarray, targets: pd.DataFrame) -> np.ndarray:
    """``model`` (``[..., targets]``) as the targets read it: under an upper bound (``bound`` = upper in
    targets.csv, an observation that says "at most this much") a value counts as the bound itself, so it
    misses by nothing; above it, by its distance."""
    observed = targets["observed"].to_numpy(dtype=float)
    return np.where(targets["upper"].to_numpy(dtype=bool), np.maximum(model, observed), model)


def within_error(modelled: np.ndarray, observed: np.ndarray, error: np.ndarray, upper) -> np.ndarray:
    """Each fit inside its observation's stated error, ``|log(modelled / observed)| <= error``; a ceiling
    (``upper``) only from above."""
    miss = np.log(np.maximum(modelled, 1e-12) / observed)
    return np.where(upper, miss, np.abs(miss)) <= error


def evaluate(scenario: Scenario, values: pd.DataFrame, until: int | None = None,
             converged: list | None = None) -> np.ndarray:
    """Modelled target values (those up to ``until``) for each row of ``values``: ``[N, targets]``.

    A fit tries points where the equilibrium may not settle; their warnings are not printed one by one:
    pass a list as ``converged`` to receive each row's flag (every year converged) instead."""
    t = _targets(scenario, until)
    years = sorted(t["year"].unique())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ds = simulate(scenario, fitted=values, years=years, keep_routes=True, tol=1e-5, max_iter=3000,
                      coupled=False)
    if converged is not None:
        converged.extend(ds["converged"].values.all(axis=1).tolist())
    return np.stack([metric_values(scenario, ds, m, y) for m, y in zip(t["metric"], t["year"])], axis=1)


#: Fits on successively updated route sets before giving up on a stable one (Kazakhstan needs three).
ROUTE_ROUNDS = 4


def fit_scale(scenario: Scenario, free: list[str]):
    """Where the free coefficients are fitted or sampled: on a log scale when their range is positive
    (logit scales and factors span decades), else as they are. Returns the bounds on that scale, the
    maps to and from it, and which coefficients are on the log scale."""
    lo = np.array([scenario.parameters[p].min for p in free], dtype=float)
    hi = np.array([scenario.parameters[p].max for p in free], dtype=float)
    positive = lo > 0
    to_x = lambda v: np.where(positive, np.log(np.maximum(v, 1e-300)), v)
    from_x = lambda x: np.where(positive, np.exp(x), x)
    return to_x(lo), to_x(hi), to_x, from_x, positive


def with_fit(scenario: Scenario, values: dict[str, float]) -> Scenario:
    """The scenario with ``values`` as its stored fit (so its defaults, and its route set, follow them)."""
    return dataclasses.replace(scenario, calibration={**scenario.calibration, "values": dict(values)},
                               _fingerprint=None)


def _same_routes(a: Scenario, b: Scenario) -> bool:
    ra, rb = compiled(a).network.route_edges, compiled(b).network.route_edges
    return ra.shape == rb.shape and (ra != rb).nnz == 0


def start_points(scenario: Scenario, free: list[str], starts: int, seed: int = 0) -> list[dict[str, float]]:
    """Where the fits begin: the dataset's own values first, then ``starts - 1`` points of a Latin
    hypercube over the free coefficients' ranges (on the fit's scale), drawn from ``seed``."""
    defaults = scenario.defaults()
    points = [{p: float(defaults[p]) for p in free}]
    if starts > 1:
        from scipy.stats import qmc

        lo, hi, _, from_x, _ = fit_scale(scenario, free)
        for row in qmc.LatinHypercube(d=len(free), seed=seed).random(starts - 1):
            points.append(dict(zip(free, (float(v) for v in from_x(lo + (hi - lo) * row)))))
    return points


def calibrate(scenario: Scenario, free: list[str] | None = None, max_nfev: int = 40,
              progress: Callable[[int, int], None] | None = None, until: int | None = None,
              starts: int = 1, seed: int = 0) -> CalibrationResult:
    """Fit the free coefficients to the targets up to ``until`` (default: every target, which ends at
    ``LAST_OBSERVED_YEAR``); return the values and the observed-vs-modelled table.

    The least-squares fit is local, and the targets leave several valleys (a premium against a value
    of time, a demand factor against a logit scale), so ``starts`` > 1 fits from that many points
    (:func:`start_points`) and keeps the one with the lowest cost once settled: each answer is refitted
    on its own route set until that set holds (see the module docstring), which can raise its cost, so
    every start whose fit is cheaper than the best settled answer is settled too. ``rounds`` in the
    result says how many fits the kept answer's settling took, ``success`` is false if its set still
    moved after ``ROUTE_ROUNDS``. ``progress(done, total)`` counts batched evaluations (each one
    ``simulate`` call: the point and its finite-difference neighbours): at most ``max_nfev`` a fit and
    one for the final table; a fit that converges early jumps to the end of its share, and a settling
    refit beyond the one budgeted extends the total.
    """
    free = list(free or scenario.model.get("calibration", {}).get("free", []))
    if not free:
        raise InputError("no free coefficients to fit",
                         hint="list them in model.toml: [model.calibration] free = [...]")
    if starts < 1:
        raise InputError(f"starts must be 1 or more, not {starts}")
    scenario.check_names(free)
    total = (starts + ROUTE_ROUNDS - 1) * max_nfev + 1    # one settling refit expected; more extend it
    fits = itertools.count()     # the fits made so far, each given its share of the progress bar

    def fit_from(s: Scenario) -> CalibrationResult:
        nonlocal total
        offset = next(fits) * max_nfev
        total = max(total, offset + max_nfev + 1)
        step = (lambda done, _t, o=offset: progress(min(o + done, total - 1), total)) if progress else None
        return _fit(s, free, max_nfev, step, until)

    def settle(result: CalibrationResult, s: Scenario):
        """Refit on the answer's own route set until that set holds."""
        for rounds in range(1, ROUTE_ROUNDS + 1):
            if rounds > 1:
                result = fit_from(s)
            refitted = with_fit(s, result.values)
            stable = _same_routes(s, refitted)
            s = refitted
            if stable:
                break
        return result, rounds, stable

    tried = []
    for i, point in enumerate(start_points(scenario, free, starts, seed)):
        begun = with_fit(scenario, point) if i else scenario      # the first start: the dataset as it stands
        tried.append((fit_from(begun), begun))
    # a fit's cost is on its start's route set, and settling on its own can raise it: follow each start
    # that could still beat the best settled answer, cheapest first
    best = None
    for result, begun in sorted(tried, key=lambda t: t[0].cost):
        if best is not None and result.cost >= best[0].cost:
            break
        settled = settle(result, begun)
        if best is None or settled[0].cost < best[0].cost:
            best = settled
    result, rounds, stable = best
    if progress:
        progress(total, total)
    result.rounds = rounds
    result.starts = starts
    if not stable:
        result.success = False
        result.message = f"the route set still changed after {ROUTE_ROUNDS} fits; " + result.message
    return result


def _fit(scenario: Scenario, free: list[str], max_nfev: int,
         progress: Callable[[int, int], None] | None, until: int | None) -> CalibrationResult:
    """One least-squares fit on the scenario's route set."""
    t = _targets(scenario, until)
    observed = t["observed"].to_numpy(dtype=float)
    error = t["error"].to_numpy(dtype=float)
    defaults = scenario.defaults()
    xlo, xhi, to_x, from_x, _ = fit_scale(scenario, free)
    x0 = np.clip(to_x(np.array([defaults[p] for p in free], dtype=float)),
                 xlo + 1e-9 * (xhi - xlo), xhi - 1e-9 * (xhi - xlo))
    cache = {}
    total, done = max_nfev + 1, [0]

    def batch(x):
        key = tuple(np.round(x, 12))
        if key not in cache:
            step = 1e-4 * np.maximum(1.0, np.abs(x))
            step = np.where(x + step > xhi, -step, step)   # a coefficient at its upper bound steps down
            pts = [x] + [x + step * np.eye(len(x))[i] for i in range(len(x))]
            vals = pd.DataFrame([from_x(p) for p in pts], columns=free)
            model = evaluate(scenario, vals, until)
            r = np.log(np.maximum(bounded(model, t), 1e-12) / observed) / error
            jac = (r[1:] - r[0]) / step[:, None]
            cache.clear()
            cache[key] = (r[0], jac.T)
            if done[0] < total - 1:
                done[0] += 1
                if progress:
                    progress(done[0], total)
        return cache[key]

    from scipy.optimize import least_squares   # imported here: `run` never needs it

    fit = least_squares(lambda x: batch(x)[0], x0, jac=lambda x: batch(x)[1], bounds=(xlo, xhi),
                        max_nfev=max_nfev, x_scale="jac")
    values = dict(zip(free, (float(v) for v in from_x(fit.x))))
    settled = []
    modelled = evaluate(scenario, pd.DataFrame([values]), until, settled)[0]
    table = pd.DataFrame({"target": t["id"].to_numpy(), "metric": t["metric"].to_numpy(),
                          "year": t["year"].to_numpy(), "observed": observed, "modelled": modelled,
                          "unit": t["unit"].to_numpy(), "source": t["source"].to_numpy(), "error": error})
    table["rel_error"] = table["modelled"] / table["observed"] - 1.0
    table["bound"] = np.where(t["upper"].to_numpy(dtype=bool), UPPER_BOUND, "")
    table["within_error"] = within_error(modelled, observed, error, t["upper"].to_numpy(dtype=bool))
    message = str(fit.message)
    if not settled[0]:
        message = "the equilibrium did not settle at the fitted values in every year; " + message
    return CalibrationResult(values=values, table=table, cost=float(fit.cost),
                             success=bool(fit.success) and settled[0], message=message)


def write_calibration(scenario: Scenario, result: CalibrationResult, folder: Path) -> Path:
    """Store the fit beside the dataset (``calibration.toml``), written atomically."""
    import tomli_w

    folder = Path(folder)
    doc = {
        "note": ("Free coefficients fitted by multivector calibrate to the observations in targets.csv "
                 "(up to 2024 only), minimising the sum of squared log errors, each divided by the "
                 "observation's stated relative error."),
        "fitted_on": _dt.date.today().isoformat(),
        "starts": int(result.starts),
        "values": {k: float(v) for k, v in result.values.items()},
        "fit": [{"target": r.target, "metric": r.metric, "year": int(r.year),
                 "observed": float(r.observed), "modelled": float(r.modelled),
                 "rel_error": float(r.rel_error), "error": float(r.error), "source": r.source,
                 **({"bound": r.bound} if r.bound else {})}
                for r in result.table.itertuples()],
    }
    path = folder / "calibration.toml"
    return atomic_write(path, tomli_w.dumps(doc))

