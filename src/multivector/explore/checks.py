"""Reality checks and the dead-parameter scan, evaluated on paired runs that share their random streams.

Each direction check takes ``pairs`` futures from a Latin hypercube over the uncertain parameters and
runs every future twice — the checked parameter at the low and at the high end of its range — with the
same run id, so both runs draw the same random numbers. A pair *holds* when the outcome moved as
declared (within a relative tolerance) in every comparison year. Bounds are checked on every run of
the batch. The scan runs every ranged parameter and lever at both ends over a few of the same futures
and reports those that move no reported output at all: a dead parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from multivector.dataset import Scenario
from multivector.dataset.checks import Bound, Checks, Direction
from multivector.dataset.scenario import in_capacity_groups
from multivector.errors import InputError
from multivector.explore.ensemble import make_design
from multivector.model import simulate
from multivector.model.verdict import Scores, definition_ranges, rescorable, rescore

SCAN_FUTURES = 6        # futures per parameter in the dead-parameter scan (stochastic effects need a few)
SCAN_TOLERANCE = 1e-12  # a dead parameter leaves the runs bit-identical; anything above rounding is alive
# futures re-scored for the verdict's own constants: a test may bind rarely (the built-in dataset's
# floor flips no verdict in its first 100 futures, and some in 200)
VERDICT_FUTURES = 200


@dataclass
class CheckResult:
    id: str
    kind: str                      # direction or bound
    statement: str
    holds: float                   # share of pairs (or runs) that hold
    passed: bool
    worst: str                     # the worst case, in words
    loop: str = ""


@dataclass
class CheckReport:
    results: list[CheckResult]
    dead: list[str]
    pairs: int
    runs: int
    seed: int
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results) and not self.dead

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.results])


def outcome_values(ds: xr.Dataset, outcome: str) -> np.ndarray:
    """``[run, year, ...]`` values of an outcome named as in ``dataset.checks.OUTCOME_HELP``."""
    kind, _, rest = outcome.partition(":")
    if outcome == "index":
        return ds[ds.attrs["index"]].values
    if outcome == "consolidated":
        return np.repeat(ds["consolidated"].values.astype(float)[:, None], ds.sizes["year"], axis=1)
    if outcome in ("focus_overland_share", "focus_transit_revenue"):
        return ds[outcome].values
    if outcome == "corridor_share":
        return ds["share"].values
    if outcome == "utilisation":
        return ds["utilisation"].values
    if kind == "utilisation":
        sel = in_capacity_groups(ds["resource_group"].values, rest.split(","))
        return ds["utilisation"].values[:, :, sel]
    if kind == "corridor":
        name, _, unit = rest.partition(":")
        return ds[unit].sel(corridor=name).values
    if kind == "parameter":
        if "coupled" in ds.coords and rest in ds["coupled"].values:
            return ds["coupled_parameter"].sel(coupled=rest).values
        return np.repeat(ds["parameter_value"].sel(parameter=rest).values[:, None], ds.sizes["year"], axis=1)
    return ds["political"].sel(variable=outcome).values


def _futures(scenario: Scenario, n: int, seed: int) -> pd.DataFrame:
    """``n`` futures over the uncertain parameters (a Latin hypercube, deterministic in the seed)."""
    try:
        return make_design(scenario, n, "lhs", seed, posterior=False).samples()
    except InputError:              # nothing uncertain declared: the defaults are the one future
        return pd.DataFrame(index=range(n))


def _paired(scenario: Scenario, futures: pd.DataFrame, parameters: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Each future twice per parameter (low end, high end) with the future's run id: one batch."""
    defaults = scenario.defaults()
    columns = list(dict.fromkeys([*futures.columns, *parameters]))
    blocks, ids = [], []
    n = len(futures)
    for name in parameters:
        p = scenario.parameters[name]
        for value in (p.min, p.max):
            block = pd.DataFrame({c: futures[c].to_numpy() if c in futures else np.full(n, defaults[c])
                                  for c in columns})
            block[name] = value
            blocks.append(block)
            ids.append(np.arange(n))
    return pd.concat(blocks, ignore_index=True), np.concatenate(ids)


class _Runs:
    """Progress in runs: ``done`` of ``total`` planned, advanced within a batch as its years are solved."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int):
        self.callback, self.total, self.done = callback, total, 0
        self._told: tuple[int, int] | None = None

    def _tell(self) -> None:
        if self.callback is not None and self._told != (self.done, self.total):
            self._told = (self.done, self.total)
            self.callback(self.done, self.total)

    def batch(self, runs: int) -> Callable[[int, int], None] | None:
        """The ``simulate`` progress callback of a batch of ``runs`` runs."""
        if self.callback is None:
            return None
        start = self.done

        def years(solved: int, of: int):
            self.done = start + runs * solved // of
            self._tell()

        return years

    def finished(self, runs: int, start: int) -> None:
        """A batch of ``runs`` begun at ``start`` is done (its last year reported or not)."""
        self.done = start + runs
        self._tell()


def _simulate(scenario: Scenario, samples: pd.DataFrame, run_ids: np.ndarray, seed: int,
              progress: _Runs | None = None) -> xr.Dataset:
    import warnings

    from multivector.errors import ConvergenceWarning

    start = progress.done if progress else 0
    each = progress.batch(len(samples)) if progress else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if scenario.politics is None:
            ds = simulate(scenario, samples=samples, run_ids=run_ids, seed=seed, coupled=False, progress=each)
        else:
            ds = simulate(scenario, samples=samples, run_ids=run_ids, seed=seed, progress=each)
    if progress:
        progress.finished(len(samples), start)
    return ds


def _direction(d: Direction, low: np.ndarray, high: np.ndarray, years: np.ndarray, tol: float) -> CheckResult:
    """Compare the low and high runs of one check at its years."""
    at = np.isin(years, d.years)
    lo, hi, compared = low[:, at], high[:, at], years[at]
    delta = hi - lo
    rel = delta / np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 1e-12)
    rel = np.where(np.isfinite(rel), rel, 0.0)
    noise = np.abs(delta) <= d.atol
    wrong = ~noise & ((rel > tol) if d.expect in ("not_up", "down") else (rel < -tol))
    holds = ~wrong.any(axis=1)
    mean = float(np.mean(delta))
    moved = True
    if d.expect == "up":
        moved = mean > 0
    elif d.expect == "down":
        moved = mean < 0
    worst = ""
    if wrong.any():
        bad = np.where(d.expect in ("not_up", "down"), rel, -rel)
        i, j = np.unravel_index(np.argmax(bad), bad.shape)
        worst = f"future {i}, {int(compared[j])}: {lo[i, j]:.4g} -> {hi[i, j]:.4g}"
    elif not moved:
        worst = f"no movement on average (mean change {mean:+.3g})"
    else:
        worst = f"mean change {mean:+.3g}"
    words = {"not_up": "does not raise", "not_down": "does not lower", "up": "raises", "down": "lowers"}[d.expect]
    return CheckResult(d.id, "direction", f"raising {d.parameter} {words} {d.outcome}", float(holds.mean()),
                       bool(holds.all() and moved), worst, d.loop)


def _bound(b: Bound, values: np.ndarray) -> CheckResult:
    v = values.reshape(values.shape[0], -1)
    ok = np.where(np.isfinite(v), (v >= b.min) & (v <= b.max), True)
    holds = ok.all(axis=1)
    worst = ""
    if not holds.all():
        over = np.where(np.isfinite(v), np.maximum(v - b.max, b.min - v), -np.inf)
        i, j = np.unravel_index(np.argmax(over), over.shape)
        worst = f"run {i}: {v[i, j]:.4g}"
    rng = f"[{b.min:g}, {b.max:g}]"
    return CheckResult(b.id, "bound", f"{b.outcome} stays in {rng}", float(holds.mean()), bool(holds.all()), worst)


def _reported(ds: xr.Dataset) -> np.ndarray:
    """Every reported output of each run, flattened: ``[run, values]``."""
    parts = [ds["tonnes"].values, ds["teu"].values, ds["focus_overland_share"].values,
             ds["focus_transit_revenue"].values, ds["flow_mt"].values, ds["transit_time_h"].values]
    if "political" in ds:
        parts += [ds["political"].values, ds["consolidated"].values.astype(float)[:, None]]
    n = ds.sizes["run"]
    return np.concatenate([np.nan_to_num(np.asarray(p, dtype=float)).reshape(n, -1) for p in parts], axis=1)


def dead_parameters(scenario: Scenario, futures: pd.DataFrame, seed: int, tol: float,
                    progress: _Runs | None = None) -> list[str]:
    """Ranged parameters and levers whose low and high ends give identical reported outputs in every future."""
    names = [k for k, p in scenario.parameters.items() if p.max > p.min]
    samples, ids = _paired(scenario, futures, names)
    ds = _simulate(scenario, samples, ids, seed, progress)
    out = _reported(ds)
    n = len(futures)
    dead = []
    for k, name in enumerate(names):
        lo, hi = out[2 * k * n:(2 * k + 1) * n], out[(2 * k + 1) * n:(2 * k + 2) * n]
        scale = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 1e-12)
        if not np.any(np.abs(hi - lo) / scale > tol):
            dead.append(name)
    return dead


def live_definitions(scenario: Scenario, names: list[str], futures: pd.DataFrame, seed: int,
                     progress: _Runs | None = None) -> set[str]:
    """Which of the verdict's own constants (``names``: index weights, threshold, floor, year) move the
    index or the verdict in any of ``futures``. The dynamics do not read them, so the runs are
    simulated once and re-scored at both ends of every range in one pass: a test that binds in one
    future in forty is found without simulating forty futures per constant."""
    pol = scenario.politics
    scores = Scores.from_dataset(_simulate(scenario, futures, np.arange(len(futures)), seed, progress), pol)
    if not rescorable(scores, pol):
        return set()
    ranges = definition_ranges(pol)
    defaults = {name: float(pol.sd.spec.constants[name].value) for name in ranges}
    ends = pd.DataFrame([{**defaults, name: ranges[name][end]} for name in names for end in (0, 1)])
    index, ok = rescore(scores, pol, ends)                               # [2 x names, N, Y], [2 x names, N]
    return {name for k, name in enumerate(names)
            if not np.array_equal(ok[2 * k], ok[2 * k + 1])
            or not np.allclose(index[2 * k], index[2 * k + 1], rtol=SCAN_TOLERANCE, atol=0)}


def run_checks(scenario: Scenario, pairs: int | None = None, seed: int = 0, scan: bool = True,
               progress: Callable[[int, int], None] | None = None) -> CheckReport:
    """Evaluate a scenario's declared reality checks (``checks.toml``) and scan for dead parameters.

    ``progress(done, total)`` counts runs simulated of those planned, advancing as each batch's years
    are solved; the total grows when the scan must re-score the verdict's own constants.
    """
    checks: Checks | None = scenario.checks
    if checks is None:
        raise InputError(f"scenario '{scenario.name}' declares no reality checks",
                         hint="add checks.toml to the dataset folder (see docs/data-format.md)")
    pairs = checks.pairs if pairs is None else int(pairs)
    if pairs < 1:
        raise InputError("--pairs must be at least 1")
    futures = _futures(scenario, pairs, seed)
    results, runs = [], 0
    directions = list(checks.directions)
    params = list(dict.fromkeys(d.parameter for d in directions))
    scan_futures = futures.iloc[:min(SCAN_FUTURES, pairs)].reset_index(drop=True)
    ranged = sum(p.max > p.min for p in scenario.parameters.values())
    planned = (2 * len(params) * pairs if directions else pairs if checks.bounds else 0) \
        + (2 * len(scan_futures) * ranged if scan else 0)
    tracker = _Runs(progress, planned)
    if directions:
        samples, ids = _paired(scenario, futures, params)
        ds = _simulate(scenario, samples, ids, seed, tracker)
        runs += len(samples)
        years = ds["year"].values
        for d in directions:
            k = params.index(d.parameter)
            values = outcome_values(ds, d.outcome)
            low, high = values[2 * k * pairs:(2 * k + 1) * pairs], values[(2 * k + 1) * pairs:(2 * k + 2) * pairs]
            results.append(_direction(d, low, high, years, checks.tolerance))
        for b in checks.bounds:
            results.append(_bound(b, outcome_values(ds, b.outcome)))
    elif checks.bounds:
        ds = _simulate(scenario, futures, np.arange(len(futures)), seed, tracker)
        runs += len(futures)
        results += [_bound(b, outcome_values(ds, b.outcome)) for b in checks.bounds]
    dead = []
    if scan:
        dead = dead_parameters(scenario, scan_futures, seed, SCAN_TOLERANCE, tracker)
        if scenario.politics is not None:
            verdict = [name for name in dead if name in definition_ranges(scenario.politics)]
            if verdict:
                wide = futures if len(futures) >= VERDICT_FUTURES else _futures(scenario, VERDICT_FUTURES, seed)
                tracker.total += len(wide)
                live = live_definitions(scenario, verdict, wide, seed, tracker)
                dead = [n for n in dead if n not in live]
                runs += len(wide)
        runs += 2 * len(scan_futures) * ranged
    return CheckReport(results, dead, pairs, runs, seed)
