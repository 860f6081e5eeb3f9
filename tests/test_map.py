"""The corridor map's geography: the shipped outlines, the freight each place handles, and the
outlines drawn by the plotly figure (report and dashboard) and by the PNG map."""

import json

import numpy as np
import pandas as pd
import pytest

import multivector as mv
from multivector.views.outlines import FILE, LAND_COLOUR, WATER_COLOUR, outlines
from multivector.views.tables import node_throughput


def _land():
    shapely = pytest.importorskip("shapely")
    return shapely.union_all([shapely.Polygon(outer, holes) for outer, holes in outlines().polygons])


@pytest.mark.parametrize("place, lon, lat, on_land", [
    ("Astana", 71.4, 51.2, True), ("Aktau's hinterland", 52.0, 44.0, True), ("Berlin", 13.4, 52.5, True),
    ("Xi'an", 108.9, 34.3, True), ("the middle of the Caspian", 50.5, 42.5, False),
    ("the south Caspian", 51.0, 39.0, False), ("the Black Sea", 34.0, 43.0, False),
    ("the Mediterranean", 18.0, 35.0, False), ("the Arabian Sea", 65.0, 18.0, False)])
def test_outlines_know_land_from_sea(place, lon, lat, on_land):
    shapely = pytest.importorskip("shapely")
    assert _land().contains(shapely.Point(lon, lat)) is on_land, place


def test_outlines_are_small_sourced_and_cover_the_networks():
    assert FILE.stat().st_size < 300_000
    doc = json.loads(FILE.read_text(encoding="utf-8"))
    assert "Natural Earth" in doc["source"] and "public domain" in doc["licence"]
    assert "naturalearthdata.com" in (FILE.parent / "README.md").read_text(encoding="utf-8")
    shapes = outlines()
    assert len(shapes.land) > 50 and len(shapes.water) >= 1 and len(shapes.borders) > 100
    assert sum(len(r) for r in shapes.land) > 2000
    lon0, lat0, lon1, lat1 = shapes.window
    for nodes in (mv.load("kazakhstan").nodes, mv.load(__file__.rsplit("/", 1)[0] + "/data/landlocked").nodes):
        north = nodes[nodes["lat"] > lat0]                     # the Cape of Good Hope leg leaves the map
        assert len(north) >= len(nodes) - 1
        assert north["lon"].between(lon0, lon1).all() and north["lat"].between(lat0, lat1).all()


def test_a_place_handles_what_passes_through_it_once():
    links = pd.DataFrame({"id": ["ab", "cb", "bd", "de"], "from": ["A", "C", "B", "D"], "to": ["B", "B", "D", "E"]})
    flows = pd.DataFrame({"year": [2030] * 5 + [2031], "corridor": ["x", "x", "y", "x", "y", "x"],
                          "link": ["ab", "cb", "bd", "bd", "de", "ab"], "mt": [5.0, 3.0, 6.0, 2.0, 0.5, 1.0]})
    got = node_throughput(links, flows).set_index(["year", "node"])["mt"]
    # B joins two feeders (5 + 3) into one trunk (8 over both corridors); D passes 0.5 on to E and is
    # the terminus of the rest; A and C are origins, E a destination
    assert got[(2030, "B")] == pytest.approx(8.0)
    assert got[(2030, "A")] == pytest.approx(5.0) and got[(2030, "C")] == pytest.approx(3.0)
    assert got[(2030, "D")] == pytest.approx(8.0) and got[(2030, "E")] == pytest.approx(0.5)
    assert got[(2031, "A")] == pytest.approx(1.0) and (2031, "C") not in got.index


def _toy():
    nodes = pd.DataFrame({"id": ["P", "Q", "R"], "name": ["Port P (west)", "Junction Q", "Town R / S"],
                          "lon": [40.0, 55.0, 70.0], "lat": [45.0, 47.0, 50.0]})
    links = pd.DataFrame({"id": ["pq", "qr"], "from": ["P", "Q"], "to": ["Q", "R"]})
    flows = pd.DataFrame({"year": [2030, 2030, 2031, 2031], "corridor": ["c"] * 4, "link": ["pq", "qr"] * 2,
                          "mt": [4.0, 4.0, 9.0, 1.0]})
    return nodes, links, flows


def test_corridor_map_draws_outlines_under_the_flows_in_every_year():
    pytest.importorskip("plotly")
    from multivector.views.figures import corridor_map

    nodes, links, flows = _toy()
    fig = corridor_map(nodes, links, flows, {"c": "#ff0000"})
    names = [t.name for t in fig.data]
    assert names[:3] == ["land", "inland seas", "borders"]                 # drawn first, under the network
    land = fig.data[0]
    assert land.fill == "toself" and sum(x is not None for x in land.x) > 2000
    assert fig.layout.plot_bgcolor == WATER_COLOUR and land.fillcolor == LAND_COLOUR
    for step in fig.layout.sliders[0].steps:                               # the year slider keeps them shown
        assert step.args[0]["visible"][:3] == [True, True, True]
    handled = [t for t in fig.data if t.name.startswith("freight handled")]
    assert len(handled) == 2
    last = handled[-1]                                                      # 2031: Q passes 9 on one side
    assert last.visible is True and "Junction Q<br>9.00 Mt handled in 2031" in last.hovertext
    size = dict(zip(last.text, last.marker.size))                          # labelled with short names
    assert set(size) == {"Junction Q", "Port P", "Town R"} and size["Town R"] < size["Junction Q"]
    assert "https://" not in fig.to_json()                                  # nothing to fetch


def test_png_map_draws_the_outlines(tmp_path):
    from matplotlib.image import imread

    from multivector.views.plotting import map_png

    nodes, links, flows = _toy()
    nodes = nodes.assign(kind="junction")
    path = map_png(nodes, links, flows, tmp_path / "map.png", 2031, {"c": "#ff0000"})
    pixels = (imread(path)[..., :3] * 255).round()

    def share(colour):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        return float((np.abs(pixels - rgb).max(axis=-1) <= 3).mean())

    # the frame (lon 37..73, lat 42..53) is mostly the Caucasus, the Caspian, Central Asia and Russia
    assert share(LAND_COLOUR) > 0.2 and share(WATER_COLOUR) > 0.02
