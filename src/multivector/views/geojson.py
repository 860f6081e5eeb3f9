"""The freight network with one run's flows as GeoJSON (RFC 7946), for QGIS, kepler.gl and other GIS tools.

One FeatureCollection holds every link as a LineString between its nodes' coordinates and every node
as a Point (``element`` says which). Each year's values are properties of the feature — ``flow_2030``
(tonnes per year, both directions), ``teu_2030``, ``util_2030`` (the busier direction's or facility's
flow over its capacity that year) and, for links, ``corridor_2030`` (the corridor carrying most tonnes)
— rather than one file per year: the geometry is written once, every year styles from the same layer,
and a change between years is one column against another. A node's values are those of its transfer
facilities (gauge changes, port calls, pipeline-to-tanker berths). A gateway node (a border crossing,
gauge change, port or terminal: ``[model] gateway_kinds``) also carries ``gateway_tonnes_2030`` and
``gateway_teu_2030``: the freight that crosses it on the run's routes, whether or not it changes layer
there.

RFC 7946: coordinates are WGS84 ``[lon, lat]``, there is no ``crs`` member, and a link whose shorter
way crosses the antimeridian is cut there into a MultiLineString. The ``multivector`` member (a foreign
member, which readers ignore) records the scenario, the run and the units.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from multivector.dataset import Scenario
from multivector.model import compiled
from multivector.views.tables import corridor_link_flows

#: What each property holds, written into the file's ``multivector.properties`` member.
PROPERTIES = {
    "element": "link or node",
    "capacity": "declared capacity, tonnes per year (per direction for a link; summed over a node's "
                "transfer facilities that declare one); null: not binding",
    "flow_YEAR": "tonnes carried in YEAR (a link: both directions; a node: through its transfer facilities)",
    "teu_YEAR": "TEU among them (container commodities only)",
    "util_YEAR": "flow over capacity in YEAR of the busier direction or facility, against that year's "
                 "capacity (the declared one times the capacity factors the run set); null: no capacity",
    "corridor_YEAR": "the corridor carrying most tonnes on the link in YEAR; null: no flow",
    "gateway": "true for a gateway node (a kind in the dataset's gateway_kinds: border crossings, gauge "
               "changes, ports, terminals by default)",
    "gateway_tonnes_YEAR": "tonnes crossing the gateway in YEAR on the run's routes, all directions; null: not a gateway",
    "gateway_teu_YEAR": "TEU among them (container commodities only); null: not a gateway",
}


def _number(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def cut_at_antimeridian(a: list[float], b: list[float]) -> list[list[list[float]]]:
    """The straight segment a→b (``[lon, lat]``) as one part, or as two parts cut at ±180° when its
    shorter way crosses the antimeridian (longitudes more than 180° apart; RFC 7946, 3.1.9)."""
    (x0, y0), (x1, y1) = a, b
    if abs(x1 - x0) <= 180:
        return [[list(a), list(b)]]
    edge = 180.0 if x0 > x1 else -180.0        # eastwards over +180, or westwards over -180
    x1_unwrapped = x1 + 360.0 if edge > 0 else x1 - 360.0
    lat = y0 + (edge - x0) / (x1_unwrapped - x0) * (y1 - y0)
    return [[list(a), [edge, lat]], [[-edge, lat], list(b)]]


def _line(a: list[float], b: list[float]) -> dict:
    parts = cut_at_antimeridian(a, b)
    if len(parts) == 1:
        return {"type": "LineString", "coordinates": parts[0]}
    return {"type": "MultiLineString", "coordinates": parts}


def network_geojson(scenario: Scenario, ds: xr.Dataset, run: int = 0, about: dict | None = None) -> dict:
    """The network and run ``run`` of ``ds`` (from ``simulate``; with ``keep_routes=True`` for TEU and
    corridors) as a GeoJSON FeatureCollection (a dict ready for ``json.dumps``). ``about`` is added to
    the ``multivector`` member (e.g. the exploration a run comes from)."""
    years = [int(y) for y in ds["year"].values]
    kind = np.asarray(ds["resource_kind"].values).astype(str)
    owner = np.asarray(ds["resource_link"].values).astype(str)
    flow = ds["flow_mt"].isel(run=run).values * 1e6                      # [Y, R] tonnes
    util = ds["utilisation"].isel(run=run).values                        # [Y, R]
    teu = corridor = None
    if "route_flow" in ds:
        net = compiled(scenario).network
        is_teu = np.array([scenario.commodities[net.od_commodity[d]].unit.upper() == "TEU" for d in net.route_od])
        h = ds["route_flow"].isel(run=run).values                         # [Y, K] units
        teu = (net.route_resources().T @ (h * is_teu).T).T                # [Y, R] TEU
        corridor = {}
        for y in years:
            for name, flows in corridor_link_flows(scenario, ds, y, run).items():
                for link, mt in flows.items():
                    best = corridor.get((y, link))
                    if best is None or mt > best[1]:
                        corridor[(y, link)] = (name, mt)

    def yearly(rows: np.ndarray, link: str | None) -> dict:
        props = {}
        for i, y in enumerate(years):
            props[f"flow_{y}"] = float(flow[i, rows].sum()) if len(rows) else None
            if teu is not None:
                props[f"teu_{y}"] = float(teu[i, rows].sum()) if len(rows) else None
            u = util[i, rows]
            props[f"util_{y}"] = _number(np.nanmax(u)) if len(rows) and np.isfinite(u).any() else None
            if link is not None and corridor is not None:
                best = corridor.get((y, link))
                props[f"corridor_{y}"] = best[0] if best and best[1] > 0 else None
        return props

    gateway_tonnes = gateway_teu = {}
    if "gateway_tonnes" in ds:
        g_ids = [str(g) for g in ds["gateway"].values]
        t = ds["gateway_tonnes"].isel(run=run).sum("direction").values          # [Y, G]
        u = ds["gateway_teu"].isel(run=run).sum("direction").values
        gateway_tonnes = {g: t[:, i] for i, g in enumerate(g_ids)}
        gateway_teu = {g: u[:, i] for i, g in enumerate(g_ids)}
    nodes = scenario.nodes.set_index("id")
    position = {nid: [float(r["lon"]), float(r["lat"])] for nid, r in nodes.iterrows()}
    modes: dict[str, set[str]] = {}
    features = []
    for _, row in scenario.links.iterrows():
        lid, a, b = row["id"], row["from"], row["to"]
        modes.setdefault(a, set()).add(row["mode"])
        modes.setdefault(b, set()).add(row["mode"])
        cap = _number(row["capacity_mt"])
        props = {"id": lid, "element": "link", "name": f"{nodes.at[a, 'name']} – {nodes.at[b, 'name']}",
                 "mode": row["mode"], "from": a, "to": b, "length_km": _number(row["length_km"]),
                 "capacity": None if cap is None else cap * 1e6,
                 "oneway": bool(_number(row.get("oneway", math.nan)) or False),
                 "opens": None if _number(row.get("opens", math.nan)) is None else int(row["opens"])}
        props.update(yearly(np.flatnonzero((kind == "link") & (owner == lid)), lid))
        features.append({"type": "Feature", "id": lid, "geometry": _line(position[a], position[b]),
                         "properties": props})
    transfers = scenario.transfers
    for nid, r in nodes.iterrows():
        mine = transfers[transfers["node"] == nid]
        caps = [float(c) for c in mine["capacity_mt"] if _number(c) is not None]
        props = {"id": nid, "element": "node", "name": r["name"], "kind": r["kind"], "country": r["country"],
                 "mode": ";".join(sorted(modes.get(nid, ()))),
                 "transfers": ";".join(mine["between"]) or None,
                 "capacity": sum(caps) * 1e6 if caps else None}
        props.update(yearly(np.flatnonzero((kind == "transfer") & (owner == nid)), None))
        props["gateway"] = nid in gateway_tonnes
        for i, y in enumerate(years):
            props[f"gateway_tonnes_{y}"] = _number(gateway_tonnes[nid][i]) if nid in gateway_tonnes else None
            props[f"gateway_teu_{y}"] = _number(gateway_teu[nid][i]) if nid in gateway_teu else None
        features.append({"type": "Feature", "id": nid, "geometry": {"type": "Point", "coordinates": position[nid]},
                         "properties": props})
    meta = {"scenario": scenario.name, "scenario_hash": ds.attrs.get("scenario_hash"),
            "code_version": ds.attrs.get("code_version"), "seed": int(ds.attrs.get("seed", 0)), "years": years,
            "run": int(ds["run_id"].values[run]) if "run_id" in ds else int(run),
            "properties": PROPERTIES, **(about or {})}
    return {"type": "FeatureCollection", "multivector": meta, "features": features}
