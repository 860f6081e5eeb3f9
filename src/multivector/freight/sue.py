"""Logit stochastic user equilibrium on fixed route sets, batched over runs.

All arrays carry the run axis last (``[routes, runs]``, ``[resources, runs]``) so that one sparse
product or one compiled loop handles every run at once. The equilibrium is the fixed point ``h = demand * logit(cost(h))``;
it is found by damped Newton on the loads of the congestible resources (the only quantities route
costs depend on), which are few even where routes are many. With ``v`` those loads and ``F(v)`` the
loads that the logit split of the costs at ``v`` produces, Newton solves ``v - F(v) = 0`` with the
Jacobian ``I + M T'``: ``T'`` the diagonal of delay slopes and ``M = A S Aᵀ``, ``S`` the logit
covariance of each OD weighted by ``demand · theta · load per unit · value of time`` — symmetric and
positive semi-definite because those four are constant within an OD (one commodity), so every
Newton system is non-singular. A backtracking line search on ``|v - F(v)|²`` makes each step a
descent; near the solution the full step is taken and convergence is quadratic.

The hot loops (the route costs and their logit split per OD, the gap, the assembly of ``M``) are Numba
kernels over the whole batch, runs innermost. They sum in the order the sparse products, NumPy's
``reduceat`` and batched matrix product did, so the solver's answers are bit for bit those of the
NumPy version (tests/test_golden.py).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba
import numpy as np
from scipy import sparse


#: Side constraints: a capacity is met within this share (the reality checks allow 0.5%).
CAPACITY_TOLERANCE = 0.004
#: A resource with a price must be this close to full (below it the price is lowered): slackness.
SLACK_TOLERANCE = 0.01
#: The default gap: corridor volumes then lie within about 1e-5 of the exact equilibrium
#: (bench/results/solver_accuracy.md).
EQUILIBRIUM_TOL = 1e-4
#: Halvings of a Newton step before the line search takes the shortest one anyway.
MAX_HALVINGS = 12
#: Price steps a run takes freely in a solve (99% of run-years need at most 4). From then on each
#: price has a trust radius: a step that turns back is held to half the step before it, and the
#: radius grows by PRICE_RADIUS_GROWTH with each step that keeps its direction. This breaks the
#: cycles of the price steps (research/price_loop_main.md) and leaves every run that needs no more
#: than FREE_PRICE_STEPS steps bit for bit as it was.
FREE_PRICE_STEPS = 8
PRICE_RADIUS_GROWTH = 1.5
#: Price steps after which an overfull facility's own price must rise (see ``step_prices``): the
#: joint step can leave it at zero for ever while its partner's price cycles. Set well past the
#: steps any settling run-year needs, so that those are untouched.
STUCK_PRICE_STEPS = 40


@dataclass
class SUEResult:
    flow: np.ndarray        # [K, N] route flows (commodity units)
    load: np.ndarray        # [R, N] resource loads (Mt)
    delay: np.ndarray       # [R, N] congestion delay (h)
    cost: np.ndarray        # [K, N] generalised route cost at the solution
    gap: np.ndarray         # [N] worst over ODs of sum |demand * logit(cost) - flow| / demand
    iterations: int
    converged: np.ndarray   # [N] bool
    price: np.ndarray | None = None  # [R, N] the side constraints' multipliers: cost per unit of load


def logit_split(cost, theta, available, starts):
    """Route shares within each OD: softmax of ``-theta * cost`` over the OD's available routes
    (``[K, n]``; ``starts``: each OD's first route, routes sorted by OD)."""
    cost = np.ascontiguousarray(cost, dtype=float)
    theta = np.ascontiguousarray(np.broadcast_to(theta, cost.shape), dtype=float)
    available = np.ascontiguousarray(np.broadcast_to(available, cost.shape), dtype=bool)
    bounds = np.r_[starts, len(cost)].astype(np.int64)
    return _split(_exponent(cost, theta, available, np.arange(cost.shape[1]), bounds), bounds)


def _split(exponent, bounds):
    """The logit split from its exponents: NumPy's ``exp`` between compiled passes, since it is
    vectorised (a compiled loop calls the scalar libm one: slower, and different in the last bit)."""
    return _normalise(np.exp(exponent), bounds)


@numba.njit(cache=True)
def _exponent(cost, theta, available, cols, bounds):
    """``-theta · (cost − the OD's cheapest available cost)``; ``-inf`` where a route is unavailable.
    ``cost`` is ``[K, n]`` for the runs ``cols`` of ``theta`` and ``available`` (``[K, N]``)."""
    k, n = cost.shape
    out = np.full((k, n), -np.inf)
    low = np.empty(n)
    for d in range(len(bounds) - 1):
        low[:] = np.inf
        for r in range(bounds[d], bounds[d + 1]):
            for j in range(n):
                if available[r, cols[j]] and cost[r, j] < low[j]:
                    low[j] = cost[r, j]
        for r in range(bounds[d], bounds[d + 1]):
            for j in range(n):
                if available[r, cols[j]]:
                    out[r, j] = -theta[r, cols[j]] * (cost[r, j] - low[j])
    return out


@numba.njit(cache=True)
def _route_exponent(base_cost, vot, theta, available, cols, at_ptr, at_idx, at_val, delay, ap_ptr, ap_idx, ap_val,
                    price, pw, bounds):
    """:func:`_exponent` of the route costs of runs ``cols`` at the solved resources' ``delay`` (``[C, n]``)
    and the capacities' ``price`` (``[H, n]``): ``base + vot · Σ delay + pw · Σ price`` over each route's
    resources (``at_*``, ``ap_*``: the CSR arrays of the route-resource and route-capacity incidence),
    summed in the order of the sparse products it replaces, so the costs are those bit for bit."""
    k_n, n = base_cost.shape[0], len(cols)
    cost = np.zeros((k_n, n))
    paid = np.empty(n)
    for k in range(k_n):
        for e in range(at_ptr[k], at_ptr[k + 1]):       # the delays waited, runs innermost
            a, r = at_val[e], at_idx[e]
            for j in range(n):
                cost[k, j] += a * delay[r, j]
        for j in range(n):
            cost[k, j] = base_cost[k, cols[j]] + vot[k, cols[j]] * cost[k, j]
        if len(ap_ptr):                                 # the capacity prices paid
            paid[:] = 0.0
            for e in range(ap_ptr[k], ap_ptr[k + 1]):
                a, r = ap_val[e], ap_idx[e]
                for j in range(n):
                    paid[j] += a * price[r, j]
            for j in range(n):
                cost[k, j] = cost[k, j] + pw[k] * paid[j]
    return _exponent(cost, theta, available, cols, bounds)


@numba.njit(cache=True)
def _normalise(weight, bounds):
    """Each OD's weights divided by their sum, in place (zero where the OD has no available route)."""
    for d in range(len(bounds) - 1):
        for j in range(weight.shape[1]):
            total = _od_sum(weight, bounds[d], bounds[d + 1], j)
            for r in range(bounds[d], bounds[d + 1]):
                weight[r, j] = weight[r, j] / total if total > 0 else 0.0
    return weight


@numba.njit(cache=True)
def _od_gap(target, flow, bounds, od_demand):
    """``[n]``: the worst over ODs of ``Σ_k∈od |target_k − flow_k| / demand``."""
    moved = np.abs(target - flow)
    gap = np.zeros(flow.shape[1])
    for d in range(len(bounds) - 1):
        for j in range(flow.shape[1]):
            gap[j] = max(gap[j], _od_sum(moved, bounds[d], bounds[d + 1], j) / od_demand[d, j])
    return gap


@numba.njit(cache=True)
def _od_sum(a, first, last, j):
    """``Σ a[first:last, j]`` in the order ``np.add.reduceat`` sums it (the first row, then a pairwise
    sum of the rest), so that the compiled solver's results are bit for bit those of NumPy's."""
    return a[first, j] + _pairwise_sum(a, first + 1, last, j)


@numba.njit(cache=True)
def _pairwise_sum(a, first, last, j):
    """NumPy's pairwise summation of ``a[first:last, j]``: sequential below 8 terms, eight running
    sums up to 128, halves above."""
    n = last - first
    if n < 8:
        total = 0.0
        for r in range(first, last):
            total += a[r, j]
        return total
    if n > 128:
        half = n // 2
        half -= half % 8
        return _pairwise_sum(a, first, first + half, j) + _pairwise_sum(a, first + half, last, j)
    r0, r1, r2, r3 = a[first, j], a[first + 1, j], a[first + 2, j], a[first + 3, j]
    r4, r5, r6, r7 = a[first + 4, j], a[first + 5, j], a[first + 6, j], a[first + 7, j]
    i = first + 8
    while i < last - n % 8:
        r0 += a[i, j]
        r1 += a[i + 1, j]
        r2 += a[i + 2, j]
        r3 += a[i + 3, j]
        r4 += a[i + 4, j]
        r5 += a[i + 5, j]
        r6 += a[i + 6, j]
        r7 += a[i + 7, j]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < last:
        total += a[i, j]
        i += 1
    return total


class _Jacobian:
    """Assembles ``M = A S Aᵀ`` for a batch from the route sets' OD structure (fixed for a model).

    Only ODs with two or more routes contribute (a single route's logit covariance is zero). Their
    ``routes`` (ascending), each route's solved resources ``route_res`` and the same resources'
    ``route_slot``: one slot per OD and resource its routes use; ``route_ptr`` delimits each route's
    entries. ``cells`` (``s · C + r``) lists the cells of ``M`` that ODs' rank-one parts reach, and
    ``slot_a``/``slot_b`` (by ``cell_ptr``) the pairs of slots each sums.
    """

    def __init__(self, a: sparse.csr_matrix, route_od: np.ndarray):
        self.c = a.shape[0]
        at = a.T.tocsr()
        at.sort_indices()
        size = np.bincount(route_od)
        routes = np.flatnonzero(size[route_od] > 1)
        od_res, route_res, route_slot, used = [], [], [], 0
        for od in np.unique(route_od[routes]):
            members = routes[route_od[routes] == od]
            res = np.unique(at.indices[at.indptr[members[0]]:at.indptr[members[-1] + 1]])
            for k in members:
                route_res.append(at.indices[at.indptr[k]:at.indptr[k + 1]])
                route_slot.append(used + np.searchsorted(res, route_res[-1]))
            od_res.append(res)
            used += len(res)
        ints = lambda parts: np.concatenate(parts + [np.zeros(0, int)]).astype(np.int64)
        self.routes = routes.astype(np.int64)
        self.route_ptr = np.r_[0, np.cumsum([len(r) for r in route_res])].astype(np.int64)
        self.route_res, self.route_slot = ints(route_res), ints(route_slot)
        # the rank-one terms cell by cell: for each (resource, resource) cell, the pairs of OD slots
        # whose product it sums, in ascending OD order
        slot_res, slot_od = ints(od_res), np.repeat(np.arange(len(od_res)), [len(r) for r in od_res])
        a, b = [x.ravel() for x in np.meshgrid(np.arange(len(slot_res)), np.arange(len(slot_res)), indexing="ij")]
        same = slot_od[a] == slot_od[b]
        a, b = a[same], b[same]
        cell = slot_res[a] * self.c + slot_res[b]
        order = np.lexsort((slot_od[a], cell))
        self.cells, starts = np.unique(cell[order], return_index=True)
        self.cell_ptr = np.r_[starts, len(order)].astype(np.int64)
        self.slot_a, self.slot_b = a[order].astype(np.int64), b[order].astype(np.int64)
        self.slots = len(slot_res)

    def sensitivity(self, left, share, weight):
        """``M`` (``[n, C, C]``): minus the derivative of the loads ``F`` with respect to the delays,
        ``M_sr = Σ_k A_sk left_k weight_k A_rk − Σ_od (Σ_k∈od A_sk left_k) (Σ_j∈od A_rj share_j weight_j)``
        with ``left = load per unit · theta · demand · share`` (``[K, n]``) and ``weight`` the value of
        time (or the load per unit, for the prices)."""
        pairs, qa, qb = _route_sums(np.ascontiguousarray(left), np.ascontiguousarray(share),
                                    np.ascontiguousarray(weight, dtype=float), self.c, self.slots,
                                    self.routes, self.route_ptr, self.route_res, self.route_slot)
        return np.moveaxis(_less_rank_one(pairs, qa, qb, self.cells, self.cell_ptr, self.slot_a, self.slot_b), -1, 0)


class _Structure:
    """What a solve needs from the route sets alone, for the solved resources ``rows`` and the
    capacitated ``hard``: loads per route flow ``a_load``, the route-resource and route-capacity
    incidence as the CSR arrays the compiled cost pass reads (``at_csr``, ``ap_csr``: indptr, indices,
    data; empty without capacities) and the latter as a matrix (``a_price``), the :class:`_Jacobian`,
    and the pairs of capacities whose routes nest (``nested``: each ``x``, ``y`` with every route through
    ``x`` passing ``y``, and whether they carry the same routes; :func:`_implied` reads them)."""

    def __init__(self, incidence, rows, hard, route_od, load_per_unit):
        a = incidence[rows]                                               # [C, K]
        self.a_load = a @ sparse.diags(load_per_unit)
        self.jacobian = _Jacobian(a, route_od)
        self.a_price = incidence[hard].T.tocsr() if len(hard) else None   # [K, H]
        csr = lambda m: (m.indptr, m.indices, m.data.astype(float))
        self.at_csr = csr(a.T.tocsr())
        self.ap_csr = csr(self.a_price) if len(hard) else (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.nested = _nested(incidence[hard])


_STRUCTURES: dict[int, tuple[weakref.ref, dict]] = {}


def _structure_for(incidence: sparse.csr_matrix, rows, hard, route_od, load_per_unit) -> _Structure:
    """The :class:`_Structure`, kept while ``incidence`` lives: a model solves every year on the same
    route sets, and building it costs more than a year's solve. (Sparse matrices are not hashable, so
    the cache is keyed by identity, guarded by a weak reference.)"""
    entry = _STRUCTURES.get(id(incidence))
    if entry is None or entry[0]() is not incidence:
        entry = (weakref.ref(incidence, lambda _, i=id(incidence): _STRUCTURES.pop(i, None)), {})
        _STRUCTURES[id(incidence)] = entry
    key = tuple(np.ascontiguousarray(x).tobytes() for x in (rows, hard, route_od, load_per_unit))
    if key not in entry[1]:
        entry[1][key] = _Structure(incidence, rows, hard, route_od, load_per_unit)
    return entry[1][key]


@numba.njit(cache=True)
def _route_sums(left, share, weight, c, slots, routes, route_ptr, route_res, route_slot):
    """``[C, C, n]`` sums of ``left · weight`` over the routes through both resources, and
    ``[slots, n]`` sums of ``left`` and of ``share · weight`` over each OD's routes through each of
    its resources. The runs are innermost, and routes are added in ascending order (as the sparse
    products of the NumPy version did)."""
    n = left.shape[1]
    pairs = np.zeros((c, c, n))
    qa = np.zeros((slots, n))
    qb = np.zeros((slots, n))
    w = np.empty(n)
    sw = np.empty(n)
    for i in range(len(routes)):
        k = routes[i]
        for j in range(n):
            w[j] = left[k, j] * weight[k, j]
            sw[j] = share[k, j] * weight[k, j]
        for e in range(route_ptr[i], route_ptr[i + 1]):
            x, slot = route_res[e], route_slot[e]
            for j in range(n):
                qa[slot, j] += left[k, j]
                qb[slot, j] += sw[j]
            for f in range(route_ptr[i], route_ptr[i + 1]):
                y = route_res[f]
                for j in range(n):
                    pairs[x, y, j] += w[j]
    return pairs, qa, qb


@numba.njit(cache=True, fastmath={"contract"})
def _less_rank_one(pairs, qa, qb, cells, cell_ptr, slot_a, slot_b):
    """``pairs − Σ_od qa_od qb_odᵀ`` in place (``[C, C, n]``), cell by cell. The sum over ODs runs in
    ascending order with fused multiply-adds, as NumPy's batched matrix product did, so that the
    result is bit for bit the same."""
    c, n = pairs.shape[0], pairs.shape[2]
    total = np.empty(n)
    for i in range(len(cells)):
        x, y = cells[i] // c, cells[i] % c
        total[:] = 0.0
        for e in range(cell_ptr[i], cell_ptr[i + 1]):
            a, b = slot_a[e], slot_b[e]
            for j in range(n):
                total[j] += qa[a, j] * qb[b, j]
        for j in range(n):
            pairs[x, y, j] -= total[j]
    return pairs


def _nested(a: sparse.csr_matrix):
    """The pairs ``x``, ``y`` of rows of ``a`` (``[H, K]`` incidence) where every route through ``x`` also
    passes ``y``, and whether the two carry the same routes."""
    a = (a != 0).astype(np.int64)
    size = np.asarray(a.sum(axis=1)).ravel()
    shared = (a @ a.T).toarray()
    x, y = np.nonzero((shared == size[:, None]) & (size[:, None] > 0) & ~np.eye(len(size), dtype=bool))
    return x, y, size[x] == size[y]


def _implied(nested, cap: np.ndarray) -> np.ndarray:
    """``[H, N]``: the capacities that another one implies, run by run (``nested`` from :func:`_nested`).
    Where every route through ``x`` also passes ``y`` (``x``'s load can be no more than ``y``'s) and
    ``y``'s capacity is no larger, ``y`` full means ``x`` within its capacity, so dropping ``x``'s
    constraint changes no equilibrium. Where the two carry the same routes (a ferry and its port) only
    the sum of their prices reaches a route, and a price step aimed at both at once (one over, one with
    room) cancels out; dropped, the binding one carries the whole price. Equal route sets and equal
    capacities keep the first."""
    implied = np.zeros(cap.shape, dtype=bool)
    for xi, yi, same in zip(*nested):
        tighter = cap[yi] < cap[xi] if same and xi < yi else cap[yi] <= cap[xi]
        implied[xi] |= tighter
    return implied


def _least_norm(system, rhs, active, rcond=1e-4):
    """``pinv(system) @ rhs`` (``[n, H, H]``, ``[n, H]`` -> ``[n, H]``) for systems that are the identity
    outside each run's ``active`` rows and columns, on those rows alone: a few of the many capacities are
    in play at once, and the SVD's cost grows with the cube of the size. Each run's active rows come
    first, padded with identity rows to the batch's largest count plus one (while any row is inactive),
    so that the cut-off, ``rcond`` times the largest singular value, sees the same singular values of one
    as the whole system does."""
    n, size = active.shape
    m = min(int(active.sum(axis=1).max()) + 1, size)
    order = np.argsort(~active, axis=1, kind="stable")[:, :m]        # each run's active rows first
    inside = np.take_along_axis(active, order, axis=1)                   # [n, m]: which are real
    runs = np.arange(n)[:, None, None]
    sub = system[runs, order[:, :, None], order[:, None, :]]
    sub = np.where(inside[:, :, None] & inside[:, None, :], sub, 0.0)
    sub[:, np.arange(m), np.arange(m)] += np.where(inside, 0.0, 1.0)
    b = np.where(inside, np.take_along_axis(rhs, order, axis=1), 0.0)
    x = (np.linalg.pinv(sub, rcond=rcond) @ b[..., None])[..., 0]
    out = np.zeros((n, size))
    np.put_along_axis(out, order, np.where(inside, x, 0.0), axis=1)
    return out


def solve_logit_sue(incidence: sparse.csr_matrix, load_per_unit, base_cost, vot, theta, available,
                    route_od, demand, delay_fn, tol=EQUILIBRIUM_TOL, max_iter=200, congestible=None,
                    start=None, capacity=None, start_price=None, price_unit=1.0, max_price=1e4,
                    price_weight=None) -> SUEResult:
    """Solve the batched logit SUE, with capacities as side constraints when ``capacity`` is given.

    incidence: [R, K] 0/1 resource-route incidence; load_per_unit: [K] Mt per unit of route flow;
    base_cost: [K, N] free-flow generalised cost; vot: [K, N] cost per hour of delay; theta: [K, N]
    logit scale (one value per OD and run); available: [K, N] bool; route_od: [K] OD index, sorted;
    demand: [D, N]; delay_fn(load [R, n], cols [n]) -> delay [R, n] for the runs ``cols``, each
    resource's delay a function of its own load; congestible: [R] bool, the resources whose delay
    can be non-zero (default: every resource a route uses). ``start`` ([K, N] route flows, e.g. last
    year's solution) warm-starts the iteration, rescaled to this demand.

    The gap is the distance to the fixed point in route flows: the worst over ODs of
    ``Σ_k |demand · logit(cost(h))_k − h_k| / demand`` — the share of the OD's demand that would
    move if every route took its logit share at the present costs (0 at equilibrium, at most 2).

    ``capacity`` ([R, N] Mt, NaN where a resource has none) makes every capacity hard: each
    capacitated resource carries a price ``u`` (a Lagrange multiplier, in cost per unit of load, so a
    route pays ``u`` times the load of one of its cost units — a tonne of bulk and a tonne of containers
    pay alike). ``price_weight`` ([K]) is that load per cost unit, where a commodity's costs are quoted per
    a cost unit other than its flow's unit (bulk flows in Mt, priced per 20 t TEU-equivalent; default:
    ``load_per_unit``, the flow's unit is the cost unit).
    When a run has reached the equilibrium under the present prices, the prices take one Newton step
    toward loads at capacity (see ``step_prices``: the equilibrium's own response of loads to prices,
    at most a fivefold rise above ``price_unit``), and Newton on the loads resumes from there; the
    run is done when its equilibrium violates no constraint: every load within
    ``CAPACITY_TOLERANCE`` of its capacity or its price at ``max_price`` (demand no route can take:
    the caller rations it), and no price on a resource more than ``SLACK_TOLERANCE`` below capacity.
    The prices begin at ``start_price`` (``[R, N]``, e.g. last year's) or at zero.

    Each iteration works on the runs not yet converged only; a converged run stops moving, so its
    result does not depend on what else is in the batch.
    """
    n_res, n = incidence.shape[0], base_cost.shape[1]
    starts = np.flatnonzero(np.r_[True, route_od[1:] != route_od[:-1]])
    bounds = np.r_[starts, len(route_od)].astype(np.int64)                    # each OD's routes
    per_route_demand = demand[route_od]
    lf = load_per_unit[:, None]                                                 # load per unit of route flow
    pw = lf if price_weight is None else np.asarray(price_weight, dtype=float)[:, None]   # load per cost unit
    hard = np.flatnonzero(np.isfinite(capacity).any(axis=1)) if capacity is not None else np.zeros(0, int)
    used = np.diff(incidence.indptr) > 0
    live = used if congestible is None else used & np.asarray(congestible, dtype=bool)
    rows = np.union1d(np.flatnonzero(live), hard)             # the resources Newton solves for
    structure = _structure_for(incidence, rows, hard, route_od, load_per_unit)
    a_load, jacobian = structure.a_load, structure.jacobian
    # the compiled cost pass reads the whole [K, N] arrays
    base_cost, vot, theta = (np.ascontiguousarray(np.broadcast_to(x, base_cost.shape), dtype=float)
                             for x in (base_cost, vot, theta))
    available = np.ascontiguousarray(np.broadcast_to(available, base_cost.shape), dtype=bool)
    pw_k = np.ascontiguousarray(pw[:, 0], dtype=float)
    hard_pos = np.searchsorted(rows, hard)
    price = np.zeros((len(hard), n)) if start_price is None else np.array(start_price[hard], dtype=float)
    cap = capacity[hard] if len(hard) else np.zeros((0, n))
    implied = _implied(structure.nested, cap)       # a constraint another implies takes no price
    cap = np.where(implied, np.nan, cap)
    price[implied] = 0.0
    steps_taken = np.zeros(n, dtype=int)                    # price steps each run has taken
    last_step = np.zeros((len(hard), n))                    # each price's last non-zero step
    radius = np.full((len(hard), n), np.inf)                # its trust radius once guarded

    def delays(v, cols, step=0.0):
        """Delays ``[C, n]`` at loads ``v`` of the solved resources."""
        load = np.zeros((n_res, len(cols)))
        load[rows] = v + step
        return delay_fn(load, cols)[rows]

    def shares(v, cols):
        """Route shares at loads ``v``: the logit split of the route costs, in one compiled pass."""
        return _split(_route_exponent(base_cost, vot, theta, available, np.asarray(cols, dtype=np.int64),
                                      *structure.at_csr, delays(v, cols), *structure.ap_csr, price[:, cols], pw_k,
                                      bounds), bounds)

    def point(v, cols):
        """Route shares and flows at loads ``v``, the loads those flows make (``F(v)``), and the
        squared residual ``|v − F(v)|²``."""
        p = shares(v, cols)
        h = per_route_demand[:, cols] * p
        f = a_load @ h
        return p, h, f, ((v - f) ** 2).sum(axis=0)

    def newton_matrix(vc, cols, prices=False):
        """``I + M T'`` (``[n, C, C]``) at loads ``vc``, and ``M`` with the prices' weights in place of
        the value of time (``[n, C, C]``: minus the loads' derivative in each resource's price)."""
        base = delays(vc, cols)
        bump = 1e-7 * (1.0 + np.abs(vc))
        slope = (delays(vc, cols, bump) - base) / bump      # T': each delay's slope (a forward difference)
        left = lf * theta[:, cols] * per_route_demand[:, cols] * p[:, cols]
        jac = jacobian.sensitivity(left, p[:, cols], vot[:, cols]) * slope.T[:, None, :]
        jac[:, np.arange(len(rows)), np.arange(len(rows))] += 1.0
        by_price = jacobian.sensitivity(left, p[:, cols], np.broadcast_to(pw, left.shape)) if prices else None
        return jac, by_price

    def violations(load, cols):
        """``[H, n]`` for the hard resources' loads ``load``: violated (over or idle), the load over
        capacity, over (above capacity while the price can still rise) and idle (priced with room to spare)."""
        ratio = np.nan_to_num(load / cap[:, cols], nan=0.0)
        u = price[:, cols]
        over = (ratio > 1.0 + CAPACITY_TOLERANCE) & (u < max_price)
        idle = (u > 0) & (ratio < 1.0 - SLACK_TOLERANCE)
        return over | idle, ratio, over, idle

    def step_prices(cols):
        """One Newton step of the prices of runs ``cols`` (each at an equilibrium under its present
        prices) toward loads just under capacity, on log-loads so that a price far above the one that
        clears a facility (its load a logistic tail) comes back in a few steps. The loads' response to
        the prices is the equilibrium's own: ``dv/du = −(I + M T')⁻¹ M_u``. The prices that take part are
        those of full facilities and of overfull ones whose price can still rise; the others stay.
        At most a fivefold rise a step above ``price_unit``; never below zero or above ``max_price``."""
        load = np.maximum(f[hard_pos][:, cols], 1e-9 * cap[:, cols])
        u = price[:, cols]
        _, ratio, over, idle = violations(load, cols)
        active = ((u > 0) & (u < max_price)) | over | ((u >= max_price) & idle)
        jac, by_price = newton_matrix(v[:, cols], cols, prices=True)
        # [n, H, H]: dv_h/du, solved for the prices in play in any of these runs (the rest take no step)
        play = np.flatnonzero(active.any(axis=1))
        response = np.zeros((len(cols), len(hard), len(hard)))
        response[:, play[:, None], play] = -np.linalg.solve(jac, by_price[:, :, hard_pos[play]])[:, hard_pos[play], :]
        system = response / load.T[:, :, None]                                        # d ln v / du
        act = active.T
        system = np.where(act[:, :, None] & act[:, None, :], system, 0.0)
        system[:, np.arange(len(hard)), np.arange(len(hard))] += np.where(act, 0.0, 1.0)
        target = np.log(1.0 - CAPACITY_TOLERANCE / 2) - np.log(np.where(ratio > 0, ratio, 1.0))   # 0: no capacity
        rhs = np.where(active, target, 0.0).T[..., None]
        # each price in units of its own response (a small ferry answers a price far more than a main
        # line), then a pseudo-inverse: facilities in series carry the same flows, so only the sum of
        # their prices is determined, and the least-norm step shares it between them (where one's routes
        # are all the other's and its capacity no smaller, ``_implied`` has already dropped it)
        diagonal = np.abs(np.diagonal(system, axis1=1, axis2=2))
        scale = np.where(diagonal > 0, diagonal, 1.0)
        step = (_least_norm(system / scale[:, None, :], rhs[..., 0], act) / scale).T
        step = np.where(active & np.isfinite(step), step, 0.0)
        # a load no price moves (no alternative route) rises fivefold while over capacity; a priced
        # facility with room whose step would not lower its price halves it
        flat = diagonal.T * (u + price_unit) < 1e-6
        step = np.where(active & over & flat, 4.0 * (u + price_unit), step)
        step = np.where(active & idle & (step >= 0), -u / 2, step)
        guarded = steps_taken[cols] >= FREE_PRICE_STEPS
        # past STUCK_PRICE_STEPS, an overfull facility's price no longer falls or stays: where the joint
        # least-norm step would leave it (it shares routes with another full facility, and the step
        # goes to the other, in a cycle), it takes its own Newton step, its load's response to its own
        # price alone (research/price_loop_refit.md)
        with np.errstate(divide="ignore", invalid="ignore"):   # a flat response: the fivefold rise
            own = target / np.diagonal(system, axis1=1, axis2=2).T
        own = np.where(np.isfinite(own) & (own > 0), own, 4.0 * (u + price_unit))
        stuck = steps_taken[cols] >= STUCK_PRICE_STEPS
        step = np.where(stuck & active & over & (step <= 0), own, step)
        step = np.minimum(step, 4.0 * (u + price_unit))
        # past FREE_PRICE_STEPS, a price whose step turns back is held to half its last step: the
        # loads' response to a price can be far from linear (a class of freight switching routes
        # over a small range of prices), and the full Newton step then cycles
        last = last_step[:, cols]
        turned = guarded & (step * last < 0)
        grown = np.where(guarded & (step * last > 0), PRICE_RADIUS_GROWTH * radius[:, cols], radius[:, cols])
        bound = np.where(turned, np.minimum(grown, 0.5 * np.abs(last)), grown)
        radius[:, cols] = bound
        step = np.where(guarded, np.clip(step, -bound, bound), step)
        price[:, cols] = np.clip(u + step, 0.0, max_price)
        moved = price[:, cols] - u
        last_step[:, cols] = np.where(moved != 0, moved, last)
        steps_taken[cols] += 1

    every = np.arange(n)
    if start is None:
        v = np.zeros((len(rows), n))
    else:   # last year's route shares at this year's demand
        h0 = np.where(available, np.maximum(start, 0.0), 0.0)
        od_total = np.add.reduceat(h0, starts, axis=0)[route_od]
        share = np.divide(h0, od_total, out=np.zeros_like(h0), where=od_total > 0)
        share = np.where(od_total > 0, share, shares(np.zeros((len(rows), n)), every))
        v = a_load @ (per_route_demand * share)
    p, h, f, residual = point(v, every)
    od_demand = np.where(demand > 0, demand, np.inf)
    gap = np.full(n, np.inf)
    cols = every
    it = 0
    for it in range(1, max_iter + 1):
        # the gap of the route flows h(v): how far the logit split of the costs at their loads moves them
        gap[cols] = _od_gap(per_route_demand[:, cols] * shares(f[:, cols], cols), h[:, cols], bounds,
                            od_demand[:, cols])
        moving = gap[cols] > tol
        if len(hard):   # an equilibrium under the present prices: reprice the constraints it violates
            reprice = ~moving & violations(f[hard_pos][:, cols], cols)[0].any(axis=0)
            if reprice.any():
                rc = cols[reprice]
                step_prices(rc)
                p[:, rc], h[:, rc], f[:, rc], residual[rc] = point(v[:, rc], rc)
                moving |= reprice
        if not moving.any():
            break
        cols = cols[moving]
        vc = v[:, cols]
        # the Newton step: (I + M T') dv = F(v) − v
        step = np.linalg.solve(newton_matrix(vc, cols)[0], (f[:, cols] - vc).T[..., None])[..., 0].T
        # backtracking on |v − F(v)|²; runs whose step already descends stop halving
        alpha = np.ones(len(cols))
        todo = np.arange(len(cols))
        for halving in range(MAX_HALVINGS + 1):
            tc = cols[todo]
            trial = np.maximum(vc[:, todo] + alpha[todo] * step[:, todo], 0.0)
            tp, th, tf, tr = point(trial, tc)
            ok = (tr <= (1.0 - 1e-4 * alpha[todo]) * residual[tc]) | (halving == MAX_HALVINGS)
            keep = tc[ok]
            v[:, keep], p[:, keep], h[:, keep], f[:, keep], residual[keep] = \
                trial[:, ok], tp[:, ok], th[:, ok], tf[:, ok], tr[ok]
            todo = todo[~ok]
            if not len(todo):
                break
            alpha[todo] *= 0.5
    load = incidence @ (h * lf)
    delay = delay_fn(load, every)
    full = np.zeros_like(load)
    full[hard] = price
    paid = pw * (structure.a_price @ price) if len(hard) else 0.0      # what each route pays the prices
    cost = base_cost + vot * (incidence.T @ delay) + paid
    feasible = ~violations(load[hard], every)[2].any(axis=0) if len(hard) else np.ones(n, dtype=bool)
    return SUEResult(flow=h, load=load, delay=delay, cost=cost, gap=gap, iterations=it,
                     converged=(gap <= tol) & feasible, price=full)
