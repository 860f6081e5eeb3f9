"""Parameter values for a batch of runs: the ``[N, P]`` table and each year's values.

A run's parameters are the dataset's defaults (calibrated where a fit is stored), then fitted and
sampled columns, then overrides; in observed years ``timeline.csv`` sets the conditions of that year
over defaults and fitted coefficients (a user's override or an exploration's sample holds).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from multivector.dataset.scenario import Scenario
from multivector.errors import InputError

Values = dict  # parameter name -> [N] array: one year's parameter values for a batch of runs


def parameter_table(scenario: Scenario, n: int = 1, overrides: Mapping | None = None,
                    samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """An ``[N, P]`` table of parameter values: defaults, then sampled columns, then overrides."""
    if samples is not None:
        n = len(samples)
        scenario.check_names(samples.columns)
    defaults = scenario.defaults()
    columns = {name: i for i, name in enumerate(defaults)}
    values = np.tile(np.fromiter(defaults.values(), dtype=float, count=len(defaults)), (n, 1))   # one block
    if samples is not None:
        for col in samples.columns:
            values[:, columns[col]] = samples[col].to_numpy(dtype=float)
    for name, value in (overrides or {}).items():
        scenario.check_names([name])
        arr = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        if not np.all(np.isfinite(arr)):
            raise InputError(f"parameter '{name}' must be a finite number")
        values[:, columns[name]] = arr
    table = pd.DataFrame(values, columns=list(defaults))
    for name in set(overrides or {}) | set(samples.columns if samples is not None else ()):
        p = scenario.parameters[name]
        arr = table[name].to_numpy()
        outside = ~((arr >= p.min) & (arr <= p.max))
        if outside.any():
            i = int(np.argmax(outside))
            raise InputError(f"{name} = {arr[i]:g} is outside its range [{p.min:g}, {p.max:g}] {p.unit}"
                             + (f" (run {i})" if n > 1 else ""),
                             hint="the range is the dataset's plausible range; to go beyond it, widen min/max "
                                  "in a copy of the dataset ('multivector data copy') and say why")
    return table


def run_values(scenario: Scenario, n: int = 1, overrides: Mapping | None = None,
               samples: pd.DataFrame | None = None, fitted: pd.DataFrame | None = None) -> tuple[pd.DataFrame, set]:
    """The runs' parameter table and the names ``timeline.csv`` must leave alone. A user's overrides and
    an exploration's samples hold in every year. Fitted coefficients (a calibration's trial values, a
    posterior's draws) stand where the dataset's own values would, so an observed year's timeline row
    still holds over them: a premium that began in 2022 is 0 in 2021 whatever the fit says of 2022-2024."""
    sampled = set(samples.columns) if samples is not None else set()
    fixed = set(overrides or {}) | sampled
    if fitted is not None:
        both = sorted(set(fitted.columns) & sampled)
        if both:
            raise InputError(f"{', '.join(both)} both sampled and fitted", hint="give each parameter one role")
        samples = fitted if samples is None else pd.concat([samples.reset_index(drop=True),
                                                            fitted.reset_index(drop=True)], axis=1)
    return parameter_table(scenario, n, overrides, samples), fixed


def table_values(table: pd.DataFrame) -> Values:
    """The parameter table as a dict of ``[N]`` arrays (the form every year's arithmetic uses)."""
    rows = np.ascontiguousarray(table.to_numpy(dtype=float).T)      # one copy; each row a contiguous [N]
    return dict(zip(table.columns, rows))


def timeline_by_year(scenario: Scenario) -> dict[int, list[tuple[str, float]]]:
    """``timeline.csv`` as ``{year: [(parameter, value), ...]}``."""
    by_year: dict[int, list] = {}
    t = scenario.timeline
    for y, name, v in zip(t["year"], t["parameter"], t["value"]):
        by_year.setdefault(int(y), []).append((name, float(v)))
    return by_year


def year_values(timeline: Mapping[int, list], values: Values, year: int, fixed: set[str]) -> Values:
    """Parameter values in one year: observed conditions from the timeline unless set by the user."""
    rows = [(k, v) for k, v in timeline.get(int(year), []) if k not in fixed]
    if not rows:
        return values
    n = len(next(iter(values.values())))
    out = dict(values)
    out.update({k: np.full(n, v) for k, v in rows})
    return out
