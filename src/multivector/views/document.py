"""The run document: one JSON-ready view of labelled results, returned by ``run --json`` and the API.

When a batch has several runs the document shows the median over runs; ``run_document(ds,
reduce=runs_last)`` keeps every run instead (each per-year value an array over the runs), which is how
the back-test reads one output for the whole batch at once.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

FREIGHT_KEYS = ("teu", "tonnes", "share")
#: How many bottlenecks a run document lists by default (``multivector run`` and the API).
RUN_BOTTLENECKS = 8
#: How many gateways ``multivector run`` lists by default (the busiest in the last year; ``--gateways`` lists all).
RUN_GATEWAYS = 8
#: How many disruption streams ``multivector run`` simulates by default: the verdict is a probability.
RUN_SEEDS = 200


def _clean(x):
    """A document's number: a float, NaN as None (an array over runs, from ``runs_last``, as it is)."""
    if isinstance(x, np.ndarray):
        return x
    x = float(x)
    return None if math.isnan(x) else x


def median_over_runs(da: xr.DataArray) -> xr.DataArray:
    """The median over the batch's runs (a single run's values as they are), skipping a run's NaN (a
    corridor that carried nothing has no time) as xarray's median does: what documents and tables show.
    NumPy's ``nanmedian`` costs seven times its ``median``, so it is taken only where a NaN is."""
    if "run" not in da.dims:
        return da
    values = np.moveaxis(np.asarray(da.values, dtype=float), da.dims.index("run"), -1)
    median = np.median(values, axis=-1)
    gaps = np.isnan(median)
    if gaps.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)       # a slice all NaN: NaN, as xarray gives
            median[gaps] = np.nanmedian(values[gaps], axis=-1)
    return xr.DataArray(median, coords=da.isel(run=0, drop=True).coords, dims=[d for d in da.dims if d != "run"])


def runs_last(da: xr.DataArray) -> xr.DataArray:
    """Every run kept, as the last axis: the reduction of a document whose values are arrays over runs."""
    return da.transpose(..., "run") if "run" in da.dims else da


def _series(da: xr.DataArray, reduce=median_over_runs) -> list:
    """A per-year series of the run document: ``reduce`` over runs (the median), NaN as None."""
    return [_clean(v) for v in reduce(da).values]


#: Utilisations this close count as equal when a facility's worst year is chosen (the earliest wins):
#: a facility held at its capacity in many years would otherwise be listed in whichever year the
#: last bit of a float favoured.
TIE = 1e-6
#: A facility at least this full counts as full in ``years_full``.
FULL = 0.999


def bottlenecks(ds: xr.Dataset, top: int = 10) -> list[dict]:
    """Capacity-bound facilities by utilisation (median over runs), highest first; each facility once,
    in its worst year (the earliest of equally full years), with the number of years it is full."""
    util = median_over_runs(ds["utilisation"]).values                                          # [Y, R]
    finite = np.isfinite(util)
    cols = np.flatnonzero(finite.any(axis=0))
    if top <= 0 or not len(cols):
        return []
    bucket = np.where(finite, np.round(util / TIE), -np.inf)[:, cols]
    best = bucket.max(axis=0)
    first = (bucket == best).argmax(axis=0)                    # the earliest of the equally full years
    order = np.lexsort((cols, first, -best))[:top]             # fullest first, then earlier, then file order
    delay, flow = median_over_runs(ds["delay_h"]).values, median_over_runs(ds["flow_mt"]).values
    years_full = (np.nan_to_num(util, nan=0.0) >= FULL).sum(axis=0)
    years = ds["year"].values
    return [{"link": str(ds["resource"].values[r]), "label": str(ds["resource_label"].values[r]),
             "kind": str(ds["resource_kind"].values[r]), "year": int(years[y]), "utilisation": float(util[y, r]),
             "flow_mt": float(flow[y, r]), "delay_h": float(delay[y, r]), "years_full": int(years_full[r])}
            for y, r in zip(first[order], cols[order])]


def gateways(ds: xr.Dataset, reduce=median_over_runs) -> dict:
    """What each gateway (border crossing, gauge change, port, terminal) handles per year, median over
    runs: ``{node id: {name, kind, country, tonnes, teu, directions: {direction: {tonnes, teu}},
    commodities: {commodity: volume in its unit}}}``. A direction or commodity is listed where a
    route of the network crosses the gateway that way or carries it there (it may carry nothing in
    a year); every gateway node is listed, one that no route passes with empty directions. ``reduce``:
    as in :func:`run_document`."""
    if "gateway_volume" not in ds:
        return {}
    present = ds["gateway_routes"].values > 0                                               # [G, D, C]
    # medians over runs, each taken once for the whole array: [Y, G, D], [Y, G] and [Y, G, C]
    by_dir = {k: reduce(ds[f"gateway_{k}"]).values for k in ("tonnes", "teu")}
    total = {k: reduce(ds[f"gateway_{k}"].sum("direction")).values for k in ("tonnes", "teu")}
    by_comm = reduce(ds["gateway_volume"].sum("direction")).values
    clean = lambda a: [_clean(v) for v in a]
    directions, commodities = [str(d) for d in ds["direction"].values], [str(c) for c in ds["commodity"].values]
    out = {}
    for gi, g in enumerate(ds["gateway"].values):
        out[str(g)] = {"name": str(ds["gateway_name"].values[gi]), "kind": str(ds["gateway_kind"].values[gi]),
                       "country": str(ds["gateway_country"].values[gi]),
                       "tonnes": clean(total["tonnes"][:, gi]), "teu": clean(total["teu"][:, gi]),
                       "directions": {d: {k: clean(by_dir[k][:, gi, di]) for k in ("tonnes", "teu")}
                                      for di, d in enumerate(directions) if present[gi, di].any()},
                       "commodities": {c: clean(by_comm[:, gi, ci])
                                       for ci, c in enumerate(commodities) if present[gi, :, ci].any()}}
    return out


def corridor_directions(ds: xr.Dataset, reduce=median_over_runs) -> dict:
    """Each corridor's freight by the way its ODs go, median over runs: ``{corridor: {direction: {tonnes,
    teu}}}``, listing a direction where some run carries freight that way in some year (a result without
    the split gives ``{}``). ``reduce``: as in :func:`run_document`."""
    if "tonnes_by_direction" not in ds:
        return {}
    present = (ds["tonnes_by_direction"] > 0).any(("run", "year")).values                      # [K, D]
    by_dir = {k: reduce(ds[f"{k}_by_direction"]).values for k in ("tonnes", "teu")}           # [Y, K, D]
    directions = [str(d) for d in ds["direction"].values]
    return {str(c): {d: {k: [_clean(v) for v in by_dir[k][:, ci, di]] for k in ("tonnes", "teu")}
                     for di, d in enumerate(directions) if present[ci, di]}
            for ci, c in enumerate(ds["corridor"].values)}


def corridor_commodity_times(ds: xr.Dataset, reduce=median_over_runs) -> dict:
    """Each corridor's mean time by commodity, median over runs: ``{corridor: {commodity: [h per year]}}``,
    listing a commodity some run carries on the corridor in some year (a result without the split gives
    ``{}``). A published transit time is one commodity's (a container train's), where the corridor's
    own mean weighs in its bulk. ``reduce``: as in :func:`run_document`."""
    if "transit_time_h_by_commodity" not in ds:
        return {}
    present = (ds["volume"] > 0).any(("run", "year")).values                                  # [C, K]
    times = reduce(ds["transit_time_h_by_commodity"]).values                                  # [Y, C, K]
    commodities = [str(c) for c in ds["commodity"].values]
    return {str(k): {c: [_clean(v) for v in times[:, ci, ki]] for ci, c in enumerate(commodities) if present[ci, ki]}
            for ki, k in enumerate(ds["corridor"].values)}


def unserved_by_od(ds: xr.Dataset) -> list[dict]:
    """The ODs whose demand was not all shipped in some year (median over runs): origin, destination,
    commodity and the unserved volume per year in the commodity's unit."""
    if "unserved_od" not in ds:
        return []
    lost = median_over_runs(ds["unserved_od"])
    rows = []
    for i in np.flatnonzero((lost.values > 0).any(axis=0)):
        rows.append({"origin": str(ds["od_origin"].values[i]), "destination": str(ds["od_destination"].values[i]),
                     "commodity": str(ds["od_commodity"].values[i]),
                     "volume": [_clean(v) for v in lost.values[:, i]]})
    return rows


def verdict_by_definition_half(ds: xr.Dataset) -> dict:
    """``{constant: {"lower": P, "upper": P}}``: the share of the verdict's drawn definitions, with that
    constant in the lower or upper half of its range, under which the runs consolidate (mean over runs);
    empty when the result carries none. Rounded to 1e-9: a share of draws, not a measurement, so the
    order in which an array layout sums it does not show."""
    if "consolidated_by_definition_half" not in ds:
        return {}
    halves = ds["consolidated_by_definition_half"].mean("run")
    return {str(c): {h: round(float(halves.sel(definition=c, half=h)), 9) for h in ("lower", "upper")}
            for c in ds["definition"].values}


def run_document(ds: xr.Dataset, top: int = 10, reduce=median_over_runs) -> dict:
    """The document of a run (or the median of a batch): ``run --json`` prints it, the API returns it.
    With ``reduce=runs_last`` each per-year series holds an array over the runs instead of their median
    (not JSON: for reading outputs of a whole batch with :func:`document_value`)."""
    years = [int(y) for y in ds["year"].values]
    series = lambda da: _series(da, reduce)
    by_corridor = {key: reduce(ds[key]) for key in (*FREIGHT_KEYS, "transit_time_h", "cost_usd")}    # each once
    corridors = {str(c): {key: [_clean(v) for v in da.sel(corridor=c).values] for key, da in by_corridor.items()}
                 for c in ds["corridor"].values}
    for c, directions in corridor_directions(ds, reduce).items():
        corridors[c]["directions"] = directions
    for c, times in corridor_commodity_times(ds, reduce).items():
        corridors[c]["transit_time_h_by_commodity"] = times
    doc = {
        "scenario": ds.attrs.get("scenario"),
        "scenario_hash": ds.attrs.get("scenario_hash"),
        "code_version": ds.attrs.get("code_version"),
        "runs": int(ds.sizes["run"]),
        "years": years,
        "corridors": corridors,
        "focus_overland_share": series(ds["focus_overland_share"]),
        "focus_overland_share_tonnes": series(ds["focus_overland_share_tonnes"]),
        "gateways": gateways(ds, reduce),
        "bottlenecks": bottlenecks(ds, top),
        "convergence": {"gap": [_clean(v) for v in ds["gap"].max("run").values],
                        "converged": [bool(v) for v in ds["converged"].all("run").values],
                        "iterations": [int(v) for v in ds["iterations"].values]},
        "seed": int(ds.attrs.get("seed", 0)),
        "transit_revenue_usd_bn": series(ds["focus_transit_revenue"]),
        "focus_transit_teu": series(ds["focus_transit_teu"]),
        "focus_transit_tonnes": series(ds["focus_transit_tonnes"]),
        "unserved": {str(c): series(ds["unserved"].sel(commodity=c)) for c in ds["commodity"].values},
        "unserved_by_od": unserved_by_od(ds),
    }
    if "political" in ds:
        index = ds.attrs["index"]
        doc[index] = series(ds[index])
        doc["consolidated"] = bool(ds["consolidated"].values[0]) if ds.sizes["run"] == 1 else \
            float(ds["consolidated"].mean())
        if ds.sizes["run"] > 1:
            consolidated = ds["consolidated"].values.astype(bool)
            doc["p_consolidated"] = float(consolidated.mean())
            doc["p_consolidated_interval"] = list(wilson_interval(int(consolidated.sum()), len(consolidated)))
            doc["index_band"] = {f"p{q}": [_clean(v) for v in ds[index].quantile(q / 100, dim="run").values]
                                 for q in (5, 95)}
        if "consolidated_over_definitions" in ds:
            robust = ds["consolidated_over_definitions"]
            doc["p_consolidated_over_definitions"] = float(robust.mean())
            doc["definition_draws"] = int(robust.attrs.get("draws", 0))
        if "consolidated_by_definition_half" in ds:
            doc["p_consolidated_by_definition"] = verdict_by_definition_half(ds)
        if "counterfactual_index" in ds:
            gain = ds[index] - ds["counterfactual_index"]
            doc["counterfactual"] = {"label": ds.attrs.get("counterfactual", ""),
                                     index: series(ds["counterfactual_index"]), "gain": series(gain)}
        kinds = dict(zip(ds["variable"].values, ds["variable_kind"].values))
        if "index_component" in ds:
            doc["index_components"] = {str(c): series(ds["index_component"].sel(component=c))
                                       for c in ds["component"].values}
        doc["stocks"] = {str(v): series(ds["political"].sel(variable=v))
                         for v in ds["variable"].values if kinds[v] == "stock"}
        doc["network_parameters"] = {str(p): series(ds["coupled_parameter"].sel(coupled=p)) for p in ds["coupled"].values}
    return doc


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion: honest near 0 and 1 and for small n."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def document_value(doc: dict, path: str, year_index: int):
    """The value at a dotted ``path`` of a run document in one year (e.g. ``corridors.NAME.teu``), or None."""
    node = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node[year_index] if isinstance(node, list) and year_index < len(node) else None


def history_document(table, years) -> dict:
    """The political register over its observed years (``model.history.history_trajectory``) in the years
    asked for: each compared variable's median and 5–95% band per year, and the observation (null where
    none), beside the run's own document under ``history``."""
    rows = table[table["year"].isin(list(years))]
    clean = lambda values: [None if v != v else float(v) for v in values]
    return {"years": sorted(int(y) for y in rows["year"].unique()),
            "variables": {name: {"series": g["series"].iloc[0], "median": clean(g["median"]), "p5": clean(g["p5"]),
                                 "p95": clean(g["p95"]), "observed": clean(g["observed"])}
                          for name, g in rows.groupby("variable", sort=False)}}
