"""The political register over observed years, and the posterior of its constants that the history
supports (``multivector calibrate DATASET --politics``).

The register is written for its own horizon (from the base year on), with assumed initial stocks and
constant levers. ``[history]`` in ``politics.toml`` says how to run the same equations over years that
were observed: the register's time runs from ``start`` to ``stop``; named constants, auxiliaries or
exogenous inputs become observed series (``observations.csv``, times a stated scale; the value of year
``y`` holds on ``[y, y + 1)``, years between observations interpolated linearly, years outside them at
the nearest) or stated values (a programme that had not begun); named stocks start at an observed
year-end value or a stated equation of constants. Everything else is the register as it stands. The
stocks named under ``compare`` are then set, at each year's end, against their observed year-end series,
and the flows and rates (auxiliaries per year) against observed yearly totals: a flow's total over
``[y, y + 1)`` is the mean of its values at the year's time steps (under Euler exactly what the stocks
integrate).

The match is the network calibration's likelihood (:func:`multivector.model.posterior.log_likelihood`):
each observation's log miss a Student t with scale ``sqrt(error² + δ²)``, ``δ`` the history's own model
discrepancy — or, for a series with absolute errors (a count of events, which may be zero), its plain
miss with scale ``sqrt(error² + (δ·modelled)²)`` — sampled with the ``free`` constants by emcee (uniform
priors on the constants' stated ranges, log-uniform where positive). The observed inputs are taken as
exact: their own errors are not propagated (a stated limitation). Stored beside the dataset as
``history_posterior.csv`` and ``history_posterior.toml`` (method, prior, seed, the hash of the
observations it saw, diagnostics).
"""

from __future__ import annotations

import dataclasses
import hashlib
import weakref
from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from multivector.dataset import Scenario
from multivector.dataset.scenario import is_absolute_error
from multivector.errors import InputError
from multivector.model.posterior import Posterior, posterior_of, predictive_band, sample_with_discrepancy
from multivector.sd import SDModel, compile_model
from multivector.sd.spec import ExogenousSpec

#: The history posterior's files in a dataset folder.
HISTORY_STEM = "history_posterior"
#: How a back-test names a variable of the history run (``validate``): ``history.NAME``.
HISTORY_OUTPUT = "history."
#: Steps of a back-test's refit of the history (``validate --fit-until``): its autocorrelation runs to a
#: few hundred steps, so the 300 of a first look would leave the walkers near where they started.
REFIT_STEPS = 2000


def _history(scenario: Scenario):
    h = scenario.politics.history if scenario.politics is not None else None
    if h is None:
        raise InputError(f"'{scenario.name}' declares no history for its political register",
                         hint="add a [history] table to politics.toml (start, stop, free, inputs, initial, compare)")
    return h


def _series(scenario: Scenario, name: str) -> pd.DataFrame:
    obs = scenario.observations
    return obs[obs["series"] == name].sort_values("year")


def _at(rows: pd.DataFrame, years, column: str = "value") -> np.ndarray:
    """A series' ``column`` in ``years``: interpolated between its observed years, the nearest outside them."""
    return np.interp(np.asarray(years, dtype=float), rows["year"].to_numpy(float), rows[column].to_numpy(float))


def _absolute(scenario: Scenario, series: str) -> bool:
    """Whether a series states absolute errors (a count, which may be zero) rather than relative ones."""
    return is_absolute_error(str(_series(scenario, series)["unit"].iloc[0]))


def _linked(scenario: Scenario, link, years) -> tuple[np.ndarray, np.ndarray]:
    """A link's values in ``years`` (its series, divided year by year by ``per`` if given, times its scale)
    and their errors: relative (the two series' errors added in quadrature), or absolute in the
    variable's unit where the series states absolute errors."""
    rows = _series(scenario, link.series)
    value, error = _at(rows, years), _at(rows, years, "error")
    if _absolute(scenario, link.series):
        return value * link.scale, error * link.scale
    if link.per is not None:
        per = _series(scenario, link.per)
        value, error = value / _at(per, years), np.hypot(error, _at(per, years, "error"))
    return value * link.scale, error


def _once(build: Callable[[Scenario], object]) -> Callable[[Scenario], object]:
    """``build(scenario)`` computed once per loaded scenario (a loaded dataset does not change): the
    history match asks for its observations and inputs at every step of the sampler."""
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(scenario: Scenario):
        if scenario not in cache:
            cache[scenario] = build(scenario)
        return cache[scenario]

    get.__doc__, get.__name__ = build.__doc__, build.__name__
    return get


@_once
def input_values(scenario: Scenario) -> dict[str, np.ndarray]:
    """Each history input's value per year ``start .. stop - 1`` (``[years]``): the observed series times
    its scale, interpolated between observations and held at the nearest outside them; or its stated value."""
    h = _history(scenario)
    years = np.arange(h.start, h.stop)
    out = {}
    for name, link in h.inputs.items():
        out[name] = np.full(len(years), link.value) if link.series is None else _linked(scenario, link, years)[0]
    return out


@_once
def history_model(scenario: Scenario) -> SDModel:
    """The register's SD model rewritten for the history (module docstring), compiled once per scenario."""
    h = _history(scenario)
    spec = scenario.politics.sd.spec
    values = input_values(scenario)
    exogenous = dict(spec.exogenous)
    for name, link in h.inputs.items():
        unit = (spec.constants.get(name) or spec.auxiliaries.get(name) or spec.exogenous[name]).unit
        source = link.source if link.series is None else str(_series(scenario, link.series)["source"].iloc[0])
        exogenous[name] = ExogenousSpec(name=name, unit=unit, default=float(values[name][0]), source=source,
                                        doc=f"history: {link.series or 'stated'} x {link.scale:g}")
    stocks = dict(spec.stocks)
    for name, link in h.initial.items():        # _check_history made sure the series has that year
        initial = link.equation if link.equation is not None else float(_linked(scenario, link, [link.year])[0][0])
        stocks[name] = dataclasses.replace(stocks[name], initial=initial)
    rewritten = dataclasses.replace(
        spec, sim=dataclasses.replace(spec.sim, start=float(h.start), stop=float(h.stop)),
        constants={k: v for k, v in spec.constants.items() if k not in h.inputs},
        auxiliaries={k: v for k, v in spec.auxiliaries.items() if k not in h.inputs},
        exogenous=exogenous, stocks=stocks)
    return compile_model(rewritten)


@_once
def history_observations(scenario: Scenario) -> pd.DataFrame:
    """What the history is matched against: ``stock, series, year, observed, error, absolute, source``, one
    row per observed year inside ``start .. stop - 1`` (``stock``: the compared stock, flow or rate;
    ``absolute``: the error is in the variable's unit rather than relative)."""
    h = _history(scenario)
    rows = []
    for stock, link in h.compare.items():
        s = _series(scenario, link.series)
        s = s[(s["year"] >= h.start) & (s["year"] < h.stop)]
        value, error = _linked(scenario, link, s["year"].to_numpy())
        rows.append(pd.DataFrame({"stock": stock, "series": link.series + (f" / {link.per}" if link.per else ""),
                                  "year": s["year"].astype(int).to_numpy(), "observed": value, "error": error,
                                  "absolute": _absolute(scenario, link.series), "source": s["source"].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def simulate_history(scenario: Scenario, values: pd.DataFrame | None = None) -> xr.Dataset:
    """The register over the history for each row of ``values`` (free constants; the rest at their
    defaults): a Dataset (run, time) at every time step."""
    model = history_model(scenario)
    n = 1 if values is None else len(values)
    constants = {k: c.value for k, c in model.spec.constants.items()}
    if values is not None:
        constants.update({c: values[c].to_numpy(float) for c in values.columns})
    return model.run(constants, n, exogenous=input_values(scenario))


def history_values(scenario: Scenario, values: pd.DataFrame | None, names, years) -> np.ndarray:
    """Variables of the history run in given years, ``[N, len(names)]``, read as ``compare`` reads them: a
    stock at the year's end, a flow or a rate (an auxiliary per year) as its total over the year."""
    ds = simulate_history(scenario, values)
    time = ds["time"].values
    stocks = set(history_model(scenario).stock_names)
    out = []
    for name, year in zip(names, years):
        series = ds[name].values
        if name not in stocks:  # the year's total: the mean of the rate over its steps, times one year
            out.append(series[:, (time >= year - 1e-9) & (time < year + 1 - 1e-9)].mean(axis=1))
        else:                  # the stock at the year's end
            at = np.flatnonzero(np.abs(time - (year + 1)) < 1e-9)
            if not len(at):
                raise InputError(f"the history's run has no year-end {year} for '{name}'")
            out.append(series[:, at[0]])
    return np.stack(out, axis=1)


def _matched(scenario: Scenario, until: int | None) -> pd.DataFrame:
    """The observations the match reads: all of them, or those up to ``until``."""
    obs = history_observations(scenario)
    if until is None:
        return obs
    obs = obs[obs["year"] <= until].reset_index(drop=True)
    if obs.empty:
        raise InputError(f"the history has no observation up to {until} to match",
                         hint=f"its observations start in {int(history_observations(scenario)['year'].min())}")
    return obs


def evaluate_history(scenario: Scenario, values: pd.DataFrame | None = None, until: int | None = None) -> np.ndarray:
    """The compared variables in each observed year (up to ``until``), ``[N, observations]``."""
    obs = _matched(scenario, until)
    return history_values(scenario, values, obs["stock"], obs["year"])


def observations_hash(scenario: Scenario) -> str:
    """A short hash of what the history match saw: the compared observations and the inputs' values."""
    obs = history_observations(scenario)[["stock", "year", "observed", "error"]]
    h = hashlib.sha256(pd.util.hash_pandas_object(obs, index=False).values.tobytes())
    for name, v in sorted(input_values(scenario).items()):
        h.update(name.encode() + np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def sample_history(scenario: Scenario, walkers: int | None = None, steps: int = 300, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None, until: int | None = None) -> Posterior:
    """The free constants' posterior given the register's history (module docstring), or given its
    observations up to ``until`` (a rolling-origin back-test's refit)."""
    h = _history(scenario)
    obs = _matched(scenario, until)
    post = sample_with_discrepancy(
        scenario, list(h.free), lambda values: evaluate_history(scenario, values, until),
        obs["observed"].to_numpy(float), obs["error"].to_numpy(float), scenario.defaults(), walkers, steps, seed,
        progress, what="calibrate --politics", absolute=obs["absolute"].to_numpy(bool))
    post.provenance.update({
        "start": "a ball of 0.1% of each range around the constants' stated values",
        "history": f"{h.start}-{h.stop - 1}" if until is None else f"{h.start}-{until}", "observations": len(obs),
        "observations_hash": observations_hash(scenario),
        "inputs": {k: (v.series or f"stated {v.value:g} ({v.source})") + (f" x {v.scale:g}" if v.scale != 1 else "")
                   for k, v in h.inputs.items()}})
    return post


def predictive_history(scenario: Scenario, posterior: Posterior, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each observation against ``n`` posterior draws, the discrepancy included: ``stock, series, year,
    observed, error, median, p5, p95, within`` (``within``: inside the 5–95% band widened by its own error)."""
    obs = history_observations(scenario)
    return obs.assign(**predictive_band(posterior, evaluate_history(scenario, posterior.draw(n, seed)),
                                        obs["observed"].to_numpy(float), obs["error"].to_numpy(float), seed,
                                        absolute=obs["absolute"].to_numpy(bool)))


def history_posterior_of(scenario: Scenario) -> Posterior:
    """The dataset's stored history posterior (checked at load), or an InputError saying how to make one."""
    return posterior_of(scenario, stem=HISTORY_STEM)


def check_history_outputs(scenario: Scenario, names, years, refuse: Callable[[int, str, str], Exception]) -> None:
    """Each back-test row's variable is one the history run has, and its year one the history covers;
    else ``refuse(row, column, message)`` is raised."""
    h = _history(scenario)
    model = history_model(scenario)
    known = set(model.stock_names) | set(model.flow_names) | set(model.aux_names)
    for j, (name, year) in enumerate(zip(names, years)):
        if name not in known:
            raise refuse(j, "output", f"'{HISTORY_OUTPUT}{name}' is not a stock, flow or auxiliary of the history run")
        if not h.start <= year < h.stop:
            raise refuse(j, "year", f"year {year} lies outside the history ({h.start}-{h.stop - 1})")


def history_ensemble(scenario: Scenario, names, years, ensemble: str, runs: int, seed: int,
                     fit_until: int | None = None, progress: Callable[[int, int], None] | None = None
                     ) -> tuple[np.ndarray, dict]:
    """Variables of the history run in given years under an ensemble, ``[len(names), runs]``, with what
    made it: the free constants drawn from the stored history posterior (``posterior``; with
    ``fit_until``, from one sampled on the observations up to that year), its model discrepancy added;
    drawn from their stated ranges (``prior``); or at their stated values (``default``)."""
    from multivector.model.calibrate import fit_scale

    h = _history(scenario)
    info: dict = {}
    if fit_until is not None and ensemble != "posterior":
        raise InputError("refitting the political history samples its posterior",
                         hint="add --from posterior to --fit-until for history.* rows")
    if ensemble == "posterior":
        post = sample_history(scenario, steps=REFIT_STEPS, seed=seed, until=fit_until, progress=progress) \
            if fit_until is not None else history_posterior_of(scenario)
        values = history_values(scenario, post.draw(runs, seed), names, years).T
        info["history_discrepancy"] = float(post.samples["discrepancy"].median())
        return post.predictive(values, seed), info
    if ensemble == "prior":
        lo, hi, _, from_x, _ = fit_scale(scenario, list(h.free))
        x = np.random.default_rng(seed).uniform(lo, hi, size=(runs, len(lo)))
        return history_values(scenario, pd.DataFrame(from_x(x), columns=list(h.free)), names, years).T, info
    return np.repeat(history_values(scenario, None, names, years).T, runs, axis=1), info


def history_trajectory(scenario: Scenario, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each compared variable in every year of the history, as ``compare`` reads it: ``variable, series,
    year, median, p5, p95, observed`` (NaN where the year was not observed) — ``n`` draws from the stored
    history posterior, its model discrepancy added, or the stated constants (``p5 = p95``) without one.
    What ``run`` shows when its years reach back before the register's start (:func:`history_years`)."""
    h = _history(scenario)
    obs = history_observations(scenario)
    years = np.arange(h.start, h.stop)
    names = list(h.compare)
    pairs = [(name, int(y)) for name in names for y in years]
    ensemble = "posterior" if scenario.history_posterior_samples is not None else "default"
    values, _ = history_ensemble(scenario, *zip(*pairs), ensemble, n, seed)
    p5, median, p95 = np.percentile(values, [5, 50, 95], axis=1)
    seen = {(r.stock, int(r.year)): r.observed for r in obs.itertuples()}
    series = {r.stock: r.series for r in obs.itertuples()}
    return pd.DataFrame({"variable": [p[0] for p in pairs], "series": [series.get(p[0], "") for p in pairs],
                         "year": [p[1] for p in pairs], "median": median, "p5": p5, "p95": p95,
                         "observed": [seen.get(p, np.nan) for p in pairs]})


def history_years(scenario: Scenario, years) -> list[int]:
    """The years of the history that a run over ``years`` asks for, when they reach back before the
    register's own start (the base year); else none."""
    h = scenario.politics.history if scenario.politics is not None else None
    if h is None or not years or years[0] >= scenario.base_year:
        return []
    return [y for y in range(h.start, h.stop) if years[0] <= y <= years[-1]]
