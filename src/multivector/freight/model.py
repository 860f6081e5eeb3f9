"""The physical register compiled for simulation: per-year costs, the logit equilibrium, labelled results.

:class:`FreightModel` holds a scenario's static arrays (route sets, incidence, demand vectors) and
solves one year for a whole batch of runs; :func:`results_dataset` stacks years into the labelled
``xarray.Dataset`` that every view reads. The year loop itself lives in :mod:`multivector.model`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numba
import numpy as np
import xarray as xr
from scipy import sparse

from multivector import __version__
from multivector.dataset import Scenario, Values
from multivector.dataset.scenario import DEMAND_FACTOR, DIRECTIONS, capacity_groups_of, risk_parameter
from multivector.errors import ConvergenceWarning, InputError
from multivector.freight.network import Network, focus_country_nodes, gateway_crossings, od_directions
from multivector.freight.products import matmul, matmul_each
from multivector.freight.sue import EQUILIBRIUM_TOL, MAX_NEWTON_STEPS, distinct_rows, solve_logit_sue
from multivector.freight.vdf import BPR, NO_DELAY, QUEUE, DelayCurves

#: Layers whose capacity is allocated by rationing: what a pipeline or a tanker berth (or a terminal
#: between two such layers) cannot take is not shipped (crude is shut in, pro rata), instead of waiting
#: as freight does at a ferry or a border, unless the same field's other outlets have room (see
#: ``FreightModel._shipped``).
RATIONED_LAYERS = ("pipeline", "tanker")
#: Rounds in which what full rationed outlets cut is offered to the same OD's routes with room (each
#: round fills at least one facility or places all of it; the built-in dataset's crude settles in 2-4).
SPILL_ROUNDS = 20
#: Room below this share of a capacity counts as none (a facility filled by an earlier round), and a
#: round that places less than this share of the flows ends them (the rounding of the last round).
SPILL_ROOM = 1e-9
#: The capacity price (USD per tonne) from which a full facility's multiplier grows: a tenth of a
#: typical overland rate per tonne (~120 USD/t for a TEU at 1,500 USD and 12 t), so the first step is
#: small next to what shippers already pay.
PRICE_UNIT_USD_T = 10.0
#: The highest capacity price (USD per tonne): freight that would pay more is deferred to a later year
#: (deferred, reported as unserved). 1,000 USD/t is ~12,000 USD per TEU, above the 2021 peak of
#: container spot rates (~10,000 USD per FEU on the Drewry WCI), so no route's freight pays it willingly.
MAX_PRICE_USD_T = 1000.0


#: The constant rows at the end of a year's parameter table (``_CostLayout``): a layer without a speed
#: (infinite), one without a tariff (zero) and the neutral capacity factor (one).
NO_SPEED, NO_TARIFF, NEUTRAL = -3, -2, -1


class _CostLayout:
    """What the per-year cost arrays are indexed by, from the network and the parameters' names (built
    once per model): each edge's layer, each route's edges of each risk class and the premium it pays
    there, each resource's capacity factors, edge and delay curve."""

    def __init__(self, net: Network, parameter_names, route_comm: np.ndarray, routes: np.ndarray):
        # every parameter the year's cost arrays read goes into one table a year (``_Costs``); the rows
        # below index it, and the last three rows are constants: no speed, no tariff, the neutral factor
        rows: dict[str, int] = {}
        row = lambda key: rows.setdefault(key, len(rows))
        self.layers = sorted(set(net.edge_layer))
        self.edge_layer = np.searchsorted(self.layers, net.edge_layer)
        # transfers and zone connectors have no speed or tariff of their own
        free = np.isin(np.array(self.layers), ["transfer", "connector"])
        self.speed_rows, self.tariff_rows = (
            np.array([row(f"{prefix}{x}") if f"{prefix}{x}" in parameter_names and not f else constant
                      for x, f in zip(self.layers, free)], dtype=int)
            for prefix, constant in (("speed_", NO_SPEED), ("tariff_", NO_TARIFF)))
        risks = sorted(set(net.edge_risk) - {""})
        # one premium per (class, commodity) and each route's count of edges of each class, placed in
        # its commodity's column: a route's premiums are then one sparse product a year
        n_comm = len(net.commodities)
        risk_keys = [risk_parameter(r, c, parameter_names) for r in risks for c in net.commodities]
        self.risk_rows = np.array([row(k) for k in risk_keys], dtype=int)
        risky = np.flatnonzero(net.edge_risk != "")
        in_class = sparse.csr_matrix(
            (np.ones(len(risky)), (risky, np.searchsorted(risks, net.edge_risk[risky]))),
            shape=(len(net.edge_risk), len(risks)))
        counts = (net.route_edges[routes] @ in_class).tocoo()                       # [routes, classes]
        self.route_risk = sparse.csr_matrix(
            (counts.data, (counts.row, counts.col * n_comm + route_comm[routes][counts.row])),
            shape=(len(routes), len(risk_keys)))                                    # [routes, classes x commodities]
        self.is_transfer = (net.edge_layer == "transfer")[:, None]
        # each edge's tariff factor: its tariff group's (a back-haul rate), else the neutral factor
        self.tariff_factor_rows = np.array([row(f"tariff_factor_{g}") if g else NEUTRAL
                                            for g in net.edge_tariff_group], dtype=int)
        # each resource's capacity factor: its layer's (or transfers') times each of its groups' (a
        # resource without a capacity is not binding: it takes the neutral factor, 1)
        capacitated = ~np.isnan(net.resource_capacity)
        keys = ["capacity_factor_transfer" if k == "transfer" else f"capacity_factor_{l}"
                for k, l in zip(net.resource_kind, net.resource_layer)]
        self.layer_factor_rows = np.array([row(k) if c else NEUTRAL for k, c in zip(keys, capacitated)], dtype=int)
        groups = [capacity_groups_of(g) if c else [] for g, c in zip(net.resource_group, capacitated)]
        width = max(map(len, groups), default=0)
        self.group_factor_rows = np.array([[row(f"capacity_factor_{g}") for g in gs] + [NEUTRAL] * (width - len(gs))
                                           for gs in groups], dtype=int).reshape(len(groups), width)  # [R, G]
        self.keys = list(rows)
        self.edge_of_resource = np.full(net.n_resources, -1)
        has = net.edge_resource >= 0
        self.edge_of_resource[net.edge_resource[has]] = np.flatnonzero(has)
        # delay curves: BPR on capacitated line-haul links, queueing at ferries and transfers
        self.curve = np.where(capacitated, np.where(net.resource_queue, QUEUE, BPR), NO_DELAY)
        self.rail_queue = net.resource_rail_transfer[:, None]


class _Costs:
    """Per-year cost arrays of the network for a batch of runs."""

    def __init__(self, net: Network, layout: _CostLayout, p: Values, n: int):
        li = layout.edge_layer
        table = np.empty((len(layout.keys) + 3, n))        # the parameters read, then the three constants
        for i, key in enumerate(layout.keys):
            table[i] = p[key]
        table[NO_SPEED], table[NO_TARIFF], table[NEUTRAL] = np.inf, 0.0, 1.0
        speed, tariff = table[layout.speed_rows], table[layout.tariff_rows]                   # [layers, N]
        length = net.edge_length[:, None]
        is_transfer = layout.is_transfer
        dwell = np.where(is_transfer, p["transfer_time_factor"], 1.0) if is_transfer.any() else 1.0
        tariff_factor = np.where(net.edge_focus[:, None], p["focus_tariff_factor"], 1.0) * table[layout.tariff_factor_rows]
        self.edge_time = length / speed[li] + net.edge_extra_time[:, None] * dwell      # [E, N]
        self.edge_tariff = length * tariff[li] * tariff_factor                           # [E, N]
        self.edge_money = self.edge_tariff + net.edge_extra_cost[:, None]                    # [E, N]
        # each route's risk premiums: its edges of each class times that class's premium for its commodity
        self.route_risk = matmul(layout.route_risk, table[layout.risk_rows])                   # [K, N]
        cap_factor = table[layout.layer_factor_rows] * table[layout.group_factor_rows].prod(axis=1)   # [R, N]
        # a facility scaled to zero capacity is closed: a tiny capacity keeps its delay huge but finite
        self.capacity = np.maximum(net.resource_capacity[:, None] * cap_factor, 1e-6)  # [R, N] (NaN kept)
        self.resource_free_time = self.edge_time[layout.edge_of_resource]             # [R, N]
        # each queue's scale (its wait at half utilisation): a gauge change's own, else ports' and ferries'
        rail = layout.rail_queue
        scale = np.where(rail, p["queue_scale_rail_h"], p["queue_scale_h"]) if rail.any() else p["queue_scale_h"]
        self.curves = DelayCurves(layout.curve, self.capacity, self.resource_free_time, p["vdf_alpha"],
                                  p["vdf_beta"], scale, p["queue_max_ratio"])   # vdf_* required at load


def _segment_premiums(scenario: Scenario, net: Network) -> tuple[list[str], sparse.csr_matrix | None]:
    """The premium parameters of segments that pay to avoid (``[segments.NAME] premium``), and which of
    them each route pays: ``[K, premiums]``, 1 where a route of such a segment's OD crosses one of its
    avoided risk classes (once per route), None where no segment pays."""
    paying = [seg for seg in scenario.segments.values() if seg.premium is not None and seg.name in net.od_segment]
    if not paying:
        return [], None
    names = list(dict.fromkeys(seg.premium for seg in paying))
    routes, columns = [], []
    for seg in paying:
        crossing = np.asarray(net.route_edges[:, np.isin(net.edge_risk, seg.avoids)].sum(axis=1)).ravel() > 0
        mine = np.flatnonzero(crossing & (net.od_segment[net.route_od] == seg.name))
        routes.append(mine)
        columns.append(np.full(len(mine), names.index(seg.premium)))
    routes, columns = np.concatenate(routes), np.concatenate(columns)
    return names, sparse.csr_matrix((np.ones(len(routes)), (routes, columns)), shape=(net.n_routes, len(names)))


class FreightModel:
    """The physical register compiled for simulation: static arrays, and one year solved at a time.

    ``solve_year`` takes that year's ``[N, P]`` parameter table and returns that year's results as
    plain arrays; :func:`simulate` and the coupled model both loop over years with it.
    """

    def __init__(self, scenario: Scenario, net: Network):
        self.scenario = scenario
        self.net = net
        self.commodities = net.commodities
        comm_index = {c: i for i, c in enumerate(self.commodities)}
        self.od_group = np.array([comm_index[c] for c in net.od_commodity], dtype=int)
        self.route_comm = self.od_group[net.route_od]
        self.od_starts = np.searchsorted(net.route_od, np.arange(len(net.od_origin)))   # routes sorted by OD
        tpu = np.array([scenario.commodities[c].tonnes_per_unit for c in self.commodities])
        self.cpu = np.array([scenario.commodities[c].cost_units_per_unit for c in self.commodities])
        self.load_per_unit = tpu[self.route_comm] / 1e6
        # Mt of load per cost unit: what a capacity price (USD per Mt) costs a route per cost unit, the
        # unit its tariffs, value of time and logit scale are quoted in (a TEU-equivalent of bulk, a tonne of crude)
        self.load_per_cost_unit = self.load_per_unit / self.cpu[self.route_comm]
        self.incidence = net.route_resources().T.tocsr()                    # [R, K]
        # a segment's routes repeat routes of its whole OD (same edges, same commodity): their costs are
        # summed once, on the distinct routes, and read back for every route (``_per_route``)
        n_comm = len(self.commodities)
        twins, self.cost_routes = distinct_rows(sparse.hstack(
            [net.route_edges, sparse.csr_matrix((np.ones(net.n_routes), (np.arange(net.n_routes), self.route_comm)),
                                                shape=(net.n_routes, n_comm))]).tocsr())
        self.route_twin = twins if len(self.cost_routes) < net.n_routes else None
        self.cost_edges = net.route_edges[self.cost_routes] if self.route_twin is not None else net.route_edges
        self.cost_layout = _CostLayout(net, scenario.parameters, self.route_comm, self.cost_routes)
        capacitated = ~np.isnan(net.resource_capacity)
        self.congestible = capacitated            # only a capacity makes a delay
        rationed = capacitated & np.array([all(end in RATIONED_LAYERS for end in ends) for ends in net.resource_ends])
        # with hard capacities, a full ferry, port, border or line is priced (a side constraint of the
        # equilibrium) and any flow still above a capacity is not shipped this year; crude is rationed
        # at a full outlet either way
        hard_all = scenario.capacities == "hard"
        self.priced_rows = np.flatnonzero(capacitated & ~rationed) if hard_all else np.zeros(0, dtype=int)
        hard = capacitated if hard_all else rationed
        self.hard_rows = np.flatnonzero(hard)
        self.hard_incidence = self.incidence[self.hard_rows].T.tocsr().astype(bool)   # [K, H]
        self.hard_rationed = rationed[self.hard_rows]                                  # [H]
        # the routes of the ODs that can lose freight at a rationed facility (crude's): what such a
        # facility cuts is passed on among them alone (``_shipped``)
        rationing = np.asarray(self.hard_incidence[:, np.flatnonzero(self.hard_rationed)].sum(axis=1)).ravel() > 0
        ods = np.unique(net.route_od[rationing])
        self.spill_routes = np.flatnonzero(np.isin(net.route_od, ods))                   # [S]
        self.spill_od = np.searchsorted(ods, net.route_od[self.spill_routes])           # [S] its OD among ``ods``
        self.spill_sum = sparse.csr_matrix((np.ones(len(self.spill_routes)), (self.spill_od, np.arange(len(self.spill_routes)))),
                                           shape=(len(ods), len(self.spill_routes)))   # [ODs, S]
        self.spill_incidence = self.hard_incidence[self.spill_routes]                    # [S, H]
        self.spill_loads = self.incidence[self.hard_rows][:, self.spill_routes].tocsr()   # [H, S]
        # for route sums of the delays and prices: only congestible facilities have a delay, only the
        # priced ones a price ([K, rows] each, a fifth of the whole incidence)
        self.delay_rows = np.flatnonzero(self.congestible)
        self.delay_routes = self.incidence[self.delay_rows].T.tocsr()[self.cost_routes]
        self.price_routes = self.incidence[self.priced_rows].T.tocsr()[self.cost_routes]
        self.corridor_names = net.corridors + ["other"]
        corr_matrix = sparse.csr_matrix(
            (np.ones(net.n_routes), (net.route_corridor, np.arange(net.n_routes))),
            shape=(len(self.corridor_names), net.n_routes))
        focus = focus_country_nodes(scenario)
        # the routes of ODs that neither start nor end in the focus country: what pays its transit tariff
        route_transit = np.array([o not in focus and d not in focus
                                  for o, d in zip(net.od_origin, net.od_destination)], dtype=bool)[net.route_od]
        # each route's edges inside the focus country, the only ones whose tariff is the focus country's
        self.focus_edges = net.edge_focus[:, None]
        overland = [net.corridors.index(c) for c in scenario.overland_corridors if c in net.corridors]
        teu = [comm_index[c] for c, m in scenario.commodities.items() if m.unit.upper() == "TEU"]
        overland_routes = np.isin(net.route_corridor, overland)
        route_teu = np.isin(self.route_comm, teu)
        overland_teu = overland_routes & route_teu
        via_focus = net.route_via_focus
        self.od_commodity = sparse.csr_matrix(        # [C, D]: each commodity's ODs
            (np.ones(len(self.od_group)), (self.od_group, np.arange(len(self.od_group)))),
            shape=(n_comm, len(self.od_group)))
        self.route_cpu = self.cpu[self.route_comm][:, None]          # cost units per unit of each route's flow
        # gateways: [gateway × direction × commodity, routes], so one product gives what each border
        # crossing and port handles by direction and commodity (in the commodity's unit)
        self.gateways, g_route, g_gate, g_dir = gateway_crossings(scenario, net)
        nodes = scenario.nodes.set_index("id")
        self.gateway_labels = {f"gateway_{k}": ("gateway", [nodes.at[g, k] for g in self.gateways])
                               for k in ("name", "kind", "country")}
        n_dir = len(DIRECTIONS)
        rows = (g_gate * n_dir + g_dir) * n_comm + self.route_comm[g_route]
        gateway_matrix = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, g_route)), shape=(len(self.gateways) * n_dir * n_comm, net.n_routes))
        # how many routes cross each gateway each way with each commodity ([G, directions, C])
        self.gateway_routes = np.asarray(gateway_matrix.sum(axis=1)).reshape(len(self.gateways), n_dir, n_comm) \
            .astype(int)
        # [commodity × corridor, routes]: each corridor's volume by commodity
        volume_matrix = sparse.csr_matrix(
            (np.ones(net.n_routes), (self.route_comm * len(self.corridor_names) + net.route_corridor,
                                     np.arange(net.n_routes))),
            shape=(n_comm * len(self.corridor_names), net.n_routes))
        # [corridor × direction × commodity, routes]: each corridor's volume by the way its ODs go
        route_dir = od_directions(scenario, net)[net.route_od]
        direction_matrix = sparse.csr_matrix(
            (np.ones(net.n_routes), ((net.route_corridor * n_dir + route_dir) * n_comm + self.route_comm,
                                     np.arange(net.n_routes))),
            shape=(len(self.corridor_names) * n_dir * n_comm, net.n_routes))
        tpu_route = tpu[self.route_comm]
        # what a year's outputs sum over the routes' shipped flows, stacked so that one product gives them
        # all: corridor volumes, gateway volumes, each corridor's flow in cost units (the weights of its
        # mean time and cost), the overland totals the focus share is read from (TEU and tonnes), and the
        # freight in transit through the focus country (TEU and tonnes): every route that passes it of an
        # OD that neither starts nor ends there, as its railway counts transit
        transit = route_transit & via_focus
        totals = [overland_teu, overland_teu & via_focus, overland_routes, overland_routes & via_focus,
                  transit & route_teu, transit]
        weights = [1.0, 1.0, tpu_route, tpu_route, 1.0, tpu_route]
        self.flow_sums = sparse.vstack(
            [volume_matrix, gateway_matrix, direction_matrix, corr_matrix @ sparse.diags(self.route_cpu[:, 0])] +
            [sparse.csr_matrix(np.where(m, w, 0.0)[None, :]) for m, w in zip(totals, weights)]).tocsr()
        self.flow_sums.eliminate_zeros()
        self.flow_sums.sort_indices()          # each sum taken in route order, as a plain sum would
        self._flow_rows = np.cumsum([0, volume_matrix.shape[0], gateway_matrix.shape[0], direction_matrix.shape[0],
                                     len(self.corridor_names)])
        # the corridors' sums of flow-weighted times and costs, and the transit tariff paid by freight that
        # neither starts nor ends in the focus country
        self.cost_sums = sparse.vstack([corr_matrix, sparse.csr_matrix(route_transit[None, :].astype(float))]).tocsr()
        self.cost_sums.eliminate_zeros()
        # each commodity's flow-weighted time on each corridor: a corridor's mean time weighs bulk's
        # TEU-equivalents against boxes, where a published transit time is a container train's
        self.commodity_sums = volume_matrix.tocsr()
        self.commodity_sums.sort_indices()
        self._open = {}            # year -> (routes open that year [K], ODs with an open route [D])
        self._labels = {}          # the results' static labels (static_labels)
        # segments: each segment's ODs and the ODs whose demand they take a share of; outputs per OD are
        # reported on the whole ODs (``od_fold`` sums a segment's OD into its base)
        whole = np.flatnonzero(net.od_segment == "")
        self._segments = [(scenario.segments[name].share_parameter, np.flatnonzero(net.od_segment == name),
                           net.od_base[net.od_segment == name]) for name in dict.fromkeys(net.od_segment) if name]
        self.whole_ods = whole
        self._premium_names, self._premium_routes = _segment_premiums(scenario, net)
        self.od_fold = sparse.csr_matrix(
            (np.ones(len(net.od_base)), (np.searchsorted(whole, net.od_base), np.arange(len(net.od_base)))),
            shape=(len(whole), len(net.od_base))) if self._segments else None
        # demand by commodity and given year, as [D] vectors (on the whole ODs)
        od_index = {(net.od_origin[i], net.od_destination[i], net.od_commodity[i]): i for i in whole}
        d = scenario.demand
        self.demand_years = sorted(set(d["year"].astype(int)))
        self._demand = {}
        for commodity, group in d.groupby("commodity"):
            vectors = {}
            for y, rows in group.groupby(group["year"].astype(int)):
                v = np.zeros(len(net.od_origin))
                np.add.at(v, [od_index[(o, t, commodity)] for o, t in zip(rows["origin"], rows["destination"])],
                          rows["volume"].to_numpy())
                vectors[int(y)] = v
            self._demand[commodity] = vectors

    def demand(self, year: int, p: Values, n: int) -> np.ndarray:
        """``[D, N]`` demand: the latest year given at or before ``year``, grown by
        ``demand_growth_<commodity>`` per year after it, times ``demand_factor_<commodity>`` where the
        dataset declares one (how much of the tabled demand is really there to be won: a stated share
        the tables were built with, fitted or explored within its range)."""
        if year < self.demand_years[0]:
            raise InputError(f"no demand for {year}: demand.csv starts in {self.demand_years[0]}",
                             hint=f"choose years from {self.demand_years[0]}")
        out = np.zeros((len(self.net.od_origin), n))
        for commodity, vectors in self._demand.items():
            given = sorted(vectors)
            ref = max((y for y in given if y <= year), default=given[0])
            growth = p[f"demand_growth_{commodity}"]
            scale = ((1.0 + growth) ** (year - ref)) * p.get(DEMAND_FACTOR + commodity, 1.0)
            out += vectors[ref][:, None] * scale[None, :]
        if self._segments:
            whole = out.copy()
            for share, rows, bases in self._segments:
                moved = whole[bases] * p[share][None, :]
                out[rows] = moved
                out[bases] -= moved
        return out

    def solve_year(self, yt: Values, year: int, tol=EQUILIBRIUM_TOL, max_iter=MAX_NEWTON_STEPS, start=None,
                   start_price=None) -> dict:
        """Solve one year for every run; ``yt`` holds that year's parameter values ([N] arrays);
        ``start`` and ``start_price`` warm-start from earlier route flows ([K, N]) and capacity prices
        ([R, N], USD per Mt)."""
        net, route_comm, per_route = self.net, self.route_comm, self._per_route
        n = len(next(iter(yt.values())))
        costs = _Costs(net, self.cost_layout, yt, n)
        demand = self.demand(year, yt, n)
        vot = np.stack([yt[f"vot_{c}"] for c in self.commodities])[route_comm]                 # [K, N]
        theta = np.stack([yt[f"logit_scale_{c}"] for c in self.commodities])[route_comm]
        # each route's free time, money cost and focus-country tariff, summed over its edges
        route_time, route_money, focus_tariff = matmul_each(
            self.cost_edges, [costs.edge_time, costs.edge_money, np.where(self.focus_edges, costs.edge_tariff, 0.0)])
        route_money += costs.route_risk
        route_time, route_money, focus_tariff = (per_route(x) for x in (route_time, route_money, focus_tariff))  # [K, N]
        if self._premium_routes is not None:      # what segments pay on the routes they avoid
            route_money = route_money + matmul(self._premium_routes, np.stack([yt[k] for k in self._premium_names]))
        base = route_money + vot * route_time
        available, has_route = self._open_routes(year)
        _check_available(net, has_route, demand, year)
        res = solve_logit_sue(self.incidence, self.load_per_unit, base, vot, theta,
                              np.broadcast_to(available[:, None], base.shape), net.route_od, demand,
                              costs.curves, tol=tol, max_iter=max_iter, congestible=self.congestible,
                              start=start, start_price=start_price, price_unit=PRICE_UNIT_USD_T * 1e6,
                              max_price=MAX_PRICE_USD_T * 1e6, price_weight=self.load_per_cost_unit,
                              capacity=self._side_constraints(costs.capacity) if len(self.priced_rows) else None)
        if not res.converged.all():
            warnings.warn(_unconverged_message(year, res, tol, max_iter), ConvergenceWarning, stacklevel=3)
        h, load = self._shipped(res.flow, res.load, costs.capacity)                          # [K, N], [R, N]
        lost = res.flow - h
        # an OD's routes that took a full outlet's crude show negative losses; its total is what none
        # could take (the rounding of passing crude on, a trillionth of the OD's demand, is none)
        unserved_od = np.add.reduceat(lost, self.od_starts, axis=0) if len(lost) else np.zeros((0, n))   # [D, N]
        unserved_od[unserved_od <= 1e-12 * demand] = 0.0
        unserved = matmul(self.od_commodity, unserved_od)                                               # [C, N]
        if self.od_fold is not None:
            unserved_od = matmul(self.od_fold, unserved_od)                                           # whole ODs
        t_route = route_time + per_route(matmul(self.delay_routes, res.delay[self.delay_rows]))
        paid = route_money + self.load_per_cost_unit[:, None] * per_route(matmul(self.price_routes, res.price[self.priced_rows]))
        sums = matmul(self.flow_sums, h)
        volume, gateway, by_direction, wsum = (sums[a:b] for a, b in zip(self._flow_rows[:-1], self._flow_rows[1:]))
        teu, teu_focus, tonnes, tonnes_focus, transit_teu, transit_tonnes = sums[self._flow_rows[-1]:]
        w = h * self.route_cpu                          # weights in cost units for means
        time_sum, cost_sum, tariff_sum = matmul_each(self.cost_sums, [w * t_route, w * paid, w * focus_tariff])
        time_by_commodity = matmul(self.commodity_sums, h * t_route)                           # [C·nc, N]
        with np.errstate(invalid="ignore", divide="ignore"):
            time_h = np.where(wsum > 0, time_sum[:-1] / wsum, np.nan)
            time_by_commodity = np.where(volume > 0, time_by_commodity / volume, np.nan)
            cost_usd = np.where(wsum > 0, cost_sum[:-1] / wsum, np.nan)
            utilisation = load / costs.capacity
            focus_share = np.where(teu > 0, teu_focus / teu, np.nan)
            focus_share_t = np.where(tonnes > 0, tonnes_focus / tonnes, np.nan)
        out = {
            "volume": volume.reshape(len(self.commodities), -1, n),                               # [C, nc, N]
            "time_h": time_h, "time_by_commodity": time_by_commodity.reshape(len(self.commodities), -1, n),
            "cost_usd": cost_usd, "flow_mt": load, "delay_h": res.delay, "unserved": unserved,
            "unserved_od": unserved_od,
            "utilisation": utilisation, "gap": res.gap, "converged": res.converged,
            "focus_share": focus_share, "focus_share_tonnes": focus_share_t,
            "revenue": tariff_sum[-1] / 1e9, "iterations": res.iterations,
            "focus_overland_teu": teu_focus, "focus_transit_teu": transit_teu, "focus_transit_tonnes": transit_tonnes,
            "flow": h,
            "equilibrium_flow": res.flow, "price": res.price, "price_usd_t": res.price / 1e6,
            "gateway": gateway,                                                                # [G·D·C, N]
            "by_direction": by_direction,                                                      # [nc·D·C, N]
        }
        return out

    def static_labels(self, parameters: list[str], keep_routes: bool = False,
                      extra: Mapping | None = None) -> xr.Coordinates:
        """The labels of a result that do not depend on its runs or years — resources, corridors, ODs,
        gateways, the parameters' names, and ``extra`` (the coupled model's variables, causes and
        components) — with their indexes, built once per model and set of labels: indexing them was most
        of what building a single run's Dataset cost. Their arrays are read-only, since every result
        shares them."""
        key = (tuple(parameters), keep_routes, repr(sorted((extra or {}).items())))
        if key not in self._labels:
            net = self.net
            labels = {
                "resource": net.resource_id,
                "resource_label": ("resource", net.resource_label),
                "resource_kind": ("resource", net.resource_kind),
                "resource_layer": ("resource", net.resource_layer),
                "resource_link": ("resource", net.resource_link),
                "resource_group": ("resource", net.resource_group),
                "capacity_mt": ("resource", net.resource_capacity),
                "corridor": self.corridor_names, "commodity": net.commodities,
                "od": np.arange(len(self.whole_ods)), "od_origin": ("od", net.od_origin[self.whole_ods]),
                "od_destination": ("od", net.od_destination[self.whole_ods]),
                "od_commodity": ("od", net.od_commodity[self.whole_ods]),
                "gateway": list(self.gateways), "direction": list(DIRECTIONS),
                **self.gateway_labels,
                "parameter": list(parameters),
                **(extra or {}),
            }
            if keep_routes:
                labels.update(route_corridor=("route", [self.corridor_names[i] for i in net.route_corridor]),
                              route_path=("route", [" > ".join(p) for p in net.route_nodes]))
            built = xr.Coordinates(labels)
            for var in built.variables.values():
                var.values.flags.writeable = False
            self._labels[key] = built
        return self._labels[key]

    def _per_route(self, x: np.ndarray) -> np.ndarray:
        """``x`` summed on the distinct routes (``[cost routes, N]``) read for every route ``[K, N]``."""
        return x if self.route_twin is None else x[self.route_twin]

    def _open_routes(self, year: int) -> tuple[np.ndarray, np.ndarray]:
        """The routes open in ``year`` (no edge still to open, ``[K]``) and the ODs with one (``[D]``)."""
        if year not in self._open:
            net = self.net
            available = net.route_edges @ (net.edge_opens > year).astype(float) == 0
            has_route = np.zeros(len(net.od_origin), dtype=bool)
            np.logical_or.at(has_route, net.route_od, available)
            self._open[year] = available, has_route
        return self._open[year]

    def _side_constraints(self, capacity: np.ndarray) -> np.ndarray:
        """The capacities the equilibrium enforces by a price (NaN elsewhere): ``[R, N]``."""
        out = np.full_like(capacity, np.nan)
        out[self.priced_rows] = capacity[self.priced_rows]
        return out

    def _shipped(self, flow: np.ndarray, load: np.ndarray, capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Route flows and resource loads that hard capacities let through.

        Each route keeps the smallest ``capacity / load`` of the capacitated facilities it passes (at
        most 1), so no facility ships more than its capacity; the rest is unserved (crude shut in where
        every outlet of its field is full; freight deferred where even the highest capacity price could
        not clear a facility). What a full rationed outlet (a pipeline or a tanker berth, which carries
        no price) cuts first goes to the same OD's routes whose facilities all have room, in proportion
        to their flows, as far as every facility on the way has room, in rounds: a logit split gives a
        route's share to the others in proportion to theirs (the independence of irrelevant
        alternatives), so this is where a price on the full outlet would have sent it. Without it a
        field's crude was shut in at a full tanker berth while its pipelines had room (1.5 Mt a year in
        the default run).
        """
        if not len(self.hard_rows):
            return flow, load
        rows, inc = self.hard_rows, self.hard_incidence                                       # [K, H] CSR
        cap = capacity[rows]
        over = load[rows] > cap                                                               # [H, N]
        if not over.any():
            return flow, load
        spill = over & self.hard_rationed[:, None]
        if spill.any():
            flow = self._spilled(flow, load[rows], cap, spill)
            load = matmul(self.incidence, flow * self.load_per_unit[:, None])
            over = load[rows] > cap
            if not over.any():
                return flow, load
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(over, cap / load[rows], 1.0)                                     # [H, N]
        shipped = _rationed(np.ascontiguousarray(flow), ratio, inc.indptr, inc.indices)
        return shipped, matmul(self.incidence, shipped * self.load_per_unit[:, None])

    def _spilled(self, flow: np.ndarray, hard_load: np.ndarray, cap: np.ndarray, spill: np.ndarray) -> np.ndarray:
        """Route flows after the rationed facilities ``spill`` ([H, N], over capacity) cut their excess and
        it is offered, in rounds, to the same OD's routes with room on every capacitated facility they
        pass, in proportion to their flows, held where a facility would overfill (see :meth:`_shipped`).
        Only the routes of ODs that can lose freight at such a facility take part; each run settles on
        its own (:func:`_spill_rounds`), so its answer does not depend on the rest of the batch."""
        sub, inc, sums, loads = self.spill_routes, self.spill_incidence, self.spill_sum, self.spill_loads
        f = np.ascontiguousarray(flow[sub])
        _spill_rounds(f, np.ascontiguousarray(hard_load, dtype=float), np.ascontiguousarray(cap, dtype=float),
                      np.ascontiguousarray(spill), np.ascontiguousarray(self.load_per_unit[sub], dtype=float),
                      self.spill_od, sums.indptr, sums.indices, sums.data, loads.indptr, loads.indices, loads.data,
                      inc.indptr, inc.indices, SPILL_ROUNDS, SPILL_ROOM)
        out = flow.copy()
        out[sub] = f
        return out


@numba.njit(cache=True)
def _csr_row(ptr, idx, val, row, x):
    """Row ``row`` of a CSR matrix times the vector ``x``, summed in the matrix's own order (as SciPy does)."""
    total = 0.0
    for e in range(ptr[row], ptr[row + 1]):
        total += val[e] * x[idx[e]]
    return total


@numba.njit(cache=True)
def _smallest(ptr, idx, row, x):
    """The smallest of ``x`` over a CSR row's columns, at most 1: a route's rationing factor."""
    keep = 1.0
    for e in range(ptr[row], ptr[row + 1]):
        keep = min(keep, x[idx[e]])
    return keep


@numba.njit(cache=True)
def _spill_rounds(f, hard_load, cap, spill, lpu, od, sum_ptr, sum_idx, sum_val, load_ptr, load_idx, load_val,
                  inc_ptr, inc_idx, rounds, room_share):
    """The rounds of :meth:`FreightModel._spilled`, in place on ``f`` ([S, N], the spill routes' flows), one
    run at a time: each route is cut to the smallest ``cap / load`` of the full rationed facilities it
    passes (``spill``), the cut is summed per OD (``sum_*``: the OD-route CSR) and offered to the OD's routes
    whose every capacitated facility (``inc_*``) has room, in proportion to their flows, held to the room
    each facility has (``load_*``: the facility-route loads, ``lpu`` load per unit); a run stops when a round
    places less than ``room_share`` of its flows."""
    s_n, n = f.shape
    h_n, o_n = cap.shape[0], len(sum_ptr) - 1
    ratio, room, has_room, held = np.empty(h_n), np.empty(h_n), np.empty(h_n), np.empty(h_n)
    moved, takers, offer, given = np.empty(s_n), np.empty(s_n), np.empty(s_n), np.empty(s_n)
    lost, share = np.empty(o_n), np.empty(o_n)
    for j in range(n):
        load = hard_load[:, j].copy()
        for h in range(h_n):
            ratio[h] = cap[h, j] / load[h] if spill[h, j] else 1.0
        for k in range(s_n):
            cut = f[k, j] * _smallest(inc_ptr, inc_idx, k, ratio)
            moved[k] = f[k, j] - cut
            f[k, j] = cut
        for o in range(o_n):
            lost[o] = _csr_row(sum_ptr, sum_idx, sum_val, o, moved)
        for k in range(s_n):
            moved[k] = moved[k] * lpu[k]
        for h in range(h_n):
            load[h] = load[h] - _csr_row(load_ptr, load_idx, load_val, h, moved)
        for _ in range(rounds):
            for h in range(h_n):
                room[h] = cap[h, j] - load[h]
                has_room[h] = 1.0 if room[h] > room_share * cap[h, j] else 0.0
            for k in range(s_n):
                takers[k] = f[k, j] * _smallest(inc_ptr, inc_idx, k, has_room)
            for o in range(o_n):
                share[o] = _csr_row(sum_ptr, sum_idx, sum_val, o, takers)
            for k in range(s_n):
                offer[k] = lost[od[k]] * (takers[k] / share[od[k]] if share[od[k]] > 0 else 0.0)
                moved[k] = offer[k] * lpu[k]
            for h in range(h_n):
                asked = _csr_row(load_ptr, load_idx, load_val, h, moved)
                free = max(room[h], 0.0)        # a priced facility's excess at the cap: no room
                held[h] = free / asked if asked > free else 1.0
            placed, flows = 0.0, 0.0
            for k in range(s_n):
                given[k] = offer[k] * _smallest(inc_ptr, inc_idx, k, held)
                placed += given[k]
                flows += f[k, j]
            if placed <= room_share * flows:    # nothing placed but the rounding of the last round
                break
            for k in range(s_n):
                f[k, j] = f[k, j] + given[k]
                moved[k] = given[k] * lpu[k]
            for o in range(o_n):
                lost[o] = lost[o] - _csr_row(sum_ptr, sum_idx, sum_val, o, given)
            for h in range(h_n):
                load[h] = load[h] + _csr_row(load_ptr, load_idx, load_val, h, moved)


@numba.njit(cache=True)
def _rationed(flow, ratio, indptr, indices):
    """``flow`` (``[K, N]``) with each route's flow times the smallest ``ratio`` (``[H, N]``) of the
    capacitated facilities it passes (``indptr``, ``indices``: the route-facility incidence, CSR)."""
    out = flow.copy()
    for k in range(flow.shape[0]):
        if indptr[k] == indptr[k + 1]:
            continue
        for j in range(flow.shape[1]):
            keep = 1.0
            for e in range(indptr[k], indptr[k + 1]):
                keep = min(keep, ratio[indices[e], j])
            out[k, j] = flow[k, j] * keep
    return out


def _check_available(net: Network, has_route, demand, year):
    missing = np.flatnonzero(~has_route & (demand.max(axis=1) > 0))
    if len(missing):
        d = missing[0]
        who = f" for segment '{net.od_segment[d]}'" if net.od_segment[d] else ""
        raise InputError(f"in {year} no open route carries {net.od_commodity[d]}{who} from {net.od_origin[d]} "
                         f"to {net.od_destination[d]}", hint="check the 'opens' years in links.csv")


def _unconverged_message(year, res, tol, max_iter) -> str:
    """What a year's unconverged runs missed: the route choice's gap, or (the gap reached) the capacity
    prices, which a run can leave unsettled with its route choice exact under them."""
    off = res.gap > tol
    unsettled = ~res.converged & ~off
    said = []
    if off.any():
        said.append(f"{int(off.sum())} did not reach the route-choice gap {tol:g} (worst {res.gap.max():.2e})")
    if unsettled.any():
        said.append(f"{int(unsettled.sum())} reached it with capacity prices unsettled (a facility over capacity "
                    f"below the price cap, its excess not shipped, or one priced with room)")
    return (f"{year}: {int((~res.converged).sum())} of {len(res.gap)} runs did not converge in {max_iter} "
            f"Newton steps: " + "; ".join(said))


def results_dataset(scenario, model: FreightModel, table, years, per_year: list[dict], seed,
                    keep_routes=False, runs: int | None = None, extra: dict | None = None,
                    coords: dict | None = None) -> xr.Dataset:
    """Stack per-year result arrays into the labelled Dataset, built once: ``runs`` keeps the batch's
    first runs only (default all), ``extra`` adds variables and ``coords`` coordinates (the coupled
    model's political trajectory)."""
    net = model.net
    n = len(table) if runs is None else runs
    # runs first, laid out in C order: NumPy sums a strided view in an order its strides pick (einsum
    # among them), so the view would make a run's sums differ in the last bit between batches
    by_run = lambda key: np.ascontiguousarray(np.moveaxis(np.stack([y[key][..., :n] for y in per_year]), -1, 0))
    res_dims = ("run", "year", "resource")
    units = lambda dims, values, unit: xr.Variable(dims, values, attrs={"units": unit})
    tonnes = np.array([scenario.commodities[c].tonnes_per_unit for c in net.commodities])
    is_teu = np.array([scenario.commodities[c].unit.upper() == "TEU" for c in net.commodities], dtype=float)
    volume = by_run("volume")                                                  # [run, year, commodity, corridor]
    gateway = by_run("gateway").reshape(n, len(years), len(model.gateways), len(DIRECTIONS), len(net.commodities))
    teu = np.einsum("nyck,c->nyk", volume, is_teu)
    by_direction = by_run("by_direction").reshape(n, len(years), len(model.corridor_names), len(DIRECTIONS),
                                                  len(net.commodities))
    total_teu = teu.sum(axis=-1, keepdims=True)
    share = np.where(total_teu > 0, teu / np.where(total_teu > 0, total_teu, 1.0), 0.0)
    data = {
        "flow_mt": units(res_dims, by_run("flow_mt"), "Mt/yr"),
        "delay_h": units(res_dims, by_run("delay_h"), "h"),
        "capacity_price": units(res_dims, by_run("price_usd_t"), "USD/t"),
        "utilisation": (res_dims, by_run("utilisation")),
        "volume": (("run", "year", "commodity", "corridor"), volume),
        "transit_time_h": units(("run", "year", "corridor"), by_run("time_h"), "h"),
        # each commodity's mean time on each corridor (NaN where the corridor carries none of it)
        "transit_time_h_by_commodity": units(("run", "year", "commodity", "corridor"),
                                             by_run("time_by_commodity"), "h"),
        "cost_usd": units(("run", "year", "corridor"), by_run("cost_usd"), "USD per cost unit"),
        "gap": (("run", "year"), by_run("gap")),
        "converged": (("run", "year"), by_run("converged")),
        "unserved": (("run", "year", "commodity"), by_run("unserved")),
        "unserved_od": (("run", "year", "od"), by_run("unserved_od")),
        "focus_overland_share": (("run", "year"), by_run("focus_share")),
        "focus_overland_share_tonnes": (("run", "year"), by_run("focus_share_tonnes")),
        "gateway_volume": units(("run", "year", "gateway", "direction", "commodity"), gateway,
                                "commodity units (each commodity's unit)"),
        "focus_transit_revenue": units(("run", "year"), by_run("revenue"), "USD bn/yr"),
        # the freight in transit through the focus country, whatever its origin and destination
        "focus_transit_teu": units(("run", "year"), by_run("focus_transit_teu"), "TEU/yr"),
        "focus_transit_tonnes": units(("run", "year"), by_run("focus_transit_tonnes"), "t/yr"),
        "iterations": (("year",), np.array([y["iterations"] for y in per_year])),
        "parameter_value": (("run", "parameter"), table.to_numpy()[:n]),
        "tonnes": units(("run", "year", "corridor"), np.einsum("nyck,c->nyk", volume, tonnes), "t"),
        "teu": units(("run", "year", "corridor"), teu, "TEU"),
        # einsum, not a BLAS product, on the run path: OpenBLAS's woken threads spin on the equilibrium's cores
        "gateway_tonnes": units(("run", "year", "gateway", "direction"), np.einsum("nygdc,c->nygd", gateway, tonnes), "t"),
        "gateway_teu": units(("run", "year", "gateway", "direction"), np.einsum("nygdc,c->nygd", gateway, is_teu), "TEU"),
        "share": (("run", "year", "corridor"), share),
        # each corridor's freight by the way its ODs go (China to Europe westbound)
        "tonnes_by_direction": units(("run", "year", "corridor", "direction"),
                                     np.einsum("nykdc,c->nykd", by_direction, tonnes), "t"),
        "teu_by_direction": units(("run", "year", "corridor", "direction"),
                                  np.einsum("nykdc,c->nykd", by_direction, is_teu), "TEU"),
        # how many routes of the route set cross each gateway each way with each commodity (whether or
        # not they carry anything in a year): which directions and commodities a gateway can see at all
        "gateway_routes": (("gateway", "direction", "commodity"),
                           model.gateway_routes),
    }
    if keep_routes:
        data["route_flow"] = (("run", "year", "route"), by_run("flow"))
    labels = xr.Coordinates({"run": np.arange(n), "year": np.array(years)}).merge(
        model.static_labels(list(table.columns), keep_routes, coords)).coords
    return xr.Dataset({**data, **(extra or {})}, coords=labels,
                      attrs={"scenario": scenario.name, "scenario_hash": scenario.fingerprint(),
                             "code_version": __version__, "seed": seed, "focus_country": scenario.focus.country})
