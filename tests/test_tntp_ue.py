"""TNTP readers/writer and the user-equilibrium solver (multivector.freight.tntp, multivector.freight.ue)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from multivector import io as mv_io
from multivector.freight import tntp
from multivector.freight import ue
from multivector.freight.ue import (
    AllOrNothing,
    all_or_nothing,
    solve_ue,
    solve_ue_arrays,
)
from multivector.errors import ConvergenceWarning, InputError

SIOUX = Path(__file__).parent / "data" / "tntp" / "SiouxFalls"
NET = SIOUX / "SiouxFalls_net.tntp"
TRIPS = SIOUX / "SiouxFalls_trips.tntp"
FLOW = SIOUX / "SiouxFalls_flow.tntp"

HEADER = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 3
<FIRST THRU NODE> 1
<NUMBER OF LINKS> 3
<END OF METADATA>

~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\tlink_type\t;
"""
ROWS = [
    "\t1\t2\t100\t1\t1\t0.15\t4\t0\t0\t1\t;",
    "\t2\t3\t100\t1\t1\t0.15\t4\t0\t0\t1\t;",
    "\t3\t1\t100\t1\t1\t0.15\t4\t0\t0\t1\t;",
]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def net_text(rows=ROWS, header=HEADER):
    return header + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def sioux():
    net = tntp.read_network(NET)
    od = tntp.read_trips(TRIPS, net.n_zones)
    return net, od


@pytest.fixture(scope="module")
def sioux_ue(sioux):
    net, od = sioux
    return solve_ue(net, od, gap=1e-5, max_iter=2000)


# ---------------------------------------------------------------------------------------------
# readers


def test_read_sioux_falls(sioux):
    net, od = sioux
    assert (net.n_zones, net.n_nodes, net.first_thru_node, net.n_links) == (24, 24, 1, 76)
    assert net.init[:2].tolist() == [1, 1] and net.term[:2].tolist() == [2, 3]  # 1-based as in the file
    assert net.capacity[0] == pytest.approx(25900.20064)
    assert net.fftt[3] == 5 and net.b[0] == 0.15 and net.power[0] == 4
    assert od.shape == (24, 24)
    assert od.sum() == pytest.approx(360600.0)
    assert od[0, 1] == 100.0 and od[0, 9] == 1300.0 and od[1, 0] == 100.0  # Origin 1 -> 2, 1 -> 10, 2 -> 1
    assert np.all(np.diagonal(od) == 0)
    flows = tntp.read_flows(FLOW)
    assert flows.init.size == 76
    assert (flows.init == net.init).all() and (flows.term == net.term).all()
    assert flows.volume[0] == pytest.approx(4494.6576464564205)


def test_network_not_tntp(tmp_path):
    p = write(tmp_path, "x_net.tntp", "a,b,c\n1,2,3\n")
    with pytest.raises(InputError) as e:
        tntp.read_network(p)
    assert e.value.file == str(p) and e.value.row == 1
    assert "metadata" in str(e.value) and "TNTP" in str(e.value)


def test_network_missing_metadata(tmp_path):
    p = write(tmp_path, "x_net.tntp", net_text(header=HEADER.replace("<NUMBER OF LINKS> 3\n", "")))
    with pytest.raises(InputError, match="NUMBER OF LINKS") as e:
        tntp.read_network(p)
    assert e.value.file == str(p) and e.value.row == 4  # the <END OF METADATA> line

    p = write(tmp_path, "y_net.tntp", net_text(header=HEADER.replace("<END OF METADATA>\n", "")))
    with pytest.raises(InputError, match="METADATA"):
        tntp.read_network(p)


def test_network_non_numeric(tmp_path):
    rows = list(ROWS)
    rows[1] = "\t2\t3\tlots\t1\t1\t0.15\t4\t0\t0\t1\t;"
    p = write(tmp_path, "x_net.tntp", net_text(rows))
    with pytest.raises(InputError, match="'lots' is not a number") as e:
        tntp.read_network(p)
    assert e.value.file == str(p)
    assert e.value.row == 9  # 7 header lines, then the second link row
    assert e.value.column == "capacity"
    assert "x_net.tntp" in str(e.value) and "row 9" in str(e.value)


def test_network_link_count_mismatch(tmp_path):
    p = write(tmp_path, "x_net.tntp", net_text(ROWS[:2]))
    with pytest.raises(InputError, match=r"NUMBER OF LINKS> 3.*2 link rows") as e:
        tntp.read_network(p)
    assert e.value.file == str(p)

    p = write(tmp_path, "y_net.tntp", net_text(ROWS + [ROWS[0]]))
    with pytest.raises(InputError, match="4 link rows") as e:
        tntp.read_network(p)
    assert e.value.row == 11  # the first surplus row


def test_network_node_out_of_range(tmp_path):
    rows = list(ROWS)
    rows[2] = "\t3\t7\t100\t1\t1\t0.15\t4\t0\t0\t1\t;"
    p = write(tmp_path, "x_net.tntp", net_text(rows))
    with pytest.raises(InputError, match="node 7 is out of range 1..3") as e:
        tntp.read_network(p)
    assert (e.value.row, e.value.column) == (10, "term_node")


@pytest.mark.parametrize(
    "row, column",
    [
        ("\t1\t2\t-5\t1\t1\t0.15\t4\t0\t0\t1\t;", "capacity"),
        ("\t1\t2\t100\t1\t-1\t0.15\t4\t0\t0\t1\t;", "free_flow_time"),
        ("\t1\t2\t0\t1\t1\t0.15\t4\t0\t0\t1\t;", "capacity"),
        ("\t1.5\t2\t100\t1\t1\t0.15\t4\t0\t0\t1\t;", "init_node"),
        ("\t1\t2\t100\t1\t1\t0.15\t4\t0\t;", "toll"),
    ],
)
def test_network_bad_values(tmp_path, row, column):
    p = write(tmp_path, "x_net.tntp", net_text([row] + ROWS[1:]))
    with pytest.raises(InputError) as e:
        tntp.read_network(p)
    assert (e.value.file, e.value.row, e.value.column) == (str(p), 8, column)


def test_network_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        tntp.read_network(tmp_path / "nope_net.tntp")


TRIPS_TEXT = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 30.0
<END OF METADATA>


Origin \t1
    1 :      0.0;     2 :     10.0;

Origin \t2
    1 :     20.0;     2 :      0.0;
"""


def test_trips_small(tmp_path):
    od = tntp.read_trips(write(tmp_path, "x_trips.tntp", TRIPS_TEXT), n_zones=2)
    assert od.tolist() == [[0.0, 10.0], [20.0, 0.0]]


def test_trips_unknown_zone(tmp_path):
    p = write(tmp_path, "x_trips.tntp", TRIPS_TEXT.replace("2 :     10.0", "3 :     10.0"))
    with pytest.raises(InputError, match="unknown zone 3") as e:
        tntp.read_trips(p)
    assert (e.value.file, e.value.row, e.value.column) == (str(p), 7, "destination")


def test_trips_bad_values(tmp_path):
    p = write(tmp_path, "x_trips.tntp", TRIPS_TEXT.replace("20.0", "2O.0"))
    with pytest.raises(InputError, match="'2O.0' is not a number") as e:
        tntp.read_trips(p)
    assert (e.value.row, e.value.column) == (10, "demand")
    p = write(tmp_path, "y_trips.tntp", TRIPS_TEXT.replace("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 3"))
    with pytest.raises(InputError, match="does not match the network's 2 zones"):
        tntp.read_trips(p, n_zones=2)
    p = write(tmp_path, "z_trips.tntp", "Origin 1\n 1 : 2;\n")
    with pytest.raises(InputError, match="metadata") as e:
        tntp.read_trips(p)
    assert e.value.row == 1
    with pytest.warns(UserWarning, match="TOTAL OD FLOW"):
        tntp.read_trips(write(tmp_path, "w_trips.tntp", TRIPS_TEXT.replace("30.0", "31.0")))


def test_flow_round_trip(tmp_path, sioux_ue, sioux):
    net, _ = sioux
    out = tmp_path / "out_flow.tntp"
    tntp.write_flows(out, net.init, net.term, sioux_ue.flow, sioux_ue.cost)
    assert out.read_text().splitlines()[0] == "From\tTo\tVolume\tCost"
    back = tntp.read_flows(out)
    assert (back.init == net.init).all() and (back.term == net.term).all()
    assert np.array_equal(back.volume, sioux_ue.flow) and np.array_equal(back.cost, sioux_ue.cost)
    assert [p.name for p in tmp_path.iterdir()] == ["out_flow.tntp"]  # no temporary file left


def test_write_flows_failure_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out_flow.tntp"
    with pytest.raises(InputError, match="volume"):
        tntp.write_flows(out, [1, 2], [2, 1], [1.0], [1.0, 2.0])

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(mv_io.os, "replace", broken_replace)    # files are written by multivector.io
    with pytest.raises(OSError, match="disk full"):
        tntp.write_flows(out, [1, 2], [2, 1], [1.0, 2.0], [1.0, 2.0])
    assert list(tmp_path.iterdir()) == []


def test_flow_reader_bad_header(tmp_path):
    p = write(tmp_path, "x_flow.tntp", "a b c d\n1 2 3 4\n")
    with pytest.raises(InputError, match="From To Volume Cost") as e:
        tntp.read_flows(p)
    assert e.value.row == 1


# ---------------------------------------------------------------------------------------------
# all-or-nothing


def _random_network(seed, n_nodes=30, n_links=80, n_zones=8, parallel=6):
    """Zones 0..n_zones-1 tied both ways to two ordinary nodes each; a ring through the ordinary
    nodes keeps it connected; random extra links anywhere (self-loops and parallel links too)."""
    rng = np.random.default_rng(seed)
    ring = np.arange(n_zones, n_nodes)
    hubs = rng.integers(n_zones, n_nodes, (n_zones, 2)).ravel()
    zs = np.repeat(np.arange(n_zones), 2)
    extra = n_links - ring.size - 2 * zs.size
    init = np.concatenate([ring, zs, hubs, rng.integers(0, n_nodes, extra)])
    term = np.concatenate([np.roll(ring, -1), hubs, zs, rng.integers(0, n_nodes, extra)])
    dup = rng.choice(init.size, parallel, replace=False)
    init = np.concatenate([init, init[dup]])
    term = np.concatenate([term, term[dup]])
    cost = rng.uniform(0.5, 3.0, init.size)
    od = rng.uniform(0, 10, (n_zones, n_zones)) * (rng.random((n_zones, n_zones)) < 0.7)
    return init, term, cost, n_nodes, np.arange(n_zones), od


def _check_aon(init, term, cost, n_nodes, zones, od, flow, sptt, ftn):
    # flow conservation: net outflow at each node = demand it sends - demand it receives
    od = od * (1 - np.eye(len(zones)))
    net_out = np.bincount(init, flow, n_nodes) - np.bincount(term, flow, n_nodes)
    expect = np.zeros(n_nodes)
    expect[zones] += od.sum(axis=1) - od.sum(axis=0)
    np.testing.assert_allclose(net_out, expect, atol=1e-9)
    assert float(flow @ cost) == pytest.approx(sptt, rel=1e-12)  # loaded only on shortest paths
    blocked = np.arange(n_nodes) < ftn
    through = np.bincount(term, flow, n_nodes)
    through[zones] -= od.sum(axis=0)  # inflow minus the demand that ends there
    assert np.all(through[blocked] < 1e-9)  # nothing passes through a blocked node


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ftn", [0, 5, 8])
def test_all_or_nothing_random(seed, ftn, monkeypatch):
    init, term, cost, n, zones, od = _random_network(seed)
    flow, sptt = all_or_nothing(init, term, cost, n, zones, od, first_thru_node=ftn)
    _check_aon(init, term, cost, n, zones, od, flow, sptt, ftn)
    # the sorted-key lookup used on large networks gives the same flows
    monkeypatch.setattr(ue, "DENSE_LOOKUP_MAX_CELLS", 0)
    flow2, sptt2 = all_or_nothing(init, term, cost, n, zones, od, first_thru_node=ftn)
    np.testing.assert_allclose(flow2, flow, rtol=1e-12, atol=1e-12)
    assert sptt2 == pytest.approx(sptt)
    # parallel links: all of a pair's flow goes on its cheapest link
    key = init * n + term
    for k in np.unique(key):
        links = np.flatnonzero(key == k)
        if links.size > 1:
            assert np.count_nonzero(flow[links]) <= 1
            assert flow[links[np.argmin(cost[links])]] == pytest.approx(flow[links].sum())


def test_first_thru_node_blocks_zones():
    # zones 0, 1, 2; node 3 is an ordinary node. 0->1->2 costs 2, 0->3->2 costs 10.
    init = np.array([0, 1, 0, 3])
    term = np.array([1, 2, 3, 2])
    cost = np.array([1.0, 1.0, 5.0, 5.0])
    od = np.zeros((3, 3))
    od[0, 2] = 10.0
    od[0, 1] = 5.0
    flow, sptt = all_or_nothing(init, term, cost, 4, [0, 1, 2], od, first_thru_node=3)
    assert flow.tolist() == [5.0, 0.0, 10.0, 10.0]
    assert sptt == 5.0 * 1 + 10.0 * 10
    flow, sptt = all_or_nothing(init, term, cost, 4, [0, 1, 2], od, first_thru_node=0)
    assert flow.tolist() == [15.0, 10.0, 0.0, 0.0]


def test_all_or_nothing_unreachable():
    with pytest.raises(InputError, match="no path"):
        all_or_nothing([0], [1], [1.0], 3, [0, 2], np.array([[0, 1.0], [0, 0]]))


def test_workers_give_same_flows(sioux, monkeypatch):
    net, od = sioux
    monkeypatch.setattr(ue, "MIN_TREE_ENTRIES_PER_WORKER", 1)  # Sioux Falls is too small to split
    cost = net.fftt * 1.3
    args = (net.init - 1, net.term - 1, net.n_nodes, np.arange(24))
    one, s1 = AllOrNothing(*args).assign(cost, od)
    with AllOrNothing(*args, workers=2) as aon:
        two, s2 = aon.assign(cost, od)
        assert aon._pool is not None
    assert aon._pool is None
    np.testing.assert_allclose(two, one, rtol=1e-12)
    assert s2 == pytest.approx(s1)
    monkeypatch.undo()
    with AllOrNothing(*args, workers=2) as aon:  # too small to be worth a second process
        aon.assign(cost, od)
        assert aon._pool is None


# ---------------------------------------------------------------------------------------------
# equilibrium


def test_two_parallel_links_linear():
    # t1 = 10 (1 + x/100) = 10 + 0.1 x, t2 = 15 (1 + x/50) = 15 + 0.3 x, 100 trips:
    # 10 + 0.1 x1 = 15 + 0.3 (100 - x1)  =>  x1 = 87.5, x2 = 12.5, both cost 18.75
    res = solve_ue_arrays([0, 0], [1, 1], [10.0, 15.0], [100.0, 50.0], 1.0, 1.0, 2, [0, 1],
                          np.array([[0.0, 100.0], [0.0, 0.0]]), gap=1e-12)
    assert res.converged
    np.testing.assert_allclose(res.flow, [87.5, 12.5], atol=1e-6)
    np.testing.assert_allclose(res.cost, [18.75, 18.75], atol=1e-6)


def test_two_routes_bpr():
    # route A: 0 -> 2 -> 1 with t = 1 + x^2 on its first link (b = 1, power = 2, capacity 1),
    # route B: 0 -> 3 -> 1 with constant t = 2; 3 trips. Equilibrium: 1 + xA^2 = 2, xA = 1, xB = 2.
    init = [0, 2, 0, 3]
    term = [2, 1, 3, 1]
    res = solve_ue_arrays(init, term, [1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0],
                          [2.0, 1.0, 1.0, 1.0], 4, [0, 1], np.array([[0.0, 3.0], [0.0, 0.0]]), gap=1e-12)
    np.testing.assert_allclose(res.flow, [1.0, 1.0, 2.0, 2.0], atol=1e-6)
    assert res.gap <= 1e-12


def test_sioux_falls_matches_best_known(sioux_ue):
    res = sioux_ue
    assert res.converged and res.gap <= 1e-5
    assert res.iterations == res.gap_history.size + 1
    assert res.gap == res.gap_history[-1]
    best = tntp.read_flows(FLOW)
    big = best.volume > 1000
    rel = np.abs(res.flow - best.volume)[big] / best.volume[big]
    assert big.sum() > 60 and rel.max() < 0.01
    # Beckmann objective: 42.31335287107440 (x 1e5) for the best known solution
    assert res.objective / 1e5 == pytest.approx(42.31335287, rel=1e-6)
    np.testing.assert_allclose(res.cost, best.cost, rtol=5e-3)


def test_bfw_needs_fewer_iterations_than_fw(sioux):
    net, od = sioux
    bfw = solve_ue(net, od, gap=1e-4, method="bfw")
    cfw = solve_ue(net, od, gap=1e-4, method="cfw")
    fw = solve_ue(net, od, gap=1e-4, method="fw", max_iter=3000)
    assert bfw.converged and cfw.converged and fw.converged
    assert bfw.iterations < cfw.iterations < fw.iterations
    assert bfw.iterations * 3 < fw.iterations


def test_not_converged_warns(sioux):
    net, od = sioux
    with pytest.warns(ConvergenceWarning, match="stopped after 5 iterations"):
        res = solve_ue(net, od, gap=1e-9, max_iter=5)
    assert not res.converged and res.iterations == 5 and res.gap > 1e-9
    assert res.gap_history.size == 4 and res.seconds > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve_ue(net, od, gap=1e-9, max_iter=5, warn=False)


def test_solver_input_errors(sioux):
    net, od = sioux
    with pytest.raises(InputError, match="network has 24 zones"):
        solve_ue(net, od[:5, :5])
    with pytest.raises(InputError, match="unknown method"):
        solve_ue(net, od, method="msa")
    args = {"init": [0], "term": [1], "fftt": [1.0], "capacity": [1.0], "b": 0.15, "power": 4.0, "n_nodes": 2,
            "zones": [0, 1], "od": np.array([[0.0, 1.0], [0.0, 0.0]])}
    with pytest.raises(InputError, match="out of range"):
        solve_ue_arrays(**{**args, "term": [2]})
    with pytest.raises(InputError, match="negative"):
        solve_ue_arrays(**{**args, "fftt": [-1.0]})
    with pytest.raises(InputError, match="capacity"):
        solve_ue_arrays(**{**args, "capacity": [0.0]})
    with pytest.raises(InputError, match="demand"):
        solve_ue_arrays(**{**args, "od": np.array([[0.0, -1.0], [0.0, 0.0]])})


def test_no_demand():
    res = solve_ue_arrays([0], [1], [1.0], [1.0], 0.15, 4.0, 2, [0, 1], np.zeros((2, 2)))
    assert res.converged and res.gap == 0.0 and not res.flow.any()


def test_data_is_in_repo():
    # tests must never depend on files outside the repository
    for p in (NET, TRIPS, FLOW, SIOUX / "SiouxFalls_node.tntp", SIOUX / "README.md"):
        assert p.is_file() and os.path.commonpath([p.resolve(), Path(__file__).resolve().parent]) == str(
            Path(__file__).resolve().parent
        )


# ---------------------------------------------------------------------------------------------
# generalised cost: time + toll factor × toll + distance factor × length

TOLLED_NET = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 3
<FIRST THRU NODE> 1
<NUMBER OF LINKS> 3
{factors}<END OF METADATA>

~ init term capacity length fftt b power speed toll type ;
1 2 100 5 10 1 1 0 20 1 ;
1 3 100 5 15 1 1 0 0 1 ;
3 2 100 5 0 0 1 0 0 1 ;
"""
TOLLED_TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 100
<END OF METADATA>

Origin 1
    2 : 100.0;
Origin 2
"""


def _tolled(tmp_path, factors=""):
    net = write(tmp_path, "tolled_net.tntp", TOLLED_NET.format(factors=factors))
    trips = write(tmp_path, "tolled_trips.tntp", TOLLED_TRIPS)
    return net, trips


@pytest.mark.parametrize("factors, override, direct", [
    ("", {}, 80.0),                                                       # time only
    ("<TOLL FACTOR> 0.5\n<DISTANCE FACTOR> 0.2\n", {}, 44.0),            # the file's factors
    ("<TOLL FACTOR> 0.5\n<DISTANCE FACTOR> 0.2\n", {"toll_factor": 0.25, "distance_factor": 0.0}, 60.0),
])
def test_generalised_cost_matches_the_analytic_equilibrium(tmp_path, factors, override, direct):
    """Two paths, 10 + 0.1 x + 20 tf + 5 df (tolled, direct) against 15 + 0.15 (100 - x) + 10 df:
    both used when x = 80 - 80 tf + 20 df."""
    net, trips = _tolled(tmp_path, factors)
    network = tntp.read_network(net)
    res = ue.solve_ue(network, tntp.read_trips(trips, n_zones=2), gap=1e-10, max_iter=200, **override)
    assert res.flow[0] == pytest.approx(direct, rel=1e-6)
    assert res.flow[1] == pytest.approx(100 - direct, rel=1e-6)


def test_the_cli_takes_toll_and_distance_factors(tmp_path):
    from typer.testing import CliRunner

    from multivector.interfaces.cli import app

    net, trips = _tolled(tmp_path)
    out = tmp_path / "flows.tntp"
    r = CliRunner().invoke(app, ["tntp", str(net), str(trips), "--gap", "1e-10", "--toll-factor", "0.5",
                                 "--distance-factor", "0.2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    flows = tntp.read_flows(out)
    assert float(flows.volume[0]) == pytest.approx(44.0, rel=1e-6)
    bad = CliRunner().invoke(app, ["tntp", str(net), str(trips), "--toll-factor", "-1"])
    assert bad.exit_code == 2 and "toll_factor" in bad.output
    broken = write(tmp_path, "bad_net.tntp", TOLLED_NET.format(factors="<TOLL FACTOR> lots\n"))
    r = CliRunner().invoke(app, ["tntp", str(broken), str(trips)])
    assert r.exit_code == 2 and "TOLL FACTOR" in r.output
