"""Build the map outlines the report, the dashboard and the PNG maps draw (a one-off, kept so that
the shipped file can be made again).

Reads Natural Earth's 1:50m admin-0 countries as TopoJSON from the npm package ``world-atlas``
(``npm pack world-atlas@2.0.2`` and untar it), keeps the window the freight networks span, simplifies
and writes ``src/multivector/views/data/outlines.json``:

    {"source": ..., "window": [lon0, lat0, lon1, lat1], "tolerance": degrees,
     "land": [[exterior, hole, ...], ...],   # polygons; a hole is a lake or inland sea (the Caspian)
     "borders": [line, ...]}                 # land borders between countries

where every ring or line is a flat list ``[lon, lat, lon, lat, ...]`` rounded to 0.01 degrees.
Needs shapely (``pip install shapely``)::

    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python scripts/build_outlines.py /tmp/package
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Polygon, box
from shapely.ops import linemerge, unary_union

WINDOW = (-15.0, -5.0, 160.0, 78.0)       # lon0, lat0, lon1, lat1: Europe, Africa's north, Asia
TOLERANCE = 0.1                           # degrees, Douglas-Peucker
MIN_AREA = 0.08                           # square degrees: smaller islands and lakes are dropped
DIGITS = 2
OUT = Path(__file__).resolve().parents[1] / "src/multivector/views/data/outlines.json"
SOURCE = ("Natural Earth 1:50m Admin 0 - Countries, version 4.1.0 (public domain, "
          "https://www.naturalearthdata.com/), as TopoJSON in the npm package world-atlas 2.0.2; "
          "clipped, simplified and rounded by scripts/build_outlines.py")


def decode_arcs(topology: dict) -> list[np.ndarray]:
    """TopoJSON arcs as absolute lon/lat arrays (delta-decoded, then the quantisation transform)."""
    t = topology.get("transform")
    arcs = []
    for arc in topology["arcs"]:
        a = np.asarray(arc, dtype=float)
        if t:
            a = np.cumsum(a, axis=0) * t["scale"] + t["translate"]
        arcs.append(a)
    return arcs


def ring(arcs: list[np.ndarray], indices: list[int]) -> np.ndarray:
    """Join a ring's arcs; a negative index ``~i`` is arc ``i`` reversed; shared end points once.
    A ring that crosses the antimeridian (Chukotka) is unwrapped past 180 degrees so that it stays
    one plane polygon instead of a band across the whole map."""
    parts = []
    for k, i in enumerate(indices):
        a = arcs[i] if i >= 0 else arcs[~i][::-1]
        parts.append(a if k == 0 else a[1:])
    r = np.concatenate(parts)
    jumps = np.round(np.diff(r[:, 0]) / 360.0)
    r[1:, 0] -= 360.0 * np.cumsum(jumps)
    return r


def polygons(arcs, geometry: dict) -> list[Polygon]:
    """The polygons of a TopoJSON Polygon or MultiPolygon (GeometryCollections flattened)."""
    kind = geometry["type"]
    if kind == "GeometryCollection":
        return [p for g in geometry["geometries"] for p in polygons(arcs, g)]
    shapes = [geometry["arcs"]] if kind == "Polygon" else geometry["arcs"] if kind == "MultiPolygon" else []
    return [Polygon(ring(arcs, rings[0]), [ring(arcs, r) for r in rings[1:]]) for rings in shapes]


def flat(coords) -> list[float]:
    """A ring or line as ``[lon, lat, lon, lat, ...]``, rounded, repeated points dropped."""
    a = np.round(np.asarray(coords, dtype=float)[:, :2], DIGITS)
    keep = np.ones(len(a), bool)
    keep[1:] = np.any(np.diff(a, axis=0) != 0, axis=1)
    return [float(v) for v in a[keep].ravel()]


def land(topology: dict, arcs, frame) -> list[list[list[float]]]:
    """Land polygons inside the window, simplified; holes (lakes, the Caspian) kept."""
    inside = [shapely.make_valid(p).intersection(frame) for p in polygons(arcs, topology["objects"]["land"])
              if p.envelope.intersects(frame)]
    merged = unary_union([p for p in inside if not p.is_empty])
    merged = merged.simplify(TOLERANCE, preserve_topology=True)
    parts = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
    out = []
    for p in parts:
        if not isinstance(p, Polygon) or p.area < MIN_AREA:
            continue
        holes = [flat(h.coords) for h in p.interiors if Polygon(h).area >= MIN_AREA]
        out.append([flat(p.exterior.coords)] + holes)
    return out


def borders(topology: dict, arcs, frame) -> list[list[float]]:
    """Arcs shared by two different countries (land borders, no coastlines), merged into lines."""
    users: dict[int, set[int]] = {}

    def walk(obj, owner):
        if isinstance(obj, list):
            for o in obj:
                walk(o, owner)
        else:
            users.setdefault(obj if obj >= 0 else ~obj, set()).add(owner)

    for k, g in enumerate(topology["objects"]["countries"]["geometries"]):
        walk(g.get("arcs", []), k)
    shared = [LineString(arcs[i]) for i, who in sorted(users.items()) if len(who) > 1 and len(arcs[i]) > 1]
    lines = linemerge(MultiLineString(shared)).intersection(frame).simplify(TOLERANCE)
    parts = list(lines.geoms) if hasattr(lines, "geoms") else [lines]
    return [flat(line.coords) for line in parts if isinstance(line, LineString) and line.length > 0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world_atlas", type=Path, help="the unpacked world-atlas package (folder of countries-50m.json)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    topology = json.loads((args.world_atlas / "countries-50m.json").read_text(encoding="utf-8"))
    arcs = decode_arcs(topology)
    frame = box(*WINDOW)
    doc = {"source": SOURCE, "licence": "public domain (Natural Earth); world-atlas: ISC, Copyright 2013-2019 Michael Bostock",
           "window": list(WINDOW), "tolerance": TOLERANCE,
           "land": land(topology, arcs, frame), "borders": borders(topology, arcs, frame)}
    text = json.dumps(doc, separators=(",", ":"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    points = sum(len(r) for p in doc["land"] for r in p) // 2 + sum(len(b) for b in doc["borders"]) // 2
    print(f"{args.out}: {len(doc['land'])} land polygons, {sum(len(p) - 1 for p in doc['land'])} holes, "
          f"{len(doc['borders'])} border lines, {points} points, {len(text) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
