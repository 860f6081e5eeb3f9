"""The back-test: the model's runs set against held-out observations (``multivector validate``).

The observations come from a file, or from the dataset's own ``observations.csv`` (the rows that name an
``output``; :func:`dataset_observations`). An observations file has the columns
``output,year,value,source``; ``output`` is a dotted path into the run document
(``corridors.NAME.tonnes``, ``gateways.NODE.tonnes``, ``stocks.NAME``). The model runs an ensemble over
the years the file spans (rows named ``history.NAME``: the political register's history run over its
observed years, the variable read as ``[history] compare`` reads it) — by default parameters drawn from
their stated ranges (``prior``), the default parameters over the model's own random streams
(``default``), or the network's free coefficients drawn from the dataset's stored posterior
(``posterior``) — and each observation is set against the ensemble's median and 5–95% band.

With ``fit_until`` the network's free coefficients are first refitted to the calibration targets up to
that year (``multivector calibrate``'s least squares, started from the dataset's own defaults rather
than the stored fit, which has seen the later targets; its route set rebuilt for the refit), and the
observations after it are the held-out ones: a rolling-origin back-test. The summary then counts the
held-out rows only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from multivector.dataset import Scenario
from multivector.dataset.scenario import is_absolute_error, network_years
from multivector.errors import InputError
from multivector.explore.ensemble import make_design
from multivector.model.compiled import simulate
from multivector.model.history import HISTORY_OUTPUT
from multivector.views.document import document_value, run_document, runs_last

COLUMNS = ("output", "year", "value", "source")
#: Where the ensemble's runs come from: parameters drawn from their ranges, the defaults, or the network's
#: free coefficients drawn from the dataset's stored posterior (the rest at their defaults).
ENSEMBLES = ("prior", "default", "posterior")
#: An observation "within 20%" of the ensemble's median (the summary line's first share).
CLOSE = 0.20
#: The outputs a posterior's model discrepancy widens, by the last part of their path: the kinds of
#: quantity it was learnt on (volumes and times; the focus country's transit is a volume).
DISCREPANCY_KINDS = ("tonnes", "teu", "time_h", "mt", "focus_transit_teu", "focus_transit_tonnes")


def read_observations(path: str | Path) -> pd.DataFrame:
    """The observations file, checked: the four columns, a whole year and a finite value on every row."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError("no such file", file=path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot be read as CSV: {exc}", file=path,
                         hint="columns: " + ",".join(COLUMNS)) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=path, hint="columns: " + ",".join(COLUMNS))
    if frame.empty:
        raise InputError("no observation in the file", file=path, hint="one row per output and year")
    years, values = [], []
    for i, row in frame.iterrows():
        r = i + 2
        if not row["output"].strip():
            raise InputError("no output named", file=path, row=r, column="output",
                             hint="a path into the run document, e.g. corridors.NAME.tonnes")
        try:
            year = float(row["year"])
        except ValueError:
            year = math.nan
        if not math.isfinite(year) or year != int(year):
            raise InputError(f"'{row['year']}' is not a year", file=path, row=r, column="year")
        try:
            value = float(row["value"])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InputError(f"'{row['value']}' is not a number", file=path, row=r, column="value",
                             hint="write a plain decimal number such as 4484000")
        years.append(int(year))
        values.append(value)
    out = frame.assign(year=years, value=values, output=frame["output"].str.strip())
    out.attrs["path"] = str(path)
    return out


def dataset_observations(scenario: Scenario) -> pd.DataFrame:
    """The dataset's own observations that name an ``output``, in the years the model runs, as
    :func:`read_observations` returns a file's (with ``series`` and each row's line in observations.csv)."""
    obs = scenario.observations
    path = (scenario.path / "observations.csv") if scenario.path else "observations.csv"
    if obs is None or obs.empty:
        raise InputError(f"dataset '{scenario.name}' has no observations.csv", file=path,
                         hint="add one (see docs/data-format.md) or pass --observations FILE")
    named = obs[obs["output"] != ""]
    if named.empty:
        raise InputError("no series in observations.csv names an output, so none can be set against the model",
                         file=path, hint="fill the output column (a path into 'run --json', e.g. "
                                         "corridors.NAME.tonnes) where the model reports the series, "
                                         "or pass --observations FILE")
    first, last = network_years(scenario)
    history = scenario.politics.history if scenario.politics is not None else None
    past = named["output"].str.startswith(HISTORY_OUTPUT)         # read from the history run, in its years
    if history is not None:
        first_past, last_past = history.start, history.stop - 1
    else:
        first_past, last_past = 1, 0                               # no history: no year is one of its
    inside = named[(~past & named["year"].between(first, last)) | (past & named["year"].between(first_past, last_past))]
    if inside.empty:
        raise InputError(f"the observations that name an output lie outside the years the model runs "
                         f"({first}-{last})", file=path, hint="pass --observations FILE")
    out = pd.DataFrame({"output": inside["output"].to_numpy(), "year": inside["year"].astype(int).to_numpy(),
                        "value": inside["value"].to_numpy(dtype=float), "source": inside["source"].to_numpy(),
                        "series": inside["series"].to_numpy(), "row": (inside.index + 2).to_numpy(),
                        "error": inside["error"].to_numpy(dtype=float),
                        "absolute": [is_absolute_error(u) for u in inside["unit"]]})
    out.attrs["path"] = str(path)
    out.attrs["skipped"] = int(len(named) - len(inside))
    return out


#: Where a calibration target's metric (kind, unit) sits in the run document, ``{id}`` its id; a metric
#: with a direction sits under its gateway's or corridor's ``directions``, a corridor's time for one
#: commodity under its ``transit_time_h_by_commodity``.
_TARGET_PATHS = {("corridor", "teu"): "corridors.{id}.teu", ("corridor", "tonnes"): "corridors.{id}.tonnes",
                 ("corridor", "time_h"): "corridors.{id}.transit_time_h",
                 ("gateway", "teu"): "gateways.{id}.teu", ("gateway", "tonnes"): "gateways.{id}.tonnes"}


def observed_points(scenario: Scenario) -> dict[tuple[str, int], float]:
    """Every observed value the run document can be set beside, ``{(output path, year): value}``: the
    calibration targets whose metric the document reports (corridor volumes and times, gateway
    volumes) and the rows of observations.csv that name an output of the run (not of the history run).
    A target wins where both exist."""
    points = {}
    obs = scenario.observations
    if obs is not None and not obs.empty:
        for r in obs[(obs["output"] != "") & ~obs["output"].str.startswith(HISTORY_OUTPUT)].itertuples():
            points[(r.output, int(r.year))] = float(r.value)
    for r in scenario.targets.itertuples():
        kind, ident, unit, *detail = r.metric.split(":")
        path = _TARGET_PATHS.get((kind, unit))
        if path is not None:
            if not detail:
                path = path.format(id=ident)
            elif unit == "time_h":       # a corridor's time for one commodity
                path = f"{kind}s.{ident}.transit_time_h_by_commodity.{detail[0]}"
            else:
                path = f"{kind}s.{ident}.directions.{detail[0]}.{unit}"
            points[(path, int(r.year))] = float(r.observed)
    return points


def observation_series(scenario: Scenario) -> list[dict]:
    """One entry per series of the dataset's observations.csv: years covered, count, unit, error (relative
    or absolute), output (empty when the model does not report it) and source ids, in file order."""
    obs = scenario.observations
    rows = []
    for name, group in obs.groupby("series", sort=False):
        years = sorted(int(y) for y in group["year"])
        errors = sorted({float(e) for e in group["error"]})
        unit = group["unit"].iloc[0]
        rows.append({"series": name, "years": years, "first": years[0], "last": years[-1], "n": len(years),
                     "unit": unit, "error": errors[0] if len(errors) == 1 else errors,
                     "error_kind": "absolute" if is_absolute_error(unit) else "relative",
                     "output": group["output"].iloc[0],
                     "sources": list(dict.fromkeys(group["source"]))})
    return rows


def _row(obs: pd.DataFrame, j: int) -> int:
    """The line of observation ``j`` in its file."""
    return int(obs["row"].iloc[j]) if "row" in obs.columns else j + 2


def _years(scenario: Scenario, obs: pd.DataFrame) -> list[int]:
    first, last = network_years(scenario)
    path = obs.attrs.get("path", "observations")
    for i, y in enumerate(obs["year"]):
        if not first <= y <= last:
            raise InputError(f"year {y} lies outside the years the model runs ({first}-{last})", file=path,
                             row=_row(obs, i), column="year")
    return list(range(int(obs["year"].min()), int(obs["year"].max()) + 1))


def _values(doc: dict, obs: pd.DataFrame, years: list[int], check: bool = False) -> np.ndarray:
    """Each observation's modelled value in a run document (``[obs]``, or ``[obs, runs]`` from a document
    that keeps the runs); with ``check``, a path or year the document does not have is refused with its row."""
    out = []
    for j, (output, year) in enumerate(zip(obs["output"], obs["year"])):
        value = document_value(doc, output, years.index(year))
        if check and not isinstance(value, (int, float, np.ndarray)):
            where = doc.get("years", [])
            hint = ("the political register runs from "
                    f"{where[0]}" if output.split(".")[0] in ("stocks", "index_components") else
                    "e.g. corridors.NAME.tonnes, gateways.NODE.teu, focus_overland_share")
            raise InputError(f"'{output}' is not a number in the run document for {year}",
                             file=obs.attrs.get("path", "observations"), row=_row(obs, j), column="output", hint=hint)
        out.append(np.nan if value is None else np.asarray(value, dtype=float))
    return np.array(out)


@contextlib.contextmanager
def _silent(description: str, unit: str):
    yield None


def backtest(scenario: Scenario, obs: pd.DataFrame, runs: int = 200, seed: int = 0,
             ensemble: str = "prior", fit_until: int | None = None,
             stage: Callable[[str, str], contextlib.AbstractContextManager] = _silent,
             starts: int = 1) -> pd.DataFrame:
    """Each observation against the ensemble: ``output, year, observed, median, p5, p95, rel_error,
    in_band, held_out, source`` (``rel_error`` of the median; ``in_band``: inside 5–95%, widened by the
    observation's own error where the rows state one — the dataset's, relative or absolute, as the history
    match reads them; ``held_out``: after ``fit_until``, or every row without it). Rows named
    ``history.NAME`` are set against the political register's history run
    (:func:`multivector.model.history.history_ensemble`), the others against the coupled model's run
    document.

    ``stage(description, unit)`` opens each long step's progress (the refit's evaluations, the refit's
    posterior's steps, the ensemble's years) and yields its ``(done, total)`` callback, or None."""
    if ensemble not in ENSEMBLES:
        raise InputError(f"unknown ensemble '{ensemble}'", hint="one of " + ", ".join(ENSEMBLES))
    if runs < 1:
        raise InputError("--runs must be at least 1")
    path = obs.attrs.get("path", "observations")
    if "row" not in obs.columns:
        obs = obs.assign(row=np.arange(len(obs)) + 2)
    held_out = np.ones(len(obs), dtype=bool)
    if fit_until is not None:
        held_out = obs["year"].to_numpy() > fit_until
        if not held_out.any():
            raise InputError(f"no observation after {fit_until} to predict", file=path,
                             hint=f"give --fit-until a year before the file's last ({int(obs['year'].max())})")
    history = obs["output"].str.startswith(HISTORY_OUTPUT).to_numpy()
    per_run = np.full((len(obs), runs), np.nan)
    attrs = {"ensemble": ensemble, "runs": int(runs), "seed": seed}
    if history.any():                   # first: its rows are checked in a moment, not after a network refit
        from multivector.model.history import check_history_outputs, history_ensemble

        part = obs[history].reset_index(drop=True)
        names, years = part["output"].str[len(HISTORY_OUTPUT):].tolist(), part["year"].astype(int).tolist()
        check_history_outputs(scenario, names, years, lambda j, column, message: InputError(
            message, file=path, row=_row(part, j), column=column))
        with stage(f"sampling the history's posterior to {fit_until}" if fit_until is not None
                   else "the political history", "steps") as progress:
            per_run[history], more = history_ensemble(scenario, names, years, ensemble, runs, seed, fit_until,
                                                      progress)
        attrs.update(more)
    if (~history).any():
        part = obs[~history].reset_index(drop=True)
        part.attrs["path"] = path
        per_run[~history], more = _network_runs(scenario, part, runs, seed, ensemble, fit_until, stage, starts)
        attrs.update(more)
    median = np.nanmedian(per_run, axis=1)
    p5, p95 = np.nanpercentile(per_run, 5, axis=1), np.nanpercentile(per_run, 95, axis=1)
    observed = obs["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(observed != 0, median / observed - 1.0, np.nan)
    in_band = (observed >= p5) & (observed <= p95)
    if "error" in obs.columns:          # a stated error widens the band as the history match's table does
        from multivector.model.posterior import within_band

        attrs["widened"] = True
        in_band = within_band(observed, p5, p95, obs["error"].to_numpy(float), obs["absolute"].to_numpy(bool))
    table = pd.DataFrame({"output": obs["output"], "year": obs["year"], "observed": observed, "median": median,
                          "p5": p5, "p95": p95, "rel_error": rel, "in_band": in_band, "held_out": held_out,
                          "source": obs["source"]})
    table.attrs.update(attrs)
    return table


def _network_runs(scenario: Scenario, obs: pd.DataFrame, runs: int, seed: int, ensemble: str,
                  fit_until: int | None, stage, starts: int = 1) -> tuple[np.ndarray, dict]:
    """The run document's values of each observation under the ensemble, ``[obs, runs]``, with what
    made them (the refit's coefficients, the posterior's discrepancy). A refit fits from ``starts``
    points, as ``calibrate --starts`` does."""
    years = _years(scenario, obs)
    info: dict = {}
    refit = None
    if fit_until is not None:
        from multivector.model.calibrate import calibrate, with_fit

        # from the dataset's own defaults, not the stored fit, which has seen the later targets
        unfitted = with_fit(scenario, {})
        with stage(f"refitting to the targets up to {fit_until}", "evaluations") as progress:
            refit = calibrate(unfitted, until=fit_until, progress=progress, starts=starts, seed=seed)
        scenario = with_fit(unfitted, refit.values)
        info.update(fit_until=int(fit_until), refit=dict(refit.values), starts=int(starts))
    _values(run_document(simulate(scenario, 1, years=years, seed=seed)), obs, years, check=True)
    samples = fitted = None
    if ensemble == "prior":
        samples = make_design(scenario, runs, "lhs", seed, posterior=False).samples()
    elif ensemble == "posterior":
        from multivector.model.posterior import posterior_of, sample_posterior

        # a refit samples its own posterior from the targets up to fit_until (the stored one saw them all)
        if refit is not None:
            with stage(f"sampling the posterior to {fit_until}", "steps") as progress:
                post = sample_posterior(scenario, seed=seed, until=fit_until, progress=progress)
        else:
            post = posterior_of(scenario)
        fitted = post.draw(runs, seed)      # the dataset's coefficients, drawn: observed years keep their timeline
    with stage(f"simulating {runs} runs", "years") as progress:
        ds = simulate(scenario, runs, years=years, seed=seed, samples=samples, fitted=fitted, progress=progress)
    # one document that keeps every run (no bottleneck list: the paths read series): [obs, runs]
    per_run = _values(run_document(ds, top=0, reduce=runs_last), obs, years)
    if ensemble == "posterior":     # the posterior's prediction carries its model discrepancy
        # learnt on volumes and times (the targets' kinds), it widens those; a share or an index keeps
        # the coefficients' spread alone (a log-scale spread would carry a share past 1)
        kind = obs["output"].str.rsplit(".", n=1).str[-1].isin(DISCREPANCY_KINDS).to_numpy()
        per_run[kind] = post.predictive(per_run[kind], seed)
        info.update(discrepancy=float(post.samples["discrepancy"].median()))
    return per_run, info


def summary(table: pd.DataFrame) -> dict:
    """The share of the held-out observations within 20% of the median, and the 5–95% band's coverage.

    An observed zero (a year without a coded episode) has no relative error, nor has a row the model gives
    no value (a corridor that carries nothing): both are left out of the first share, whose denominator
    says how many remain, and counted apart; the band's coverage counts every row."""
    held = table[table["held_out"]] if "held_out" in table else table
    rel = held["rel_error"].to_numpy(dtype=float)
    defined = ~np.isnan(rel)
    close = np.abs(rel[defined]) <= CLOSE
    zero = held["observed"].to_numpy(dtype=float) == 0
    return {"observations": len(held), "with_relative_error": int(defined.sum()),
            "observed_zero": int(zero.sum()),
            "without_model_value": int((~defined & ~zero).sum()),
            "within_20pct": float(close.mean()) if defined.any() else None,
            "band_coverage": float(held["in_band"].mean()), **table.attrs}
