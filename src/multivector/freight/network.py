"""Compile a scenario's network into arrays: a layered graph, capacity resources and route sets.

Each place (node) is split into one vertex per *layer* that meets there (rail 1435, rail 1520, water,
sea, ...). A link becomes one directed edge per direction inside its layer; a transfer (gauge break,
port call) becomes a pair of edges between two layers of a node. Origins and destinations get their
own zone vertices, so no route passes *through* a zone.

Congestion lives on **resources**: each direction of a capacitated link, and each transfer facility
(both directions share it). Route choice works on a fixed **route set** per OD and commodity: for
every corridor, the k cheapest loopless free-flow routes that pass one of its nodes and none of an
earlier corridor's — so each OD sees every corridor that geography allows.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from multivector.dataset import Scenario
from multivector.dataset import scenario as _scenario_module
from multivector.dataset.scenario import (DIRECTIONS, QUEUE_MODES, capacity_groups_of, is_rail_transfer, link_layer,
                                         transfer_layers)
from multivector.errors import InputError
from multivector.io import atomic_write, cache_folder


@dataclass
class Network:
    """Arrays describing the layered graph, its resources and the route set (no parameters)."""

    # edges (directed)
    edge_layer: np.ndarray        # [E] layer name
    edge_length: np.ndarray       # [E] km (0 for transfers/connectors)
    edge_extra_time: np.ndarray   # [E] h
    edge_extra_cost: np.ndarray   # [E] USD per cost unit
    edge_risk: np.ndarray         # [E] risk class ('' for none)
    edge_resource: np.ndarray     # [E] resource index or -1
    edge_opens: np.ndarray        # [E] first year available
    edge_focus: np.ndarray        # [E] bool: a line-haul edge inside the focus country (tariff policy, revenue)
    edge_tariff_group: np.ndarray  # [E] tariff group ('' for none): its tariff scaled by tariff_factor_<group>
    # resources (capacity-bound facilities and link directions)
    resource_id: list[str]        # [R] e.g. 'L-01:fwd', 'T:PORT:rail_1520|water', 'T:DOS:rail_1435>rail_1520'
    resource_label: list[str]     # [R] readable name
    resource_kind: np.ndarray     # [R] 'link' or 'transfer'
    resource_layer: np.ndarray    # [R] layer (or 'transfer')
    resource_ends: list[tuple[str, ...]]  # [R] the layers it serves: a link's own, a transfer's two
    resource_capacity: np.ndarray  # [R] Mt/yr, nan = not binding
    resource_queue: np.ndarray    # [R] bool: queueing delay (ferries, transfers) instead of BPR
    resource_rail_transfer: np.ndarray  # [R] bool: a transfer between two rail layers (a gauge change)
    resource_link: list[str]      # [R] link id or transfer node
    resource_group: list[str]     # [R] capacity groups, ';'-joined ('' for none): scaled by each capacity_factor_<group>
    # routes
    route_edges: sparse.csr_matrix  # [K, E] 0/1
    route_od: np.ndarray          # [K] OD index
    route_corridor: np.ndarray    # [K] corridor index (len(corridors) = unlabelled)
    route_via_focus: np.ndarray   # [K] bool: passes a node of the focus country
    route_nodes: list[list[str]]  # [K] place ids along the route
    od_origin: np.ndarray         # [D] node ids
    od_destination: np.ndarray    # [D]
    od_commodity: np.ndarray      # [D] commodity names
    od_segment: np.ndarray        # [D] segment name ('' for an OD's whole demand)
    od_base: np.ndarray           # [D] the OD whose demand a segment's OD takes its share of (itself if none)
    corridors: list[str]
    commodities: list[str]

    @property
    def n_routes(self) -> int:
        return len(self.route_od)

    @property
    def n_resources(self) -> int:
        return len(self.resource_id)

    def route_resources(self) -> sparse.csr_matrix:
        """[K, R] incidence of routes on resources (a route can pass a resource once)."""
        e = self.edge_resource
        cols = np.flatnonzero(e >= 0)
        m = sparse.csr_matrix((np.ones(len(cols)), (cols, e[cols])), shape=(len(e), self.n_resources))
        out = (self.route_edges @ m).tocsr()
        out.data[:] = np.minimum(out.data, 1.0)
        return out


def _package_version() -> str:
    try:
        return importlib.metadata.version("multivector")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def network_key(s: Scenario, k_per_corridor: int = 2) -> str:
    """A hash of everything :func:`compile_network` reads (the tables as loaded, the corridors, the
    parameter defaults that price free-flow routes) and of this module's code and the package version,
    so a cached route set is used only where compiling again would give the same one."""
    h = hashlib.sha256(f"{_package_version()}|{k_per_corridor}".encode())
    for module in (__file__, _scenario_module.__file__):    # the code that reads and compiles
        h.update(Path(module).read_bytes())
    for table in (s.links, s.transfers, s.nodes, s.demand[["origin", "destination", "commodity"]]):
        h.update("|".join(map(str, table.columns)).encode())
        h.update(pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy().tobytes())
    h.update(json.dumps({"corridors": {n: c.model_dump() for n, c in s.corridors.items()},
                         "segments": {n: g.model_dump() for n, g in s.segments.items()},
                         "commodities": {c: m.route_detour_max for c, m in s.commodities.items()},
                         "defaults": route_defaults(s),
                         "focus": s.focus.country, "detour": s.route_detour_max}, sort_keys=True,
                        default=str).encode())
    return h.hexdigest()


#: The parameters whose defaults price free-flow routes (:func:`_free_cost`), and so the route sets.
ROUTE_PARAMETERS = ("speed_", "tariff_", "vot_")


def route_defaults(s: Scenario) -> dict[str, float]:
    """The parameter defaults that :func:`compile_network` reads: speeds, tariffs and values of time.
    It is given only these, so the cache key (:func:`network_key`) cannot miss one it uses; a change to
    any other default (a premium, a logit scale, a capacity) keeps the cached route set."""
    return {k: v for k, v in s.defaults().items() if k.startswith(ROUTE_PARAMETERS)}


def cached_network(s: Scenario, k_per_corridor: int = 2) -> Network:
    """:func:`compile_network`, kept on disk by :func:`network_key` (route enumeration is the slow
    step of a first answer); an unreadable or stale entry is compiled again and replaced."""
    folder = cache_folder("networks")
    if folder is None:
        return compile_network(s, k_per_corridor)
    path = folder / f"{network_key(s, k_per_corridor)}.pickle"
    try:
        with open(path, "rb") as fh:
            net = pickle.load(fh)
        if isinstance(net, Network):
            return net
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        pass
    net = compile_network(s, k_per_corridor)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, pickle.dumps(net, protocol=pickle.HIGHEST_PROTOCOL))
    except (OSError, InputError):
        pass          # a read-only or full cache folder costs time, never the answer
    return net


def focus_country_nodes(s: Scenario) -> set[str]:
    """Nodes in the dataset's focus country (a border node lists both sides, e.g. ``AA/BB``)."""
    code = s.focus.country
    return {n for n, c in zip(s.nodes["id"], s.nodes["country"]) if code in c.split("/")}


def crossing_direction(before: tuple[float, float], after: tuple[float, float]) -> str:
    """The compass direction of travel from ``before`` to ``after`` (each ``(lon, lat)`` in degrees):
    westbound or eastbound when the east–west distance ``|Δlon · cos(mean lat)|`` is at least the
    north–south one ``|Δlat|``, else northbound or southbound. Δlon is taken the short way round the
    globe; a tie goes east–west, no movement at all counts as eastbound."""
    dlon = (after[0] - before[0] + 180.0) % 360.0 - 180.0
    dlat = after[1] - before[1]
    east = dlon * math.cos(math.radians((after[1] + before[1]) / 2))
    if abs(east) >= abs(dlat):
        return "westbound" if east < 0 else "eastbound"
    return "northbound" if dlat > 0 else "southbound"


def _positions(s: Scenario) -> dict[str, tuple[float, float]]:
    """Each node's ``(lon, lat)`` in degrees, as :func:`crossing_direction` reads them."""
    return dict(zip(s.nodes["id"], zip(s.nodes["lon"].astype(float), s.nodes["lat"].astype(float))))


def gateway_crossings(s: Scenario, net: Network) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Where each route crosses a gateway (a node whose kind is one of ``s.gateway_kinds``), and which
    way: ``(gateway ids, route index, gateway index, direction index into DIRECTIONS)``.

    The direction is that of travel from the route's place before the gateway to the place after it;
    at a route's first or last place (a port of origin or destination) the gateway itself stands in
    for the missing neighbour."""
    gateways = s.gateways
    index = {g: i for i, g in enumerate(gateways)}
    where = _positions(s)
    direction = {d: i for i, d in enumerate(DIRECTIONS)}
    routes, gates, dirs = [], [], []
    for k, places in enumerate(net.route_nodes):
        for j, place in enumerate(places):
            g = index.get(place)
            if g is None:
                continue
            before = places[j - 1] if j > 0 else place
            after = places[j + 1] if j + 1 < len(places) else place
            routes.append(k)
            gates.append(g)
            dirs.append(direction[crossing_direction(where[before], where[after])])
    return gateways, np.array(routes, dtype=int), np.array(gates, dtype=int), np.array(dirs, dtype=int)


def od_directions(s: Scenario, net: Network) -> np.ndarray:
    """Each OD's direction, from its origin to its destination, as an index into DIRECTIONS ``[D]``:
    which way a corridor's freight goes (China to Europe is westbound)."""
    where = _positions(s)
    direction = {d: i for i, d in enumerate(DIRECTIONS)}
    return np.array([direction[crossing_direction(where[o], where[d])]
                     for o, d in zip(net.od_origin, net.od_destination)], dtype=int)


def _num(x, default=0.0) -> float:
    return default if (x is None or (isinstance(x, float) and math.isnan(x))) else float(x)


def compile_network(s: Scenario, k_per_corridor: int = 2) -> Network:
    """Build the layered graph and the route set of a scenario."""
    links, transfers = s.links, s.transfers
    focus_nodes = focus_country_nodes(s)

    edges = []        # dicts
    resources = []    # dicts
    layers_at: dict[str, set[str]] = {}

    for _, row in links.iterrows():
        layer = link_layer(row["mode"], row["gauge_mm"])
        comm = set(filter(None, row["commodities"].split(";")))
        oneway = bool(_num(row.get("oneway", 0.0)))
        opens = _num(row.get("opens", math.nan), default=-math.inf)
        directions = [("fwd", row["from"], row["to"])]
        if not oneway:
            directions.append(("rev", row["to"], row["from"]))
        for tag, a, b in directions:
            layers_at.setdefault(a, set()).add(layer)
            layers_at.setdefault(b, set()).add(layer)
            r = len(resources)
            resources.append(dict(id=f"{row['id']}:{tag}", label=f"{row['id']} {a}→{b}", kind="link",
                                  layer=layer, ends=(layer,), capacity=_num(row["capacity_mt"], math.nan),
                                  queue=row["mode"] in QUEUE_MODES, rail_transfer=False, link=row["id"],
                                  group=";".join(capacity_groups_of(row.get("capacity_group", "")))))
            edges.append(dict(u=(a, layer), v=(b, layer), layer=layer, length=row["length_km"],
                              time=_num(row["extra_time_h"]), cost=_num(row["extra_cost_usd"]),
                              risk=row["risk_class"], resource=r, opens=opens, comm=comm,
                              focus=a in focus_nodes and b in focus_nodes,
                              tariff_group=str(row.get("tariff_group", "") or "")))

    for i, row in transfers.iterrows():
        (a, b), both_ways = transfer_layers(row["between"])
        node = row["node"]
        present = layers_at.get(node, set())
        for layer in (a, b):
            if layer not in present:
                raise InputError(f"transfer {row['between']} at {node}: no {layer} link meets that node",
                                 file=(s.path / "transfers.csv") if s.path else "transfers.csv",
                                 row=i + 2, column="between",
                                 hint=f"add a {layer} link at {node} or remove the transfer")
        r = len(resources)
        arrow = "↔" if both_ways else "→"
        resources.append(dict(id=f"T:{node}:{row['between']}", label=f"{node} {a}{arrow}{b}", kind="transfer",
                              layer="transfer", ends=(a, b), capacity=_num(row["capacity_mt"], math.nan), queue=True,
                              rail_transfer=is_rail_transfer(row["between"]), link=node,
                              group=";".join(capacity_groups_of(row.get("capacity_group", "")))))
        comm = set(s.commodities)
        for u, v in ((a, b), (b, a)) if both_ways else ((a, b),):
            edges.append(dict(u=(node, u), v=(node, v), layer="transfer", length=0.0,
                              time=_num(row["time_h"]), cost=_num(row["cost_usd"]),
                              risk=row["risk_class"], resource=r, opens=-math.inf, comm=comm))

    # zone connectors: origin vertex -> every layer at the node; every layer -> destination vertex
    demand = s.demand
    # ODs grouped by commodity (in the order model.toml declares them), so that the routes, enumerated
    # commodity by commodity, come out sorted by OD: the solver's per-OD sums rely on it
    ods = demand[["origin", "destination", "commodity"]].drop_duplicates()
    order = {c: i for i, c in enumerate(s.commodities)}
    ods = ods.sort_values("commodity", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    for node in set(ods["origin"]) | set(ods["destination"]):
        if node not in layers_at:
            raise InputError(f"demand node '{node}' has no link", file="demand.csv",
                             hint="connect it in links.csv")
        for layer in layers_at[node]:
            edges.append(dict(u=("O", node), v=(node, layer), layer="connector", length=0.0, time=0.0,
                              cost=0.0, risk="", resource=-1, opens=-math.inf, comm=set(s.commodities)))
            edges.append(dict(u=(node, layer), v=("D", node), layer="connector", length=0.0, time=0.0,
                              cost=0.0, risk="", resource=-1, opens=-math.inf, comm=set(s.commodities)))

    import networkx as nx     # only to enumerate routes: a network read from the cache never imports it

    corridors = list(s.corridors)
    defaults = route_defaults(s)
    routes_edges, route_od, route_corr, route_focus, route_nodes = [], [], [], [], []
    od_rows = []        # (origin, destination, commodity, segment, base OD), in the order routes follow
    for commodity in s.commodities:
        g = nx.DiGraph()
        for i, e in enumerate(edges):
            if commodity not in e["comm"]:
                continue
            w = _free_cost(e, defaults, defaults[f"vot_{commodity}"])
            if g.has_edge(e["u"], e["v"]) and g[e["u"]][e["v"]]["w"] <= w:
                continue
            g.add_edge(e["u"], e["v"], w=w, idx=i)
        choice_sets = []    # each OD of the commodity and its routes
        for _, od in ods[ods["commodity"] == commodity].iterrows():
            src, dst = ("O", od["origin"]), ("D", od["destination"])
            found = _routes_for_od(g, src, dst, s, corridors, k_per_corridor, commodity)
            if not found:
                raise InputError(
                    f"no path for {commodity} from {od['origin']} to {od['destination']}",
                    file=(s.path / "demand.csv") if s.path else "demand.csv",
                    hint="check links.csv (commodities column, gauges) and transfers.csv")
            found = [(ci, path, [g[a][b]["idx"] for a, b in zip(path[:-1], path[1:])]) for ci, path in found]
            bound = s.commodities[commodity].detour_bound(s.route_detour_max)
            if bound is not None:
                found = _without_detours(found, edges, bound)
            choice_sets.append((od["origin"], od["destination"], len(od_rows) + len(choice_sets), found))
        # a segment's OD follows all of its commodity's own ODs wherever some of the routes cross its
        # avoided risk classes but not all of them: with the routes that avoid them, or with every route
        # where the segment pays a premium on the others (its model adds it)
        segments = [(seg.name, set(seg.avoids), seg.premium is not None) for seg in s.segments.values()
                    if seg.commodity == commodity]
        for name, avoids, pays in [("", set(), False)] + segments:
            for origin, destination, base, found in choice_sets:
                kept = [f for f in found if not any(edges[i]["risk"] in avoids for i in f[2])]
                if name and (not kept or len(kept) == len(found)):
                    continue
                kept = found if pays else kept
                d = len(od_rows)
                od_rows.append((origin, destination, commodity, name, base))
                for ci, path, idx in kept:
                    places = [v[0] for v in path[1:-1]]
                    places = [p for j, p in enumerate(places) if j == 0 or places[j - 1] != p]
                    routes_edges.append(idx)
                    route_od.append(d)
                    route_corr.append(ci)
                    route_focus.append(any(p in focus_nodes for p in places))
                    route_nodes.append(places)

    n_e = len(edges)
    rows = np.repeat(np.arange(len(routes_edges)), [len(r) for r in routes_edges])
    cols = np.concatenate([np.asarray(r, dtype=int) for r in routes_edges])
    route_edge = sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(routes_edges), n_e))
    route_edge.sum_duplicates()
    return Network(
        edge_layer=np.array([e["layer"] for e in edges]),
        edge_length=np.array([e["length"] for e in edges], dtype=float),
        edge_extra_time=np.array([e["time"] for e in edges], dtype=float),
        edge_extra_cost=np.array([e["cost"] for e in edges], dtype=float),
        edge_risk=np.array([e["risk"] for e in edges]),
        edge_resource=np.array([e["resource"] for e in edges], dtype=int),
        edge_opens=np.array([e["opens"] for e in edges], dtype=float),
        edge_focus=np.array([e.get("focus", False) for e in edges], dtype=bool),
        edge_tariff_group=np.array([e.get("tariff_group", "") for e in edges], dtype=object),
        resource_id=[r["id"] for r in resources],
        resource_label=[r["label"] for r in resources],
        resource_kind=np.array([r["kind"] for r in resources]),
        resource_layer=np.array([r["layer"] for r in resources]),
        resource_ends=[r["ends"] for r in resources],
        resource_capacity=np.array([r["capacity"] for r in resources], dtype=float),
        resource_queue=np.array([r["queue"] for r in resources], dtype=bool),
        resource_rail_transfer=np.array([r["rail_transfer"] for r in resources], dtype=bool),
        resource_link=[r["link"] for r in resources],
        resource_group=[r.get("group", "") for r in resources],
        route_edges=route_edge,
        route_od=np.array(route_od, dtype=int),
        route_corridor=np.array(route_corr, dtype=int),
        route_via_focus=np.array(route_focus, dtype=bool),
        route_nodes=route_nodes,
        od_origin=np.array([r[0] for r in od_rows], dtype=object),
        od_destination=np.array([r[1] for r in od_rows], dtype=object),
        od_commodity=np.array([r[2] for r in od_rows], dtype=object),
        od_segment=np.array([r[3] for r in od_rows], dtype=object),
        od_base=np.array([r[4] for r in od_rows], dtype=int),
        corridors=corridors,
        commodities=list(s.commodities),
    )


def _free_cost(e: dict, p: dict, vot: float) -> float:
    """Free-flow generalised cost of an edge at the default parameters (with the commodity's value of
    time), used only to enumerate routes. Risk premiums are left out: they stand for shippers'
    reluctance (sanctions, war risk) and are fitted and explored, so a choice set drawn with them would
    move with the very values a fit or an exploration tries (a fitted premium of 6,000 USD per TEU on one
    country's links had dropped a whole corridor from the set, leaving no route for a lower premium to
    fill)."""
    layer = e["layer"]
    if layer == "connector":
        return 0.0
    hours = e["time"]
    cost = e["cost"]
    if layer != "transfer":
        hours += e["length"] / p[f"speed_{layer}"]
        group = e.get("tariff_group")
        cost += e["length"] * p[f"tariff_{layer}"] * (p[f"tariff_factor_{group}"] if group else 1.0)
    return cost + hours * vot + 1e-3  # the strictly positive floor breaks ties between free edges


def _is_zone(v) -> bool:
    return v[0] in ("O", "D")


def _loopless(path) -> bool:
    """Whether a path of (place, layer) vertices visits each place once: a place may repeat only as
    consecutive layers (a transfer)."""
    places = [v[0] for v in path[1:-1]]
    compact = [p for j, p in enumerate(places) if j == 0 or places[j - 1] != p]
    return len(compact) == len(set(compact))


def _routes_for_od(g, src, dst, s: Scenario, corridors: list[str], k: int, commodity: str):
    """k cheapest loopless routes per corridor, labelled by the first corridor whose nodes they pass,
    and the k cheapest that pass no corridor's nodes (labelled "other", the index past the last corridor).
    A corridor that does not claim ``commodity`` (``[corridors.NAME] commodities``) is passed over: its
    nodes are open to that commodity's "other" routes.

    Routes of corridor i must pass one of its nodes and none of an earlier corridor's. The "must
    pass" is enforced on a two-copy graph (copy 1 is reached by entering one of the corridor's
    nodes), so every enumerated path counts.
    """
    import networkx as nx
    if src not in g or dst not in g:
        return []
    found, seen, earlier = [], set(), set()
    for ci, name in enumerate(corridors):
        if s.corridors[name].commodities and commodity not in s.corridors[name].commodities:
            continue
        via = set(s.corridors[name].via_nodes)
        blocked = earlier
        earlier = earlier | via
        h = nx.DiGraph()
        for a, b, data in g.edges(data=True):
            if _is_zone(a) or _is_zone(b):
                pa = pb = None
            else:
                pa, pb = a[0], b[0]
            if pa in blocked or pb in blocked:
                continue
            enters_via = pb in via
            h.add_edge((a, 0), (b, 1 if enters_via else 0), **data)
            h.add_edge((a, 1), (b, 1), **data)
        start, goal = (src, 0), (dst, 1)
        if start not in h or goal not in h:
            continue

        def accept(path):
            places = [v[0] for v in path[1:-1]]
            if not _loopless(path) or tuple(path) in seen or not (set(places) & via):
                return False
            seen.add(tuple(path))
            found.append((ci, path))
            return True

        # the cheapest route through each gateway, so that every variant of the corridor is offered
        # (a vertex here is (place, copy); the way out must still pass a corridor node)
        gateways = [*s.corridors[name].via_nodes, *s.corridors[name].variants]
        for path in _cheapest_through(h, start, goal, gateways, lambda v: v[0]):
            accept([x for x, _ in path])
        # and the k cheapest routes of the corridor overall
        _k_cheapest(h, start, goal, lambda path: accept([v for v, _ in path]), k)
    # and the k cheapest routes outside every named corridor (China to Central Asia, domestic flows):
    # without them such an OD would only be offered detours through some corridor
    h = g.subgraph([v for v in g if _is_zone(v) or v[0] not in earlier])

    def accept_other(path):
        if not _loopless(path) or tuple(path) in seen:
            return False
        seen.add(tuple(path))
        found.append((len(corridors), path))
        return True

    _k_cheapest(h, src, dst, accept_other, k)
    # and, as a corridor offers each of its variants, the cheapest way through each gateway outside the
    # corridors: Kazakhstan's exports to China are offered Altynkol as well as the two ways to Dostyk
    if src in h and dst in h:
        for path in _cheapest_through(h, src, dst, s.gateways, lambda v: v):
            accept_other(path)
    return found


def _cheapest_through(h, start, goal, places, vertex_of):
    """For each of ``places`` that a route from ``start`` to ``goal`` can pass, the cheapest such route:
    the cheapest way from the start to one of the place's layers joined to the cheapest way from there
    to the goal (``vertex_of`` maps a graph vertex to its ``(place, layer)``). It may loop; the caller
    checks."""
    import networkx as nx
    to_place, path_in = nx.single_source_dijkstra(h, start, weight="w")
    from_place, path_out = nx.single_source_dijkstra(h.reverse(copy=False), goal, weight="w")
    best: dict = {}                      # place -> its vertex on the cheapest way through it
    for v, cost in to_place.items():
        if v in from_place and not _is_zone(vertex_of(v)):
            place, total = vertex_of(v)[0], cost + from_place[v]
            if place not in best or total < best[place][0]:
                best[place] = (total, v)
    for place in places:
        if place in best:
            v = best[place][1]
            yield path_in[v] + path_out[v][::-1][1:]


def _without_detours(found, edges: list[dict], detour_max: float):
    """The routes ``(corridor, path, edge indices)`` no longer than ``detour_max`` times the shortest of
    them (lengths in km, summed over the route's edges): a bulk train from Karaganda to Constanța is not
    offered a way through China's ports and Suez, which a commodity that barely tells costs apart would
    otherwise take."""
    lengths = [sum(edges[i]["length"] for i in idx) for _, _, idx in found]
    shortest = min(lengths)
    return [route for route, length in zip(found, lengths) if length <= detour_max * shortest]


#: Simple paths examined, cheapest first, for one corridor's (or the outside routes') k routes: candidates
#: that loop or repeat are skipped, and past the 40th the next cheapest is a detour of a detour.
CANDIDATE_PATHS = 40


def _k_cheapest(h, start, goal, accept, k: int) -> None:
    """Offer the cheapest simple paths from ``start`` to ``goal`` to ``accept`` (which keeps a path and
    says whether it did) until ``k`` are kept or ``CANDIDATE_PATHS`` have been examined."""
    import networkx as nx
    kept = 0
    try:
        for tries, path in enumerate(nx.shortest_simple_paths(h, start, goal, weight="w"), start=1):
            kept += bool(accept(path))
            if kept >= k or tries >= CANDIDATE_PATHS:
                return
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return
