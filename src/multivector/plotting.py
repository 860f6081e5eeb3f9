"""Static figures (matplotlib, written as PNG): flow maps, time series with bands, sensitivity bars."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from multivector.scenario import Scenario

CORRIDOR_COLOURS = {"northern": "#c0392b", "middle": "#2471a3", "southern": "#239b56", "sea": "#7f8c8d",
                    "other": "#8e44ad"}
FALLBACK = ["#d35400", "#16a085", "#f1c40f", "#2c3e50", "#e84393", "#6c5ce7"]


def colour_of(corridor: str, order: list[str]) -> str:
    """The corridor's colour: fixed for the four freight corridors, then the fallbacks in order."""
    if corridor in CORRIDOR_COLOURS:
        return CORRIDOR_COLOURS[corridor]
    extra = [c for c in order if c not in CORRIDOR_COLOURS]
    return FALLBACK[extra.index(corridor) % len(FALLBACK)] if corridor in extra else "#555555"


def corridor_link_flows(scenario: Scenario, ds: xr.Dataset, year: int, run: int = 0) -> dict:
    """``{corridor: {link id: Mt}}`` for one run and year (needs ``keep_routes=True`` results)."""
    from multivector.simulation import network_of

    net = network_of(scenario)
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


def flow_table(scenario: Scenario, ds: xr.Dataset, run: int = 0) -> "pd.DataFrame":
    """Link flows of one run for every year: columns year, corridor, link, mt."""
    import pandas as pd

    rows = []
    for year in ds["year"].values:
        for corridor, flows in corridor_link_flows(scenario, ds, int(year), run).items():
            rows += [(int(year), corridor, link, mt) for link, mt in flows.items()]
    return pd.DataFrame(rows, columns=["year", "corridor", "link", "mt"])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write a figure as PNG atomically (a temporary file renamed into place)."""
    plt = _pyplot()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def map_png(nodes, links, flows, path: Path, year: int, title: str = "", labels: dict | None = None) -> Path:
    """The network with link widths by flow and colours by corridor for one year of a flow table."""
    plt = _pyplot()
    nodes = nodes.set_index("id")
    links = links.set_index("id")
    fy = flows[flows["year"] == year]
    peak = float(fy["mt"].max()) if len(fy) else 1.0
    peak = peak if peak > 0 else 1.0
    fig, ax = plt.subplots(figsize=(15, 7.5), dpi=110)
    for lid, row in links.iterrows():
        a, b = nodes.loc[row["from"]], nodes.loc[row["to"]]
        ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color="#d0d3d4", lw=0.8, zorder=1)
    handles = []
    order = list(dict.fromkeys(flows["corridor"]))
    for name, f in fy.groupby("corridor", sort=False):
        colour = colour_of(name, order)
        for lid, v in zip(f["link"], f["mt"]):
            row = links.loc[lid]
            a, b = nodes.loc[row["from"]], nodes.loc[row["to"]]
            ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color=colour, alpha=0.75,
                    lw=0.8 + 9.0 * np.sqrt(max(v, 0) / peak), solid_capstyle="round", zorder=2)
        label = (labels or {}).get(name, name)
        handles.append(plt.Line2D([], [], color=colour, lw=4, label=label))
    ax.scatter(nodes["lon"], nodes["lat"], s=8, color="#34495e", zorder=3)
    # frame Eurasia; the Cape leg leaves the frame southwards
    inland = nodes[nodes["lat"] > 10]
    ax.set_xlim(inland["lon"].min() - 3, inland["lon"].max() + 3)
    ax.set_ylim(inland["lat"].min() - 3, inland["lat"].max() + 3)
    for nid, row in nodes.iterrows():
        if row["kind"] in ("origin", "destination", "gauge_change"):
            ax.annotate(str(row["name"]).split(" (")[0].split("/")[0][:18], (row["lon"], row["lat"]),
                        fontsize=6, xytext=(2, 2), textcoords="offset points", color="#2c3e50")
    ax.set_title(title or f"Link flows by corridor, {year}")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_aspect(1.25)
    ax.grid(alpha=0.2)
    return _save(fig, path)


def flow_map(scenario: Scenario, ds: xr.Dataset, path: Path, year: int | None = None, run: int = 0) -> Path:
    """Draw one run's link flows for a year (default: the last); write a PNG atomically."""
    year = int(ds["year"].values[-1]) if year is None else int(year)
    flows = flow_table(scenario, ds.sel(year=[year]), run)
    labels = {}
    for name in flows["corridor"].unique():
        label = scenario.corridors[name].label if name in scenario.corridors else name
        mt = float(ds["tonnes"].sel(year=year, corridor=name).isel(run=run)) / 1e6
        labels[name] = f"{label}: {mt:,.1f} Mt"
    title = f"{scenario.model.get('title', scenario.name)} — link flows by corridor, {year}"
    return map_png(scenario.nodes, scenario.links, flows, path, year, title, labels)


def bands_png(bands: dict, corridors: list[str], many: bool, path: Path) -> Path:
    """Corridor volumes, overland share and middle-power index per year, with percentile bands."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), dpi=110)
    panels = [(axes[0], [(f"{c}_mt", c, colour_of(c, corridors)) for c in corridors], "corridor volume, Mt"),
              (axes[1], [("kazakhstan_overland_share", "overland share", "#8e44ad")], "Kazakh transit overland (share)"),
              (axes[2], [("middle_power_index", "middle-power index", "#1a5276")], "middle-power index")]
    for ax, series, title in panels:
        for key, label, colour in series:
            if key not in bands:
                continue
            q = bands[key]
            if many:
                ax.fill_between(q.index, q["p5"], q["p95"], color=colour, alpha=0.15, lw=0)
                ax.fill_between(q.index, q["p25"], q["p75"], color=colour, alpha=0.3, lw=0)
            ax.plot(q.index, q["p50"], color=colour, lw=2, label=label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.set_ylim(0, None if ax is axes[0] else 1.02)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=8)
    if many:
        fig.suptitle("median with 25–75% and 5–95% bands", fontsize=9)
    return _save(fig, path)


def sensitivity_png(frame, path: Path, top: int = 15) -> Path:
    """Horizontal bars of sensitivity indices with confidence intervals."""
    plt = _pyplot()
    f = frame.head(top).iloc[::-1]
    col = next(c for c in ("ST", "S1", "mu_star") if c in f)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(f) + 1.5), dpi=110)
    ax.barh(list(f.index), f[col], xerr=f.get(f"{col}_conf"), color="#2471a3")
    ax.set_xlabel(col)
    ax.set_title(f"Sensitivity ({frame.attrs.get('method', '')}): {frame.attrs.get('outcome', '')}")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
