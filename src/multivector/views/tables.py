"""Plain tables derived from results, shared by the report, the API and the figures.

Link flows by corridor, percentile bands, the colours a dataset gives its corridors and the rows of
the per-year table ``multivector run`` prints. Nothing here draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from multivector.dataset import Scenario
from multivector.dataset.scenario import UPPER_BOUND
from multivector.model import compiled
from multivector.model.calibrate import within_error
from multivector.model.posterior import DISCREPANCY_RANGE, band_ratio
from multivector.views.document import document_value, median_over_runs

PERCENTILES = (5, 25, 50, 75, 95)
#: Colours for corridors a dataset leaves without one, in corridor order; and for unlabelled routes.
PALETTE = ["#d35400", "#16a085", "#f1c40f", "#2c3e50", "#e84393", "#6c5ce7"]
OTHER_COLOUR = "#8e44ad"
SHARE_COLOUR = "#8e44ad"
INDEX_COLOUR = "#1a5276"


def corridor_colours(scenario: Scenario) -> dict[str, str]:
    """Each corridor's colour: the dataset's (``[corridors.X] colour``), else the palette in corridor order."""
    out, spare = {}, iter(PALETTE * (1 + len(scenario.corridors) // len(PALETTE)))
    for name, c in scenario.corridors.items():
        out[name] = c.colour or next(spare)
    out["other"] = OTHER_COLOUR
    return out


def corridor_link_flows(scenario: Scenario, ds: xr.Dataset, year: int, run: int = 0) -> dict:
    """``{corridor: {link id: Mt}}`` for one run and year (needs ``keep_routes=True`` results)."""
    net = compiled(scenario).network
    h = ds["route_flow"].sel(year=year).isel(run=run).values
    tpu = np.array([scenario.commodities[net.od_commodity[d]].tonnes_per_unit for d in net.route_od]) / 1e6
    load = h * tpu
    inc = net.route_resources()                                   # [K, R]
    out = {}
    for ci, name in enumerate(list(ds["corridor"].values)):
        sel = net.route_corridor == ci
        if not sel.any():
            continue
        per_res = inc[sel].T @ load[sel]
        flows = {}
        for r, v in enumerate(per_res):
            if v > 0 and net.resource_kind[r] == "link":
                link = net.resource_link[r]
                flows[link] = flows.get(link, 0.0) + float(v)
        out[str(name)] = flows
    return out


def flow_table(scenario: Scenario, ds: xr.Dataset, run: int = 0) -> pd.DataFrame:
    """Link flows of one run for every year: columns year, corridor, link, mt."""
    rows = []
    for year in ds["year"].values:
        for corridor, flows in corridor_link_flows(scenario, ds, int(year), run).items():
            rows += [(int(year), corridor, link, mt) for link, mt in flows.items()]
    return pd.DataFrame(rows, columns=["year", "corridor", "link", "mt"])


def node_throughput(links: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Freight handled at each place and year (columns year, node, mt) from link flows (columns year,
    link, mt; every corridor counted): half the sum over its links, since what passes through enters
    and leaves, but at least its busiest link's flow, which is all of it at a terminus."""
    if flows.empty:
        return pd.DataFrame({"year": pd.Series(dtype=int), "node": pd.Series(dtype=str), "mt": pd.Series(dtype=float)})
    per_link = flows.groupby(["year", "link"], as_index=False)["mt"].sum()
    ends = links.set_index("id")[["from", "to"]]
    both = pd.concat([per_link.assign(node=ends.loc[per_link["link"], end].to_numpy()) for end in ("from", "to")])
    g = both.groupby(["year", "node"])["mt"]
    out = np.maximum(g.sum() / 2, g.max()).rename("mt").reset_index()
    return out[out["mt"] > 0].reset_index(drop=True)


def gateway_table(ds: xr.Dataset) -> pd.DataFrame:
    """What each gateway handles, median over runs: columns year, node, name, kind, direction, tonnes,
    teu — a row per gateway, year and direction a route of the network crosses it in."""
    columns = ["year", "node", "name", "kind", "direction", "tonnes", "teu"]
    if "gateway_tonnes" not in ds or not ds.sizes.get("gateway", 0):
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("tonnes", "teu") else object) for c in columns})
    tonnes, teu = median_over_runs(ds["gateway_tonnes"]).values, median_over_runs(ds["gateway_teu"]).values  # [Y, G, D]
    crossed = ds["gateway_routes"].values.sum(axis=-1) > 0                              # [G, D]
    g, d = np.nonzero(crossed)
    years = ds["year"].values.astype(int)
    frame = pd.DataFrame({
        "year": np.repeat(years, len(g)),
        "node": np.tile(ds["gateway"].values[g].astype(str), len(years)),
        "name": np.tile(ds["gateway_name"].values[g].astype(str), len(years)),
        "kind": np.tile(ds["gateway_kind"].values[g].astype(str), len(years)),
        "direction": np.tile(ds["direction"].values[d].astype(str), len(years)),
        "tonnes": tonnes[:, g, d].ravel(), "teu": teu[:, g, d].ravel()})
    return frame[columns]


def short_name(name: str, width: int = 18) -> str:
    """A place's name for a map label: before any bracket or slash, at most ``width`` characters."""
    return str(name).split(" (")[0].split("/")[0].strip()[:width]


def percentiles(yearly: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Percentiles 5, 25, 50, 75, 95 of an outcome per year (rows: years) from a run-year table."""
    g = yearly.groupby("year")[outcome]
    return pd.DataFrame({f"p{p}": g.quantile(p / 100) for p in PERCENTILES})


def observed_within(observed: dict | None, path: str, years, scale: float = 1.0) -> list[tuple[int, float]]:
    """The observations of one run-document ``path`` in the span of ``years``, scaled, by year
    (``observed``: ``{(path, year): value}``, :func:`multivector.views.validation.observed_points`)."""
    first, last = min(years), max(years)
    return sorted((int(year), value * scale) for (p, year), value in (observed or {}).items()
                  if p == path and first <= year <= last)


def beside(value, seen, spec: str) -> str:
    """A modelled ``value`` formatted with ``spec`` ("–" when missing), and the observation ``seen``
    beside it when there is one: ``model (obs X)``."""
    cell = "–" if value is None else format(value, spec)
    return cell if seen is None else f"{cell} (obs {format(seen, spec)})"


def focus_rows(scenario: Scenario, doc: dict, observed: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """The per-year table a dataset declares in ``[focus] table``: header and formatted rows. With
    ``observed`` (``{(output path, year): value}``, :func:`multivector.views.validation.observed_points`)
    a cell whose column and year were observed shows the observation beside the model: ``model (obs X)``."""
    columns = scenario.focus.table
    header = ["year"] + [c.label for c in columns]
    rows = []
    for i, year in enumerate(doc["years"]):
        row = [str(year)]
        for c in columns:
            v, seen = document_value(doc, c.value, i), (observed or {}).get((c.value, int(year)))
            row.append(beside(None if v is None else v * c.scale, None if seen is None else seen * c.scale, c.format))
        rows.append(row)
    return header, rows


def index_change(ds: xr.Dataset) -> pd.DataFrame | None:
    """How each component moved the headline index from the first to the last year (median over runs):
    columns component, first, last, change, share (of the index's change). None without components."""
    if "index_component" not in ds:
        return None
    parts = median_over_runs(ds["index_component"])
    first, last = parts.isel(year=0).values, parts.isel(year=-1).values
    change = last - first
    total = change.sum()
    frame = pd.DataFrame({"component": [str(c) for c in parts["component"].values], "first": first, "last": last,
                          "change": change, "share": change / total if total else np.nan})
    frame.attrs["years"] = (int(ds["year"].values[0]), int(ds["year"].values[-1]))
    frame.attrs["total"] = float(total)
    return frame


def index_gain(scenario: Scenario, ds: xr.Dataset) -> pd.DataFrame | None:
    """The index's gain over the counterfactual in the verdict's year, by component (median over runs):
    columns component, gain; attrs total, year, counterfactual. None without a counterfactual, its
    components, or the verdict's year among the results' years."""
    year = verdict_values(scenario, ds).get("year")
    if "counterfactual_component" not in ds or "index_component" not in ds or year not in ds["year"].values:
        return None
    gain = (ds["index_component"] - ds["counterfactual_component"]).sel(year=year)
    gain = median_over_runs(gain)
    frame = pd.DataFrame({"component": [str(c) for c in ds["component"].values], "gain": gain.values})
    frame.attrs.update(total=float(frame["gain"].sum()), year=year, counterfactual=ds.attrs.get("counterfactual", ""))
    return frame


def verdict_values(scenario: Scenario, ds: xr.Dataset) -> dict:
    """The consolidation test's threshold, floor and year as this run set them (median over runs)."""
    if scenario.politics is None or "parameter_value" not in ds:
        return {}
    values = {k: float(ds["parameter_value"].sel(parameter=name).median())
              for k, name in scenario.politics.consolidation.items() if name in ds["parameter"].values}
    if "year" in values:
        values["year"] = int(round(values["year"]))
    return values


def definition_turns(scenario: Scenario, by_half: dict, top: int = 2, least: float = 0.05) -> list[tuple]:
    """What the verdict turns on within its own definition: ``(constant, low, high, P in the lower half
    of its range, P in the upper half)`` for the ``top`` constants whose halves differ most, leaving
    out differences under ``least`` (``by_half`` is the run document's
    ``p_consolidated_by_definition``)."""
    rows = []
    for name, p in by_half.items():
        param = scenario.parameters.get(name)
        lo, hi = (param.min, param.max) if param is not None else (np.nan, np.nan)
        rows.append((name, lo, hi, p["lower"], p["upper"]))
    rows.sort(key=lambda r: -abs(r[4] - r[3]))
    return [r for r in rows[:top] if abs(r[4] - r[3]) >= least]


def coefficient_table(scenario: Scenario, samples: pd.DataFrame | None) -> pd.DataFrame:
    """Each free coefficient's prior (its range), stored least-squares fit (NaN without one) and, given
    posterior ``samples``, their median and 5–95% band; last, the model discrepancy's, when sampled."""
    return constant_table(scenario, scenario.model.get("calibration", {}).get("free", []), samples,
                          fit=scenario.calibration.get("values", {}))


def constant_table(scenario: Scenario, names, samples: pd.DataFrame | None, fit: dict | None = None) -> pd.DataFrame:
    """Each named parameter's prior (its range), ``fit`` (its stated value without one) and, given
    posterior ``samples``, their median, 5–95% band and that band over the prior's (``band / prior``, on
    the sampling scale); last, the model discrepancy's, when sampled."""
    rows = []
    for name in names:
        p = scenario.parameters[name]
        row = {"coefficient": name, "prior min": p.min, "prior max": p.max,
               "prior": "log-uniform" if p.min > 0 else "uniform",
               "fit": float(fit.get(name, np.nan)) if fit is not None else float(p.value),
               "unit": p.unit}
        if samples is not None and name in samples:
            row.update({"posterior p5": float(samples[name].quantile(0.05)),
                        "posterior median": float(samples[name].median()),
                        "posterior p95": float(samples[name].quantile(0.95)),
                        "band / prior": band_ratio(scenario, name, samples[name])})
        rows.append(row)
    if samples is not None and "discrepancy" in samples:   # the likelihood's own unknown, sampled beside them
        d = samples["discrepancy"]
        rows.append({"coefficient": "discrepancy", "prior min": DISCREPANCY_RANGE[0], "prior max": DISCREPANCY_RANGE[1],
                     "prior": "log-uniform", "fit": np.nan, "unit": "log scale (sd)",
                     "posterior p5": float(d.quantile(0.05)), "posterior median": float(d.median()),
                     "posterior p95": float(d.quantile(0.95))})
    return pd.DataFrame(rows)


def calibration_tables(scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """What the stored calibration says, for people to check it: each free coefficient's prior, fit and
    stored posterior (:func:`coefficient_table`); and each target, observed against the stored fit, with
    the observation's error band and whether the fit lies inside it. ``None`` without a stored fit."""
    if not scenario.calibration.get("values"):
        return None
    coefficients = coefficient_table(scenario, scenario.posterior_samples)
    targets = pd.DataFrame(scenario.calibration.get("fit", []))
    if len(targets):
        upper = targets["bound"].eq(UPPER_BOUND).to_numpy() if "bound" in targets else np.zeros(len(targets), bool)
        targets = targets.assign(       # a ceiling's band reaches down to zero
            band_low=np.where(upper, 0.0, targets["observed"] * np.exp(-targets["error"])),
            band_high=targets["observed"] * np.exp(targets["error"]),
            inside=within_error(targets["modelled"].to_numpy(), targets["observed"].to_numpy(),
                                targets["error"].to_numpy(), upper))
        targets = targets[["target", "metric", "year", "observed", "band_low", "band_high", "modelled",
                           "rel_error", "inside", "source"]]
    coefficients.attrs.update(scenario.posterior_provenance)
    return coefficients, targets


def history_tables(scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """What the political register's history match says, for people to check it: each sampled constant's
    prior, stated value and posterior (:func:`constant_table`), and each observed year-end against 200
    posterior draws with the model discrepancy (``model.history.predictive_history``). ``None`` without a
    stored history posterior."""
    if scenario.history_posterior_samples is None:
        return None
    from multivector.model.history import history_posterior_of, predictive_history

    post = history_posterior_of(scenario)
    constants = constant_table(scenario, scenario.politics.history.free, post.samples)
    constants.attrs.update(post.provenance)
    return constants, predictive_history(scenario, post)

