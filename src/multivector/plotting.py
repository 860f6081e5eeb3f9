"""Maps of link flows, coloured by corridor (matplotlib, written as PNG)."""

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


def flow_map(scenario: Scenario, ds: xr.Dataset, path: Path, year: int | None = None, run: int = 0) -> Path:
    """Draw the network with link widths by flow and colours by corridor; write a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    year = int(ds["year"].values[-1]) if year is None else int(year)
    flows = corridor_link_flows(scenario, ds, year, run)
    nodes = scenario.nodes.set_index("id")
    links = scenario.links.set_index("id")
    peak = max((v for f in flows.values() for v in f.values()), default=1.0) or 1.0
    fig, ax = plt.subplots(figsize=(15, 7.5), dpi=110)
    for lid, row in links.iterrows():
        a, b = nodes.loc[row["from"]], nodes.loc[row["to"]]
        ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color="#d0d3d4", lw=0.8, zorder=1)
    extra = iter(FALLBACK)
    handles = []
    for name, f in flows.items():
        colour = CORRIDOR_COLOURS.get(name) or next(extra, "#000000")
        for lid, v in f.items():
            row = links.loc[lid]
            a, b = nodes.loc[row["from"]], nodes.loc[row["to"]]
            ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color=colour, alpha=0.75,
                    lw=0.8 + 9.0 * np.sqrt(v / peak), solid_capstyle="round", zorder=2)
        label = scenario.corridors[name].label if name in scenario.corridors else name
        mt = float(ds["tonnes"].sel(year=year, corridor=name).isel(run=run)) / 1e6
        handles.append(plt.Line2D([], [], color=colour, lw=4, label=f"{label}: {mt:,.1f} Mt"))
    ax.scatter(nodes["lon"], nodes["lat"], s=8, color="#34495e", zorder=3)
    # frame Eurasia; the Cape leg leaves the frame southwards
    inland = nodes[nodes["lat"] > 10]
    ax.set_xlim(inland["lon"].min() - 3, inland["lon"].max() + 3)
    ax.set_ylim(inland["lat"].min() - 3, inland["lat"].max() + 3)
    for nid, row in nodes.iterrows():
        if row["kind"] in ("origin", "destination", "gauge_change"):
            ax.annotate(str(row["name"]).split(" (")[0].split("/")[0][:18], (row["lon"], row["lat"]),
                        fontsize=6, xytext=(2, 2), textcoords="offset points", color="#2c3e50")
    ax.set_title(f"{scenario.model.get('title', scenario.name)} — link flows by corridor, {year}")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_aspect(1.25)
    ax.grid(alpha=0.2)
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
