"""Route choice: volume-delay functions, logit SUE properties, batching equals looping."""

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

import multivector as mv
from multivector.freight.sue import JOINT_AFTER, _first_of_equal, _least_norm, logit_split, solve_logit_sue
from multivector.freight.vdf import BPR, QUEUE, DelayCurves

#: The network's fitted coefficients before Erenhot's room for transit boxes became a limit: the state
#: the price loop's regression cases below were found in.
FIT_2026_12_06 = {"logit_scale_container": 0.0027090, "risk_russia_transit": 69.807, "capacity_factor_water": 0.5,
                  "logit_scale_bulk": 0.0002, "logit_scale_crude": 0.080583, "risk_iran_sanctions": 1353.94,
                  "vot_container": 1.93128, "demand_factor_container": 0.5, "vot_container_east": 2.11441}

#: The fit after Kazakh bulk left the EU's rail land bridge (2026-12-06, later that day).
FIT_LANDBRIDGE = {"logit_scale_container": 0.00302804835991714, "risk_russia_transit": 78.89686497096501,
                  "capacity_factor_water": 0.8907267212687701, "logit_scale_bulk": 0.0074202102019047585,
                  "logit_scale_crude": 0.08058336227221356, "risk_iran_sanctions": 2513.0240253258817,
                  "vot_container": 1.9273788464911727, "demand_factor_container": 0.5000003271214883,
                  "vot_container_east": 2.206825691069461}


def _delay(kind, load, capacity, **params):
    """The delay curves of one run: resource ``i`` of the given ``kind`` at ``load[i]``."""
    load = np.asarray(load, dtype=float)
    curves = DelayCurves(np.full(len(load), kind), np.asarray(capacity, dtype=float)[:, None], **params)
    return curves.delay(load[:, None])[:, 0]


def test_bpr_known_values():
    d = _delay(BPR, [0.0, 5.0, 10.0], [10.0, 10.0, 10.0], free_time=2.0, alpha=0.15, beta=4.0)
    np.testing.assert_allclose(d, [0.0, 2.0 * 0.15 * 0.5 ** 4, 0.3])
    assert _delay(BPR, [5.0], [np.nan], free_time=2.0, alpha=0.15, beta=4.0)[0] == 0.0


def test_queue_delay_grows_and_stays_finite_beyond_capacity():
    load = np.linspace(0, 3, 301)
    d = _delay(QUEUE, load, np.full_like(load, 1.0), scale=24.0, rho_max=0.95)
    assert d[0] == 0.0
    np.testing.assert_allclose(_delay(QUEUE, [0.5], [1.0], scale=24.0, rho_max=0.95), [24.0])
    assert np.all(np.diff(d) > 0) and np.all(np.isfinite(d))


def _two_routes(theta, demand=30.0, n=1):
    """Two parallel routes, costs 10 + 2 x1 and 20 + x2 (UE: x1 = 40/3)."""
    inc = sparse.csr_matrix(np.eye(2))
    slopes = np.array([[2.0], [1.0]])
    return solve_logit_sue(inc, np.ones(2), np.tile([[10.0], [20.0]], (1, n)), np.ones((2, n)),
                           np.full((2, n), theta), np.ones((2, n), bool), np.array([0, 0]),
                           np.full((1, n), demand), DelayCurves.linear(np.tile(slopes, (1, n))), tol=1e-10, max_iter=5000)


def test_sue_conserves_demand_and_matches_logit_fixed_point():
    res = _two_routes(0.1)
    assert res.flow.sum() == pytest.approx(30.0)
    p = np.exp(-0.1 * res.cost[:, 0])
    np.testing.assert_allclose(res.flow[:, 0], 30.0 * p / p.sum(), rtol=1e-7)
    assert res.converged.all()


def test_high_logit_scale_approaches_user_equilibrium():
    gaps = []
    for theta in (0.5, 5.0, 50.0):
        res = _two_routes(theta)
        gaps.append(abs(res.flow[0, 0] - 40.0 / 3.0))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.05


@pytest.mark.parametrize("joint_after", [JOINT_AFTER, 0])
@pytest.mark.parametrize("capacity", [5.0, 12.0, 20.0])
def test_a_capacity_holds_and_its_price_is_the_one_that_clears_it(capacity, joint_after):
    """Two parallel routes with no congestion, the cheap one capacitated: at equilibrium the cheap route
    carries its capacity, and the price u (per unit of load; here one unit weighs one) solves
    capacity = D / (1 + exp(-theta (c2 - c1 - u))), i.e. u = c2 - c1 + ln(D / capacity - 1) / theta.
    The same whether the price loop finds it or the joint solve (``joint_after`` 0: at the first
    violation)."""
    from multivector.freight.sue import CAPACITY_TOLERANCE, SLACK_TOLERANCE

    theta, demand, vot = 0.1, 30.0, 2.0
    cap = np.array([[capacity], [np.nan]])
    res = solve_logit_sue(sparse.csr_matrix(np.eye(2)), np.ones(2), np.array([[10.0], [40.0]]),
                          np.full((2, 1), vot), np.full((2, 1), theta), np.ones((2, 1), bool), np.array([0, 0]),
                          np.array([[demand]]), DelayCurves.none(2), tol=1e-9, max_iter=5000,
                          capacity=cap, joint_after=joint_after)
    free = demand / (1 + np.exp(-theta * 30.0))                 # the share without a capacity: 28.6
    assert res.converged.all() and res.flow.sum() == pytest.approx(demand)
    assert capacity < free
    assert capacity * (1 - SLACK_TOLERANCE) <= res.flow[0, 0] <= capacity * (1 + CAPACITY_TOLERANCE)
    u = 30.0 + np.log(demand / res.flow[0, 0] - 1) / theta
    assert res.price[0, 0] == pytest.approx(u, rel=1e-6)
    assert res.cost[0, 0] == pytest.approx(10.0 + u) and res.delay[0, 0] == 0.0   # a price, not a delay


def test_a_capacity_price_is_paid_per_cost_unit_whatever_unit_the_flow_is_counted_in():
    """The same market counted two ways: in cost units (a unit weighs 2e-5 of a load unit, as a 20 t
    TEU-equivalent of bulk weighs 2e-5 Mt), or in load units whose costs are quoted per cost unit
    (``price_weight`` 2e-5 per unit of flow weighing 1). The price, the shares and every route's cost per
    cost unit must agree: a flow's unit is bookkeeping (the bug this guards against charged bulk the
    price per Mt on a per-TEU-equivalent cost scale, 50,000 times too much)."""
    w, theta, per_unit = 2e-5, 0.1, 50000.0               # load per cost unit; cost units per flow unit
    demand = 30.0 / per_unit                              # 30 cost units' worth, in flow units
    common = dict(vot=np.full((2, 1), 2.0), theta=np.full((2, 1), theta), available=np.ones((2, 1), bool),
                  route_od=np.array([0, 0]), curves=DelayCurves.none(2), tol=1e-10,
                  max_iter=5000, capacity=np.array([[12.0 * w], [np.nan]]), price_unit=1.0 / w, max_price=1e4 / w)
    base = np.array([[10.0], [40.0]])
    in_cost_units = solve_logit_sue(sparse.csr_matrix(np.eye(2)), np.full(2, w), base, demand=np.array([[30.0]]),
                                    **common)
    in_flow_units = solve_logit_sue(sparse.csr_matrix(np.eye(2)), np.full(2, w * per_unit), base,
                                    demand=np.array([[demand]]), price_weight=np.full(2, w), **common)
    assert in_cost_units.converged.all() and in_flow_units.converged.all()
    assert in_flow_units.price[0, 0] == pytest.approx(in_cost_units.price[0, 0], rel=1e-6)
    np.testing.assert_allclose(in_flow_units.flow[:, 0] * per_unit, in_cost_units.flow[:, 0], rtol=1e-6)
    np.testing.assert_allclose(in_flow_units.cost, in_cost_units.cost, rtol=1e-9)
    u = 30.0 + np.log(30.0 / in_cost_units.flow[0, 0] - 1) / theta      # the clearing price per cost unit, as above
    assert in_flow_units.price[0, 0] * w == pytest.approx(u, rel=1e-6)


def test_a_capacity_above_the_free_share_has_no_price():
    res = solve_logit_sue(sparse.csr_matrix(np.eye(2)), np.ones(2), np.array([[10.0], [40.0]]),
                          np.full((2, 1), 2.0), np.full((2, 1), 0.1), np.ones((2, 1), bool), np.array([0, 0]),
                          np.array([[30.0]]), DelayCurves.none(2), tol=1e-9, max_iter=500,
                          capacity=np.array([[29.0], [np.nan]]))
    assert res.converged.all() and res.price[0, 0] == 0.0
    assert res.flow[0, 0] == pytest.approx(30.0 / (1 + np.exp(-3.0)), rel=1e-6)


def test_a_capacity_prices_a_tonne_alike_whatever_the_unit():
    """Two commodities share the capacitated route, one weighing three times the other per unit: the
    price each route pays is the resource's price times its load per unit."""
    inc = sparse.csr_matrix(np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]))
    lpu = np.array([1.0, 1.0, 3.0, 3.0])
    res = solve_logit_sue(inc, lpu, np.array([[10.0], [40.0], [10.0], [60.0]]), np.full((4, 1), 2.0),
                          np.full((4, 1), 0.1), np.ones((4, 1), bool), np.array([0, 0, 1, 1]),
                          np.array([[20.0], [10.0]]), DelayCurves.none(2), tol=1e-10,
                          max_iter=500, capacity=np.array([[20.0], [np.nan]]))
    u = res.price[0, 0]
    assert res.converged.all() and u > 0 and res.load[0, 0] == pytest.approx(20.0, rel=0.005)
    np.testing.assert_allclose(res.cost[[0, 2], 0], [10.0 + u, 10.0 + 3 * u])


def test_a_capacity_on_a_later_resource_holds_among_uncapacitated_congested_ones():
    """Three parallel routes, a congested uncapacitated one first and the cheap capacitated one last:
    the capacity holds and the flows are the logit split of the costs with its price."""
    from multivector.freight.sue import CAPACITY_TOLERANCE, SLACK_TOLERANCE

    theta, demand, vot, capacity = 0.1, 30.0, 2.0, 6.0
    slopes = np.array([[1.0], [0.0], [0.0]])
    res = solve_logit_sue(sparse.csr_matrix(np.eye(3)), np.ones(3), np.array([[30.0], [40.0], [10.0]]),
                          np.full((3, 1), vot), np.full((3, 1), theta), np.ones((3, 1), bool), np.array([0, 0, 0]),
                          np.array([[demand]]), DelayCurves.linear(slopes), tol=1e-10, max_iter=500,
                          capacity=np.array([[np.nan], [np.nan], [capacity]]))
    assert res.converged.all() and res.flow.sum() == pytest.approx(demand)
    assert capacity * (1 - SLACK_TOLERANCE) <= res.flow[2, 0] <= capacity * (1 + CAPACITY_TOLERANCE)
    assert res.price[2, 0] > 0 and res.price[:2, 0].tolist() == [0.0, 0.0]
    p = np.exp(-theta * res.cost[:, 0])
    np.testing.assert_allclose(res.flow[:, 0], demand * p / p.sum(), rtol=1e-6)


def test_two_capacities_in_series_price_the_tighter_one_only():
    """A route through two capacitated facilities in series (a ferry and its port) and a free
    alternative: the smaller capacity binds and carries the whole clearing price, the other none, in
    each run whichever it is, also when last year's price sat on the wrong one. (Only the sum of the
    two prices reaches a route, so a price step aimed at both, one over and one with room, used to
    cancel out and the run never settled.)"""
    theta, demand = 0.1, 30.0
    incidence = sparse.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    capacity = np.array([[12.0, 8.0], [8.0, 12.0], [np.nan, np.nan]])     # run 0: the second binds
    wrong = np.array([[30.0 + np.log(demand / 12.0 - 1) / theta, 0.0], [0.0, 0.0], [0.0, 0.0]])
    for start_price in (None, wrong):
        res = solve_logit_sue(incidence, np.ones(2), np.array([[10.0, 10.0], [40.0, 40.0]]), np.full((2, 2), 2.0),
                              np.full((2, 2), theta), np.ones((2, 2), bool), np.array([0, 0]),
                              np.array([[demand, demand]]), DelayCurves.none(3, 2), tol=1e-9,
                              max_iter=500, capacity=capacity, start_price=start_price)
        assert res.converged.all()
        np.testing.assert_allclose(res.flow[0], 8.0, rtol=0.01)
        u = 30.0 + np.log(demand / res.flow[0] - 1) / theta
        np.testing.assert_allclose([res.price[1, 0], res.price[0, 1]], u, rtol=1e-6)
        assert res.price[0, 0] == 0.0 and res.price[1, 1] == 0.0


def test_prices_warm_started_from_an_earlier_year_reach_the_same_price_sooner():
    """Starting the prices from last year's (a nearby capacity) lands on this year's analytic price in
    fewer iterations than starting from zero."""
    theta, demand, vot = 0.1, 30.0, 2.0

    def solve(capacity, start_price=None):
        return solve_logit_sue(sparse.csr_matrix(np.eye(2)), np.ones(2), np.array([[10.0], [40.0]]),
                               np.full((2, 1), vot), np.full((2, 1), theta), np.ones((2, 1), bool),
                               np.array([0, 0]), np.array([[demand]]), DelayCurves.none(2),
                               tol=1e-9, max_iter=5000, capacity=np.array([[capacity], [np.nan]]),
                               start_price=start_price)

    last_year = solve(12.0)
    cold, warm = solve(11.0), solve(11.0, start_price=last_year.price)
    assert warm.converged.all() and warm.price[0, 0] == pytest.approx(cold.price[0, 0], rel=0.01)   # within the band
    assert warm.iterations < cold.iterations


def test_demand_no_route_can_take_reaches_the_highest_price_and_the_model_rations_it():
    """One capacitated route only: the price rises to ``max_price`` and the flow stays above capacity for
    the caller to ration (crude shut in, freight deferred)."""
    res = solve_logit_sue(sparse.csr_matrix(np.eye(1)), np.ones(1), np.array([[10.0]]), np.ones((1, 1)),
                          np.full((1, 1), 0.1), np.ones((1, 1), bool), np.array([0]), np.array([[30.0]]),
                          DelayCurves.none(1), tol=1e-9, max_iter=500,
                          capacity=np.array([[10.0]]), max_price=500.0)
    assert res.price[0, 0] == 500.0 and res.flow[0, 0] == pytest.approx(30.0) and res.converged.all()


def test_zero_logit_scale_splits_evenly():
    share = logit_split(np.array([[1.0], [100.0]]), 0.0, np.ones((2, 1), bool), np.array([0]))
    assert share[:, 0] == pytest.approx([0.5, 0.5])


def test_unavailable_routes_get_nothing():
    share = logit_split(np.array([[1.0], [100.0], [5.0]]), 0.01, np.array([[False], [True], [True]]),
                        np.array([0]))
    assert share[0, 0] == 0 and share[:, 0].sum() == pytest.approx(1.0)


def test_tiny_network_batch_equals_loop(tiny_dir):
    s = mv.load(tiny_dir)
    thetas = [0.0005, 0.002, 0.01]
    batch = mv.simulate(s, n=3, overrides={"logit_scale_container": thetas}, tol=1e-8, max_iter=2000)
    for i, th in enumerate(thetas):
        one = mv.simulate(s, overrides={"logit_scale_container": th}, tol=1e-8, max_iter=2000)
        np.testing.assert_allclose(batch["teu"].isel(run=i).values, one["teu"].isel(run=0).values,
                                   rtol=1e-12)


def test_tiny_network_corridors_and_shares(tiny_dir):
    ds = mv.simulate(mv.load(tiny_dir))
    teu = ds["teu"].isel(run=0, year=0)
    assert float(teu.sum()) == pytest.approx(100000.0)
    assert all(float(teu.sel(corridor=c)) > 0 for c in ("sea", "middle", "north"))
    assert float(ds["share"].isel(run=0, year=0).sum()) == pytest.approx(1.0)
    # both overland corridors cross Kazakhstan in the toy network
    assert float(ds["focus_overland_share"].isel(run=0, year=0)) == pytest.approx(1.0)
    assert bool(ds["converged"].all())


def test_a_detour_bound_drops_routes_longer_than_its_multiple_of_the_shortest(tiny_dir):
    """The toy sea route (21,100 km) is 2.4 times the northern one (8,850 km): a bound of 3 keeps it, a
    bound of 2 drops it and the overland corridors share the freight; a bound of 1 or less is refused."""
    from multivector.errors import InputError
    from multivector.model import compiled

    toml = tiny_dir / "model.toml"
    text = toml.read_text()

    def corridors(bound):
        toml.write_text(text.replace('base_year = 2024', f'base_year = 2024\nroute_detour_max = {bound}'))
        s = mv.load(tiny_dir)
        net = compiled(s).network
        return s, {net.corridors[c] for c in net.route_corridor}

    assert corridors(3.0)[1] == {"sea", "middle", "north"}
    s, offered = corridors(2.0)
    assert offered == {"middle", "north"}
    teu = mv.simulate(s)["teu"].isel(run=0, year=0)
    assert float(teu.sel(corridor="sea")) == 0.0
    assert float(teu.sum()) == pytest.approx(100000.0)
    with pytest.raises(InputError, match="route_detour_max must be a number above 1"):
        corridors(1.0)


def test_a_commodity_may_bound_its_own_detours(tiny_dir):
    """A commodity's own route_detour_max governs its routes over the dataset's: 2 drops the toy sea route
    (2.4 times the northern) where the dataset's 3 keeps it; a bound of 1 or one without a source is
    refused, naming the commodity, as is any of its numbers without a source."""
    from multivector.errors import InputError
    from multivector.model import compiled

    toml = tiny_dir / "model.toml"
    text = toml.read_text().replace('base_year = 2024', 'base_year = 2024\nroute_detour_max = 3.0')

    def corridors(line, sources='sources = "*=A-TOY"'):
        toml.write_text(text.replace('sources = "*=A-TOY"', f"{sources}\n{line}", 1))
        net = compiled(mv.load(tiny_dir)).network
        return {net.corridors[c] for c in net.route_corridor}

    assert corridors("") == {"sea", "middle", "north"}
    assert corridors("route_detour_max = 2.0") == {"middle", "north"}
    with pytest.raises(InputError, match=r"commodities.container.*route_detour_max must be a number above 1"):
        corridors("route_detour_max = 1.0")
    with pytest.raises(InputError, match=r"commodities.container.sources.*route_detour_max = 2 has no source"):
        corridors("route_detour_max = 2.0", 'sources = "tonnes_per_unit=A-TOY;cost_units_per_unit=A-TOY"')
    # the same rule as every table's numbers: each of a commodity's numbers needs its source
    with pytest.raises(InputError, match=r"commodities.container.sources.*tonnes_per_unit = 10 has no source"):
        corridors("", 'sources = "cost_units_per_unit=A-TOY"')


def test_congestion_moves_volume_off_a_tight_ferry(tiny_dir):
    s = mv.load(tiny_dir)
    loose = mv.simulate(s, overrides={"capacity_factor_water": 2.0})
    tight = mv.simulate(s, overrides={"capacity_factor_water": 0.3})
    m = lambda ds: float(ds["teu"].sel(corridor="middle").isel(run=0, year=0))
    assert m(tight) < m(loose)


def test_a_gauge_change_queues_on_its_own_scale_and_a_port_on_the_ports(tiny_dir):
    """The wait at a facility is its scale times the queueing curve at its utilisation: a gauge change
    (rail to rail: Dostyk, Brest) takes ``queue_scale_rail_h``, a port call (Aktau, Baku) ``queue_scale_h``."""
    s = mv.load(tiny_dir)
    ds = mv.simulate(s, overrides={"queue_scale_rail_h": 48.0, "queue_scale_h": 12.0})
    rho_max = float(ds["parameter_value"].sel(parameter="queue_max_ratio").isel(run=0))
    d = ds.isel(run=0, year=0)
    scale = lambda r: float(d["delay_h"].sel(resource=r)) / float(
        _delay(QUEUE, [float(d["utilisation"].sel(resource=r))], [1.0], scale=1.0, rho_max=rho_max)[0])
    for r in ("T:DOSTYK:rail_1435|rail_1520", "T:BREST:rail_1520|rail_1435"):
        assert float(d["utilisation"].sel(resource=r)) > 0.05
        assert scale(r) == pytest.approx(48.0, rel=1e-9)
    for r in ("T:AKTAU:rail_1520|water", "T:BAKU:water|rail_1435"):
        assert float(d["utilisation"].sel(resource=r)) > 0.05
        assert scale(r) == pytest.approx(12.0, rel=1e-9)


def test_growth_after_last_demand_year(tiny_dir):
    ds = mv.simulate(mv.load(tiny_dir), years=[2024, 2026])
    total = ds["teu"].isel(run=0).sum("corridor").values
    assert total[1] == pytest.approx(total[0] * 1.05 ** 2)


@pytest.mark.slow
def test_default_tolerance_lands_within_1e4_of_the_exact_equilibrium():
    """At the default gap, every corridor's volume of the Kazakhstan network (hard capacities) lies within
    1e-4 (relative) of the equilibrium solved to a gap of 1e-10: a few parameter sets over 2022-2024, and
    the coupled run of the accuracy benchmark's design where crude through BTC, a small part of its OD,
    was 1.8e-3 off at a gap of 1e-4 (the gap is relative to the OD's demand)."""
    from multivector.explore.ensemble import make_design

    kz = mv.load("kazakhstan")
    worst = make_design(kz, 200, seed=11).samples().iloc[[113]].reset_index(drop=True)
    cases = [dict(samples=make_design(kz, 4, seed=2).samples(), years=[2022, 2023, 2024], coupled=False),
             dict(samples=worst, run_ids=[113])]
    for case in cases:
        default = mv.simulate(kz, **case)
        exact = mv.simulate(kz, **case, tol=1e-10)
        assert bool(default["converged"].all()) and bool(exact["converged"].all())
        e, d = exact["tonnes"].values, default["tonnes"].values
        carried = e >= 1e-3 * e.sum(axis=-1, keepdims=True)
        assert np.max(np.abs(d - e)[carried] / e[carried]) < 1e-4


def test_price_step_on_the_active_constraints_is_the_whole_systems_pseudo_inverse():
    """The price step solves a run's active constraints alone; with the rest the identity, that is the
    pseudo-inverse of the whole system, singular blocks (facilities in series) and cut-off included."""
    rng = np.random.default_rng(3)
    n, size = 6, 9
    active = rng.random((n, size)) < 0.4
    active[0] = False
    active[0, 2] = True               # a single constraint
    active[1] = True                  # every constraint: no identity rows to pad with
    active[2] = False
    active[2, [1, 4]] = True          # two facilities in series: nearly the same row twice
    system = rng.normal(size=(n, size, size)) * 0.01
    system[2, 4] = system[2, 1] + 3e-5 * rng.normal(size=size)     # nearly so: cut by 1e-4 of the unit rows
    system = np.where(active[:, :, None] & active[:, None, :], system, 0.0)
    system[:, np.arange(size), np.arange(size)] += np.where(active, 0.0, 1.0)
    rhs = np.where(active, rng.normal(size=(n, size)), 0.0)
    whole = (np.linalg.pinv(system, rcond=1e-4) @ rhs[..., None])[..., 0]
    for j in range(n):
        np.testing.assert_allclose(_least_norm(system[j], rhs[j], active[j]), whole[j], rtol=1e-9, atol=1e-12)


def test_threads_split_a_batch_without_changing_it_and_a_forked_child_can_solve():
    """The equilibrium splits a batch's runs across threads: one thread or two give the same answer bit
    for bit, and a process forked after a run (a user's process pool) solves too (the thread pool is not
    inherited; OpenMP's threads would have aborted it)."""
    import multiprocessing

    from multivector.explore.ensemble import make_design
    from multivector.freight import sue

    kz = mv.load("kazakhstan")
    kw = dict(samples=make_design(kz, 4, seed=2).samples(), years=[2022, 2023], coupled=False)
    try:
        sue.use_threads(1)
        one = mv.simulate(kz, **kw)["tonnes"].values
        sue.use_threads(2)
        two = mv.simulate(kz, **kw)["tonnes"].values
    finally:
        sue.use_threads(None)
    assert np.array_equal(one, two)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_tonnes_in_child, (kw,))
    assert np.array_equal(child, two)


def _tonnes_in_child(kw):
    return mv.simulate(mv.load("kazakhstan"), **kw)["tonnes"].values


def test_runs_with_equal_inputs_are_found_exactly_nan_equal_to_nan():
    """Runs 0, 2 and 4 agree in every array (NaN where each has NaN); run 3 differs from run 1 only in its
    last bit, and run 5 only in where its NaN sits: each of those is its own."""
    a = np.array([[1.0, 2.0, 1.0, 2.0, 1.0, 1.0],
                  [np.nan, 3.0, np.nan, 3.0, np.nan, 7.0]])
    a[0, 3] = np.nextafter(2.0, 3.0)
    b = np.array([5.0, 6.0, 5.0, 6.0, 5.0, 5.0])
    c = np.array([[0.0, 1.0, 0.0, 1.0, 0.0, np.nan]])
    assert _first_of_equal(a, b, c).tolist() == [0, 1, 0, 3, 0, 5]
    assert _first_of_equal(b[:1]).tolist() == [0]


def test_a_batch_that_repeats_a_run_gives_each_copy_the_answer_the_run_gets_alone():
    """Equal runs are solved once and copied: a batch of four with two pairs of equal runs gives each run
    what a batch of its own gives, bit for bit, flows and prices alike."""
    inc = sparse.csr_matrix(np.eye(2))
    base = np.array([[10.0, 10.0, 12.0, 10.0], [20.0, 20.0, 20.0, 20.0]])
    theta = np.array([[0.1, 0.1, 0.1, 0.3], [0.1, 0.1, 0.1, 0.3]])
    capacity = np.array([[12.0] * 4, [np.nan] * 4])

    def solve(cols):
        n = len(cols)
        return solve_logit_sue(inc, np.ones(2), base[:, cols], np.ones((2, n)), theta[:, cols],
                               np.ones((2, n), bool), np.array([0, 0]), np.full((1, n), 30.0),
                               DelayCurves.linear(np.tile([[2.0], [1.0]], (1, n))), capacity=capacity[:, cols])

    batch = solve([0, 1, 2, 3])
    for j in range(4):
        alone = solve([j])
        for field in ("flow", "load", "price", "cost", "gap"):
            assert np.array_equal(getattr(batch, field)[..., j], getattr(alone, field)[..., 0]), (field, j)


def test_the_newton_step_solves_with_the_derivative_of_the_loads():
    """The compiled Newton step, built from the logit covariance per OD and a Cholesky factor, is the
    step ``(I − dF/dv)⁻¹ (F(v) − v)`` with ``dF/dv`` taken by finite differences of the loads the logit
    split makes, on a random network of several ODs sharing congested resources; two of them carry the
    same routes (a ferry and its port), so Newton solves for one load for both, and their delays add."""
    from multivector.freight import sue

    rng = np.random.default_rng(5)
    route_od = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    k = len(route_od)
    dense = (rng.random((7, k)) < 0.45).astype(float)
    inc = sparse.csr_matrix(np.vstack([dense, dense[2]]))           # the last resource in series with the third
    n_res = inc.shape[0]
    lpu = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    per_od = lambda x: x[route_od][:, None]
    vot, theta = per_od(np.array([1.0, 3.0, 2.0, 0.7])), per_od(np.array([0.3, 0.1, 0.5, 0.2]))
    base = rng.uniform(5, 20, (k, 1))
    demand = np.array([[30.0], [12.0], [8.0], [40.0]])
    curves = DelayCurves(np.where(np.arange(n_res) % 2, BPR, QUEUE), rng.uniform(20, 60, (n_res, 1)),
                         free_time=rng.uniform(1, 5, (n_res, 1)), alpha=0.15, beta=4.0, scale=2.0, rho_max=0.8)
    structure = sue._Structure(inc, np.arange(n_res), np.zeros(0, int), route_od, lpu)
    groups = len(structure.member_ptr) - 1
    assert groups == n_res - 1 and structure.group[-1] == structure.group[2]
    bounds = np.r_[np.flatnonzero(np.r_[True, route_od[1:] != route_od[:-1]]), k].astype(np.int64)
    cost_args = (vot, theta, np.ones((k, 1), bool), bounds, *structure.crossings, structure.route_crossing,
                 structure.member_ptr, structure.members, curves.kind, curves.capacity, curves.free_time,
                 curves.alpha, curves.beta, curves.scale, curves.rho_max)
    route_demand = demand[route_od]
    split = sue._split_for(0, base[:, 0].copy(), *cost_args)
    loads = lambda v: sue._run_point(v, 0, split, route_demand, lpu, *cost_args)
    v = rng.uniform(5, 30, groups)
    p, _, f, _ = loads(v)
    step = sue._newton_solve(*sue._newton_system(v, p, 0, route_demand, lpu, *structure.jacobian.arrays(),
                                                 *cost_args), f - v)
    h = 1e-6
    d_loads = np.stack([(loads(v + h * e)[2] - loads(v - h * e)[2]) / (2 * h) for e in np.eye(groups)], axis=1)
    np.testing.assert_allclose(step, np.linalg.solve(np.eye(groups) - d_loads, f - v), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", ["factored", "spread", "underflow"])
def test_the_factored_logit_is_the_logit_of_the_route_costs(case):
    """The compiled split takes one exponential per crossing pattern and value of time (``theta · vot``),
    times a weight per route that the prices fix: it gives the plain logit of the route costs where the
    priced costs are close, where one route's lies far above its OD's cheapest (that OD is taken route by
    route), and where every delay is so long that the factored weights underflow (the same)."""
    from multivector.freight import sue

    rng = np.random.default_rng(11)
    route_od = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    k, n_res = len(route_od), 6
    dense = (rng.random((n_res, k)) < 0.4).astype(float)
    dense[np.arange(k) % n_res, np.arange(k)] = 1.0               # every route crosses something
    inc = sparse.csr_matrix(dense)
    per_od = lambda x: x[route_od][:, None]
    vot, theta = per_od(np.array([1.0, 1.0, 2.0, 1.0])), per_od(np.array([0.3, 0.3, 0.5, 0.3]))
    priced = rng.uniform(5, 20, k)
    if case == "spread":
        priced[1] += 5000.0                                          # 0.3 x 5,000 beyond FACTORED_SPREAD
    curves = DelayCurves(np.full(n_res, BPR), np.full((n_res, 1), 10.0), free_time=np.ones((n_res, 1)),
                         alpha=0.15, beta=4.0)
    structure = sue._Structure(inc, np.arange(n_res), np.zeros(0, int), route_od, np.ones(k))
    bounds = np.r_[np.flatnonzero(np.r_[True, route_od[1:] != route_od[:-1]]), k].astype(np.int64)
    cost_args = (vot, theta, np.ones((k, 1), bool), bounds, *structure.crossings, structure.route_crossing,
                 structure.member_ptr, structure.members, curves.kind, curves.capacity, curves.free_time,
                 curves.alpha, curves.beta, curves.scale, curves.rho_max)
    v = rng.uniform(0, 20, len(structure.member_ptr) - 1) * (300.0 if case == "underflow" else 1.0)
    shares = sue._run_shares(v, 0, sue._split_for(0, priced, *cost_args), *cost_args)
    waited = inc.T @ curves.delay(v[structure.group][:, None])[:, 0]     # each route's hours of delay
    expected = logit_split((priced + vot[:, 0] * waited)[:, None], theta, True, bounds[:-1])[:, 0]
    assert np.isfinite(shares).all() and (case != "underflow" or waited.min() * 0.3 > 800)
    np.testing.assert_allclose(shares, expected, rtol=1e-12, atol=1e-300)


def test_a_new_price_state_gives_the_same_costs_and_split_as_a_fresh_pass_to_the_bit():
    """The priced route costs sum only the capacities whose price is not zero, and a price step reprices the
    logit's fixed weights from the split before it, taking a new exponential only where a route's priced
    cost or its OD's cheapest moved: both must equal the plain passes to the bit, whether the cheapest
    route of an OD is among those the step moves or not."""
    from multivector.freight import sue

    rng = np.random.default_rng(5)
    route_od = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    k, n_res = len(route_od), 6
    dense = (rng.random((n_res, k)) < 0.4).astype(float)
    dense[np.arange(k) % n_res, np.arange(k)] = 1.0
    inc = sparse.csr_matrix(dense)
    hard = np.array([1, 4])
    structure = sue._Structure(inc, np.arange(n_res), hard, route_od, np.ones(k))
    ptr, idx, val = structure.ap_csr
    per_od = lambda x: x[route_od][:, None]
    vot, theta = per_od(np.array([1.0, 1.0, 2.0, 1.0])), per_od(np.array([0.3, 0.3, 0.5, 0.3]))
    base, pw = np.asfortranarray(rng.uniform(5, 20, (k, 1))), rng.uniform(0.5, 2.0, k)
    bounds = np.r_[np.flatnonzero(np.r_[True, route_od[1:] != route_od[:-1]]), k].astype(np.int64)
    curves = DelayCurves(np.full(n_res, BPR), np.full((n_res, 1), 10.0), free_time=np.ones((n_res, 1)),
                         alpha=0.15, beta=4.0)
    cost_args = (vot, theta, np.ones((k, 1), bool), bounds, *structure.crossings, structure.route_crossing,
                 structure.member_ptr, structure.members, curves.kind, curves.capacity, curves.free_time,
                 curves.alpha, curves.beta, curves.scale, curves.rho_max)
    route_price = structure.a_price.toarray()                         # [K, H]: which prices each route pays
    before = sue._split_for(0, sue._priced_cost(0, base, ptr, idx, val, np.zeros((2, 1)), pw), *cost_args)
    for price in ([0.0, 3.0], [7.5, 0.0], [7.5, 3.0], [0.0, 0.0]):
        price = np.asfortranarray(np.array(price)[:, None])
        priced = sue._priced_cost(0, base, ptr, idx, val, price, pw)
        plain = np.array([base[r, 0] + pw[r] * sum(route_price[r, h] * price[h, 0] for h in range(2))
                          for r in range(k)])
        assert np.array_equal(priced, plain)
        fresh, again = sue._split_for(0, priced, *cost_args), sue._resplit_for(0, priced, before, *cost_args)
        for a, b in zip(fresh, again):
            assert np.array_equal(a, b)
        before = again


def test_a_value_of_time_that_differs_within_an_od_is_refused():
    inc = sparse.csr_matrix(np.eye(2))
    with pytest.raises(ValueError, match="value of time differs between the routes of OD 0"):
        solve_logit_sue(inc, np.ones(2), np.array([[10.0], [20.0]]), np.array([[1.0], [2.0]]), np.full((2, 1), 0.1),
                        np.ones((2, 1), bool), np.array([0, 0]), np.array([[30.0]]),
                        DelayCurves.linear(np.array([[2.0], [1.0]])))


def test_a_price_that_crawls_while_its_facility_stays_over_capacity_takes_its_own_step():
    """Run 29 of the accuracy benchmark's design (seed 11): in 2039 the joint price step had shrunk to a
    few USD a step on a facility 7% over capacity at 89 USD/t, and the run stopped unconverged at the
    1,000-step cap (research/price_loop_crawl.md). Past the steps a settling run needs, a violated
    facility whose joint step is less than half its own takes its own; the run converges."""
    from multivector.explore.ensemble import make_design

    kz = mv.load("kazakhstan")
    sample = make_design(kz, 200, seed=11).samples().iloc[[29]].reset_index(drop=True)
    ds = mv.simulate(kz, samples=sample, run_ids=[29], years=[2038, 2039])
    assert bool(ds["converged"].all())


def test_a_price_whose_trust_radius_fell_below_its_last_bit_can_still_move():
    """Run 2674 of the README's Morris exploration (its parameters, posterior draws included, in
    ``tests/data/price_radius_below_last_bit.csv``): in 2037 the Taman transfer sat 1.2% over capacity
    while its price's trust radius had shrunk below the last bit of the price, and a stale step of the
    other sign kept it from growing, for 960 steps (research/price_loop_crawl.md). A step too small to
    change the price is now remembered, so the radius grows again; the run converges."""
    import pandas as pd

    kz = mv.load("kazakhstan")
    row = pd.read_csv(Path(__file__).parent / "data" / "price_radius_below_last_bit.csv")
    sample = pd.DataFrame([row["value"].to_numpy()], columns=row["parameter"])
    ds = mv.simulate(kz, samples=sample, run_ids=[2674], years=[2037])
    assert bool(ds["converged"].all())


def test_prices_that_circle_slowly_among_full_facilities_settle_within_the_step_cap():
    """Run 3979 of the README's Morris exploration (``tests/data/price_slow_circle.csv``): in 2036 four
    full facilities pass load back and forth while their prices settle, which took 1,040 Newton steps (880
    since Newton solves one load per group of resources in series, 422 since it resumes after each price
    step from the loads the step predicts, 137 since route patterns are summed once: the circle's length
    hangs on round-off; a settling run takes under 100);
    the cap of 1,000 left it unconverged. The default cap (``MAX_NEWTON_STEPS``) leaves room. The run's war
    ends in 2030, so it is kept as it was found by a tolerance that does not relax after the war
    (``prewar_tolerance_gain`` 0, which came later)."""
    import pandas as pd

    from multivector.freight.sue import MAX_NEWTON_STEPS

    kz = mv.load("kazakhstan")
    row = pd.read_csv(Path(__file__).parent / "data" / "price_slow_circle.csv")
    sample = pd.DataFrame([row["value"].to_numpy()], columns=row["parameter"])
    ds = mv.simulate(kz, samples=sample, run_ids=[3979], years=[2036])
    assert bool(ds["converged"].all())
    assert int(ds["iterations"].max()) < MAX_NEWTON_STEPS


def test_a_nearly_full_facility_whose_partners_prices_will_fill_it_keeps_its_price():
    """Run 566 of a Morris design (16 trajectories, seed 0; ``tests/data/price_halved_near_full.csv``), 2039.
    A facility priced with room whose own step would not lower its price had its price halved, even when
    it stood nearly full and the joint step's linear response filled it (its partners' prices rising push
    freight onto it): this run-year took 64 Newton steps, and on a dataset with a segment of Kazakh bulk
    refusing Russian ports a run-year of the kind took 1,463 (outlets within 2.5% of capacity swinging for
    60 price steps). Within the free price steps a facility at least 90% full now keeps the joint step:
    18 Newton steps here, 8 there. The network's coefficients are the fit of that day (``FIT_2026_12_06``):
    the refit after Erenhot's limit lets bulk choose by cost, and the same run-year then takes 46."""
    import pandas as pd

    kz = mv.load("kazakhstan")
    row = pd.read_csv(Path(__file__).parent / "data" / "price_halved_near_full.csv")
    sample = pd.DataFrame([row["value"].to_numpy()], columns=row["parameter"])
    ds = mv.simulate(kz, samples=sample, run_ids=[566], years=[2039], fitted=pd.DataFrame([FIT_2026_12_06]))
    assert bool(ds["converged"].all()) and int(ds["iterations"].max()) < 30



def test_prices_in_series_trading_one_price_move_it_across():
    """Run 97 of a 500-run hypercube (seed 1; ``tests/data/price_series_pair.csv``, balancing's levers,
    the fleet not growing): in 2040 Kazakh bulk has more than all its outlets hold, Taman and the Kuryk
    ferry at the cap. The Turkmenbashi ferry stood 2% over capacity and Batumi-Constanta, which carries
    part of its freight on to Romania, 2% under it with a price: raising one price and lowering the other
    by as much moves almost nothing, so the least-norm step dropped that direction, and the per-facility
    rules moved the price across a few cents a step for 2,900 Newton steps, unsettled. Past the stuck
    steps the pair now takes the step along it (:func:`sue._series_step`): 259 steps, settled."""
    import pandas as pd

    kz = mv.load("kazakhstan")
    row = pd.read_csv(Path(__file__).parent / "data" / "price_series_pair.csv")
    sample = pd.DataFrame([row["value"].to_numpy()], columns=row["parameter"])
    ds = mv.simulate(kz, samples=sample, run_ids=[97], seed=1, years=[2039, 2040], fitted=pd.DataFrame([FIT_LANDBRIDGE]))
    assert bool(ds["converged"].all()) and int(ds["iterations"].max()) < 600
    price = ds["capacity_price"].isel(run=0).sel(year=2040)
    link = lambda name: (ds["resource_link"] == name) & (price > 0)
    assert int(link("L-SEA-03").sum()) == 1 and float(ds["utilisation"].isel(run=0).sel(year=2040)
                                                       .where(link("L-SEA-03")).max()) <= 1.004


def test_a_series_step_moves_a_price_from_the_facility_with_room_to_the_full_one():
    """The step along a null direction of both signs: only where the raised facility is over capacity
    and the lowered one priced with room, and by half the lowered price at most."""
    from multivector.freight import sue

    cap, u = np.array([10.0, 10.0]), np.array([30.0, 8.0])

    def step(load, way=np.array([1.0, -1.0])):
        out = np.zeros(2)
        sue._series_step(way, np.arange(2), load, cap, u, out)
        return out
    np.testing.assert_allclose(step(np.array([10.3, 9.5])), [4.0, -4.0])        # over / with room: 8 -> 4
    np.testing.assert_allclose(step(np.array([10.3, 9.5]), np.array([-2.0, 2.0])), [4.0, -4.0])   # either sign
    np.testing.assert_allclose(step(np.array([9.5, 10.3])), [-15.0, 15.0])      # the other way round: 30 -> 15
    np.testing.assert_allclose(step(np.array([10.3, 10.3])), [0.0, 0.0])        # both over: none
    np.testing.assert_allclose(step(np.array([10.0, 9.5])), [0.0, 0.0])         # full, not over: none


@pytest.mark.parametrize("overload, most", [(None, 15), (np.inf, 25)])
def test_a_warm_start_on_a_facility_closed_this_year_is_held_near_its_capacity(monkeypatch, overload, most):
    """Run 145 of a 4-trajectory Morris design (seed 0; ``tests/data/closed_facility_warm_start.csv``):
    frequent CPC outages scale the pipeline's capacity to nothing in some years. Warm-started from last
    year's 60-odd Mt on it, Newton halved its way down (its delay astronomical at any load, nil at none),
    33-39 Newton steps in those years (28-29 since crude a full outlet cuts goes to its field's outlets
    with room, which moves the run's later years a little). The start is held to ten times the smallest
    capacity of each group (``START_OVERLOAD``): 8-9 steps there, the same answer. Without the hold
    (``np.inf``) the crawl is back. Only the years the pipeline is closed are counted: the others' steps
    depend on the rest of the network (since Kazakh bulk left the EU land bridge, 2026 takes 63 either
    way). The network's coefficients are the fit the case was found with (``FIT_2026_12_06``)."""
    import pandas as pd

    from multivector.freight import sue

    if overload is not None:
        monkeypatch.setattr(sue, "START_OVERLOAD", overload)
    kz = mv.load("kazakhstan")
    row = pd.read_csv(Path(__file__).parent / "data" / "closed_facility_warm_start.csv")
    sample = pd.DataFrame([row["value"].to_numpy()], columns=row["parameter"])
    ds = mv.simulate(kz, samples=sample, run_ids=[145], seed=0, fitted=pd.DataFrame([FIT_2026_12_06]))
    assert bool(ds["converged"].all())
    closed = ds["coupled_parameter"].sel(coupled="capacity_factor_cpc").values.ravel() == 0
    assert closed.sum() >= 2 and not closed[0]
    steps = int(ds["iterations"].values.ravel()[closed].max())
    assert steps < most if overload is None else steps > most


def _two_outlets(shut_in: float, cap=(10.0, 10.0), base=(10.0, 12.0, 10.0, 12.0, 40.0), theta=0.2, max_iter=3000,
                 delay=0.0, joint_after=JOINT_AFTER):
    """Two capacitated outlets in parallel and an open detour: OD 0 (``shut_in``) may use only the outlets,
    OD 1 (20) the outlets or the detour (costlier by ``base``); no delay by default, so prices alone clear
    the outlets (``delay``: hours per unit of load on each, at a value of time of 1)."""
    route_od = np.array([0, 0, 1, 1, 1])
    inc = sparse.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1]], float))
    return solve_logit_sue(inc, np.ones(5), np.array(base, float)[:, None], np.full((5, 1), float(delay > 0)),
                           np.full((5, 1), theta), np.ones((5, 1), bool), route_od, np.array([[shut_in], [20.0]]),
                           DelayCurves.linear(np.array([[delay], [delay], [0.0]])),
                           capacity=np.array([[cap[0]], [cap[1]], [np.nan]]), max_iter=max_iter,
                           joint_after=joint_after)


def _outlets_unsettled(res) -> bool:
    """Whether either outlet (capacity 10) is over capacity or priced with room, by the solver's tolerances."""
    from multivector.freight.sue import CAPACITY_TOLERANCE, SLACK_TOLERANCE

    ratio = res.load[:2, 0] / 10.0
    return bool(((ratio > 1.0 + CAPACITY_TOLERANCE) | ((res.price[:2, 0] > 0) & (ratio < 1.0 - SLACK_TOLERANCE))).any())


@pytest.mark.parametrize("case", [
    dict(shut_in=20.5),                 # 2.5% more than both outlets: the prices crept up for 3,000 steps
    dict(shut_in=25.0),
    # crashed with ZeroDivisionError in a price's own step, inside the compiled kernel
    dict(shut_in=33.05, cap=(8.337, 7.471), base=(7.371, 14.61, 7.624, 6.639, 35.12), theta=0.2024),
])
@pytest.mark.parametrize("joint_after", [JOINT_AFTER, 0])
def test_freight_whose_every_route_crosses_a_full_group_is_priced_at_the_cap(case, joint_after):
    """OD 0 needs more than the two outlets hold together. Raising both prices together moves none of
    it, so the price step sees a direction with no response (research/price_loop_stranded.md): the
    group's prices rise together to the cap, OD 1 leaves for the detour, and the run settles; the caller
    rations what is over capacity at the cap. So too where the joint solve is tried at once (and gives
    the run back to the loop where it stalls)."""
    res = _two_outlets(**case, joint_after=joint_after)
    assert res.converged.all() and res.iterations < 100
    np.testing.assert_allclose(res.price[:2, 0], 1e4, rtol=1e-3)
    assert res.flow[2:4, 0].sum() < 1e-9 and res.flow[4, 0] == pytest.approx(20.0)


@pytest.mark.parametrize("joint_after", [JOINT_AFTER, 0])
@pytest.mark.parametrize("shut_in", [15.0, 19.5, 19.9])
def test_a_group_with_room_is_priced_below_the_cap(shut_in, joint_after):
    """The same outlets when OD 0 fits: the prices stay where OD 1's last units on the outlets fill
    them, far below the cap, each outlet within its capacity and full (the group rule does not fire)."""
    res = _two_outlets(shut_in, joint_after=joint_after)
    assert res.converged.all()
    ratio = res.load[:2, 0] / 10.0
    assert (ratio <= 1.004).all() and (ratio >= 0.99).all() and (res.price[:2, 0] < 100).all()


@pytest.mark.parametrize("shut_in", [20.5, 25.0])
def test_the_joint_solve_settles_congested_outlets_in_fewer_steps_than_the_loop_at_the_same_equilibrium(shut_in):
    """Two congested outlets (delay on both) that OD 0 alone overfills, and a steeper logit: the price
    loop raises the prices a step at a time against loads that re-settle between steps, to the cap (32
    and 23 Newton steps); solving the loads and the prices as one system (``joint_after`` 0) gets there
    in about a third of that, at the same equilibrium (the prices at the cap, the same route flows to
    the capacity band's width)."""
    loop = _two_outlets(shut_in, theta=1.0, delay=0.5, joint_after=10**6)
    joint = _two_outlets(shut_in, theta=1.0, delay=0.5, joint_after=0)
    assert loop.converged.all() and joint.converged.all()
    np.testing.assert_allclose(joint.price[:2, 0], 1e4, rtol=1e-3)
    assert joint.iterations < 0.6 * loop.iterations
    np.testing.assert_allclose(joint.flow, loop.flow, rtol=0.01, atol=1e-6)


def _three_outlets(shut_in: float, theta: float, price_halvings: int):
    """Three capacitated outlets (10 each) in parallel, 1 and 2 cost units apart, with no delay: OD 0
    (``shut_in``) may use only the outlets, OD 1 (20) the outlets or a detour costlier by 20. Prices alone
    clear the outlets, and the freight switches between them over a few units of price."""
    route_od = np.array([0, 0, 0, 1, 1, 1, 1])
    inc = sparse.csr_matrix(np.array([[1, 0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1, 0],
                                      [0, 0, 0, 0, 0, 0, 1]], float))
    base = np.array([10.0, 11.0, 12.0, 10.0, 11.0, 12.0, 30.0])[:, None]
    return solve_logit_sue(inc, np.ones(7), base, np.zeros((7, 1)), np.full((7, 1), theta), np.ones((7, 1), bool),
                           route_od, np.array([[shut_in], [20.0]]), DelayCurves.linear(np.zeros((4, 1))),
                           capacity=np.array([[10.0], [10.0], [10.0], [np.nan]]), max_iter=3000,
                           price_halvings=price_halvings)


@pytest.mark.parametrize("shut_in", [12.0, 20.0, 28.0])
def test_a_price_step_that_overshoots_parallel_outlets_is_halved_and_settles_sooner(shut_in):
    """From zero prices, the price step's linear response sends the freight from the overfull outlets
    to the others and back (69-146 Newton steps for these cases without halving); halving a free step
    while it leaves a facility farther across its capacity than it stood settles them in 8-9 steps, at
    the same equilibrium (the prices to the capacity band's width: a load within 0.4% over capacity or
    1% under it is settled)."""
    whole = _three_outlets(shut_in, theta=1.0, price_halvings=0)
    halved = _three_outlets(shut_in, theta=1.0, price_halvings=3)
    assert whole.converged.all() and halved.converged.all()
    assert halved.iterations < 0.2 * whole.iterations
    np.testing.assert_allclose(halved.price[:3, 0], whole.price[:3, 0], rtol=0.01)
    ratio = halved.load[:3, 0] / 10.0
    assert (ratio <= 1.004).all() and (ratio >= 0.99).all()


@pytest.mark.parametrize("shut_in", [15.0, 19.5])
def test_a_run_stopped_with_a_price_on_a_facility_with_room_is_not_converged(shut_in):
    """A run the step cap stops while a facility is priced with room to spare (55 USD on outlets at 76%
    of capacity) has not found the equilibrium; it was reported converged when only overfull
    facilities counted."""
    for max_iter in range(1, 45):
        res = _two_outlets(shut_in, max_iter=max_iter)
        assert not res.converged[0] or not _outlets_unsettled(res), max_iter


@pytest.mark.parametrize("shut_in", [15.0, 19.5, 25.0])
def test_a_run_stopped_before_its_prices_settle_ends_at_the_equilibrium_under_them(shut_in):
    """A solve's last steps (LOADS_ONLY_STEPS, half the budget if that is less) take no price step, so a
    run the step cap stops ends at the route choice its last prices give (gap within tolerance), flagged
    if the prices have not settled. It had ended wherever its loads stood after the last price step: with
    delay and a steep logit, the gap above tolerance at 6 of the budgets from 10 to 60 steps."""
    from multivector.freight.sue import EQUILIBRIUM_TOL

    for max_iter in range(10, 60):
        res = _two_outlets(shut_in, max_iter=max_iter, delay=0.5, theta=3.0)
        assert res.gap[0] <= EQUILIBRIUM_TOL, max_iter
        assert res.converged[0] or _outlets_unsettled(res), max_iter


def test_a_group_step_moves_its_members_past_the_others_weak_coupling():
    """Three full facilities that some freight must cross (a uniform rise of their prices moves none of
    its load) and a fourth that shares a few routes with them: the dropped direction raises the three
    and moves the fourth by 3e-4 of that the other way. The group's prices rise together, fivefold at
    most; the fourth's price takes no part. The rule had asked every other price to move by less than
    1e-9 of the largest, and three crossings from China stood 0.6% over capacity for 2,700 steps."""
    from multivector.freight import sue

    scaled = np.array([[-2.0, 1.0, 1.0, 2e-4],
                       [1.0, -2.0, 1.0, 0.0],
                       [1.0, 1.0, -2.0, 0.0],
                       [-3e-4, 0.0, 0.0, -1.0]])
    u = np.array([100.0, 100.0, 100.0, 50.0])
    cap = np.ones(4)
    load = np.array([1.01, 1.008, 1.006, 0.5])
    step = sue._group_step(scaled, np.ones(4), np.ones(4, bool), load, cap, u, 1.0)
    np.testing.assert_allclose(step[:3], 4.0 * (u[:3] + 1.0), rtol=1e-3)
    assert step[3] == 0.0
    roomy = sue._group_step(scaled, np.ones(4), np.ones(4, bool), np.array([0.9, 0.9, 0.9, 0.5]), cap, u, 1.0)
    np.testing.assert_allclose(roomy[:3], -0.5 * u[:3], rtol=1e-3)   # a group with room: down by half
    assert roomy[3] == 0.0


def test_a_price_whose_load_answers_it_by_a_denormal_counts_as_unanswered():
    """A random network reached a state where one price's own response was 1e-321 (a denormal): scaling
    the price step's system by it overflowed to infinity and the SVD refused the matrix. A response a
    trillion times below a relative one now counts as none (unit 1), so the scaled system stays finite."""
    from multivector.freight import sue

    response = np.array([9.7e-321, 1.4e-9, 0.0, 3e-8])
    u = np.array([2e9, 2e9, 5e8, 3e8])
    unit = sue._price_units(response, u, 1e7)
    assert unit.tolist() == [1.0, 1.4e-9, 1.0, 3e-8]
    system = np.array([[-9.7e-321, 1.1e-18, 0.0, 0.0], [1.4e-9, -1.4e-9, 0.0, 0.0],
                       [0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, -3e-8]])
    assert np.isfinite(system / unit[None, :]).all()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 9])
def test_sparse_products_give_scipys_numbers_to_the_bit_whatever_the_batch(n):
    """The products with the batch go column by column or side by side by its size: the same sums in the
    same order, so the numbers must be SciPy's own to the last bit."""
    from multivector.freight.products import matmul, matmul_each

    rng = np.random.default_rng(n)
    a = sparse.random(40, 300, density=0.1, format="csr", random_state=rng) * 1e3
    xs = [rng.standard_normal((300, n)) * 10.0 ** rng.integers(-3, 4, size=(300, 1)) for _ in range(3)]
    np.testing.assert_array_equal(matmul(a, xs[0]), a @ xs[0])
    for got, x in zip(matmul_each(a, xs), xs):
        np.testing.assert_array_equal(got, a @ x)
    np.testing.assert_array_equal(matmul(a, xs[0][:, 0]), a @ xs[0][:, 0])


def test_a_capacity_another_implies_is_found_run_by_run():
    """``_implied`` against its definition, pair by pair: x is implied where every route through x also
    passes y and y's capacity is smaller, or equal (then, for the same route sets, the first is kept)."""
    from multivector.freight.sue import _implied, _nested

    rng = np.random.default_rng(3)
    for _ in range(20):
        dense = (rng.random((6, 12)) < 0.35).astype(float)
        dense[1] = dense[0]                                   # two resources carrying the same routes
        dense[2] = dense[0] * (rng.random(12) < 0.5)          # and one nested inside them
        nested = _nested(sparse.csr_matrix(dense))
        cap = rng.choice([1.0, 2.0, 3.0], size=(6, 4))
        routes = [set(np.flatnonzero(row)) for row in dense]
        want = np.zeros(cap.shape, dtype=bool)
        for x in range(6):
            for y in range(6):
                if x == y or not routes[x] or not routes[x] <= routes[y]:
                    continue
                strict = routes[x] == routes[y] and x < y
                want[x] |= cap[y] < cap[x] if strict else cap[y] <= cap[x]
        np.testing.assert_array_equal(_implied(nested, cap), want)


def _outlets(capacity, flow, rationed=(True, True, True)):
    """A freight model's rationing parts for one OD whose three routes each leave by one outlet
    (resources 0-2, ``capacity`` each), with the route flows ``flow``: enough for
    :meth:`FreightModel._shipped`."""
    from types import SimpleNamespace

    from multivector.freight.model import FreightModel
    incidence = sparse.identity(3, format="csr")                 # [R, K]: route k crosses outlet k
    model = SimpleNamespace(hard_rows=np.arange(3), hard_incidence=incidence.T.tocsr().astype(bool),
                            hard_rationed=np.array(rationed), incidence=incidence, load_per_unit=np.ones(3),
                            spill_routes=np.arange(3), spill_od=np.zeros(3, int), spill_sum=sparse.csr_matrix(np.ones((1, 3))),
                            spill_incidence=incidence.T.tocsr().astype(bool), spill_loads=incidence)
    model._spilled = lambda *args: FreightModel._spilled(model, *args)
    flow = np.asarray(flow, dtype=float)[:, None]
    return model, flow, incidence @ flow, np.asarray(capacity, dtype=float)[:, None]


def test_what_a_full_rationed_outlet_cuts_goes_to_its_od_s_outlets_with_room_in_proportion():
    """A logit split hands a route's share to the others in proportion to theirs, so the crude a full
    pipeline or berth cuts goes to its OD's routes with room in that proportion; one that fills in turn
    passes its excess on; only what no outlet can take is unserved."""
    from multivector.freight.model import FreightModel
    shipped, load = FreightModel._shipped(*_outlets([2.0, 10.0, 10.0], [5.0, 3.0, 1.0]))
    np.testing.assert_allclose(shipped[:, 0], [2.0, 3.0 + 3.0 * 3 / 4, 1.0 + 3.0 * 1 / 4])
    np.testing.assert_allclose(load[:, 0], shipped[:, 0])
    shipped, _ = FreightModel._shipped(*_outlets([2.0, 4.0, 10.0], [5.0, 3.0, 1.0]))
    np.testing.assert_allclose(shipped[:, 0], [2.0, 4.0, 3.0])                # the second outlet fills too
    shipped, _ = FreightModel._shipped(*_outlets([2.0, 2.0, 2.0], [5.0, 3.0, 1.0]))
    np.testing.assert_allclose(shipped[:, 0], [2.0, 2.0, 2.0])                # 3 of 9 unserved
    # a priced facility's excess (freight at the price cap) is not moved: its price already chose
    shipped, _ = FreightModel._shipped(*_outlets([2.0, 10.0, 10.0], [5.0, 3.0, 1.0], rationed=(False, True, True)))
    np.testing.assert_allclose(shipped[:, 0], [2.0, 3.0, 1.0])


def test_the_spill_settles_each_run_on_its_own():
    """Each run's rounds stop when that run has placed what it can, so a run's shipped flows are the same
    to the bit alone and beside a run that needs more rounds (the rounds once stopped on the batch's sum)."""
    from multivector.freight.model import FreightModel
    model, _, _, _ = _outlets([2.0, 4.0, 10.0], [5.0, 3.0, 1.0])
    flows = np.array([[5.0, 5.0], [3.0, 3.0], [1.0, 1.0]])
    cap = np.array([[2.0, 2.0], [4.0, 10.0], [10.0, 10.0]])          # run 0 fills a second outlet, run 1 not
    together, _ = FreightModel._shipped(model, flows, model.incidence @ flows, cap)
    for j in range(2):
        alone, _ = FreightModel._shipped(model, flows[:, [j]], model.incidence @ flows[:, [j]], cap[:, [j]])
        np.testing.assert_array_equal(together[:, j], alone[:, 0])
    np.testing.assert_allclose(together, [[2.0, 2.0], [4.0, 3.0 + 3.0 * 3 / 4], [3.0, 1.0 + 3.0 * 1 / 4]])
