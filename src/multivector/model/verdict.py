"""The verdict: the index's components, the consolidation test, and how the test fares when its own
definition (the index's weights, the margin, the floor, the year) is drawn over its declared ranges.

With a declared counterfactual the test is relative — the run's index minus the counterfactual's in
the same future — so the threshold and floor are margins; without one they are levels of the index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from multivector.model.randomness import latin_hypercube


DEFINITION_DRAWS = 200


def component_values(ds: xr.Dataset, pol) -> np.ndarray:
    """The index's declared components, unweighted: ``[run, year, component]``."""
    names = list(ds["variable"].values)
    return ds["political"].values[:, :, [names.index(v) for v in pol.components]]


def counterfactual_values(ds: xr.Dataset, pol) -> np.ndarray | None:
    """The counterfactual's components, unweighted (``[run, year, component]``), from the weighted
    parts kept in ``counterfactual_component`` and each run's weights; None without a counterfactual."""
    if "counterfactual_component" not in ds:
        return None
    names = list(ds["parameter"].values)
    w = ds["parameter_value"].values[:, [names.index(name) for name in pol.components.values()]]
    return ds["counterfactual_component"].values / (w / w.sum(axis=1, keepdims=True))[:, None, :]


def index_components(political: np.ndarray, names: list, table: pd.DataFrame, pol) -> np.ndarray:
    """Each component's share of the index, ``[run, year, component]``, from the recorded trajectory
    (``political`` ``[run, year, variable]``, its variables ``names``): weight × value / Σ weights
    (``[outcomes] components``); they sum to the index when the index is that weighted mean."""
    weights = np.stack([table[w].to_numpy() for w in pol.components.values()], axis=-1)        # [N, K]
    values = political[:, :, [names.index(v) for v in pol.components]]                          # [N, Y, K]
    return values * (weights / weights.sum(axis=1, keepdims=True))[:, None, :]


def passes(score: np.ndarray, years: np.ndarray, threshold, floor, when) -> np.ndarray:
    """``[..., run]`` yes/no: ``score`` (``[..., run, year]``) ≥ threshold in year ``when`` and ≥ floor
    in every year from it on; a run whose years miss ``when`` fails. Arguments broadcast over runs."""
    when = np.round(np.asarray(when, dtype=float))[..., None]           # a sampled year: nearest whole year
    mask = years == when
    at = np.where(mask.any(axis=-1), np.where(mask, score, 0.0).sum(axis=-1), -np.inf)
    after = np.where(years >= when, score, np.inf).min(axis=-1)
    return (at >= threshold) & (after >= floor)


def consolidated(ds: xr.Dataset, table: pd.DataFrame, pol) -> xr.DataArray:
    """The yes/no test: index ≥ threshold in the consolidation year and never below the floor after.
    With a counterfactual in ``ds``, the index's gain over it is tested (threshold and floor are margins)."""
    score = ds[pol.index].values
    if "counterfactual_index" in ds:
        score = score - ds["counterfactual_index"].values
    c = pol.consolidation
    ok = passes(score, ds["year"].values, table[c["threshold"]].to_numpy(), table[c["floor"]].to_numpy(),
                table[c["year"]].to_numpy())
    return xr.DataArray(ok, dims="run")


def definition_ranges(pol) -> dict[str, tuple[float, float]]:
    """The constants that define the verdict — the index's weights, threshold, floor and year — with
    their declared ranges (a constant declared without a range stays at its value)."""
    names = [*pol.components.values(), *(pol.consolidation[k] for k in ("threshold", "floor", "year"))]
    return {name: pol.sd.spec.constants[name].bounds for name in dict.fromkeys(names)}


def rescore(ds: xr.Dataset, pol, definition: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The index ``[D, N, Y]`` and the verdict ``[D, N]`` of the runs of ``ds`` under each row of
    ``definition`` (the verdict's constants; a constant it lacks keeps its declared value), from
    their recorded components (and the counterfactual's, when the test is relative)."""
    spec = pol.sd.spec.constants
    column = lambda name: definition[name].to_numpy() if name in definition else np.full(len(definition),
                                                                                          float(spec[name].value))
    w = np.stack([column(name) for name in pol.components.values()], axis=-1)
    w = w / w.sum(axis=1, keepdims=True)                                                        # [D, K]
    index = np.einsum("nyk,dk->dny", component_values(ds, pol), w)
    reference = counterfactual_values(ds, pol)
    score = index if reference is None else index - np.einsum("nyk,dk->dny", reference, w)
    c = pol.consolidation
    ok = passes(score, ds["year"].values, column(c["threshold"])[:, None], column(c["floor"])[:, None],
                column(c["year"])[:, None])
    return index, ok


def over_definition(ds: xr.Dataset, pol, draws: int = DEFINITION_DRAWS, seed: int = 0) -> xr.DataArray | None:
    """Per run, the share of ``draws`` definitions of the verdict (a Latin hypercube over the ranges of
    :func:`definition_ranges`, the same draws for every run) under which the run consolidates.

    The dynamics do not read these constants, so each draw re-scores the runs' recorded components.
    That needs the index to be the weighted mean of its declared components; None when it is not."""
    if not rescorable(ds, pol):
        return None
    ranges = definition_ranges(pol)
    lo, hi = np.array([r[0] for r in ranges.values()]), np.array([r[1] for r in ranges.values()])
    unit = latin_hypercube(len(ranges), draws, seed)
    _, ok = rescore(ds, pol, pd.DataFrame(lo + unit * (hi - lo), columns=list(ranges)))
    return xr.DataArray(ok.mean(axis=0), dims="run", attrs={"draws": int(draws)})


def rescorable(ds: xr.Dataset, pol) -> bool:
    """Whether the index is the weighted mean of its declared components in these runs."""
    return bool(pol.components) and "index_component" in ds and \
        np.allclose(ds["index_component"].values.sum(axis=-1), ds[pol.index].values, atol=1e-9)
