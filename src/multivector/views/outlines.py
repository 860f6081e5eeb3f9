"""Land, inland seas and country borders for the corridor maps, read from the package's own file.

``views/data/outlines.json`` is Natural Earth's 1:50m countries (public domain), clipped to the
window the freight networks span and simplified by ``scripts/build_outlines.py``; its README gives
the source and licence. The report, the dashboard and the PNG maps draw it, so no map fetches
tiles or outlines from anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

FILE = Path(__file__).parent / "data" / "outlines.json"

LAND_COLOUR = "#f2efe9"
WATER_COLOUR = "#dbe8f2"
COAST_COLOUR = "#a9b8c4"
BORDER_COLOUR = "#c9b9b0"


@dataclass(frozen=True)
class Outlines:
    """Rings and lines as ``[n, 2]`` arrays of (lon, lat)."""

    polygons: tuple[tuple[np.ndarray, tuple[np.ndarray, ...]], ...]   # (outline, holes) of each land polygon
    borders: tuple[np.ndarray, ...]                                    # land borders between countries
    window: tuple[float, float, float, float]                          # lon0, lat0, lon1, lat1 covered
    source: str

    @property
    def land(self) -> list[np.ndarray]:
        """The outline of every land polygon."""
        return [outer for outer, _ in self.polygons]

    @property
    def water(self) -> list[np.ndarray]:
        """Holes in the land: seas with no outlet to the ocean."""
        return [hole for _, holes in self.polygons for hole in holes]


def _pairs(flat: list[float]) -> np.ndarray:
    return np.asarray(flat, dtype=float).reshape(-1, 2)


@lru_cache(maxsize=1)
def outlines() -> Outlines:
    """The shipped outlines (read once per process)."""
    doc = json.loads(FILE.read_text(encoding="utf-8"))
    polygons = tuple((_pairs(rings[0]), tuple(_pairs(r) for r in rings[1:])) for rings in doc["land"])
    return Outlines(polygons=polygons, borders=tuple(_pairs(b) for b in doc["borders"]),
                    window=tuple(doc["window"]), source=doc["source"])
