"""Static figures (matplotlib, written as PNG): flow maps, time series with bands, sensitivity bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from multivector.dataset import Scenario
from multivector.io import atomic_file, atomic_folder
from multivector.views.outlines import BORDER_COLOUR, COAST_COLOUR, LAND_COLOUR, WATER_COLOUR, outlines
from multivector.views.tables import (INDEX_COLOUR, SHARE_COLOUR, corridor_colours, flow_table, node_throughput,
                                      observed_within, short_name)

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write a figure as PNG atomically."""
    plt = _pyplot()
    try:
        return atomic_file(path, lambda name: fig.savefig(name, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)


def draw_outlines(ax) -> None:
    """Land, inland seas and country borders (the package's own outlines) under a lon/lat map."""
    from matplotlib.collections import LineCollection, PolyCollection

    shapes = outlines()
    ax.set_facecolor(WATER_COLOUR)
    ax.add_collection(PolyCollection(shapes.land, facecolors=LAND_COLOUR, edgecolors=COAST_COLOUR, linewidths=0.5,
                                     zorder=0, label="land"))
    ax.add_collection(PolyCollection(shapes.water, facecolors=WATER_COLOUR, edgecolors=COAST_COLOUR,
                                     linewidths=0.5, zorder=0, label="inland seas"))
    ax.add_collection(LineCollection(shapes.borders, colors=BORDER_COLOUR, linewidths=0.5, zorder=0, label="borders"))


def map_png(nodes, links, flows, path: Path, year: int, colours: dict, title: str = "",
            labels: dict | None = None) -> Path:
    """The network over land, seas and borders, link widths by flow and colours by corridor, places
    sized by the freight they handle, for one year of a flow table."""
    plt = _pyplot()
    handled = node_throughput(links, flows[flows["year"] == year]).set_index("node")["mt"]
    nodes = nodes.set_index("id")
    links = links.set_index("id")
    fy = flows[flows["year"] == year]
    peak = float(fy["mt"].max()) if len(fy) else 1.0
    peak = peak if peak > 0 else 1.0
    fig, ax = plt.subplots(figsize=(15, 7.5), dpi=110)
    draw_outlines(ax)
    for lid, row in links.iterrows():
        a, b = nodes.loc[row["from"]], nodes.loc[row["to"]]
        ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color="#b3b6b7", lw=0.8, zorder=1)
    handles = []
    for name, f in fy.groupby("corridor", sort=False):
        colour = colours.get(name, "#555555")
        for lid, v in zip(f["link"], f["mt"]):
            row = links.loc[lid]
            a, b = nodes.loc[row["from"]], nodes.loc[row["to"]]
            ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color=colour, alpha=0.75,
                    lw=0.8 + 9.0 * np.sqrt(max(v, 0) / peak), solid_capstyle="round", zorder=2)
        label = (labels or {}).get(name, name)
        handles.append(plt.Line2D([], [], color=colour, lw=4, label=label))
    ax.scatter(nodes["lon"], nodes["lat"], s=8, color="#34495e", zorder=3)
    if len(handled):
        at = nodes.loc[handled.index]
        ax.scatter(at["lon"], at["lat"], s=10 + 400 * handled.to_numpy() / handled.max(), color="#2c3e50",
                   alpha=0.45, edgecolors="white", linewidths=0.8, zorder=4)
        handles.append(plt.Line2D([], [], ls="", marker="o", color="#2c3e50", alpha=0.45, markersize=9,
                                  label="freight handled (area ∝ Mt)"))
        for nid in handled.sort_values(ascending=False).index[:12]:
            ax.annotate(short_name(nodes.at[nid, "name"]), (nodes.at[nid, "lon"], nodes.at[nid, "lat"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points", color="#2c3e50", zorder=5)
    # frame Eurasia; the Cape leg leaves the frame southwards
    inland = nodes[nodes["lat"] > 10] if (nodes["lat"] > 10).any() else nodes
    ax.set_xlim(inland["lon"].min() - 3, inland["lon"].max() + 3)
    ax.set_ylim(inland["lat"].min() - 3, inland["lat"].max() + 3)
    ax.set_title(title or f"Link flows by corridor, {year}")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_aspect(1.25)
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
    return map_png(scenario.nodes, scenario.links, flows, path, year, corridor_colours(scenario), title, labels)


def write_run_folder(scenario: Scenario, ds: xr.Dataset, doc: dict, folder: Path) -> list[Path]:
    """``run --out``: a PNG flow map per year, the political history's panels when the document carries
    them (``history.png``), and the run document, moved into ``folder`` together."""
    import json

    def fill(tmp: Path):
        for y in ds["year"].values:
            flow_map(scenario, ds, tmp / f"flows_{int(y)}.png", year=int(y))
        if "history" in doc:
            history_png(doc["history"], tmp / "history.png")
        (tmp / "results.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")

    return atomic_folder(folder, fill)


def history_png(hist: dict, path: Path) -> Path:
    """The political register over its observed years (``doc["history"]``): a panel per compared variable,
    the posterior's median and 5–95% band, the observations as points."""
    plt = _pyplot()
    names = list(hist["variables"])
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.4 * len(names)), dpi=110, sharex=True, squeeze=False)
    years = np.array(hist["years"])
    as_array = lambda values: np.array([np.nan if v is None else v for v in values], dtype=float)
    for ax, name in zip(axes[:, 0], names):
        v = hist["variables"][name]
        ax.fill_between(years, as_array(v["p5"]), as_array(v["p95"]), color=INDEX_COLOUR, alpha=0.15, lw=0)
        ax.plot(years, as_array(v["median"]), color=INDEX_COLOUR, lw=1.5, label="model (median, 5–95%)")
        ax.plot(years, as_array(v["observed"]), "o", color="#17202a", ms=4, label="observed")
        ax.set_title(f"{name} ({v['series']})", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def bands_png(bands: dict, corridors: list[str], many: bool, path: Path, colours: dict, focus_name: str,
              index: str | None, index_label: str | None = None, observed: dict | None = None) -> Path:
    """Corridor volumes, the focus country's overland share and the headline index per year, with
    percentile bands; ``observed`` corridor tonnes and shares as crosses beside them."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), dpi=110)
    label = index_label or (index or "").replace("_", " ")
    panels = [(axes[0], [(f"{c}_mt", c, colours.get(c, "#555555"), f"corridors.{c}.tonnes", 1e-6)
                         for c in corridors], "corridor volume, Mt"),
              (axes[1], [("focus_overland_share", "overland share", SHARE_COLOUR, "focus_overland_share", 1.0)],
               f"{focus_name}'s overland share (transit TEU)"),
              (axes[2], [(index, label, INDEX_COLOUR, None, 1.0)] if index else [], label)]
    for ax, series, title in panels:
        for key, label, colour, path_in_doc, scale in series:
            if key not in bands:
                continue
            q = bands[key]
            if many:
                ax.fill_between(q.index, q["p5"], q["p95"], color=colour, alpha=0.15, lw=0)
                ax.fill_between(q.index, q["p25"], q["p75"], color=colour, alpha=0.3, lw=0)
            ax.plot(q.index, q["p50"], color=colour, lw=2, label=label)
            points = observed_within(observed, path_in_doc, q.index, scale) if path_in_doc else []
            if points:
                ax.scatter(*zip(*points), color=colour, marker="x", s=50, label=f"{label} observed", zorder=3)
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
