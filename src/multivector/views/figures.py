"""Interactive figures (plotly) shared by the HTML report and the dashboard.

Each builder takes plain tables (pandas) and returns a ``plotly.graph_objects.Figure``; nothing here
reads the store or runs the model, so the report and the HTTP API draw the same pictures from the
same numbers. plotly is imported lazily: it is a dependency of the ``report`` extra.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from multivector.io import require
from multivector.model.structure import NETWORK_NODE
from multivector.views.outlines import BORDER_COLOUR, COAST_COLOUR, LAND_COLOUR, WATER_COLOUR, outlines
from multivector.views.tables import INDEX_COLOUR, PALETTE, SHARE_COLOUR, node_throughput, observed_within, short_name

# link widths (px) by flow class, as a share of the largest link flow in the figure
WIDTH_CLASSES = ((0.0, 1.5), (0.02, 3.0), (0.08, 5.0), (0.2, 7.5), (0.4, 10.0), (0.7, 13.0))


def _go():
    return require("plotly.graph_objects", "report", "figures")


def _layout(fig, title: str, height: int = 420, **kw):
    fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=15)), height=height,
                      margin=dict(l=55, r=20, t=50, b=45), template="plotly_white",
                      legend=dict(orientation="h", y=-0.15), **kw)
    return fig


# ------------------------------------------------------------------------------------------------
# the corridor map

#: places labelled by name on the map each year: the busiest ones
LABELLED_PLACES = 10


def _joined(lines) -> tuple[list, list]:
    """Rings or lines (``[n, 2]`` arrays) as one x and one y list with gaps, for a single trace."""
    xs, ys = [], []
    for a in lines:
        xs += a[:, 0].tolist() + [None]
        ys += a[:, 1].tolist() + [None]
    return xs, ys


def outline_traces() -> list:
    """The land, the inland seas and the country borders as plain lon/lat traces (named "land",
    "inland seas", "borders"), drawn from the package's own outlines so that nothing is fetched."""
    go = _go()
    shapes = outlines()
    traces = []
    for name, rings, fill in (("land", shapes.land, LAND_COLOUR), ("inland seas", shapes.water, WATER_COLOUR)):
        xs, ys = _joined(rings)
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=fill, name=name,
                                 line=dict(color=COAST_COLOUR, width=0.6), hoverinfo="skip", showlegend=False))
    xs, ys = _joined(shapes.borders)
    traces.append(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=BORDER_COLOUR, width=0.7), name="borders",
                             hoverinfo="skip", showlegend=False))
    return traces


#: The gateways' markers on the map
GATEWAY_COLOUR = "#c0392b"


def _gateway_trace(go, gy: pd.DataFrame, pos: pd.DataFrame, peak: float, year: int, visible: bool):
    """One year's gateways (rows of :func:`views.tables.gateway_table`) as diamonds, area ∝ tonnes;
    the hover gives the name, kind, tonnes and TEU, in all and by direction."""
    total = gy.groupby("node", sort=False).agg(name=("name", "first"), kind=("kind", "first"),
                                               tonnes=("tonnes", "sum"), teu=("teu", "sum"))
    total = total[total["tonnes"] > 0].sort_values("tonnes", ascending=False)
    hover = []
    for node, row in total.iterrows():
        lines = [f"<b>{row['name']}</b> ({row['kind']}), {year}",
                 f"{row['tonnes'] / 1e6:,.2f} Mt, {row['teu']:,.0f} TEU"]
        for _, d in gy[(gy["node"] == node) & (gy["tonnes"] > 0)].iterrows():
            lines.append(f"{d['direction']}: {d['tonnes'] / 1e6:,.2f} Mt, {d['teu']:,.0f} TEU")
        hover.append("<br>".join(lines))
    return go.Scatter(x=pos.loc[total.index, "lon"], y=pos.loc[total.index, "lat"], mode="markers",
                      marker=dict(symbol="diamond", size=6 + 24 * np.sqrt(total["tonnes"].to_numpy() / peak),
                                  color=GATEWAY_COLOUR, opacity=0.75, line=dict(color="white", width=1)),
                      hovertext=hover, hoverinfo="text", name="gateways (marker area ∝ tonnes handled)",
                      visible=visible)


def corridor_map(nodes: pd.DataFrame, links: pd.DataFrame, flows: pd.DataFrame, colours: dict,
                 title: str = "", gateways: pd.DataFrame | None = None) -> "object":
    """Links drawn at their geographic positions over land, seas and borders, widths by flow and
    colours by corridor; places sized by the freight they handle, the busiest labelled; gateways
    (``gateways``: rows of :func:`views.tables.gateway_table`) as diamonds sized by the tonnes they
    handle, with their tonnes and TEU by direction on hover; with a slider over the years in
    ``flows`` (columns year, corridor, link, mt)."""
    go = _go()
    pos = nodes.set_index("id")[["lon", "lat"]]
    names = nodes.set_index("id")["name"] if "name" in nodes else pd.Series(pos.index, index=pos.index)
    ends = links.set_index("id")[["from", "to"]]
    fig = go.Figure(outline_traces())
    xs, ys = [], []
    for a, b in zip(ends["from"], ends["to"]):
        xs += [pos.at[a, "lon"], pos.at[b, "lon"], None]
        ys += [pos.at[a, "lat"], pos.at[b, "lat"], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#b3b6b7", width=1),
                             hoverinfo="skip", name="network", showlegend=False))
    fig.add_trace(go.Scatter(x=pos["lon"], y=pos["lat"], mode="markers", marker=dict(size=4, color="#566573"),
                             text=[str(names[i]) for i in pos.index], hoverinfo="text", name="places",
                             showlegend=False))
    always = set(range(len(fig.data)))
    years = sorted(flows["year"].unique()) if len(flows) else []
    corridors = list(dict.fromkeys(flows["corridor"])) if len(flows) else []
    peak = float(flows["mt"].max()) if len(flows) else 1.0
    peak = peak if peak > 0 else 1.0
    handled = node_throughput(links, flows)
    node_peak = float(handled["mt"].max()) if len(handled) else 1.0
    if gateways is not None and len(gateways):
        gateways = gateways[gateways["node"].isin(pos.index)]
        per_gateway = gateways.groupby(["year", "node"])["tonnes"].sum()
        gateway_peak = float(per_gateway.max()) if len(per_gateway) and per_gateway.max() > 0 else 1.0
    per_year: list[list[int]] = []
    for year in years:
        idx = []
        fy = flows[flows["year"] == year]
        for corridor in corridors:
            fc = fy[(fy["corridor"] == corridor) & (fy["mt"] > 0)]
            rel = fc["mt"].to_numpy() / peak
            cls = np.searchsorted([c[0] for c in WIDTH_CLASSES], rel, side="right") - 1
            first = True
            for k, (_, width) in enumerate(WIDTH_CLASSES):
                sel = fc[cls == k]
                if sel.empty:
                    continue
                xs, ys, text = [], [], []
                for link, mt in zip(sel["link"], sel["mt"]):
                    a, b = ends.at[link, "from"], ends.at[link, "to"]
                    xs += [pos.at[a, "lon"], pos.at[b, "lon"], None]
                    ys += [pos.at[a, "lat"], pos.at[b, "lat"], None]
                    label = f"{corridor}: {link} {a}→{b}<br>{mt:,.2f} Mt in {year}"
                    text += [label, label, None]
                idx.append(len(fig.data))
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", text=text, hoverinfo="text",
                                         line=dict(color=colours.get(corridor, "#555555"), width=width),
                                         name=corridor, legendgroup=corridor,
                                         showlegend=first, visible=bool(year == years[-1])))
                first = False
        hy = handled[handled["year"] == year].sort_values("mt", ascending=False)
        if len(hy):
            top = set(hy["node"].head(LABELLED_PLACES))
            idx.append(len(fig.data))
            fig.add_trace(go.Scatter(
                x=pos.loc[hy["node"], "lon"], y=pos.loc[hy["node"], "lat"], mode="markers+text",
                marker=dict(size=5 + 25 * np.sqrt(hy["mt"].to_numpy() / node_peak), color="rgba(44,62,80,0.5)",
                            line=dict(color="white", width=1)),
                text=[short_name(names[n]) if n in top else "" for n in hy["node"]], textposition="top center",
                textfont=dict(size=10, color="#2c3e50"),
                hovertext=[f"{names[n]}<br>{mt:,.2f} Mt handled in {year}" for n, mt in zip(hy["node"], hy["mt"])],
                hoverinfo="text", name="freight handled (marker area ∝ Mt)", visible=bool(year == years[-1])))
        if gateways is not None and len(gateways):
            gy = gateways[gateways["year"] == year]
            if (gy["tonnes"] > 0).any():
                idx.append(len(fig.data))
                fig.add_trace(_gateway_trace(go, gy, pos, gateway_peak, int(year), bool(year == years[-1])))
        per_year.append(idx)
    n_traces = len(fig.data)
    if len(years) > 1:
        steps = []
        for year, idx in zip(years, per_year):
            visible = [i in always or i in idx for i in range(n_traces)]
            steps.append(dict(method="restyle", label=str(year), args=[{"visible": visible}]))
        fig.update_layout(sliders=[dict(active=len(years) - 1, steps=steps, currentvalue=dict(prefix="year "),
                                        pad=dict(t=30))])
    inland = pos[pos["lat"] > 10] if (pos["lat"] > 10).any() else pos   # the Cape leg leaves the frame
    lat = float(inland["lat"].mean()) if len(inland) else 45.0
    fig.update_xaxes(title="longitude", showgrid=False, zeroline=False, constrain="domain",
                     range=[float(inland["lon"].min()) - 3, float(inland["lon"].max()) + 3])
    fig.update_yaxes(title="latitude", showgrid=False, zeroline=False, scaleanchor="x", constrain="domain",
                     scaleratio=1 / max(0.2, math.cos(math.radians(lat))),
                     range=[float(inland["lat"].min()) - 3, float(inland["lat"].max()) + 3])
    fig = _layout(fig, title or "Freight flows by corridor (line width ∝ Mt)", height=660)
    # the legend goes below the year slider
    fig.update_layout(plot_bgcolor=WATER_COLOUR, margin=dict(b=120 if len(years) > 1 else 60),
                      legend=dict(y=-0.3 if len(years) > 1 else -0.12))
    return fig


# ------------------------------------------------------------------------------------------------
# time series with ensemble bands

def _band(fig, go, q: pd.DataFrame, name, colour, many: bool, row=None, col=None):
    years = [int(y) for y in q.index]
    kw = {} if row is None else dict(row=row, col=col)
    if many:
        for lo, hi, alpha in (("p5", "p95", 0.15), ("p25", "p75", 0.3)):
            fig.add_trace(go.Scatter(x=years + years[::-1], y=list(q[hi]) + list(q[lo])[::-1], fill="toself",
                                     fillcolor=_rgba(colour, alpha), line=dict(width=0), hoverinfo="skip",
                                     legendgroup=name, showlegend=False, name=f"{name} {lo}–{hi}"), **kw)
    fig.add_trace(go.Scatter(x=years, y=list(q["p50"]), mode="lines+markers", line=dict(color=colour, width=2),
                             marker=dict(size=4), name=name + (" (median)" if many else ""), legendgroup=name), **kw)


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _observed(fig, go, observed: dict, path: str, years, name: str, colour: str, scale: float, row: int, col: int):
    """The observations of one document path within the plotted ``years``, as markers."""
    points = observed_within(observed, path, years, scale)
    if points:
        fig.add_trace(go.Scatter(x=[y for y, _ in points], y=[v for _, v in points], mode="markers",
                                 marker=dict(color=colour, size=9, symbol="x"), name=f"{name} observed",
                                 legendgroup=name), row=row, col=col)


def time_series(bands: dict[str, pd.DataFrame], corridors: list[str], many: bool, colours: dict,
                focus_name: str, index: str | None, title: str = "", index_label: str | None = None,
                observed: dict | None = None) -> "object":
    """Three panels over the years: corridor volumes (Mt), the focus country's overland share and the
    headline index. ``bands`` maps outcome -> percentiles per year (see :func:`views.tables.percentiles`);
    with ``many`` runs, medians are drawn with 25–75 and 5–95 percentile bands. ``observed``
    (``{(document path, year): value}``) draws the corridors' observed tonnes and the observed share as
    crosses beside the model."""
    go = _go()
    from plotly.subplots import make_subplots

    label = index_label or (index or "").replace("_", " ")
    fig = make_subplots(rows=1, cols=3, subplot_titles=("corridor volume, Mt",
                                                         f"{focus_name}'s overland share (transit TEU)", label),
                        horizontal_spacing=0.07)
    for c in corridors:
        if f"{c}_mt" in bands:
            _band(fig, go, bands[f"{c}_mt"], c, colours.get(c, "#555555"), many, 1, 1)
            _observed(fig, go, observed, f"corridors.{c}.tonnes", bands[f"{c}_mt"].index, c,
                      colours.get(c, "#555555"), 1e-6, 1, 1)
    if "focus_overland_share" in bands:
        _band(fig, go, bands["focus_overland_share"], "overland share", SHARE_COLOUR, many, 1, 2)
        _observed(fig, go, observed, "focus_overland_share", bands["focus_overland_share"].index, "overland share",
                  SHARE_COLOUR, 1.0, 1, 2)
    if index and index in bands:
        _band(fig, go, bands[index], label, INDEX_COLOUR, many, 1, 3)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], row=1, col=3)
    note = " — median, 25–75% and 5–95% bands" if many else ""
    return _layout(fig, (title or f"Volumes, shares and the {label or 'index'}") + note, height=420)


def histogram(values: pd.Series, title: str, threshold: float | None = None) -> "object":
    go = _go()
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color="#2471a3", name=values.name or "runs"))
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color="#c0392b", dash="dash"),
                      annotation_text=f"threshold {threshold:g}")
    fig.update_xaxes(title=values.name or "")
    fig.update_yaxes(title="runs")
    return _layout(fig, title, height=320, showlegend=False)


# ------------------------------------------------------------------------------------------------
# exploration analyses

def sensitivity_bars(frame: pd.DataFrame, title: str, top: int = 15) -> "object":
    """Horizontal bars of the sensitivity indices (Sobol S1/ST, RBD-FAST S1 or Morris mu*) with
    their confidence intervals."""
    go = _go()
    f = frame.head(top).iloc[::-1]
    fig = go.Figure()
    pairs = [("ST", "ST_conf", "total order"), ("S1", "S1_conf", "first order"), ("mu_star", "mu_star_conf", "μ*")]
    for col, conf, label in pairs:
        if col in f:
            fig.add_trace(go.Bar(y=list(f.index), x=f[col], orientation="h", name=label,
                                 error_x=dict(type="data", array=f[conf], visible=True)))
    fig.update_layout(barmode="group")
    return _layout(fig, title, height=max(320, 28 * len(f) + 120))


def prim_tradeoff(trajectory: pd.DataFrame, chosen: int, title: str = "PRIM peeling trajectory") -> "object":
    """Coverage against density for each box on the peeling trajectory, the chosen box marked."""
    go = _go()
    fig = go.Figure(go.Scatter(x=trajectory["coverage"], y=trajectory["density"], mode="lines+markers",
                               marker=dict(color=trajectory["n_restricted"], colorscale="Viridis", size=7,
                                           colorbar=dict(title="restricted<br>parameters")),
                               text=[f"box {i}: mass {m:.2f}" for i, m in enumerate(trajectory["mass"])],
                               hoverinfo="text+x+y", name="boxes"))
    row = trajectory.iloc[chosen]
    fig.add_trace(go.Scatter(x=[row["coverage"]], y=[row["density"]], mode="markers",
                             marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="#c0392b", width=3)),
                             name=f"chosen box {chosen}"))
    fig.update_xaxes(title="coverage", range=[0, 1.02])
    fig.update_yaxes(title="density", range=[0, 1.02])
    return _layout(fig, title, height=380)


def prim_box(box: pd.DataFrame, title: str = "The chosen box, within each parameter's range") -> "object":
    """Each restricted parameter's limits drawn inside its full sampled range (0 = min, 1 = max)."""
    go = _go()
    fig = go.Figure()
    names = list(box.index)
    span = (box["range_max"] - box["range_min"]).replace(0, 1)
    lo = (box["min"] - box["range_min"]) / span
    hi = (box["max"] - box["range_min"]) / span
    fig.add_trace(go.Bar(y=names, x=[1] * len(names), orientation="h", marker_color="#e5e8e8", name="sampled range",
                         hoverinfo="skip"))
    fig.add_trace(go.Bar(y=names, x=hi - lo, base=lo, orientation="h", marker_color="#c0392b", name="box",
                         text=[f"{a:.4g} – {b:.4g} {u}" for a, b, u in zip(box["min"], box["max"], box["unit"])],
                         textposition="auto"))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(range=[0, 1], title="position within the sampled range")
    return _layout(fig, title, height=max(220, 50 * len(names) + 120))


#: The smallest fitted / observed ratio the calibration figure's log axis shows.
RATIO_FLOOR = 1e-3


def calibration_targets(targets: pd.DataFrame, title: str = "Calibration targets: fitted against observed") -> "object":
    """Each target's fitted value as a ratio to its observation, beside the observation's error band
    (a log axis: a 10% band is as wide on a pipeline as on a port). A ceiling's band, and a fit of
    nothing, reach down to the axis's floor (``RATIO_FLOOR``)."""
    go = _go()
    fig = go.Figure()
    names = [f"{t} ({y})" for t, y in zip(targets["target"], targets["year"])]
    low, high = targets["band_low"] / targets["observed"], targets["band_high"] / targets["observed"]
    low = np.maximum(low, RATIO_FLOOR)
    fig.add_trace(go.Bar(y=names, x=high - low, base=low, orientation="h", marker_color="#d5d8dc",
                         name="observation ± its error", hoverinfo="skip"))
    ratio = np.maximum(targets["modelled"] / targets["observed"], RATIO_FLOOR)
    fig.add_trace(go.Scatter(y=names, x=ratio, mode="markers", name="fitted / observed",
                             marker=dict(size=9, color=np.where(targets["inside"], "#1e8449", "#c0392b")),
                             text=[f"{r:+.0%}" for r in targets["rel_error"]], hoverinfo="text+y"))
    fig.update_xaxes(type="log", title="fitted / observed")
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, height=max(260, 26 * len(names) + 140))


def history_series(fitted: pd.DataFrame, title: str = "The political register's history: posterior against observed") -> "object":
    """Each compared variable over the history in a panel of its own (their units differ: a fund in USD bn,
    a count of episodes): the posterior draws' median and 5–95% band (model discrepancy included) as a
    line and a ribbon, and the observations with their stated error (relative or absolute) as points."""
    from plotly.subplots import make_subplots

    go = _go()
    groups = list(fitted.groupby("stock", sort=False))
    fig = make_subplots(rows=len(groups), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[f"{stock} ({rows['series'].iloc[0]})" for stock, rows in groups])
    for k, (stock, rows) in enumerate(groups):
        colour, at = PALETTE[k % len(PALETTE)], dict(row=k + 1, col=1)
        years = rows["year"].to_numpy()
        fig.add_trace(go.Scatter(x=np.r_[years, years[::-1]], y=np.r_[rows["p95"], rows["p5"].to_numpy()[::-1]],
                                 mode="lines", fill="toself", line=dict(width=0), fillcolor=_rgba(colour, 0.2),
                                 hoverinfo="skip", name=f"{stock}: posterior 5–95%"), **at)
        fig.add_trace(go.Scatter(x=years, y=rows["median"], mode="lines", line=dict(color=colour),
                                 name=f"{stock}: posterior median"), **at)
        absolute = rows["absolute"].to_numpy(bool) if "absolute" in rows else np.zeros(len(rows), bool)
        err = np.where(absolute, rows["error"], rows["observed"] * rows["error"])
        fig.add_trace(go.Scatter(x=years, y=rows["observed"], mode="markers", marker=dict(color="#17202a", size=8),
                                 error_y=dict(type="data", array=err, visible=True),
                                 name=f"{stock}: observed"), **at)
    fig.update_xaxes(title="year", row=len(groups), col=1)
    return _layout(fig, title, height=max(380, 230 * len(groups)))


# ------------------------------------------------------------------------------------------------
# the feedback-loop diagram

def loop_diagram(nodes: list[str], links: pd.DataFrame, title: str = "") -> "object":
    """Stocks on a circle; arrows for the causal links between them (columns source, target,
    polarity '+', '−', '±' or '0', via): green positive, red negative, grey mixed, pale inactive."""
    go = _go()
    k = len(nodes)
    angle = {n: math.pi / 2 - 2 * math.pi * i / max(k, 1) for i, n in enumerate(nodes)}
    xy = {n: (math.cos(a), math.sin(a)) for n, a in angle.items()}
    fig = go.Figure()
    colours = {"+": "#1e8449", "−": "#c0392b", "±": "#7f8c8d", "0": "#d5dbdb"}
    for _, e in links.iterrows():
        (x0, y0), (x1, y1) = xy[e["source"]], xy[e["target"]]
        # pull the ends in from the node centres, and bow the arrow so that a <-> b pairs separate
        mx, my = (x0 + x1) / 2 - 0.12 * (y1 - y0), (y0 + y1) / 2 + 0.12 * (x1 - x0)
        sx, sy = x0 + 0.12 * (mx - x0), y0 + 0.12 * (my - y0)
        tx, ty = x1 + 0.12 * (mx - x1), y1 + 0.12 * (my - y1)
        colour = colours.get(e["polarity"], "#7f8c8d")
        fig.add_annotation(x=tx, y=ty, ax=sx, ay=sy, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                           arrowhead=3, arrowsize=1.2, arrowwidth=1.6, arrowcolor=colour, opacity=0.8, text="")
        fig.add_trace(go.Scatter(x=[mx], y=[my], mode="text", text=[e["polarity"]], textfont=dict(color=colour, size=16),
                                 hovertext=[f"{e['source']} → {e['target']} ({e['polarity']})<br>via {e['via']}"],
                                 hoverinfo="text", showlegend=False))
    fig.add_trace(go.Scatter(x=[xy[n][0] for n in nodes], y=[xy[n][1] for n in nodes], mode="markers+text",
                             text=[n.replace("_", " ") for n in nodes], textposition="top center",
                             marker=dict(size=18, color=["#f39c12" if n == NETWORK_NODE else "#2e86c1" for n in nodes]),
                             hoverinfo="text", showlegend=False))
    fig.update_xaxes(visible=False, range=[-1.45, 1.45])
    fig.update_yaxes(visible=False, range=[-1.3, 1.35], scaleanchor="x")
    return _layout(fig, title or "Causal links between stocks (+ same direction, − opposite)", height=640)

