"""Reading datasets: every kind of bad input is a clear InputError naming file, row and column."""

import pytest

import multivector as mv
from multivector.errors import InputError

from conftest import edit_csv


def test_tiny_loads(tiny_dir):
    s = mv.load(tiny_dir)
    assert len(s.links) == 10
    assert set(s.corridors) == {"sea", "middle", "north"}


@pytest.mark.parametrize("table,row,column,value,expect", [
    ("links.csv", 2, "to", "BAKUU", "unknown node 'BAKUU'"),
    ("links.csv", 2, "capacity_mt", "-3", "must not be negative"),
    ("links.csv", 2, "capacity_mt", "", "needs a capacity"),
    ("links.csv", 1, "id", "L1", "duplicate link id 'L1'"),
    ("links.csv", 3, "length_km", "12km", "'12km' is not a number"),
    ("links.csv", 3, "mode", "hovercraft", "unknown mode"),
    ("links.csv", 0, "gauge_mm", "1000", "gauge_mm"),
    ("links.csv", 0, "sources", "", "has no source"),
    ("links.csv", 0, "sources", "*=NOPE", "source 'NOPE' is not in sources.csv"),
    ("links.csv", 4, "risk_class", "pirates", "no parameter 'risk_pirates'"),
    ("transfers.csv", 0, "between", "rail_1435|rail_1000", "not two different layers"),
    ("demand.csv", 0, "volume", "lots", "'lots' is not a number"),
    ("demand.csv", 0, "commodity", "grain", "unknown commodity 'grain'"),
    ("nodes.csv", 1, "lat", "95", "latitude 95.0 out of range"),
    ("targets.csv", 0, "year", "2030", "up to 2024"),
])
def test_bad_cell_names_file_row_and_column(tiny_dir, table, row, column, value, expect):
    edit_csv(tiny_dir / table, row, column, value)
    with pytest.raises(InputError) as info:
        mv.load(tiny_dir)
    text = str(info.value)
    assert expect in text
    assert table in text
    if "duplicate" not in expect:
        assert f"row {row + 2}" in text or table == "transfers.csv"


def test_a_ferry_without_a_capacity_must_say_why(tiny_dir):
    """A ferry's capacity may be left empty only where its sources name why (a tramp voyage whose limit
    is its port's, as Taman's bulk legs); then the link is not a limit at all."""
    edit_csv(tiny_dir / "links.csv", 2, "capacity_mt", "")
    edit_csv(tiny_dir / "links.csv", 2, "sources", "length_km=A-TOY;extra_time_h=A-TOY")
    with pytest.raises(InputError, match="needs a capacity") as info:
        mv.load(tiny_dir)
    assert "capacity_mt=ID" in str(info.value) and "row 4" in str(info.value)
    edit_csv(tiny_dir / "links.csv", 2, "sources", "length_km=A-TOY;extra_time_h=A-TOY;capacity_mt=A-TOY")
    s = mv.load(tiny_dir)
    ds = mv.simulate(s, 1, years=[s.base_year], coupled=False, seed=0)
    ferry = ds["capacity_mt"].sel(resource=ds["resource_link"] == "L3")
    assert ferry.size and bool(ferry.isnull().all())


def test_missing_file_and_column(tiny_dir):
    (tiny_dir / "targets.csv").unlink()
    with pytest.raises(InputError, match="targets.csv: file is missing"):
        mv.load(tiny_dir)


def test_parameter_out_of_range(tiny_dir):
    toml = tiny_dir / "model.toml"
    toml.write_text(toml.read_text().replace("value = 5.0", "value = 500.0", 1))
    with pytest.raises(InputError, match=r"parameters.vot_container.*outside its range"):
        mv.load(tiny_dir)


def test_a_commodity_premium_must_name_a_commodity(tiny_dir):
    """``risk_<class>_<commodity>`` is a commodity's own premium; a misspelt commodity would be a
    parameter the engine never charges, so it is refused at load."""
    toml = tiny_dir / "model.toml"
    block = toml.read_text().split("[parameters.risk_russia]")[1].split("\n\n")[0]
    toml.write_text(toml.read_text() + "\n[parameters.risk_russia_contaner]" + block + "\n")
    with pytest.raises(InputError) as info:
        mv.load(tiny_dir)
    assert "'risk_russia_contaner' reads as risk class 'russia' for commodity 'contaner'" in str(info.value)
    assert "model.toml" in str(info.value)
    toml.write_text(toml.read_text().replace("risk_russia_contaner", "risk_russia_container"))
    assert "risk_russia_container" in mv.load(tiny_dir).parameters


def test_unknown_parameter_lists_close_matches(tiny_dir):
    s = mv.load(tiny_dir)
    with pytest.raises(InputError, match="did you mean vot_container"):
        mv.simulate(s, overrides={"vot_contaner": 3})


def test_od_without_path_is_an_error(tiny_dir):
    with open(tiny_dir / "nodes.csv", "a") as fh:
        fh.write("ISLE,Island,XX,destination,10,10,A-TOY\nROCK,Rock,XX,junction,11,11,A-TOY\n")
    with open(tiny_dir / "links.csv", "a") as fh:
        fh.write("L99,ISLE,ROCK,rail,1435,100,,,,,container,*=A-TOY\n")
    with open(tiny_dir / "demand.csv", "a") as fh:
        fh.write("XIAN,ISLE,container,2024,10,A-TOY\n")
    s = mv.load(tiny_dir)
    with pytest.raises(InputError, match="no path for container from XIAN to ISLE"):
        mv.simulate(s)


def test_not_a_dataset(tmp_path):
    with pytest.raises(InputError, match="no model.toml"):
        mv.load(tmp_path)
    with pytest.raises(InputError, match="no dataset or folder named"):
        mv.load("atlantis")


def test_a_parameter_the_engine_reads_must_be_declared(tiny_dir):
    _drop_parameter(tiny_dir, "vdf_alpha")
    with pytest.raises(InputError, match="no parameter 'vdf_alpha'"):
        mv.load(tiny_dir)


def test_a_gauge_change_without_a_capacity_needs_no_queue_scale(tiny_dir):
    """``queue_scale_rail_h`` is required where a rail-to-rail transfer queues, i.e. has a capacity;
    with the tiny network's gauge changes uncapacitated it would be dead, so it may go."""
    with pytest.raises(InputError, match="queue_scale_rail_h"):
        _drop_parameter(tiny_dir, "queue_scale_rail_h")
        mv.load(tiny_dir)
    transfers = tiny_dir / "transfers.csv"
    lines = transfers.read_text().splitlines()
    rows = [",".join([*l.split(",")[:2], "", *l.split(",")[3:]]) if l.split(",")[0] in ("DOSTYK", "BREST") else l
            for l in lines]
    transfers.write_text("\n".join(rows) + "\n")
    mv.load(tiny_dir)


def _drop_parameter(folder, name):
    """Remove ``[parameters.NAME]`` (up to the next table) from a dataset folder's model.toml."""
    toml = folder / "model.toml"
    text = toml.read_text()
    start = text.index(f"[parameters.{name}]")
    end = text.index("\n[", start) + 1
    toml.write_text(text[:start] + text[end:])


def test_route_sets_are_cached_by_what_they_are_compiled_from(tiny_dir, tmp_path, monkeypatch):
    import numpy as np

    from multivector.freight.network import cached_network, compile_network, network_key

    monkeypatch.setenv("MULTIVECTOR_CACHE_DIR", str(tmp_path / "cache"))
    s = mv.load(tiny_dir)
    first = cached_network(s)
    files = list((tmp_path / "cache" / "networks").glob("*.pickle"))
    assert [f.stem for f in files] == [network_key(s)]
    again = cached_network(mv.load(tiny_dir))                      # read back, not compiled
    fresh = compile_network(s)
    assert again.route_nodes == fresh.route_nodes == first.route_nodes
    assert (again.route_edges != fresh.route_edges).nnz == 0
    assert np.array_equal(again.resource_capacity, fresh.resource_capacity, equal_nan=True)

    # an edited dataset is another key: its route set is compiled, not read
    edit_csv(tiny_dir / "links.csv", 0, "length_km", "999")
    edited = mv.load(tiny_dir)
    assert network_key(edited) != network_key(s)
    assert np.allclose(cached_network(edited).edge_length, compile_network(edited).edge_length)
    assert len(list((tmp_path / "cache" / "networks").glob("*.pickle"))) == 2

    # a damaged entry is compiled again and replaced; an empty setting turns the cache off
    files[0].write_bytes(b"not a pickle")
    assert cached_network(s).route_nodes == fresh.route_nodes
    assert files[0].read_bytes() != b"not a pickle"
    monkeypatch.setenv("MULTIVECTOR_CACHE_DIR", "")
    for f in (tmp_path / "cache" / "networks").glob("*.pickle"):
        f.unlink()
    cached_network(s)
    assert not list((tmp_path / "cache" / "networks").glob("*.pickle"))


def test_only_the_defaults_that_price_free_flow_routes_key_the_route_set(tiny_dir):
    """A route set is compiled from speeds, tariffs and values of time only: a fitted premium, logit
    scale or capacity keeps the cached set (no recompile), while a tariff makes another key. The set
    compiled from those defaults alone is the one compiled before the key was narrowed."""
    import dataclasses

    from multivector.freight.network import ROUTE_PARAMETERS, compile_network, network_key, route_defaults

    s = mv.load(tiny_dir)
    defaults = s.defaults()
    refit = lambda **values: dataclasses.replace(s, calibration={"values": values}, _fingerprint=None)
    others = [k for k in defaults if not k.startswith(ROUTE_PARAMETERS)]
    assert any(k.startswith("risk_") for k in others) and any(k.startswith("logit_scale_") for k in others)
    for name in others:
        assert network_key(refit(**{name: defaults[name] * 1.5 + 1.0})) == network_key(s), name
    tariff = next(k for k in defaults if k.startswith("tariff_"))
    assert network_key(refit(**{tariff: defaults[tariff] * 2 + 0.01})) != network_key(s)
    assert set(route_defaults(s)) == {k for k in defaults if k.startswith(ROUTE_PARAMETERS)}
    assert compile_network(s).route_nodes == compile_network(refit(risk_russia=5000.0)).route_nodes


def test_a_timeline_year_outside_the_networks_years_is_refused(tiny_dir):
    """tiny's demand starts in 2024 and it has no political register: 2019 cannot be simulated."""
    (tiny_dir / "timeline.csv").write_text("year,parameter,value,source\n2019,vdf_alpha,0.2,A-TOY\n")
    with pytest.raises(InputError) as info:
        mv.load(tiny_dir)
    text = str(info.value)
    assert "timeline.csv" in text and "row 2" in text and "year 2019 lies outside the network's years 2024-" in text


def test_a_target_above_what_its_facility_can_ever_carry_is_refused(tiny_dir):
    """The ferry L3 takes 0.5 Mt/yr (times its capacity factor's upper bound): 50 Mt observed is a
    mistake in one of the two files, named with both rows."""
    with open(tiny_dir / "targets.csv", "a") as fh:
        fh.write("T2,2024,link:L3:mt,50,Mt,A-TOY,too much\n")
    with pytest.raises(InputError) as info:
        mv.load(tiny_dir)
    text = str(info.value)
    assert "targets.csv" in text and "row 3" in text and "exceeds the most it can carry" in text
    assert "links.csv row" in text


def test_an_observation_error_of_zero_is_refused(tiny_dir):
    (tiny_dir / "targets.csv").write_text("id,year,metric,observed,unit,source,note,error\n"
                                          "T1,2024,corridor:middle:teu,10000,TEU,A-TOY,toy target,0\n")
    with pytest.raises(InputError) as info:
        mv.load(tiny_dir)
    assert "targets.csv" in str(info.value) and "error" in str(info.value)
