"""``multivector export geojson``: a valid RFC 7946 file whose link and node properties are the run's
flows, a stored exploration's run replayed from the store, and errors that write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely.geometry as shapely_geometry
from typer.testing import CliRunner

import multivector as mv
from multivector.interfaces.cli import app
from multivector.model import simulate
from multivector.views.geojson import cut_at_antimeridian

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_rfc7946(doc: dict, scenario) -> None:
    """A FeatureCollection of valid geometries in WGS84 lon/lat, no crs member, each link drawn between
    its two nodes and no link the long way round the globe."""
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    nodes = scenario.nodes.set_index("id")
    seen = set()
    for f in doc["features"]:
        assert f["type"] == "Feature" and set(f) >= {"geometry", "properties"}
        geom = shapely_geometry.shape(f["geometry"])
        assert geom.is_valid and not geom.is_empty, f["id"]
        parts = f["geometry"]["coordinates"]
        points = [parts] if f["geometry"]["type"] == "Point" else \
            parts if f["geometry"]["type"] == "LineString" else [p for line in parts for p in line]
        for lon, lat in points:
            assert -180 <= lon <= 180 and -90 <= lat <= 90
        p = f["properties"]
        if p["element"] == "link":
            assert f["geometry"]["type"] == "LineString"
            (x0, y0), (x1, y1) = parts
            assert abs(x1 - x0) <= 180, "a link may not cross the antimeridian the long way"
            assert [x0, y0] == [nodes.at[p["from"], "lon"], nodes.at[p["from"], "lat"]]
            assert [x1, y1] == [nodes.at[p["to"], "lon"], nodes.at[p["to"], "lat"]]
        seen.add((p["element"], p["id"]))
    assert seen == {("link", x) for x in scenario.links["id"]} | {("node", x) for x in scenario.nodes["id"]}


def feature(doc: dict, fid: str) -> dict:
    return next(f for f in doc["features"] if f["id"] == fid)


def test_scenario_export_is_rfc7946_with_lon_lat_order(tiny_dir, tmp_path):
    out = tmp_path / "tiny.geojson"
    r = invoke("export", "geojson", "--scenario", tiny_dir, out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert_rfc7946(doc, mv.load(tiny_dir))
    aktau = feature(doc, "AKTAU")
    assert aktau["geometry"] == {"type": "Point", "coordinates": [51.2, 43.6]}      # lon first
    assert aktau["properties"]["kind"] == "port" and aktau["properties"]["transfers"] == "rail_1520|water"
    assert doc["multivector"]["years"] == [2024]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file left"


def test_kazakhstan_export_places_aktau_on_the_caspian(tmp_path):
    s = mv.load("kazakhstan")
    out = tmp_path / "kz.geojson"
    r = invoke("export", "geojson", "--scenario", "kazakhstan", "--years", "2024:2025", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert_rfc7946(doc, s)
    lon, lat = feature(doc, "N-KZ-AKU")["geometry"]["coordinates"]
    assert abs(lon - 51.2) < 0.5 and abs(lat - 43.6) < 0.5
    ferry = feature(doc, "L-SEA-01")["properties"]            # Aktau–Alat ferry: capacity and flows
    assert ferry["mode"] == "ferry" and ferry["capacity"] == pytest.approx(1.07e6)
    assert ferry["flow_2024"] > 0 and ferry["teu_2024"] > 0 and ferry["corridor_2024"] == "middle"
    assert 0 < ferry["util_2024"] and 0 < ferry["util_2025"]


def test_properties_hold_the_runs_flows(tiny_dir, tmp_path):
    """flow/util of a link equal the run's xarray and run --json's bottlenecks; TEU equals the
    calibration's own link metric (another path through the route flows)."""
    from multivector.model.calibrate import metric_values

    out = tmp_path / "f.geojson"
    assert invoke("export", "geojson", "--scenario", tiny_dir, out).exit_code == 0
    ferry = feature(json.loads(out.read_text(encoding="utf-8")), "L3")["properties"]
    s = mv.load(tiny_dir)
    ds = simulate(s, keep_routes=True, coupled=False)
    on = ds["resource_link"].values == "L3"
    assert ferry["flow_2024"] == pytest.approx(float(ds["flow_mt"].values[0, 0, on].sum()) * 1e6, rel=1e-9)
    assert ferry["util_2024"] == pytest.approx(float(ds["utilisation"].values[0, 0, on].max()), rel=1e-9)
    assert ferry["teu_2024"] == pytest.approx(float(metric_values(s, ds, "link:L3:teu", 2024)[0]), rel=1e-9)
    doc = json.loads(invoke("run", tiny_dir, "--json", "--top", "100").stdout)
    rows = [b for b in doc["bottlenecks"] if b["link"].startswith("L3:")]
    assert rows and ferry["flow_2024"] == pytest.approx(sum(b["flow_mt"] for b in rows) * 1e6, rel=1e-9)
    assert ferry["util_2024"] == pytest.approx(max(b["utilisation"] for b in rows), rel=1e-9)
    aktau = feature(json.loads(out.read_text(encoding="utf-8")), "AKTAU")["properties"]
    at = (ds["resource_kind"].values == "transfer") & (ds["resource_link"].values == "AKTAU")
    assert aktau["flow_2024"] == pytest.approx(float(ds["flow_mt"].values[0, 0, at].sum()) * 1e6, rel=1e-9)
    assert aktau["capacity"] == pytest.approx(1e6)


def test_a_link_over_the_antimeridian_is_cut_there():
    east = cut_at_antimeridian([170.0, 10.0], [-170.0, 20.0])
    assert east == [[[170.0, 10.0], [180.0, 15.0]], [[-180.0, 15.0], [-170.0, 20.0]]]
    west = cut_at_antimeridian([-175.0, 0.0], [175.0, 10.0])
    assert west == [[[-175.0, 0.0], [-180.0, 5.0]], [[180.0, 5.0], [175.0, 10.0]]]
    assert cut_at_antimeridian([10.0, 1.0], [120.0, 2.0]) == [[[10.0, 1.0], [120.0, 2.0]]]
    assert shapely_geometry.shape({"type": "MultiLineString", "coordinates": east}).is_valid


def test_a_dataset_over_the_antimeridian_exports_a_multilinestring(tiny_dir, tmp_path):
    from conftest import edit_csv

    edit_csv(tiny_dir / "nodes.csv", 1, "lon", "-170.0")        # Shanghai moved across the date line
    out = tmp_path / "wrapped.geojson"
    r = invoke("export", "geojson", "--scenario", tiny_dir, out)
    assert r.exit_code == 0, r.output
    link = feature(json.loads(out.read_text(encoding="utf-8")), "L8")      # Xi'an (108.9 E) - Shanghai
    assert link["geometry"]["type"] == "MultiLineString"
    assert shapely_geometry.shape(link["geometry"]).is_valid
    (start, cut), (again, end) = link["geometry"]["coordinates"]
    assert start == [108.9, 34.3] and end == [-170.0, 30.6] and cut[0] == 180.0 and again[0] == -180.0
    assert cut[1] == again[1] and 30.6 < cut[1] < 34.3


# ------------------------------------------------------------------------------------------------
# a stored exploration

@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    from multivector.explore.ensemble import explore

    folder = tmp_path_factory.mktemp("geo")
    shutil.copytree(DATA / "landlocked", folder / "landlocked")
    db = folder / "g.duckdb"
    explore(str(folder / "landlocked"), n=5, seed=3, db=db, run_id="g1", chunk_size=5)
    return db


def test_a_stored_run_is_replayed_and_reproduces_the_store(explored, tmp_path):
    from multivector.explore.store import Store

    out = tmp_path / "g.geojson"
    r = invoke("export", "geojson", "g1", out, "--db", explored, "--run", 2)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["multivector"]["exploration"] == "g1" and doc["multivector"]["run"] == 2
    with Store(explored, read_only=True) as store:
        final = store.run_outcomes("g1")[f"{store.headline('g1')}"]
        stored = store.outcomes("g1", run=2)
    s = mv.load(DATA / "landlocked")
    assert_rfc7946(doc, s)
    years = doc["multivector"]["years"]
    assert years == [int(y) for y in stored["year"]]
    # the link flows belong to run 2: different runs give different flows
    other = tmp_path / "other.geojson"
    assert invoke("export", "geojson", "g1", other, "--db", explored, "--run", 0).exit_code == 0
    flows = lambda d: np.array([f["properties"][f"flow_{years[-1]}"] or 0.0 for f in d["features"]])
    assert not np.allclose(flows(doc), flows(json.loads(other.read_text(encoding="utf-8"))))
    # without --run: the run whose final index is the median
    median = tmp_path / "median.geojson"
    assert invoke("export", "geojson", "g1", median, "--db", explored).exit_code == 0
    chosen = json.loads(median.read_text(encoding="utf-8"))["multivector"]["run"]
    assert final.loc[chosen] == sorted(final)[(len(final) - 1) // 2]


def test_a_store_the_model_no_longer_reproduces_is_refused(explored, tmp_path):
    import duckdb

    db = tmp_path / "changed.duckdb"
    shutil.copy(explored, db)
    con = duckdb.connect(str(db))
    column = next(c for c in con.execute("DESCRIBE outcomes").fetchdf()["column_name"] if c.endswith("_mt"))
    con.execute(f'UPDATE outcomes SET "{column}" = "{column}" * 1.5 + 1 WHERE run = 1')
    con.close()
    out = tmp_path / "x.geojson"
    r = invoke("export", "geojson", "g1", out, "--db", db, "--run", 1)
    assert r.exit_code == 2 and "does not come out as stored" in r.output and "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["nosuch", "{out}", "--db", "{db}"], "no run 'nosuch'"),
    (["g1", "{out}", "--db", "{db}", "--run", "99"], "holds no run 99"),
    (["g1", "{tmp}/missing/x.geojson", "--db", "{db}"], "does not exist"),
    (["g1", "{tmp}/x.txt", "--db", "{db}"], ".geojson"),
    (["g1", "{out}", "--scenario", "kazakhstan"], "RUN_ID and OUT, or --scenario and OUT"),
    (["{out}"], "RUN_ID and OUT, or --scenario and OUT"),
    (["g1", "{out}", "--db", "{tmp}/none.duckdb"], "does not exist"),
])
def test_bad_input_is_one_line_and_writes_nothing(explored, tmp_path, args, message):
    out = tmp_path / "x.geojson"
    args = [a.format(out=out, db=explored, tmp=tmp_path) for a in args]
    r = invoke("export", "geojson", *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not list(tmp_path.glob("*.geojson")) and not list(tmp_path.glob(".*"))


def test_an_existing_file_is_replaced(tiny_dir, tmp_path):
    out = tmp_path / "tiny.geojson"
    out.write_text("old")
    assert invoke("export", "geojson", "--scenario", tiny_dir, out).exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8"))["type"] == "FeatureCollection"
