"""Readable summaries of results: the JSON document and the terminal tables.

Both are views of the same labelled results; when a batch has several runs the summary shows the
median over runs.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

FREIGHT_KEYS = ("teu", "tonnes", "share")


def _clean(x):
    x = float(x)
    return None if math.isnan(x) else x


def _median(da: xr.DataArray) -> xr.DataArray:
    return da.median("run") if "run" in da.dims else da


def bottlenecks(ds: xr.Dataset, top: int = 10) -> list[dict]:
    """Capacity-bound facilities by utilisation (median over runs), highest first; each facility once,
    in its worst year."""
    util = _median(ds["utilisation"])
    delay = _median(ds["delay_h"])
    flow = _median(ds["flow_mt"])
    rows = []
    for year in ds["year"].values:
        u = util.sel(year=year)
        for r in np.flatnonzero(np.isfinite(u.values)):
            rows.append({"link": str(ds["resource"].values[r]), "label": str(ds["resource_label"].values[r]),
                         "kind": str(ds["resource_kind"].values[r]), "year": int(year),
                         "utilisation": float(u.values[r]), "flow_mt": float(flow.sel(year=year).values[r]),
                         "delay_h": float(delay.sel(year=year).values[r])})
    rows.sort(key=lambda r: -r["utilisation"])
    seen, worst = set(), []
    for r in rows:
        if r["link"] not in seen:
            seen.add(r["link"])
            worst.append(r)
    return worst[:top]


def to_json(ds: xr.Dataset, top: int = 10) -> dict:
    """The document printed by ``multivector run --json``."""
    years = [int(y) for y in ds["year"].values]
    corridors = {}
    for c in ds["corridor"].values:
        entry = {key: [_clean(v) for v in _median(ds[key].sel(corridor=c)).values] for key in FREIGHT_KEYS}
        entry["transit_time_h"] = [_clean(v) for v in _median(ds["transit_time_h"].sel(corridor=c)).values]
        entry["cost_usd"] = [_clean(v) for v in _median(ds["cost_usd"].sel(corridor=c)).values]
        corridors[str(c)] = entry
    doc = {
        "scenario": ds.attrs.get("scenario"),
        "scenario_hash": ds.attrs.get("scenario_hash"),
        "code_version": ds.attrs.get("code_version"),
        "runs": int(ds.sizes["run"]),
        "years": years,
        "corridors": corridors,
        "kazakhstan_overland_share": [_clean(v) for v in _median(ds["kazakhstan_overland_share"]).values],
        "bottlenecks": bottlenecks(ds, top),
        "convergence": {"gap": [_clean(v) for v in ds["gap"].max("run").values],
                        "converged": [bool(v) for v in ds["converged"].all("run").values],
                        "iterations": [int(v) for v in ds["iterations"].values]},
        "seed": int(ds.attrs.get("seed", 0)),
        "transit_revenue_usd_bn": [_clean(v) for v in _median(ds["kz_transit_revenue"]).values],
    }
    if "political" in ds:
        doc["middle_power_index"] = [_clean(v) for v in _median(ds["middle_power_index"]).values]
        doc["consolidated"] = bool(ds["consolidated"].values[0]) if ds.sizes["run"] == 1 else \
            float(ds["consolidated"].mean())
        kinds = dict(zip(ds["variable"].values, ds["variable_kind"].values))
        doc["stocks"] = {str(v): [_clean(x) for x in _median(ds["political"].sel(variable=v)).values]
                         for v in ds["variable"].values if kinds[v] == "stock"}
        doc["network_parameters"] = {str(p): [_clean(x) for x in _median(ds["coupled_parameter"].sel(coupled=p)).values]
                                     for p in ds["coupled"].values}
    return doc
