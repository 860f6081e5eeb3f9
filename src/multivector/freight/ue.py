"""Deterministic user-equilibrium (UE) traffic assignment on BPR links.

Solves the Beckmann problem

    min  sum_a  integral_0^{x_a} t_a(s) ds,     t_a(x) = fftt_a * (1 + b_a * (x / cap_a) ** power_a)

over link flows ``x`` that route a fixed origin-destination demand, with the bi-conjugate
Frank-Wolfe method (BFW, Mitradjieva & Lindberg 2013, Transportation Science 47(2)), the
conjugate Frank-Wolfe method (CFW) or plain Frank-Wolfe (FW).

Each iteration performs one all-or-nothing (AON) assignment: shortest-path trees from every
origin with demand (``scipy.sparse.csgraph.dijkstra`` on a CSR graph, all origins in one call),
then the demand is loaded onto the trees with vectorised numpy over all origins at once: one
walk up the trees from the loaded destinations (a step per tree level) collects the nodes that
carry flow, and pointer doubling over those nodes (``bincount`` pushes to the 1st, 2nd, 4th, ...
ancestor) sums the demand of every subtree. No Python loop runs over OD pairs or nodes. The step
along the search direction comes from an exact line search (safeguarded Newton on the
directional derivative of the objective).

Relative gap (the stopping criterion) is ``(TSTT - SPTT) / TSTT`` with
``TSTT = sum_a x_a t_a(x)`` and ``SPTT = sum_od demand_od * shortest path cost_od`` at the same
costs ``t(x)``; it is measured on the flows that are returned.

Conventions of the array interface (:func:`solve_ue_arrays`, :func:`all_or_nothing`):
nodes are 0-based indices ``0..n_nodes-1``; ``zones[i]`` is the node of zone ``i`` and
``od[i, j]`` the demand from zone ``i`` to zone ``j``; nodes with index ``< first_thru_node``
may be a path's first or last node but are never passed through (TNTP's rule; ``0`` means every
node may be passed through). Demand from a zone to itself is ignored.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from multivector.errors import ConvergenceWarning, InputError
from multivector.freight.vdf import Bpr

__all__ = [
    "AllOrNothing",
    "UEResult",
    "all_or_nothing",
    "beckmann_objective",
    "bpr_cost",
    "relative_gap",
    "solve_ue",
    "solve_ue_arrays",
]

METHODS = ("bfw", "cfw", "fw")

# Largest number of (node x node) cells for which a dense lookup table (int32) from a node pair to
# its link is built; above it a sorted-key binary search is used instead.
DENSE_LOOKUP_MAX_CELLS = 1 << 23

# With ``workers > 1`` each process gets at least this many (origin x node) tree entries; smaller
# all-or-nothing passes run in this process alone (inter-process overhead would dominate).
MIN_TREE_ENTRIES_PER_WORKER = 100_000

# The conjugate weight of CFW is kept below this, as in the literature, so that a new direction
# never collapses onto the previous one.
_CONJUGATE_MAX = 1.0 - 1e-5


# ============================================================================================
# BPR link costs


def bpr_cost(flow, fftt, capacity, b, power) -> np.ndarray:
    """BPR travel time ``fftt * (1 + b * (flow / capacity) ** power)`` per link."""
    arrs = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (flow, fftt, capacity, b, power)))
    return Bpr(*arrs[1:]).cost(arrs[0])


def beckmann_objective(flow, fftt, capacity, b, power) -> float:
    """The Beckmann objective ``sum_a integral_0^{x_a} t_a(s) ds`` for BPR links."""
    arrs = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (flow, fftt, capacity, b, power)))
    return float(Bpr(*arrs[1:]).integral(arrs[0]).sum())


def relative_gap(flow, cost, sptt: float) -> float:
    """``(TSTT - SPTT) / TSTT`` with ``TSTT = flow . cost``; 0 when nothing is loaded."""
    tstt = float(np.dot(flow, cost))
    if tstt <= 0.0:
        return 0.0 if sptt <= 0.0 else np.inf
    return (tstt - sptt) / tstt


# ============================================================================================
# All-or-nothing assignment


def _as_index_array(values, name, upper):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"must be one-dimensional, got shape {arr.shape}", column=name)
    if (arr.size and not np.issubdtype(arr.dtype, np.integer)
            and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))):
        raise InputError("node indices must be integers", column=name)
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        bad = arr[(arr < 0) | (arr >= upper)][0]
        raise InputError(f"node index {bad} is out of range 0..{upper - 1}", column=name,
                         hint="node indices are 0-based and below n_nodes")
    return arr


class AllOrNothing:
    """Reusable all-or-nothing assignment on a fixed network.

    Build once (the graph structure is prepared here), then call :meth:`assign` with new link
    costs as often as needed. Arguments follow the module conventions (0-based nodes).

    ``workers > 1`` splits the origins over up to that many processes (this one included; the
    others are started on first use and stopped by :meth:`close`, or on leaving a ``with``
    block). SciPy's Dijkstra holds the GIL, so threads would not help. Small passes (fewer than
    ``MIN_TREE_ENTRIES_PER_WORKER`` origin x node entries per process) stay in this process.
    """

    def __init__(self, init, term, n_nodes: int, zones, first_thru_node: int = 0, workers: int = 1):
        if int(workers) < 1:
            raise InputError(f"must be at least 1, got {workers!r}", column="workers")
        self.workers = int(workers)
        self._pool = None
        n_nodes = int(n_nodes)
        if n_nodes < 1:
            raise InputError(f"must be at least 1, got {n_nodes}", column="n_nodes")
        init = _as_index_array(init, "init", n_nodes)
        term = _as_index_array(term, "term", n_nodes)
        if init.shape != term.shape:
            raise InputError(f"init has {init.size} links but term has {term.size}", column="term")
        zones = _as_index_array(zones, "zones", n_nodes)
        if zones.size == 0:
            raise InputError("at least one zone is needed", column="zones")
        if np.unique(zones).size != zones.size:
            raise InputError("zone nodes must be distinct", column="zones")
        ftn = int(first_thru_node)
        if ftn < 0:
            raise InputError(f"must not be negative, got {ftn}", column="first_thru_node")

        self.n_links = init.size
        self.n_nodes = n_nodes
        self.zones = zones
        self.n_zones = zones.size

        # Nodes that may not be passed through get a separate "in" copy: links into the node end
        # at the copy, which has no outgoing links, while paths start from the original node.
        # A node whose links all lead to and from one single neighbour cannot be passed through
        # by a simple path anyway (the usual single centroid connector) and is left whole.
        blocked = np.arange(n_nodes) < ftn
        if blocked.any():
            real = init != term
            ends = np.r_[term[real], init[real]]
            other = np.r_[init[real], term[real]]
            nb_min = np.full(n_nodes, n_nodes, dtype=np.int64)
            nb_max = np.full(n_nodes, -1, dtype=np.int64)
            np.minimum.at(nb_min, ends, other)
            np.maximum.at(nb_max, ends, other)
            has_in = np.bincount(term[real], minlength=n_nodes) > 0
            has_out = np.bincount(init[real], minlength=n_nodes) > 0
            blocked &= has_in & has_out & (nb_min != nb_max)
        in_copy = np.arange(n_nodes, dtype=np.int64)
        n_blocked = int(blocked.sum())
        in_copy[blocked] = n_nodes + np.arange(n_blocked)
        self.n_graph_nodes = nn = n_nodes + n_blocked
        head = in_copy[term]
        self.dest_node = in_copy[zones]
        self.origin_node = zones

        # Distinct (tail, head) pairs sorted by tail then head = CSR order. Parallel links share
        # a pair; each AON uses the cheapest of them.
        key = init * nn + head
        order = np.argsort(key, kind="stable")
        skey = key[order]
        starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
        self.pair_key = skey[starts]
        self.n_pairs = starts.size
        self._parallel = self.n_pairs < self.n_links
        self._link_order = order
        self._group_starts = starts
        pair_tail = self.pair_key // nn
        pair_head = self.pair_key % nn
        if self._parallel:
            self._pair_of_sorted = np.repeat(np.arange(self.n_pairs), np.diff(np.r_[starts, self.n_links]))
        indptr = np.zeros(nn + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_tail, minlength=nn), out=indptr[1:])
        idx_dtype = np.int32 if nn < 2**31 - 1 and self.n_pairs < 2**31 - 1 else np.int64
        self._graph = csr_matrix(
            (np.ones(self.n_pairs), pair_head.astype(idx_dtype), indptr.astype(idx_dtype)), shape=(nn, nn)
        )
        if nn * nn <= DENSE_LOOKUP_MAX_CELLS:
            table = np.full(nn * nn, -1, dtype=np.int32)
            table[self.pair_key] = np.arange(self.n_pairs, dtype=np.int32)
            self._pair_table = table
        else:
            self._pair_table = None

    # ----------------------------------------------------------------------------------------
    def _pair_costs(self, cost):
        """Per-pair cost and the link that carries the pair's flow (the cheapest parallel link)."""
        if not self._parallel:
            return cost[self._link_order], self._link_order
        c_sorted = cost[self._link_order]
        pmin = np.minimum.reduceat(c_sorted, self._group_starts)
        is_min = np.flatnonzero(c_sorted == pmin[self._pair_of_sorted])
        grp = self._pair_of_sorted[is_min]
        first = np.r_[True, grp[1:] != grp[:-1]]
        chosen = np.empty(self.n_pairs, dtype=np.int64)
        chosen[grp[first]] = self._link_order[is_min[first]]
        return pmin, chosen

    def _lookup_pairs(self, tail, head):
        key = tail.astype(np.int64) * self.n_graph_nodes + head
        if self._pair_table is not None:
            return self._pair_table[key]
        return np.searchsorted(self.pair_key, key)

    # ----------------------------------------------------------------------------------------
    # worker processes

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None
        state["workers"] = 1
        return state

    def _executor(self):
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            method = "fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn"
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers - 1,
                mp_context=multiprocessing.get_context(method),
                initializer=_worker_init,
                initargs=(self,),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------------------------------
    def assign(self, cost, od) -> tuple[np.ndarray, float]:
        """Load ``od`` on shortest paths for link ``cost``. Returns (link flows, SPTT).

        SPTT is ``sum_od demand * shortest path cost``. Raises :class:`InputError` when some
        demand has no path.
        """
        cost = np.asarray(cost, dtype=np.float64)
        od = np.asarray(od, dtype=np.float64)
        if cost.shape != (self.n_links,):
            raise InputError(f"has shape {cost.shape}, expected ({self.n_links},)", column="cost")
        if od.shape != (self.n_zones, self.n_zones):
            raise InputError(f"has shape {od.shape}, expected ({self.n_zones}, {self.n_zones})", column="od")
        if not (np.all(np.isfinite(od)) and od.min(initial=0.0) >= 0):
            raise InputError("demand must be finite and not negative", column="od")
        if not (np.all(np.isfinite(cost)) and cost.min(initial=0.0) >= 0):
            raise InputError("link costs must be finite and not negative", column="cost")
        flow = np.zeros(self.n_links)
        rows = np.flatnonzero(od.sum(axis=1) - np.diagonal(od) > 0)
        if rows.size == 0:
            return flow, 0.0
        pair_cost, pair_link = self._pair_costs(cost)
        parts = min(self.workers, rows.size * self.n_graph_nodes // MIN_TREE_ENTRIES_PER_WORKER)
        if parts > 1:
            chunks = np.array_split(rows, parts)
            pool = self._executor()
            futures = [pool.submit(_worker_load, pair_cost, ch, od[ch]) for ch in chunks[1:]]
            pair_flow, sptt = self._load_rows(pair_cost, chunks[0], od[chunks[0]])
            for fut in futures:
                pf, sp = fut.result()
                pair_flow += pf
                sptt += sp
        else:
            pair_flow, sptt = self._load_rows(pair_cost, rows, od[rows])
        flow[pair_link] = pair_flow
        return flow, sptt

    def _load_rows(self, pair_cost, rows, demand) -> tuple[np.ndarray, float]:
        """Shortest-path trees from the zones ``rows`` and the loading of ``demand`` (their OD
        rows) onto them. Returns (flow per node pair, SPTT)."""
        demand = np.array(demand, dtype=np.float64)
        demand[np.arange(rows.size), rows] = 0.0  # no intrazonal trips
        graph = self._graph
        graph.data = pair_cost
        origins = self.origin_node[rows]
        dist, pred = dijkstra(graph, directed=True, indices=origins, return_predecessors=True)

        dd = dist[:, self.dest_node]
        pos = demand > 0
        if not np.all(np.isfinite(dd[pos])):
            r, c = np.argwhere(pos & ~np.isfinite(dd))[0]
            raise InputError(
                f"zone {rows[r]} (node {self.zones[rows[r]]}) has demand to zone {c} "
                f"(node {self.zones[c]}) but no path leads there",
                column="od",
                hint="check the network is connected and first_thru_node does not cut it",
            )
        sptt = float(np.sum(demand[pos] * dd[pos]))

        no, nn = pred.shape
        size = no * nn
        pred_flat = pred.ravel()
        r_idx, c_idx = np.nonzero(pos)
        dest_entries = r_idx * nn + self.dest_node[c_idx]

        # Node throughput per (origin, node): demand ending at the node plus all demand passing
        # through it. Only nodes on some loaded path matter: collect them by walking up the trees
        # from the loaded destinations, all origins at once, one tree level per step. Each
        # loaded (origin, node) other than the root is collected exactly once, with its parent.
        seen = np.zeros(size, dtype=bool)
        seen[dest_entries] = True
        stamp = np.empty(size, dtype=np.int64)
        nodes_l, tails_l, parents_l = [], [], []
        front = dest_entries
        while front.size:
            tail = pred_flat[front]
            keep = tail >= 0  # the root has no parent
            if not keep.all():
                front = front[keep]
                tail = tail[keep]
            par = front - front % nn + tail
            nodes_l.append(front)
            tails_l.append(tail)
            parents_l.append(par)
            par = par[~seen[par]]
            seen[par] = True
            front = _first_of_each(par, stamp)
        nodes = np.concatenate(nodes_l)
        parent = np.concatenate(parents_l)
        n_used = nodes.size

        # Subtree sums by pointer doubling on the compacted forest: with anc the 2**j-th
        # ancestor, "load += load pushed up to anc" for j = 0, 1, ... adds the demand of every
        # descendant exactly once. Index n_used is a sink for pushes past the root.
        compact = stamp  # reuse as the (origin, node) -> compact index map
        compact[nodes] = np.arange(n_used)
        compact[np.arange(no) * nn + origins] = n_used  # roots
        anc = np.empty(n_used + 1, dtype=np.int64)
        anc[:n_used] = compact[parent]
        anc[n_used] = n_used
        load = np.zeros(n_used + 1)
        load[compact[dest_entries]] = demand[r_idx, c_idx]
        while n_used and anc[:n_used].min() < n_used:
            load += np.bincount(anc[:n_used], weights=load[:n_used], minlength=n_used + 1)
            anc = anc[anc]

        pair = self._lookup_pairs(np.concatenate(tails_l), nodes % nn)
        return np.bincount(pair, weights=load[:n_used], minlength=self.n_pairs), sptt


_WORKER_AON: AllOrNothing | None = None


def _worker_init(engine: AllOrNothing) -> None:
    global _WORKER_AON
    _WORKER_AON = engine


def _worker_load(pair_cost, rows, demand):
    return _WORKER_AON._load_rows(pair_cost, rows, demand)


def _first_of_each(values, stamp):
    """``values`` without repeats (order kept up to which copy survives); ``stamp`` is scratch
    space indexed by value."""
    ids = np.arange(values.size)
    stamp[values] = ids
    return values[stamp[values] == ids]


def all_or_nothing(init, term, cost, n_nodes, zones, od, first_thru_node: int = 0):
    """One all-or-nothing assignment. Returns (link flows, SPTT). See the module conventions."""
    with AllOrNothing(init, term, n_nodes, zones, first_thru_node) as aon:
        return aon.assign(cost, od)


# ============================================================================================
# Equilibrium


@dataclass
class UEResult:
    """Outcome of :func:`solve_ue` / :func:`solve_ue_arrays`.

    ``flow`` and ``cost`` are per link (input order); ``gap`` is the relative gap of ``flow``;
    ``iterations`` counts all-or-nothing assignments (the first, at free-flow costs, included);
    ``gap_history[k]`` is the gap after ``k + 2`` of them (there is none after the first);
    ``seconds`` is the wall time of the whole call, ``aon_seconds`` the part spent in
    all-or-nothing assignments. ``objective`` is the Beckmann objective of ``flow``, ``tstt`` and
    ``sptt`` the total and the shortest-path travel time behind ``gap``. ``fw_fallbacks`` counts
    conjugate directions that were not descent directions and were replaced by the FW direction.
    """

    flow: np.ndarray
    cost: np.ndarray
    gap: float
    iterations: int
    converged: bool
    gap_history: np.ndarray
    seconds: float
    method: str = "bfw"
    objective: float = float("nan")
    tstt: float = 0.0
    sptt: float = 0.0
    fw_fallbacks: int = 0
    aon_seconds: float = 0.0


def _float_array(values, name, n):
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InputError(f"has shape {arr.shape}, expected ({n},) (one value per link)", column=name)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"has a non-finite value at link {int(np.flatnonzero(~np.isfinite(arr))[0])}", column=name)
    return arr


def _line_search(bpr, x, d, t0, tol=1e-12, max_steps=100):
    """Exact step ``a`` in [0, 1] minimising the objective along ``x + a d``.

    ``t0`` are the costs at ``x``. Safeguarded Newton on ``g(a) = t(x + a d) . d`` (increasing in
    ``a``), keeping a bracket and bisecting whenever Newton leaves it.
    """
    g0 = float(np.dot(t0, d))
    if not g0 < 0.0:
        return 0.0
    t1 = bpr.cost(x + d)
    g1 = float(np.dot(t1, d))
    if g1 <= 0.0:
        return 1.0
    lo, hi = 0.0, 1.0
    glo, ghi = g0, g1
    a = g0 / (g0 - g1)  # secant start
    scale = -g0
    for _ in range(max_steps):
        t, dt = bpr.cost_and_derivative(x + a * d)
        g = float(np.dot(t, d))
        if abs(g) <= tol * scale:
            return a
        if g < 0.0:
            lo, glo = a, g
        else:
            hi, ghi = a, g
        if hi - lo <= 1e-15:
            break
        h = float(np.dot(dt, d * d))
        a_new = a - g / h if h > 0.0 else -1.0
        if not lo < a_new < hi:
            # regula falsi inside the bracket, fall back to bisection when it stalls
            a_new = lo - glo * (hi - lo) / (ghi - glo)
            if not lo < a_new < hi or min(a_new - lo, hi - a_new) < 1e-3 * (hi - lo):
                a_new = 0.5 * (lo + hi)
        a = a_new
    return a


def solve_ue_arrays(
    init,
    term,
    fftt,
    capacity,
    b,
    power,
    n_nodes: int,
    zones,
    od,
    *,
    first_thru_node: int = 0,
    gap: float = 1e-4,
    max_iter: int = 1000,
    method: str = "bfw",
    warn: bool = True,
    workers: int = 1,
    extra_cost=0.0,
) -> UEResult:
    """User equilibrium on a network given as arrays (0-based nodes, see the module docstring).

    ``fftt``, ``capacity``, ``b``, ``power`` are per link (scalars broadcast); ``extra_cost`` is a
    flow-independent add-on per link in time units (a generalised cost: toll factor × toll + distance
    factor × length, as several TNTP best-known solutions use). ``zones`` are the
    zone nodes, ``od[i, j]`` the demand between ``zones[i]`` and ``zones[j]``. Stops when the
    relative gap is at most ``gap`` or after ``max_iter`` all-or-nothing assignments (at least 2:
    the first loads free-flow paths, the second measures the first gap); in the latter case
    ``converged`` is False and a :class:`ConvergenceWarning` is issued (unless ``warn=False``).
    ``method`` is ``"bfw"`` (bi-conjugate FW), ``"cfw"`` (conjugate FW) or ``"fw"``.
    ``workers > 1`` runs the shortest paths in that many processes (see :class:`AllOrNothing`).
    """
    start = time.perf_counter()
    method = str(method).lower()
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", column="method", hint=f"choose one of {', '.join(METHODS)}")
    if not (isinstance(gap, (int, float)) and np.isfinite(gap) and gap >= 0):
        raise InputError(f"must be a finite number >= 0, got {gap!r}", column="gap")
    if int(max_iter) < 2:
        raise InputError(f"must be at least 2, got {max_iter!r}", column="max_iter",
                         hint="the first two all-or-nothing passes give the first gap")
    max_iter = int(max_iter)

    aon = AllOrNothing(init, term, n_nodes, zones, first_thru_node, workers=workers)
    n = aon.n_links
    fftt = _float_array(fftt, "fftt", n)
    capacity = _float_array(capacity, "capacity", n)
    b = _float_array(b, "b", n)
    power = _float_array(power, "power", n)
    extra = _float_array(extra_cost, "extra_cost", n)
    for name, arr in (("fftt", fftt), ("capacity", capacity), ("b", b), ("power", power), ("extra_cost", extra)):
        if np.any(arr < 0):
            k = int(np.flatnonzero(arr < 0)[0])
            raise InputError(f"is negative ({arr[k]}) at link {k}", column=name)
    if np.any((capacity <= 0) & (b > 0)):
        k = int(np.flatnonzero((capacity <= 0) & (b > 0))[0])
        raise InputError(f"is {capacity[k]} at link {k} where b > 0", column="capacity",
                         hint="the BPR function divides by capacity")
    od = np.asarray(od, dtype=np.float64)
    if od.shape != (aon.n_zones, aon.n_zones):
        raise InputError(f"has shape {od.shape}, expected ({aon.n_zones}, {aon.n_zones})", column="od")
    if not np.all(np.isfinite(od)) or np.any(od < 0):
        raise InputError("demand must be finite and not negative", column="od")

    bpr = Bpr(fftt, capacity, b, power, extra)
    with aon:
        x, t, state = _equilibrate(aon, bpr, od, fftt + extra, gap, max_iter, method)
    iterations, converged, rgap, history, sptt, fallbacks, aon_time = state

    seconds = time.perf_counter() - start
    tstt = float(np.dot(x, t))
    if not converged and warn:
        warnings.warn(
            f"user equilibrium ({method}) stopped after {iterations} iterations at relative gap "
            f"{rgap:.3g}, above the requested {gap:.3g}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return UEResult(
        flow=x,
        cost=t,
        gap=float(rgap),
        iterations=iterations,
        converged=bool(converged),
        gap_history=np.asarray(history),
        seconds=seconds,
        method=method,
        objective=float(bpr.integral(x).sum()),
        tstt=tstt,
        sptt=float(sptt),
        fw_fallbacks=fallbacks,
        aon_seconds=aon_time,
    )


def _equilibrate(aon, bpr, od, fftt, gap, max_iter, method):
    """The FW / CFW / BFW iterations. Returns (flow, cost, bookkeeping)."""
    aon_time = 0.0

    def run_aon(c):
        nonlocal aon_time
        t0 = time.perf_counter()
        out = aon.assign(c, od)
        aon_time += time.perf_counter() - t0
        return out

    x, _ = run_aon(fftt)
    iterations = 1
    history: list[float] = []
    hist: list[np.ndarray] = []  # previous target points s_{k-1}, s_{k-2} since the last restart
    prev_step = 0.0
    fallbacks = 0
    converged = False
    rgap = np.inf
    t = bpr.cost(x)
    sptt = 0.0
    while True:
        # shortest paths at the current costs: measures the gap of x and gives the FW target y
        y, sptt = run_aon(t)
        iterations += 1
        rgap = relative_gap(x, t, sptt)
        history.append(rgap)
        if rgap <= gap:
            converged = True
            break
        if iterations >= max_iter:
            break

        s = None
        if method != "fw" and hist:
            _, dt = bpr.cost_and_derivative(x)
            if method == "cfw" or len(hist) == 1:
                s = _conjugate_target(x, y, hist[0], dt)
            else:
                s = _biconjugate_target(x, y, hist[0], hist[1], prev_step, dt)
        step = 0.0
        if s is not None:
            d = s - x
            step = _line_search(bpr, x, d, t)
            if step <= 0.0:
                s = None
                fallbacks += 1
        if s is None:  # Frank-Wolfe direction; restarts the conjugate history
            s = y
            d = s - x
            hist = []
            step = _line_search(bpr, x, d, t)
        x = x + step * d
        np.maximum(x, 0.0, out=x)
        if step >= 1.0 - 1e-12:
            hist = []  # x is now s: the next direction cannot be conjugate to a zero vector
        else:
            hist = [s] if not hist else [s, hist[0]]
        prev_step = step
        t = bpr.cost(x)
    return x, t, (iterations, converged, rgap, history, sptt, fallbacks, aon_time)



def _conjugate_target(x, y, s1, dt):
    """CFW target ``a s1 + (1 - a) y`` whose direction is H-conjugate to ``s1 - x``."""
    dbar = s1 - x
    hd = dt * dbar
    num = float(np.dot(hd, y - x))
    den = float(np.dot(hd, y - s1))
    if den == 0.0 or not np.isfinite(num / den):
        return None
    a = min(max(num / den, 0.0), _CONJUGATE_MAX)
    return a * s1 + (1.0 - a) * y


def _biconjugate_target(x, y, s1, s2, tau, dt):
    """BFW target ``b0 y + b1 s1 + b2 s2`` whose direction is H-conjugate to the last two.

    ``tau`` is the step taken along ``s1 - x_prev``. Follows Mitradjieva & Lindberg (2013):
    with ``z = s1 - x`` (parallel to the last direction) and ``u = tau s1 + (1 - tau) s2 - x``
    (parallel to the one before), ``mu = -(u H (y-x)) / (u H (s2 - s1))`` and
    ``nu = -(z H (y-x)) / (z H z) + mu tau / (1 - tau)``, both clipped at 0.
    """
    if not 0.0 < tau < 1.0:
        return None
    yx = y - x
    z = s1 - x
    u = tau * s1 + (1.0 - tau) * s2 - x
    hu = dt * u
    hz = dt * z
    mu_den = float(np.dot(hu, s2 - s1))
    mu = -float(np.dot(hu, yx)) / mu_den if mu_den != 0.0 else 0.0
    mu = max(0.0, mu)
    nu_den = float(np.dot(hz, z))
    nu = (-float(np.dot(hz, yx)) / nu_den if nu_den != 0.0 else 0.0) + mu * tau / (1.0 - tau)
    nu = max(0.0, nu)
    if not (np.isfinite(mu) and np.isfinite(nu)):
        return None
    b0 = 1.0 / (1.0 + mu + nu)
    return b0 * y + (nu * b0) * s1 + (mu * b0) * s2


def solve_ue(network, od, *, gap: float = 1e-4, max_iter: int = 1000, method: str = "bfw",
             warn: bool = True, workers: int = 1, toll_factor: float | None = None,
             distance_factor: float | None = None) -> UEResult:
    """User equilibrium on a :class:`multivector.freight.tntp.TntpNetwork` with an OD matrix from
    :func:`multivector.freight.tntp.read_trips` (``od[o-1, d-1]``, zones are nodes ``1..n_zones``).

    The link cost is the generalised cost ``time + toll_factor × toll + distance_factor × length``;
    each factor defaults to the network file's ``<TOLL FACTOR>`` / ``<DISTANCE FACTOR>`` (0 if absent).

    Link flows and costs come back in the file's link order. See :func:`solve_ue_arrays`.
    """
    od = np.asarray(od, dtype=np.float64)
    if od.shape != (network.n_zones, network.n_zones):
        raise InputError(
            f"has shape {od.shape}, but the network has {network.n_zones} zones",
            file=getattr(network, "source", None),
            column="od",
            hint="use the trips file that belongs to this network",
        )
    tf = network.toll_factor if toll_factor is None else float(toll_factor)
    df = network.distance_factor if distance_factor is None else float(distance_factor)
    for name, value in (("toll_factor", tf), ("distance_factor", df)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"must be a finite number >= 0, got {value!r}", column=name)
    return solve_ue_arrays(
        network.init - 1,
        network.term - 1,
        network.fftt,
        network.capacity,
        network.b,
        network.power,
        network.n_nodes,
        np.arange(network.n_zones),
        od,
        first_thru_node=max(int(network.first_thru_node) - 1, 0),
        gap=gap,
        max_iter=max_iter,
        method=method,
        warn=warn,
        workers=workers,
        extra_cost=tf * network.toll + df * network.length,
    )
