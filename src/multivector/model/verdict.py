"""The verdict: the index's components, the consolidation test, and how the test fares when its own
definition (the index's weights, the margin, the floor, the year) is drawn over its declared ranges.

With a declared counterfactual the test is relative — the run's index minus the counterfactual's in
the same future — so the threshold and floor are margins; without one they are levels of the index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from multivector.model.randomness import latin_hypercube


DEFINITION_DRAWS = 200


@dataclass(frozen=True)
class Scores:
    """What the verdict reads from a batch of runs, as plain arrays: the index (``[run, year]``), its
    declared components unweighted (``[run, year, component]``) and their weighted parts, and the
    counterfactual's index and components (None without one). The coupled model fills it before it
    builds its Dataset; :meth:`from_dataset` reads a finished one."""

    years: np.ndarray
    index: np.ndarray
    components: np.ndarray | None = None
    parts: np.ndarray | None = None
    counterfactual_index: np.ndarray | None = None
    counterfactual_components: np.ndarray | None = None

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, pol) -> Scores:
        components = component_values(ds["political"].values, list(ds["variable"].values), pol) \
            if pol.components else None
        reference = None
        if "counterfactual_component" in ds:      # its weighted parts, unweighted by each run's weights
            params = list(ds["parameter"].values)
            w = ds["parameter_value"].values[:, [params.index(name) for name in pol.components.values()]]
            reference = ds["counterfactual_component"].values / (w / w.sum(axis=1, keepdims=True))[:, None, :]
        get = lambda name: ds[name].values if name in ds else None
        return cls(ds["year"].values, ds[pol.index].values, components, get("index_component"),
                   get("counterfactual_index"), reference)


def component_values(political: np.ndarray, names: list, pol) -> np.ndarray:
    """The index's declared components (``[outcomes] components``), unweighted, ``[run, year, component]``,
    from the recorded trajectory (``political`` ``[run, year, variable]``, its variables ``names``)."""
    return political[:, :, [names.index(v) for v in pol.components]]


def index_components(values: np.ndarray, table: pd.DataFrame, pol) -> np.ndarray:
    """Each component's share of the index, ``[run, year, component]``, from their ``values``
    (:func:`component_values`): weight × value / Σ weights; they sum to the index when the index is that
    weighted mean."""
    weights = np.stack([table[w].to_numpy() for w in pol.components.values()], axis=-1)        # [N, K]
    return values * (weights / weights.sum(axis=1, keepdims=True))[:, None, :]


def passes(score: np.ndarray, years: np.ndarray, threshold, floor, when) -> np.ndarray:
    """``[..., run]`` yes/no: ``score`` (``[..., run, year]``) ≥ threshold in year ``when`` and ≥ floor
    in every year from it on; a run whose years miss ``when`` fails. Arguments broadcast over runs."""
    when = np.round(np.asarray(when, dtype=float))[..., None]           # a sampled year: nearest whole year
    mask = years == when
    at = np.where(mask.any(axis=-1), np.where(mask, score, 0.0).sum(axis=-1), -np.inf)
    after = np.where(years >= when, score, np.inf).min(axis=-1)
    return (at >= threshold) & (after >= floor)


def consolidated(scores: Scores, table: pd.DataFrame, pol) -> np.ndarray:
    """``[run]`` the yes/no test: index ≥ threshold in the consolidation year and never below the floor
    after. With a counterfactual, the index's gain over it is tested (threshold and floor are margins)."""
    score = scores.index
    if scores.counterfactual_index is not None:
        score = score - scores.counterfactual_index
    c = pol.consolidation
    return passes(score, scores.years, table[c["threshold"]].to_numpy(), table[c["floor"]].to_numpy(),
                  table[c["year"]].to_numpy())


def definition_ranges(pol) -> dict[str, tuple[float, float]]:
    """The constants that define the verdict — the index's weights, threshold, floor and year — with
    their declared ranges (a constant declared without a range stays at its value)."""
    names = [*pol.components.values(), *(pol.consolidation[k] for k in ("threshold", "floor", "year"))]
    return {name: pol.sd.spec.constants[name].bounds for name in dict.fromkeys(names)}


def rescore(scores: Scores, pol, definition: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The index ``[D, N, Y]`` and the verdict ``[D, N]`` of the runs' ``scores`` under each row of
    ``definition`` (the verdict's constants; a constant it lacks keeps its declared value), from
    their recorded components (and the counterfactual's, when the test is relative)."""
    spec = pol.sd.spec.constants
    column = lambda name: definition[name].to_numpy() if name in definition else np.full(len(definition),
                                                                                          float(spec[name].value))
    w = np.stack([column(name) for name in pol.components.values()], axis=-1)
    w = w / w.sum(axis=1, keepdims=True)                                                        # [D, K]
    index = np.einsum("nyk,dk->dny", scores.components, w)
    reference = scores.counterfactual_components
    score = index if reference is None else index - np.einsum("nyk,dk->dny", reference, w)
    c = pol.consolidation
    ok = passes(score, scores.years, column(c["threshold"])[:, None], column(c["floor"])[:, None],
                column(c["year"])[:, None])
    return index, ok


def judge_definitions(scores: Scores, pol, draws: int = DEFINITION_DRAWS,
                      seed: int = 0) -> tuple[pd.DataFrame, np.ndarray] | None:
    """``draws`` definitions of the verdict (a Latin hypercube over the ranges of
    :func:`definition_ranges`, the same draws for every run) and each run's verdict under each,
    ``[draw, run]``.

    The dynamics do not read these constants, so each draw re-scores the runs' recorded components.
    That needs the index to be the weighted mean of its declared components; None when it is not."""
    if not rescorable(scores, pol):
        return None
    ranges = definition_ranges(pol)
    lo, hi = np.array([r[0] for r in ranges.values()]), np.array([r[1] for r in ranges.values()])
    unit = latin_hypercube(len(ranges), draws, seed)
    definition = pd.DataFrame(lo + unit * (hi - lo), columns=list(ranges))
    return definition, rescore(scores, pol, definition)[1]


def by_definition_half(definition: pd.DataFrame, ok: np.ndarray, pol) -> tuple[list[str], np.ndarray]:
    """Which part of the verdict's definition it turns on: for each of its constants with a range, the
    share of the drawn definitions whose value lies in the lower and in the upper half of that range
    under which each run consolidates, ``[run, constant, half]`` (the draws of a Latin hypercube fill
    each half equally). A constant whose halves differ little does not decide the verdict."""
    ranges = {k: v for k, v in definition_ranges(pol).items() if v[1] > v[0] and k in definition}
    halves = np.zeros((ok.shape[1], len(ranges), 2))
    for j, (name, (lo, hi)) in enumerate(ranges.items()):
        upper = definition[name].to_numpy() >= (lo + hi) / 2
        halves[:, j] = np.stack([ok[~upper].mean(axis=0), ok[upper].mean(axis=0)], axis=-1)
    return list(ranges), halves


def rescorable(scores: Scores, pol) -> bool:
    """Whether the index is the weighted mean of its declared components in these runs."""
    return bool(pol.components) and scores.parts is not None and \
        np.allclose(scores.parts.sum(axis=-1), scores.index, atol=1e-9)
