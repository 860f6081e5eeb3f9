"""Gateway outputs: what each border crossing and port handles, by direction and commodity, per year."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from multivector.dataset import load
from multivector.errors import InputError
from multivector.freight.network import crossing_direction
from multivector.interfaces.cli import app
from multivector.model import simulate
from multivector.views.document import document_value, run_document

DATA = Path(__file__).parent / "data"


def _direction(a, b):
    """The rule of docs/design.md, written out again: (lon, lat) -> compass direction of travel."""
    dlon = b[0] - a[0]
    dlon = dlon - 360 if dlon > 180 else dlon + 360 if dlon < -180 else dlon
    east = dlon * math.cos(math.radians((a[1] + b[1]) / 2))
    dlat = b[1] - a[1]
    if abs(east) >= abs(dlat):
        return "westbound" if east < 0 else "eastbound"
    return "northbound" if dlat > 0 else "southbound"


@pytest.fixture(scope="module")
def landlocked_run():
    s = load(DATA / "landlocked")
    ds = simulate(s, 2, years=[2024, 2026], keep_routes=True, coupled=False,
                  overrides={"demand_growth_goods": 0.06})
    return s, ds


def test_crossing_direction_weighs_longitude_by_latitude():
    assert crossing_direction((0, 0), (1.5, 1)) == "eastbound"
    assert crossing_direction((0, 60), (1.5, 61)) == "northbound"     # 1.5° of longitude is 0.74° there
    assert crossing_direction((0, 60), (-3, 59)) == "westbound"
    assert crossing_direction((10, 50), (10.2, 45)) == "southbound"
    assert crossing_direction((179, 0), (-179, 0)) == "eastbound"      # the short way, over the antimeridian
    assert crossing_direction((5, 5), (5, 5)) == "eastbound"           # no movement: a tie, east–west


def test_gateway_tonnes_are_the_shipped_route_flows_through_them_by_direction(landlocked_run):
    s, ds = landlocked_run
    nodes = s.nodes.set_index("id")
    where = {n: (float(r["lon"]), float(r["lat"])) for n, r in nodes.iterrows()}
    tpu = {c: m.tonnes_per_unit for c, m in s.commodities.items()}
    from multivector.model import compiled

    net = compiled(s).network
    h = ds["route_flow"].values                                             # [N, Y, K], shipped flows
    expected = {}
    for k, path in enumerate(ds["route_path"].values):
        places = path.split(" > ")
        commodity = net.od_commodity[net.route_od[k]]
        for j, p in enumerate(places):
            if nodes.at[p, "kind"] not in ("border", "gauge_change", "port", "terminal"):
                continue
            before, after = places[max(j - 1, 0)], places[min(j + 1, len(places) - 1)]
            key = (p, _direction(where[before], where[after]))
            expected[key] = expected.get(key, 0.0) + h[:, :, k] * tpu[commodity]
    assert {g for g, _ in expected} == {"NGT-BRD", "LL-LAK", "BB-LAK", "PP-PRT"}
    got = ds["gateway_tonnes"]
    for g in ds["gateway"].values:
        for d in ds["direction"].values:
            want = expected.get((str(g), str(d)), np.zeros(h.shape[:2]))
            np.testing.assert_allclose(got.sel(gateway=g, direction=d).values, want, rtol=1e-12, atol=1e-9)
    # the lake ports carry the lakeside corridor one way; the border yard carries both highland ways
    assert set(ds["gateway"].values) == {"LL-LAK", "NGT-BRD", "BB-LAK", "PP-PRT"}
    assert ds["gateway_kind"].sel(gateway="NGT-BRD").item() == "gauge_change"
    assert float(got.sel(gateway="NGT-BRD", direction="northbound").min()) > 0


def test_teu_and_commodities_add_up(landlocked_run):
    _, ds = landlocked_run
    vol = ds["gateway_volume"]
    np.testing.assert_allclose(ds["gateway_teu"].values, vol.sel(commodity="goods").values)
    np.testing.assert_allclose(ds["gateway_tonnes"].values,
                               vol.sel(commodity="goods").values * 10.0 + vol.sel(commodity="ore").values * 1e6)
    # what passes the last gateway before the sea is every unit of demand that reaches Portia
    assert ds["gateway_tonnes"].attrs["units"] == "t" and ds["gateway_teu"].attrs["units"] == "TEU"


def test_westbound_only_demand_yields_no_eastbound_flow(tiny_dir):
    ds = simulate(load(tiny_dir), years=[2024], keep_routes=True)
    t = ds["gateway_tonnes"].isel(run=0, year=0)
    assert float(t.sel(direction="eastbound").sum()) == 0.0
    assert float(t.sel(gateway="DOSTYK", direction="westbound")) > 0
    # the same network with the trip reversed: everything crosses the other way
    (tiny_dir / "demand.csv").write_text("origin,destination,commodity,year,volume,source\n"
                                         "DUISBURG,XIAN,container,2024,100000,A-TOY\n")
    back = simulate(load(tiny_dir), years=[2024], keep_routes=True)["gateway_tonnes"].isel(run=0, year=0)
    assert float(back.sel(direction="westbound").sum()) == 0.0
    np.testing.assert_allclose(back.sel(gateway="DOSTYK", direction="eastbound"),
                               float(t.sel(gateway="DOSTYK", direction="westbound")), rtol=1e-6)


def test_focus_overland_share_in_tonnes(landlocked_run):
    _, ds = landlocked_run
    share = ds["focus_overland_share_tonnes"].values
    assert np.all((share > 0) & (share <= 1))
    # ore, which never loads a container, counts in tonnes only: the two shares differ
    assert not np.allclose(share, ds["focus_overland_share"].values)


def test_focus_transit_counts_the_freight_that_crosses_the_focus_country_from_abroad_to_abroad(landlocked_run):
    """A railway's transit: Centralia's goods for Portia on the routes through Landlockia count, those on
    the direct line to Alandia do not, and Landlockia's own goods and ore (it is their origin) never do."""
    s, ds = landlocked_run
    from multivector.model import compiled

    net = compiled(s).network
    h = ds["route_flow"].values                                             # [N, Y, K]
    through, direct, own = (np.zeros(h.shape[:2]) for _ in range(3))
    for k, path in enumerate(ds["route_path"].values):
        origin = net.od_origin[net.route_od[k]]
        if origin in ("LL-CAP", "LL-MIN"):              # the capital's goods, the mine's ore: Landlockia's own
            own += h[:, :, k]
        elif "LL-JCT" in path.split(" > "):
            through += h[:, :, k]
        else:
            direct += h[:, :, k]
    assert through.min() > 0 and direct.min() > 0 and own.min() > 0       # every kind of route is used
    # Centralia ships goods only (10 t a TEU), so its transit in tonnes is ten times its TEU
    np.testing.assert_allclose(ds["focus_transit_teu"].values, through, rtol=1e-12)
    np.testing.assert_allclose(ds["focus_transit_tonnes"].values, 10.0 * through, rtol=1e-12)
    assert ds["focus_transit_teu"].attrs["units"] == "TEU/yr" and ds["focus_transit_tonnes"].attrs["units"] == "t/yr"
    doc = run_document(ds)
    assert doc["focus_transit_teu"][1] == pytest.approx(float(np.median(through[:, 1])))


def test_the_run_document_carries_gateways(landlocked_run):
    _, ds = landlocked_run
    doc = run_document(ds)
    g = doc["gateways"]["NGT-BRD"]
    assert g["name"] == "Northgate border yard" and g["kind"] == "gauge_change" and g["country"] == "LL/AA"
    med = ds["gateway_tonnes"].sel(gateway="NGT-BRD").sum("direction").median("run").values
    assert document_value(doc, "gateways.NGT-BRD.tonnes", 1) == pytest.approx(med[1])
    assert document_value(doc, "gateways.NGT-BRD.directions.northbound.teu", 0) > 0
    assert set(g["directions"]) <= {"westbound", "eastbound", "northbound", "southbound"}
    assert "eastbound" not in doc["gateways"]["NGT-BRD"]["directions"]
    assert set(g["commodities"]) == {"goods", "ore"} and len(g["tonnes"]) == len(doc["years"]) == 2
    assert doc["focus_overland_share_tonnes"][0] == pytest.approx(float(ds["focus_overland_share_tonnes"][:, 0].median()))


def test_run_prints_the_gateway_table():
    res = CliRunner().invoke(app, ["run", str(DATA / "landlocked"), "--network-only"])
    assert res.exit_code == 0, res.output
    assert "Landlockia's gateways in 2024" in res.output and "Northgate border yard" in res.output
    assert "Port of Portia" not in res.output.split("gateways in 2024")[1].split("Top bottlenecks")[0]
    assert "of tonnes" in res.output
    every = CliRunner().invoke(app, ["run", str(DATA / "landlocked"), "--network-only", "--gateways"])
    assert every.exit_code == 0, every.output
    assert "Port of Portia" in every.output


@pytest.mark.parametrize("value, message", [
    ('["border", "harbour"]', "gateway_kinds names unknown node kind 'harbour'"),
    ('"port"', "gateway_kinds must be a list of node kinds"),
    ('[1, 2]', "gateway_kinds must be a list of node kinds"),
])
def test_bad_gateway_kinds_are_refused_naming_the_file_and_key(tmp_path, value, message):
    target = tmp_path / "ll"
    shutil.copytree(DATA / "landlocked", target)
    toml = target / "model.toml"
    toml.write_text(toml.read_text().replace('capacities = "hard"', f'capacities = "hard"\ngateway_kinds = {value}', 1))
    with pytest.raises(InputError, match="model.toml") as err:
        load(target)
    assert message in str(err.value)
    res = CliRunner().invoke(app, ["run", str(target), "--network-only"])
    assert res.exit_code == 2 and message in res.output


def test_gateway_kinds_choose_the_gateways_and_targets_may_name_them(tmp_path):
    target = tmp_path / "ll"
    shutil.copytree(DATA / "landlocked", target)
    toml = target / "model.toml"
    toml.write_text(toml.read_text().replace('capacities = "hard"', 'capacities = "hard"\ngateway_kinds = ["port"]', 1))
    s = load(target)
    assert s.gateways == ["LL-LAK", "BB-LAK", "PP-PRT"]
    targets = target / "targets.csv"
    with open(targets, "a") as fh:
        fh.write("TG,2024,gateway:PP-PRT:teu:eastbound,1000,TEU,A-LL-GEO,gateway target\n")
    load(target)
    for bad, message in (("gateway:NGT-BRD:tonnes", "unknown gateway"), ("gateway:PP-PRT:mt", "tonnes or teu"),
                         ("gateway:PP-PRT:teu:upward", "direction is one of")):
        targets.write_text(targets.read_text().replace(targets.read_text().splitlines()[-1].split(",")[2], bad))
        with pytest.raises(InputError, match=message):
            load(target)


def _one_way_dostyk(folder: Path, eastbound_capacity: str) -> None:
    """The tiny dataset's Dostyk as a crossing with a limit per direction, and freight going east too."""
    path = folder / "transfers.csv"
    text = path.read_text().replace("DOSTYK,rail_1435|rail_1520,5,", "DOSTYK,rail_1435>rail_1520,5,")
    path.write_text(text + f"DOSTYK,rail_1520>rail_1435,{eastbound_capacity},12,100,,*=A-TOY\n")
    with open(folder / "demand.csv", "a") as fh:
        fh.write("DUISBURG,XIAN,container,2024,60000,A-TOY\n")


def test_a_one_way_transfer_carries_only_its_direction_within_its_own_capacity(tiny_dir):
    """Dostyk's limits are agreed per direction (trains accepted from China, trains handed to it): with an
    ``a>b`` row for each, westbound and eastbound freight each use their own resource, and a tight
    eastbound limit holds the eastbound flow without touching the westbound one."""
    _one_way_dostyk(tiny_dir, "0.05")
    s = load(tiny_dir)
    ds = simulate(s, 1, years=[2024], coupled=False, keep_routes=True)
    one = ds.isel(run=0, year=0)
    west = one.sel(resource="T:DOSTYK:rail_1435>rail_1520", gateway="DOSTYK")
    east = one.sel(resource="T:DOSTYK:rail_1520>rail_1435", gateway="DOSTYK")
    assert str(west["resource_label"].values) == "DOSTYK rail_1435→rail_1520"
    # each resource carries exactly what crosses the gateway its way (Mt against tonnes)
    assert float(west["flow_mt"]) * 1e6 == pytest.approx(float(west["gateway_tonnes"].sel(direction="westbound")))
    assert float(east["flow_mt"]) * 1e6 == pytest.approx(float(east["gateway_tonnes"].sel(direction="eastbound")))
    assert float(east["flow_mt"]) > 0.01 and float(west["flow_mt"]) > 0.5
    assert float(east["utilisation"]) <= 1.005            # the hard capacity holds for the eastbound row
    assert float(west["utilisation"]) < 0.5

    # widen the eastbound limit: more goes east through Dostyk, the westbound resource barely notices
    wide = tiny_dir.parent / "wide"
    shutil.copytree(DATA / "tiny", wide)
    _one_way_dostyk(wide, "5")
    ds2 = simulate(load(wide), 1, years=[2024], coupled=False, keep_routes=True)
    east2 = ds2.isel(run=0, year=0).sel(resource="T:DOSTYK:rail_1520>rail_1435")
    assert float(east2["flow_mt"]) > 2 * float(east["flow_mt"])


def test_a_crossing_closed_one_way_sends_that_direction_elsewhere(tiny_dir):
    """Without an eastbound row, Dostyk cannot be crossed eastward: no eastbound route passes it."""
    path = tiny_dir / "transfers.csv"
    path.write_text(path.read_text().replace("DOSTYK,rail_1435|rail_1520,", "DOSTYK,rail_1435>rail_1520,"))
    with open(tiny_dir / "demand.csv", "a") as fh:
        fh.write("DUISBURG,XIAN,container,2024,60000,A-TOY\n")
    ds = simulate(load(tiny_dir), 1, years=[2024], coupled=False)
    tonnes = ds["gateway_tonnes"].sel(gateway="DOSTYK").isel(run=0, year=0)
    assert float(tonnes.sel(direction="eastbound")) == 0.0
    assert float(tonnes.sel(direction="westbound")) > 0.0


@pytest.mark.parametrize("rows, expect", [
    (["DOSTYK,rail_1435>rail_1520,5,12,100,,*=A-TOY"], "another row already serves that direction"),
    (["DOSTYK,rail_1435>rail_1435,5,12,100,,*=A-TOY"], "not two different layers"),
    (["DOSTYK,rail_1435>rail_1520>water,5,12,100,,*=A-TOY"], "not two different layers"),
])
def test_transfer_rows_that_clash_or_misread_are_refused_with_their_row(tiny_dir, rows, expect):
    path = tiny_dir / "transfers.csv"
    path.write_text(path.read_text() + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as info:
        load(tiny_dir)
    assert expect in str(info.value) and "transfers.csv" in str(info.value) and "row 7" in str(info.value)


# ------------------------------------------------------------------------------------------------
# corridors by direction, and a tariff group on the return legs

def _two_way_sea(folder: Path, factor: str | None) -> None:
    """The tiny network with its sea legs run back Europe to China (a second pair of one-way links),
    demand both ways, and the return legs in tariff group ``backhaul`` at ``factor`` (no group: None)."""
    links = (folder / "links.csv").read_text().splitlines()
    links[0] += ",oneway,tariff_group"
    links = [links[0]] + [line + ("," + ("1" if ",sea," in line else "") + ",") for line in links[1:]]
    group = "backhaul" if factor is not None else ""
    links += [f"L9R,SUEZ,SHA,sea,,13500,,,,,container,*=A-TOY,1,{group}",
              f"L10R,DUISBURG,SUEZ,sea,,6300,,,,,container,*=A-TOY,1,{group}"]
    (folder / "links.csv").write_text("\n".join(links) + "\n")
    (folder / "demand.csv").write_text("origin,destination,commodity,year,volume,source\n"
                                       "XIAN,DUISBURG,container,2024,100000,A-TOY\n"
                                       "DUISBURG,XIAN,container,2024,40000,A-TOY\n")
    if factor is not None:
        with open(folder / "model.toml", "a") as fh:
            fh.write(f'\n[parameters.tariff_factor_backhaul]\nvalue = {factor}\nmin = 0.1\nmax = 1.0\n'
                     'unit = "ratio"\nsource = "A-TOY"\n')


def test_corridor_freight_splits_by_the_way_its_ods_go(tiny_dir):
    _two_way_sea(tiny_dir, None)
    s = load(tiny_dir)
    ds = simulate(s, years=[2024], keep_routes=True)
    from multivector.model import compiled

    net = compiled(s).network
    flow = ds["route_flow"].isel(run=0, year=0).values
    west = np.array([net.od_origin[o] == "XIAN" for o in net.route_od])
    by_dir = ds["teu_by_direction"].isel(run=0, year=0)
    for c in ds["corridor"].values:
        mine = ds["route_corridor"].values == c
        np.testing.assert_allclose(by_dir.sel(corridor=c, direction="westbound"), flow[mine & west].sum(), rtol=1e-12)
        np.testing.assert_allclose(by_dir.sel(corridor=c, direction="eastbound"), flow[mine & ~west].sum(), rtol=1e-12)
        np.testing.assert_allclose(by_dir.sel(corridor=c).sum(), ds["teu"].isel(run=0, year=0).sel(corridor=c),
                                   rtol=1e-12)
    assert float(by_dir.sel(direction="eastbound").sum()) == pytest.approx(40000, rel=1e-9)
    # the run document and the calibration metric read the same split
    doc = run_document(ds)
    sea = doc["corridors"]["sea"]["directions"]
    assert set(sea) == {"westbound", "eastbound"}
    assert sea["eastbound"]["teu"][0] == pytest.approx(float(by_dir.sel(corridor="sea", direction="eastbound")))
    from multivector.model.calibrate import metric_values

    assert metric_values(s, ds, "corridor:sea:teu:eastbound", 2024)[0] == pytest.approx(sea["eastbound"]["teu"][0])
    assert metric_values(s, ds, "corridor:sea:tonnes:westbound", 2024)[0] == pytest.approx(
        10.0 * float(by_dir.sel(corridor="sea", direction="westbound")), rel=1e-12)


def test_a_tariff_group_scales_only_its_links_tariff(tiny_dir):
    _two_way_sea(tiny_dir, "1.0")
    s = load(tiny_dir)
    from multivector.freight.model import _Costs
    from multivector.model import compiled

    model = compiled(s).freight
    p = s.defaults()
    costs = {f: _Costs(model.net, model.cost_layout,
                       {k: np.array([v]) for k, v in {**p, "tariff_factor_backhaul": f}.items()}, 1)
             for f in (1.0, 0.25)}
    back = model.net.edge_tariff_group == "backhaul"
    assert back.sum() == 2          # the two return legs, one way each
    np.testing.assert_allclose(costs[0.25].edge_tariff[back], 0.25 * costs[1.0].edge_tariff[back], rtol=1e-12)
    np.testing.assert_allclose(costs[0.25].edge_tariff[~back], costs[1.0].edge_tariff[~back], rtol=1e-12)
    assert costs[1.0].edge_tariff[back].sum() == pytest.approx(p["tariff_sea"] * (13500 + 6300))
    # cheaper return legs draw eastbound boxes to the sea
    east = lambda f: float(simulate(s, years=[2024], overrides={"tariff_factor_backhaul": f})["teu_by_direction"]
                           .isel(run=0, year=0).sel(corridor="sea", direction="eastbound"))
    assert east(0.25) > east(1.0) > 0


def test_a_facility_in_two_capacity_groups_takes_both_factors(tiny_dir):
    """A facility can sit in several capacity groups (a fleet's and its own ramp's): its capacity is its
    nominal one times its layer's factor and every group's, and a utilisation outcome over either group
    reads it."""
    links = (tiny_dir / "links.csv").read_text().splitlines()
    links[0] += ",capacity_group"
    links = [links[0]] + [line + ("," + ("fleet;ramp" if line.startswith("L3,") else "")) for line in links[1:]]
    (tiny_dir / "links.csv").write_text("\n".join(links) + "\n")
    with open(tiny_dir / "model.toml", "a") as fh:
        for name, value in (("fleet", 2.0), ("ramp", 0.25)):
            fh.write(f'\n[parameters.capacity_factor_{name}]\nvalue = {value}\nmin = 0.1\nmax = 2.0\n'
                     'unit = "factor"\nsource = "A-TOY"\n')
    s = load(tiny_dir)
    assert s.capacity_groups == ["fleet", "ramp"]
    ds = simulate(s, years=[2024])
    ferry = ds["resource_link"].values == "L3"
    water = s.defaults()["capacity_factor_water"]
    from multivector.freight.model import _Costs
    from multivector.model import compiled

    model = compiled(s).freight
    p = {k: np.array([v]) for k, v in s.defaults().items()}
    costs = _Costs(model.net, model.cost_layout, p, 1)
    cap = costs.capacity[np.asarray(model.net.resource_link) == "L3"]
    np.testing.assert_allclose(cap, 0.5 * water * 2.0 * 0.25, rtol=1e-12)
    from multivector.explore.checks import outcome_values

    for group in ("fleet", "ramp"):
        np.testing.assert_allclose(outcome_values(ds, f"utilisation:{group}")[0, 0],
                                   ds["utilisation"].isel(run=0, year=0).values[ferry], rtol=1e-12)


def test_a_tariff_group_without_its_factor_is_refused(tiny_dir):
    _two_way_sea(tiny_dir, None)
    text = (tiny_dir / "links.csv").read_text().replace("container,*=A-TOY,1,\n", "container,*=A-TOY,1,backhaul\n")
    (tiny_dir / "links.csv").write_text(text)
    with pytest.raises(InputError, match="tariff_factor_backhaul"):
        load(tiny_dir)


def test_run_prints_each_corridor_s_boxes_by_direction_beside_the_observed(tiny_dir):
    _two_way_sea(tiny_dir, None)
    with open(tiny_dir / "targets.csv", "a") as fh:
        fh.write("T-SEA-E,2024,corridor:sea:teu:eastbound,30000,TEU,A-TOY,eastbound boxes by sea\n")
    res = CliRunner().invoke(app, ["run", str(tiny_dir), "--network-only", "--seeds", "1"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    header = next(line for line in res.output.splitlines() if "corridor" in line and "TEU" in line)
    assert "W TEU" in header and "E TEU" in header and "N TEU" not in header
    sea = next(line for line in res.output.splitlines() if line.strip("│ ").startswith("sea "))
    assert "(obs 30,000)" in sea


def test_a_corridor_names_only_known_commodities(tiny_dir):
    toml = tiny_dir / "model.toml"
    toml.write_text(toml.read_text().replace('via_nodes = ["MOSCOW"]', 'via_nodes = ["MOSCOW"]\ncommodities = ["boxes"]'))
    with pytest.raises(InputError, match=r"\[corridors.north\] commodities: unknown commodity 'boxes'"):
        load(tiny_dir)
