"""Logit stochastic user equilibrium on fixed route sets, batched over runs.

All arrays carry the run axis last (``[routes, runs]``, ``[resources, runs]``) so that one sparse
product or one compiled loop handles every run at once. The equilibrium is the fixed point ``h = demand * logit(cost(h))``;
it is found by damped Newton on the loads of the congestible resources (the only quantities route
costs depend on), which are few even where routes are many, and fewer still as unknowns: resources that
carry the same routes (a ferry and its ports) share one load (:func:`distinct_rows`). With ``v`` those
loads and ``F(v)`` the loads that the logit split of the costs at ``v`` produces, Newton solves
``v - F(v) = 0`` with the Jacobian ``I + M T'``: ``T'`` the diagonal of delay slopes and
``M = A S Aᵀ``, ``S`` the logit covariance of each OD weighted by ``demand · theta · load per unit ·
value of time`` — symmetric and positive semi-definite because those four are constant within an OD
(one commodity; checked), so every Newton system is non-singular: with ``D = sqrt(T')`` it becomes
``I + D M D``, symmetric positive definite, and a Cholesky factor of its lower triangle solves it. A
backtracking line search on ``|v - F(v)|²`` makes each step a descent; near the solution the full step
is taken and convergence is quadratic.

Each run's whole equilibrium is one compiled Numba kernel (:func:`_equilibrium`; a batch's runs split
across threads, the kernel releasing the GIL): Newton on the loads until the run is at the equilibrium under its present capacity prices,
then a price step (:func:`_run_price_step`) and Newton again, until no capacity is violated; a run whose
prices have not settled after a few price steps solves its loads and prices as one system instead
(:func:`_joint_solve`), going back to the price steps where that fails. The delay
curves are declared (:class:`~multivector.freight.vdf.DelayCurves`) so that the kernel evaluates them
itself.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
from scipy import sparse

from multivector.freight.products import matmul
from multivector.freight.vdf import NO_DELAY, DelayCurves, curve_delay


#: Side constraints: a capacity is met within this share (the reality checks allow 0.5%).
CAPACITY_TOLERANCE = 0.004
#: A resource with a price must be this close to full (below it the price is lowered): slackness.
SLACK_TOLERANCE = 0.01
#: The default gap: every corridor's volume then lies within 1e-5 of the equilibrium solved to 1e-10
#: (bench/results/solver_accuracy.md). The gap is relative to each OD's demand, so at 1e-4 a corridor
#: that carries a small part of its OD's freight (crude through BTC, ~2% of the Kazakh crude) could be
#: off by 2e-3 of its own volume; 1e-6 costs about a tenth more time.
EQUILIBRIUM_TOL = 1e-6
#: Newton steps a run may take in a year, price steps' re-solves included, before it is flagged
#: unconverged. The slowest of 200 coupled runs takes 55 in the median year and under 200 in the
#: worst (bench/results/solver_accuracy.md); a run whose prices circle slowly among four full
#: facilities settled after 1,040 (research/price_loop_crawl.md). A run that never settles costs its
#: thread this many steps, about 0.3 s.
MAX_NEWTON_STEPS = 3000
#: Newton steps a solve keeps for the loads alone (half of ``max_iter`` if that is less): in them no
#: price step is taken, so that a run whose prices have not settled ends at an equilibrium under its
#: last prices (flagged, its capacities perhaps violated) instead of wherever the loads stood when the
#: steps ran out after a price step (a route-flow gap up to 2, the flows meaningless). Newton from a
#: price step's prediction takes a few steps.
LOADS_ONLY_STEPS = 100
#: The gap is measured only where the loads' residual ``|v − F(v)|`` is at most this many times the
#: tolerance relative to ``|F(v)|``: measuring costs a logit split, and a larger residual has always come
#: with a gap above the tolerance (of 2,976 measurements in a year of 250 coupled runs and their
#: counterfactuals, every gap within the tolerance had a residual below 8.4e-7 of the loads;
#: bench/results/coupled.md). A measurement skipped where the gap would have passed costs one more Newton
#: step, never an early stop.
GAP_SKIP_RESIDUAL = 10.0
#: A warm start holds each group's load to at most this many times its smallest capacity. Last year's
#: load on a facility closed this year (its capacity scaled to nothing) is no equilibrium: its delay
#: there is astronomical, at no load none, and the fixed point lies just above its capacity, so Newton
#: halved its way down, some 25 steps (the p99 of a Morris design's run-years). Loads past it are
#: loads on the queues' linear continuations (3.6 times capacity seen at equilibrium); Newton raises a
#: load held below its fixed point in a step or two.
START_OVERLOAD = 10.0
#: Halvings of a Newton step before the line search takes the shortest one anyway.
MAX_HALVINGS = 12
#: Halvings of a free price step that overshoots (:func:`_overshoots`) before it is taken anyway.
PRICE_HALVINGS = 3
#: Price steps a run takes freely in a solve (99% of run-years need at most 4). From then on each
#: price has a trust radius: a step that turns back is held to half the step before it, and the
#: radius grows by PRICE_RADIUS_GROWTH with each step that keeps its direction. This breaks the
#: cycles of the price steps (research/price_loop_main.md) and leaves every run that needs no more
#: than FREE_PRICE_STEPS steps bit for bit as it was.
FREE_PRICE_STEPS = 8
PRICE_RADIUS_GROWTH = 1.5
#: The least a price's trust radius shrinks to, relative to the price (plus PRICE_UNIT): halving at each
#: turn had taken a radius to 1e-29 of a price at the cap, and growing by PRICE_RADIUS_GROWTH it needed
#: some 180 steps to move the price again while its facility stood empty. A millionth of the price moves
#: no load across the capacity tolerance.
PRICE_RADIUS_FLOOR = 1e-6
#: A price is a member of a group's direction (:func:`_group_step`) when it moves by more than this
#: share of the direction's largest; the rest is the others' weak coupling to the group.
GROUP_MEMBER = 1e-3
#: In its first FREE_PRICE_STEPS, a priced facility with room at least this full keeps the joint price
#: step where the step's linear response fills it (its partners' prices rising): halving its price there
#: had thrown four nearly settled sea outlets into 60 steps of swings. Emptier, or later, the linear
#: prediction is not trusted and the price halves.
NEAR_FULL = 0.9
#: Price steps after which an overfull facility's own price must rise (see :func:`_run_price_step`): the
#: joint step can leave it at zero for ever while its partner's price cycles. Set well past the
#: steps any settling run-year needs, so that those are untouched.
STUCK_PRICE_STEPS = 40


_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def use_threads(count: int | None) -> None:
    """How many threads the equilibrium splits a batch's runs across (``None``: one a core). A worker
    process of a pool that has one process a core should use one."""
    global _threads
    _threads = count


def thread_count() -> int:
    """The threads a batch may use: :func:`use_threads`'s count, or one a core."""
    return _threads or os.cpu_count() or 1


#: Per thread: whether this thread's equilibria stay on it (see :func:`on_this_thread`).
_local = threading.local()


@contextmanager
def on_this_thread():
    """Within it, the equilibria this thread solves run on this thread alone: for a pass of a batch that
    other threads simulate beside it, each on its own core."""
    _local.alone = True
    try:
        yield
    finally:
        _local.alone = False


def kernels_cached() -> bool | None:
    """Whether Numba's cache on this machine already holds the compiled equilibrium kernel (a fresh
    install or an edited ``sue.py`` compiles it on first use, some 15-20 s); ``None`` where this Numba
    does not say. Reads Numba's own cache index, a private part of it, hence the guard."""
    try:
        return bool(_equilibrium._cache._cache_file._load_index())
    except Exception:   # noqa: BLE001 - another Numba's cache layout: say nothing rather than fail a run
        return None


def _forget_pool() -> None:
    global _pool, _pool_size
    _pool, _pool_size = None, 0     # a forked child inherits the pool object but not its threads


os.register_at_fork(after_in_child=_forget_pool)


#: The fewest runs worth a thread of their own.
_RUNS_PER_THREAD = 4

#: Up to this many runs, equal runs are found by comparing every pair of columns.
_FEW_RUNS = 8


def _in_threads(kernel, runs: np.ndarray, *args) -> None:
    """``kernel(cols, *args)`` over the ``runs``, dealt out in turn to the threads (the kernels release the
    GIL, and each writes only its runs' columns). Dealt, not cut in halves: a coupled batch puts its
    counterfactual runs, which take longer, after its own, and halves left one thread idle for 8% of
    the kernel's time."""
    global _pool, _pool_size
    # a thread pays for its hand-over only with a few runs to solve (a single run and its counterfactual
    # take 5% longer on two threads than on one)
    # (asked only then: os.cpu_count costs 30 microseconds a call here, 1% of a single run)
    most = len(runs) // _RUNS_PER_THREAD
    count = min(_threads or os.cpu_count() or 1, most) if most > 1 else most
    if count <= 1 or getattr(_local, "alone", False):
        kernel(runs, *args)
        return
    if _pool_size < count:
        _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="multivector-equilibrium")
        _pool_size = count
    for done in [_pool.submit(kernel, np.ascontiguousarray(runs[i::count]), *args) for i in range(count)]:
        done.result()


def _first_of_equal(*arrays) -> np.ndarray:
    """For each run (the last axis of every array), the first run whose columns are equal to its own in
    every array (itself where none is). A run's equilibrium depends on its own columns alone, so equal
    runs are solved once: the runs of an ensemble share their inputs until their disruptions or parameters
    part them (in a default run's first year, 40 of 400 columns differ). Candidates are found by a random
    projection of the columns and then compared exactly, NaN equal to NaN."""
    n = arrays[0].shape[-1]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    as_columns = lambda x: np.asarray(x, dtype=float).reshape(-1, n)
    if n <= _FEW_RUNS:      # a small batch (a single run and its counterfactual): compare the columns directly
        rep = np.arange(n)
        for j in range(1, n):
            for i in range(j):
                if rep[i] == i and all(_equal_columns(c[:, i], c[:, j]) for c in map(as_columns, arrays)):
                    rep[j] = i
                    break
        return rep
    cols = [as_columns(x) for x in arrays]
    rng = np.random.default_rng(0)
    key = np.zeros(n)
    for c in cols:
        finite = np.isfinite(c).all(axis=1)
        part = c if finite.all() else c[finite]          # rows with a NaN or inf anywhere: left to the check
        # summed by einsum, not a BLAS product: OpenBLAS's threads, once woken, spin for a while after
        # it, on the cores the equilibrium's threads are about to use (a batch's kernel ran 1.5 times slower)
        key += np.einsum("i,ij->j", rng.standard_normal(len(part)), part, optimize=False)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rep = first[inverse.ravel()]
    dup = np.flatnonzero(rep != np.arange(n))
    for c in cols:       # a projection that coincides without the columns being equal: keep the run
        same = _equal_columns(c[:, dup], c[:, rep[dup]])
        rep[dup[~same]] = dup[~same]
        dup = dup[same]
    return rep


def _equal_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column of ``a`` and ``b`` (the last axis), whether every element is equal to the last bit, NaN
    equal to NaN."""
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=0)


@dataclass
class SUEResult:
    flow: np.ndarray        # [K, N] route flows (commodity units)
    load: np.ndarray        # [R, N] resource loads (Mt)
    delay: np.ndarray       # [R, N] congestion delay (h)
    gap: np.ndarray         # [N] worst over ODs of sum |demand * logit(cost) - flow| / demand
    iterations: int
    converged: np.ndarray   # [N] bool
    price: np.ndarray | None = None  # [R, N] the side constraints' multipliers: cost per unit of load
    route_cost: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    @cached_property
    def cost(self) -> np.ndarray:
        """``[K, N]`` generalised route cost at the solution (computed when asked: a model that builds
        its own outputs from the delays and prices need not pay for it)."""
        return self.route_cost()


def logit_split(cost, theta, available, starts):
    """Route shares within each OD: softmax of ``-theta * cost`` over the OD's available routes
    (``[K, n]``; ``starts``: each OD's first route, routes sorted by OD)."""
    cost = np.ascontiguousarray(cost, dtype=float)
    theta = np.ascontiguousarray(np.broadcast_to(theta, cost.shape), dtype=float)
    available = np.ascontiguousarray(np.broadcast_to(available, cost.shape), dtype=bool)
    return _logit_runs(cost, theta, available, np.r_[starts, len(cost)].astype(np.int64))


@numba.njit(cache=True)
def _put_column(dst, j, src):
    """``dst[:, j] = src``, written out: Numba's slice assignment compiles a shape-mismatch error with
    its string formatting, a few seconds of every fresh machine's first run."""
    for k in range(len(src)):
        dst[k, j] = src[k]


@numba.njit(cache=True)
def _logit_runs(cost, theta, available, bounds):
    """:func:`_logit` of every run (``[K, n]`` in and out)."""
    out = np.empty(cost.shape)
    for j in range(cost.shape[1]):
        _put_column(out, j, _logit(cost[:, j], theta[:, j], available[:, j], bounds))
    return out


@numba.njit(cache=True)
def _logit(cost, theta, available, bounds):
    """``[K]`` route shares: within each OD, ``exp(-theta · (cost − the cheapest available))`` over the
    available routes, normalised (zero where the OD has no available route)."""
    share = np.zeros(len(cost))
    for d in range(len(bounds) - 1):
        low = np.inf
        for k in range(bounds[d], bounds[d + 1]):
            if available[k] and cost[k] < low:
                low = cost[k]
        total = 0.0
        for k in range(bounds[d], bounds[d + 1]):
            if available[k]:
                share[k] = np.exp(-theta[k] * (cost[k] - low))
                total += share[k]
        for k in range(bounds[d], bounds[d + 1]):
            share[k] = share[k] / total if total > 0 else 0.0
    return share


class _Jacobian:
    """The route sets' OD structure from which :func:`_run_sensitivity` assembles ``M = A S Aᵀ``.

    Only ODs with two or more routes contribute (a single route's logit covariance is zero). Their
    ``routes`` (ascending, so grouped by OD: ``od_route_ptr``), each route's solved resources
    ``route_res`` (ascending) and the same resources' ``route_slot``: one slot per OD and resource its
    routes use, the OD's slots ``od_slot_ptr`` in ascending order of their resource ``slot_res``;
    ``route_ptr`` delimits each route's entries. Routes that cross the same solved resources share one
    ``pattern`` (``route_pattern``; ``pattern_res[pattern_ptr[q]:pattern_ptr[q + 1]]`` ascending): the
    first term of ``M`` is summed over patterns, not routes (the built-in network's 746 routes in ODs
    with a choice cross 38 patterns, 241 pairs of resources where the routes have 5,043).
    """

    def __init__(self, a: sparse.csr_matrix, route_od: np.ndarray):
        at = a.T.tocsr()
        at.sort_indices()
        size = np.bincount(route_od)
        routes = np.flatnonzero(size[route_od] > 1)
        od_res, od_routes, route_res, route_slot, used = [], [], [], [], 0
        for od in np.unique(route_od[routes]):
            members = routes[route_od[routes] == od]
            res = np.unique(at.indices[at.indptr[members[0]]:at.indptr[members[-1] + 1]])
            for k in members:
                route_res.append(at.indices[at.indptr[k]:at.indptr[k + 1]])
                route_slot.append(used + np.searchsorted(res, route_res[-1]))
            od_res.append(res)
            od_routes.append(len(members))
            used += len(res)
        ints = lambda parts: np.concatenate(parts + [np.zeros(0, int)]).astype(np.int64)
        ptr = lambda sizes: np.r_[0, np.cumsum(sizes, dtype=np.int64)].astype(np.int64)
        self.routes = routes.astype(np.int64)
        self.od_route_ptr = ptr(od_routes)
        self.route_ptr = ptr([len(r) for r in route_res])
        self.route_res, self.route_slot = ints(route_res), ints(route_slot)
        self.slot_res = ints(od_res)
        self.od_slot_ptr = ptr([len(r) for r in od_res])
        self.route_pattern, first = distinct_rows(at[routes], values=False)
        patterns = at[routes][first]
        self.pattern_ptr, self.pattern_res = patterns.indptr.astype(np.int64), patterns.indices.astype(np.int64)

    def arrays(self) -> tuple:
        """What the compiled kernels read, in their order."""
        return (self.routes, self.od_route_ptr, self.route_ptr, self.route_res, self.route_slot, self.slot_res,
                self.od_slot_ptr, self.route_pattern, self.pattern_ptr, self.pattern_res)


class _Structure:
    """What a solve needs from the route sets alone, for the solved resources ``rows`` and the
    capacitated ``hard``: loads per route flow ``a_load``, the route-resource and capacity-route
    incidence as the CSR arrays the compiled cost pass reads (``crossings``, below, and ``ap_csr``:
    indptr, indices, data, a row per capacity; no rows without capacities), the route-capacity incidence
    as a matrix (``a_price``, ``[K, H]``), the :class:`_Jacobian`,
    and the pairs of capacities whose routes nest (``nested``: each ``x``, ``y`` with every route through
    ``x`` passing ``y``, and whether they carry the same routes; :func:`_implied` reads them); each OD's
    first route, then the number of routes (``bounds``), and where each capacity sits among the groups of
    solved resources (``hard_pos``). Newton's unknowns are those groups (:func:`distinct_rows`: ``group``
    of each solved resource; ``members[member_ptr[c]:member_ptr[c + 1]]`` the solved resources of group
    ``c``): ``a_load``, the Jacobian and the ``crossings`` are per group, the capacities' arrays per
    capacity. The compiled cost pass reads a route's groups through its ``route_crossing``: one row of
    ``crossings`` (CSR: the groups and how often) for every route that crosses the same groups alike (the
    built-in network's 747 routes cross 39 such patterns, 111 entries against the routes' 2,084)."""

    def __init__(self, incidence, rows, hard, route_od, load_per_unit):
        solved = incidence[rows]
        self.group, first = distinct_rows(solved)     # resources in series: one unknown per group
        a = solved[first]                                                 # [C, K], one row per group
        self.member_ptr = np.r_[0, np.cumsum(np.bincount(self.group, minlength=len(first)))].astype(np.int64)
        self.members = np.argsort(self.group, kind="stable").astype(np.int64)
        self.a_load = a @ sparse.diags(load_per_unit)
        self.jacobian = _Jacobian(a, route_od)
        by_capacity = incidence[hard].tocsr()                            # [H, K]: no rows without capacities
        by_capacity.sort_indices()                                       # a route's prices in ascending order
        self.a_price = by_capacity.T.tocsr() if len(hard) else None      # [K, H]
        at = a.T.tocsr()
        self.route_crossing, first_route = distinct_rows(at)     # routes that cross the same groups alike
        crossed = at[first_route]
        self.crossings = (crossed.indptr.astype(np.int64), crossed.indices.astype(np.int64),
                          crossed.data.astype(float))
        self.ap_csr = (by_capacity.indptr, by_capacity.indices, by_capacity.data.astype(float))
        self.nested = _nested(by_capacity)
        self.routes_by_resource = incidence.T.tocsr()                     # [K, R]: a route's costs from its resources'
        self.bounds = np.r_[np.flatnonzero(np.r_[True, route_od[1:] != route_od[:-1]]), len(route_od)].astype(np.int64)
        self.hard_pos = self.group[np.searchsorted(rows, hard)].astype(np.int64)


def distinct_rows(m: sparse.csr_matrix, values: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``m`` labelled by the distinct rows among them (the same columns and, where ``values``,
    the same values; labels numbered by first appearance), and each label's first row. Rows of the
    solved incidence that carry the same routes alike (a ferry and its ports, the sections of one line)
    always carry the same load: Newton solves one load per such group, its delay the sum of its members'.
    Routes that cross the same groups alike have their delays and loads summed once (docs/design.md gives
    the built-in network's counts). Sorts ``m``'s indices in place."""
    m = m.tocsr()
    m.sort_indices()
    seen: dict[tuple[bytes, bytes], int] = {}
    label = np.empty(m.shape[0], dtype=np.int64)
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        key = (m.indices[lo:hi].tobytes(), m.data[lo:hi].tobytes() if values else b"")
        label[r] = seen.setdefault(key, len(seen))
    return label, np.unique(label, return_index=True)[1]


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
def _varies_within_od(x, bounds):
    """The first OD (``bounds``: each OD's first route, then the number of routes) whose routes do not all
    carry the same value of ``x`` (``[K, N]`` or ``[K, 1]``) in some run, or -1: the Newton matrix is
    built on one value per OD and run (:func:`_run_sensitivity`)."""
    for j in range(x.shape[1]):
        for d in range(len(bounds) - 1):
            for k in range(bounds[d] + 1, bounds[d + 1]):
                if x[k, j] != x[bounds[d], j] and not (np.isnan(x[k, j]) and np.isnan(x[bounds[d], j])):
                    return d
    return -1


def _nested(a: sparse.csr_matrix):
    """The pairs ``x``, ``y`` of rows of ``a`` (``[H, K]`` incidence) where every route through ``x`` also
    passes ``y``, sorted by ``x``; whether the two carry the same routes; and where each ``x``'s pairs
    begin."""
    a = (a != 0).astype(np.int64)
    size = np.asarray(a.sum(axis=1)).ravel()
    shared = (a @ a.T).toarray()
    x, y = np.nonzero((shared == size[:, None]) & (size[:, None] > 0) & ~np.eye(len(size), dtype=bool))
    first = np.flatnonzero(np.diff(x, prepend=-1))           # each x's first pair (np.nonzero sorts by row)
    return x, y, size[x] == size[y], first


def _implied(nested, cap: np.ndarray) -> np.ndarray:
    """``[H, N]``: the capacities that another one implies, run by run (``nested`` from :func:`_nested`).
    Where every route through ``x`` also passes ``y`` (``x``'s load can be no more than ``y``'s) and
    ``y``'s capacity is no larger, ``y`` full means ``x`` within its capacity, so dropping ``x``'s
    constraint changes no equilibrium. Where the two carry the same routes (a ferry and its port) only
    the sum of their prices reaches a route, and a price step aimed at both at once (one over, one with
    room) cancels out; dropped, the binding one carries the whole price. Equal route sets and equal
    capacities keep the first."""
    x, y, same, first = nested
    implied = np.zeros(cap.shape, dtype=bool)
    if len(x):
        strict = (same & (x < y))[:, None]
        implied[x[first]] = np.logical_or.reduceat(np.where(strict, cap[y] < cap[x], cap[y] <= cap[x]), first, axis=0)
    return implied


@numba.njit(cache=True)
def _active_block(system, idx, m):
    """``system``'s rows and columns ``idx`` as an ``[m, m]`` block (``m >= len(idx)``), padded with
    identity rows: the part of a price-step system that the prices in play span."""
    block = np.zeros((m, m))
    for a in range(len(idx)):
        for c in range(len(idx)):
            block[a, c] = system[idx[a], idx[c]]
    for a in range(len(idx), m):
        block[a, a] = 1.0
    return block


@numba.njit(cache=True)
def _least_norm(system, rhs, active, rcond=1e-4):
    """``pinv(system) @ rhs`` (``[H, H]``, ``[H]``) for a system that is the identity outside the
    ``active`` rows and columns, taken on those rows alone (a few of the many capacities are in play at
    once, and the SVD's cost grows with the cube of the size), padded with one identity row while any
    row is inactive, so that the cut-off, ``rcond`` times the largest singular value, sees the singular
    value of one that the whole system has."""
    size = len(active)
    idx = np.flatnonzero(active)
    count = len(idx)
    m = min(count + 1, size)
    b = np.zeros(m)
    for a in range(count):
        b[a] = rhs[idx[a]]
    x = np.linalg.pinv(_active_block(system, idx, m), rcond) @ b
    out = np.zeros(size)
    for a in range(count):
        out[idx[a]] = x[a]
    return out


@numba.njit(cache=True)
def _price_units(response, u, price_unit):
    """Each price's unit in the price step: its load's own response to it (``response``, ``|d ln v / du|``),
    or 1 where that response is none, or a trillion times below a relative one (``response · (u +
    price_unit)``): a denormal response (1e-321, seen) overflowed the scaled system to infinity."""
    unit = np.ones(len(response))
    for h in range(len(response)):
        if response[h] * (u[h] + price_unit) > 1e-12:
            unit[h] = response[h]
    return unit


@numba.njit(cache=True)
def _group_step(scaled, unit, active, load, cap, u, price_unit, stuck=False, rcond=1e-4):
    """The prices' step along the directions :func:`_least_norm` drops (singular value of the price
    step's ``scaled`` system, on its ``active`` rows and columns, at most ``rcond`` of the largest) where
    they are a group's: freight whose every route crosses the same full facilities does not answer their
    prices together, so raising them all (the right null vector, every price the same way) leaves its
    total load on them (the left null vector, every load the same way, on the same facilities) where it
    is. That total is set against the group's capacity: above it by more than ``CAPACITY_TOLERANCE``
    (demand no route can take), the prices rise together, fivefold at most, until they reach the cap and
    the caller rations the excess; below it by more than ``SLACK_TOLERANCE`` (freight that left the group
    in its logit tail), they fall together, by half at most. A direction of both signs is facilities in
    series trading their shares of one price, which the least-norm step usually settles; once the run
    is ``stuck`` it takes :func:`_series_step`. A price that moves nothing while other loads are stuck
    (the two vectors on different facilities) takes no step. Zero where no direction qualifies."""
    idx = np.flatnonzero(active)
    count = len(idx)
    out = np.zeros(len(active))
    if count == 0:
        return out
    left, s, right = np.linalg.svd(_active_block(scaled, idx, count))
    cut = rcond * max(s[0], 1.0)     # _least_norm's cut: its identity row's singular value is 1
    for i in range(count):
        if s[i] > cut:
            continue
        way = right[i] / unit[idx]
        weight = left[:, i].copy()
        if way.sum() < 0:
            way = -way
        if weight.sum() < 0:
            weight = -weight
        # members: the prices the direction raises; what is left on the others, of either sign, is their
        # weak coupling to the group through shared routes (2e-4 of the members' in a trace), not a
        # direction of their own
        member = way > GROUP_MEMBER * way.max()
        stray = 0.0
        for a in range(count):
            if not member[a] or weight[a] < 0:
                stray += abs(weight[a])
        if way.min() < -GROUP_MEMBER * way.max():
            if stuck:
                _series_step(way, idx, load, cap, u, out)
            continue
        if stray > 1e-3 * np.abs(weight).sum():
            continue
        need = 0.0
        total = 0.0
        by = np.inf
        for a in range(count):
            if member[a]:
                h = idx[a]
                need += weight[a] / load[h] * (cap[h] * (1.0 - CAPACITY_TOLERANCE / 2) - load[h])
                total += weight[a] / load[h] * cap[h]
        for a in range(count):
            if member[a]:
                by = min(by, (4.0 * (u[idx[a]] + price_unit) if need < 0 else 0.5 * u[idx[a]]) / way[a])
        sign = -1.0 if need < -CAPACITY_TOLERANCE * total else 1.0 if need > SLACK_TOLERANCE * total else 0.0
        if sign != 0 and np.isfinite(by):
            for a in range(count):
                if member[a]:
                    out[idx[a]] -= sign * by * way[a]
    return out


@numba.njit(cache=True)
def _series_step(way, idx, load, cap, u, out):
    """A step along a null direction of both signs (``way``, on the prices ``idx``): facilities in series
    that carry some freight together, so that raising one price and lowering the other by as much moves
    almost nothing. The least-norm step drops it; where every facility it raises is over capacity and
    every one it lowers is priced with room, the two sides are trading one price and the per-facility
    rules crawl along it a few cents a step (a ferry over capacity and the sea link beyond it with room,
    for freight whose every other outlet is at the cap: 2,800 price steps). The step moves the
    price across: the lowered prices halve at most, the raised ones rise by as much along ``way``.
    Nothing is done where any member's state disagrees with the direction."""
    big = np.abs(way).max()
    for sign in (1.0, -1.0):
        by = np.inf
        agree = True
        for a in range(len(idx)):
            h = idx[a]
            w = sign * way[a]
            if w > GROUP_MEMBER * big:
                agree = agree and load[h] > cap[h] * (1.0 + CAPACITY_TOLERANCE)
            elif w < -GROUP_MEMBER * big:
                agree = agree and u[h] > 0 and load[h] < cap[h] * (1.0 - SLACK_TOLERANCE)
                by = min(by, 0.5 * u[h] / -w)
        if agree and np.isfinite(by):
            for a in range(len(idx)):
                if abs(way[a]) > GROUP_MEMBER * big:
                    out[idx[a]] += sign * by * way[a]
            return


@numba.njit(cache=True)
def _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw):
    """Run ``j``'s route costs before delay ``[K]``: ``base + pw · Σ price`` over each route's capacities
    (``ap_*``: CSR arrays of the capacity-route incidence, one row per capacity, routes ascending). They
    change only with a price step, so a solve computes them once per price state rather than at every
    trial of the loads. Most prices are zero (3 of 41 in a default year), so the sums run over the
    priced capacities' routes alone; each route still adds its prices in ascending order of capacity,
    as a pass over its own row would, and a zero price adds nothing, so the costs are the same to the bit."""
    k_n = base_cost.shape[0]
    paid = np.zeros(k_n)
    for h in range(len(ap_ptr) - 1):
        u = price[h, j]
        if u != 0.0:
            for e in range(ap_ptr[h], ap_ptr[h + 1]):
                paid[ap_idx[e]] += ap_val[e] * u
    cost = np.empty(k_n)
    for k in range(k_n):
        cost[k] = base_cost[k, j] + pw[k] * paid[k]
    return cost


#: Within an OD whose routes' priced costs spread more than this (in units of 1/theta), the logit is
#: taken route by route: the factored weights ``exp(-theta · (priced − cheapest))`` could underflow.
FACTORED_SPREAD = 600.0


@numba.njit(cache=True)
def _fixed_weights(j, priced, theta, available, bounds, old_priced, old_weight, old_cheapest):
    """Run ``j``'s fixed logit weights at a price state: each open route's ``exp(-theta (priced − its OD's
    cheapest))``, whether each OD is taken route by route (its priced costs spread beyond
    ``FACTORED_SPREAD``), and each OD's cheapest priced cost. Given the same run's weights at an earlier
    price state (``old_*``; empty: none), a route whose priced cost and OD's cheapest did not move keeps
    its old weight (a price step moves the few routes through a priced facility): the same to the bit."""
    k_n, n_od = len(priced), len(bounds) - 1
    reuse = len(old_cheapest) > 0
    weight = np.zeros(k_n)
    direct = np.zeros(n_od, dtype=np.bool_)
    cheapest = np.empty(n_od)
    for d in range(n_od):
        low, high = np.inf, -np.inf
        for k in range(bounds[d], bounds[d + 1]):
            if available[k, j]:
                low, high = min(low, priced[k]), max(high, priced[k])
        direct[d] = theta[bounds[d], j] * (high - low) > FACTORED_SPREAD
        cheapest[d] = low
        same = reuse and low == old_cheapest[d]
        for k in range(bounds[d], bounds[d + 1]):
            if available[k, j]:
                if same and priced[k] == old_priced[k]:
                    weight[k] = old_weight[k]
                else:
                    weight[k] = np.exp(-theta[k, j] * (priced[k] - low))
    return weight, direct, cheapest


@numba.njit(cache=True)
def _priced_split(j, priced, vot, theta, available, bounds, route_crossing, n_patterns):
    """Run ``j``'s logit factored for a price state (``priced``: :func:`_priced_cost`). A route's weight
    ``exp(-theta (priced + vot W))`` is ``exp(-theta (priced − the OD's cheapest))``, fixed until the
    prices move, times ``exp(-theta vot W)``, which depends only on the route's crossing pattern (its
    delay ``W``) and on ``theta · vot``, one value per OD and in practice per commodity. So each solve
    takes one exponential per (``theta · vot``, pattern) in use, not one per route. Returns ``priced``,
    the routes' fixed weights, whether each OD is taken route by route instead, each route's (rate,
    pattern) pair, each pair's rate and pattern, and each OD's cheapest (:func:`_fixed_weights`)."""
    k_n, n_od = len(priced), len(bounds) - 1
    none = np.zeros(0)
    weight, direct, cheapest = _fixed_weights(j, priced, theta, available, bounds, none, none, none)
    rates = np.empty(n_od)
    n_rates = 0
    od_rate = np.empty(n_od, dtype=np.int64)
    for d in range(n_od):
        rate = theta[bounds[d], j] * vot[bounds[d], j]
        od_rate[d] = -1
        for r in range(n_rates):
            if rates[r] == rate:
                od_rate[d] = r
                break
        if od_rate[d] < 0:
            rates[n_rates] = rate
            od_rate[d] = n_rates
            n_rates += 1
    slot = np.full(n_rates * n_patterns, -1, dtype=np.int64)
    of_route = np.empty(k_n, dtype=np.int64)
    pair_rate = np.empty(k_n)
    pair_pattern = np.empty(k_n, dtype=np.int64)
    n_pairs = 0
    for d in range(n_od):
        for k in range(bounds[d], bounds[d + 1]):
            key = od_rate[d] * n_patterns + route_crossing[k]
            if slot[key] < 0:
                slot[key] = n_pairs
                pair_rate[n_pairs] = rates[od_rate[d]]
                pair_pattern[n_pairs] = route_crossing[k]
                n_pairs += 1
            of_route[k] = slot[key]
    return priced, weight, direct, of_route, pair_rate[:n_pairs].copy(), pair_pattern[:n_pairs].copy(), cheapest


@numba.njit(cache=True)
def _repriced_split(j, priced, before, theta, available, bounds):
    """:func:`_priced_split` of run ``j`` at a new price state, from its split ``before`` at an earlier one:
    the (rate, pattern) pairs depend on the run and the routes alone, and the fixed weights that did not
    move are kept (:func:`_fixed_weights`)."""
    old_priced, old_weight, _, of_route, pair_rate, pair_pattern, old_cheapest = before
    weight, direct, cheapest = _fixed_weights(j, priced, theta, available, bounds, old_priced, old_weight,
                                              old_cheapest)
    return priced, weight, direct, of_route, pair_rate, pair_pattern, cheapest


@numba.njit(cache=True)
def _run_shares(v, j, split, vot, theta, available, bounds, cross_ptr, cross_idx, cross_val, route_crossing,
                member_ptr, members, kind, capacity, free_time, alpha, beta, scale, rho_max):
    """Run ``j``'s route shares ``[K]`` at loads ``v`` of the solved resources: the logit split of the
    route costs ``priced + vot · Σ delay`` over each route's groups (``split``: :func:`_priced_split`,
    the logit factored for the price state; ``cross_*``, ``route_crossing``: :class:`_Structure`'s
    crossings, so each pattern's delay is summed once). The same split as :func:`_logit` to round-off."""
    priced, weight, direct, of_route, pair_rate, pair_pattern, _ = split
    delay = _group_delays(v, j, member_ptr, members, kind, capacity, free_time, alpha, beta, scale, rho_max)
    waited = np.zeros(len(cross_ptr) - 1)
    for q in range(len(waited)):
        for e in range(cross_ptr[q], cross_ptr[q + 1]):
            waited[q] += cross_val[e] * delay[cross_idx[e]]
    factor = np.empty(len(pair_rate))
    for c in range(len(pair_rate)):
        factor[c] = np.exp(-pair_rate[c] * waited[pair_pattern[c]])
    share = np.zeros(len(route_crossing))
    for d in range(len(bounds) - 1):
        total = 0.0
        if not direct[d]:
            for k in range(bounds[d], bounds[d + 1]):
                if available[k, j]:
                    share[k] = weight[k] * factor[of_route[k]]
                    total += share[k]
        if not total > 1e-250:     # every factored weight underflowed, or the OD's costs spread too far
            low = np.inf
            for k in range(bounds[d], bounds[d + 1]):
                if available[k, j]:
                    share[k] = priced[k] + vot[k, j] * waited[route_crossing[k]]      # the cost, for now
                    low = min(low, share[k])
            total = 0.0
            for k in range(bounds[d], bounds[d + 1]):
                if available[k, j]:
                    share[k] = np.exp(-theta[k, j] * (share[k] - low))
                    total += share[k]
        for k in range(bounds[d], bounds[d + 1]):
            share[k] = share[k] / total if total > 0 else 0.0
    return share


@numba.njit(cache=True)
def _run_point(v, j, split, route_demand, lf, vot, theta, available, bounds, cross_ptr, cross_idx, cross_val,
               route_crossing, *curves):
    """Run ``j`` at loads ``v`` (``split``: :func:`_priced_split`): route shares, route flows, the loads
    those flows make (``F(v)``: each pattern's load per unit ``lf`` times flow, spread over its groups) and
    ``|v − F(v)|²``."""
    share = _run_shares(v, j, split, vot, theta, available, bounds, cross_ptr, cross_idx, cross_val,
                        route_crossing, *curves)
    flow = route_demand[:, j] * share
    carried = np.zeros(len(cross_ptr) - 1)
    for k in range(len(flow)):
        carried[route_crossing[k]] += lf[k] * flow[k]
    load = np.zeros(len(v))
    for q in range(len(carried)):
        for e in range(cross_ptr[q], cross_ptr[q + 1]):
            load[cross_idx[e]] += cross_val[e] * carried[q]
    residual = 0.0
    for c in range(len(v)):
        residual += (v[c] - load[c]) ** 2
    return share, flow, load, residual


@numba.njit(cache=True)
def _run_sensitivity(p, weight, lf, theta, route_demand, j, n_c, routes, od_route_ptr, route_ptr, route_res,
                     route_slot, slot_res, od_slot_ptr, route_pattern, pattern_ptr, pattern_res):
    """The lower triangle of run ``j``'s ``M`` (``[C, C]``, zero above the diagonal): minus the derivative of
    the loads ``F`` with respect to the delays, ``M = Σ_od g (Σ_k∈od p_k a_k a_kᵀ − P Pᵀ)`` with ``a_k`` route
    ``k``'s column of the incidence, ``p`` the route shares (``[K]``), ``P = Σ_k∈od p_k a_k`` and ``g`` the
    OD's load per unit · theta · demand · ``weight`` (the value of time, or the load per cost unit for
    the prices), one value per OD. Symmetric and positive semi-definite: a covariance per OD. The
    structure's arrays are :class:`_Jacobian`'s."""
    return _run_sensitivities(p, weight, weight, False, lf, theta, route_demand, j, n_c, routes, od_route_ptr,
                              route_ptr, route_res, route_slot, slot_res, od_slot_ptr, route_pattern, pattern_ptr,
                              pattern_res)[0]


@numba.njit(cache=True)
def _run_sensitivities(p, weight, weight2, both, lf, theta, route_demand, j, n_c, routes, od_route_ptr, route_ptr,
                       route_res, route_slot, slot_res, od_slot_ptr, route_pattern, pattern_ptr, pattern_res):
    """:func:`_run_sensitivity`'s lower triangle with ``weight`` and, where ``both``, with ``weight2`` too,
    in one pass over the routes (a price step needs the delays' ``M`` and the prices' at the same shares).
    Each matrix's sums are taken in the order the one-weight pass takes them, so each is the same to the
    bit as its own pass."""
    m = np.zeros((n_c, n_c))
    m2 = np.zeros((n_c, n_c) if both else (0, 0))
    big_p = np.zeros(len(slot_res))
    w = np.zeros(len(pattern_ptr) - 1)          # Σ g p_k over the routes of each pattern
    w2 = np.zeros(len(pattern_ptr) - 1)
    for o in range(len(od_route_ptr) - 1):
        first = routes[od_route_ptr[o]]
        base = lf[first] * theta[first, j] * route_demand[first, j]
        g = base * weight[first]
        g2 = base * weight2[first]
        for i in range(od_route_ptr[o], od_route_ptr[o + 1]):
            k = routes[i]
            w[route_pattern[i]] += g * p[k]
            if both:
                w2[route_pattern[i]] += g2 * p[k]
            for e in range(route_ptr[i], route_ptr[i + 1]):
                big_p[route_slot[e]] += p[k]
        for a in range(od_slot_ptr[o], od_slot_ptr[o + 1]):
            ga = g * big_p[a]
            ga2 = g2 * big_p[a]
            x = slot_res[a]
            for b in range(od_slot_ptr[o], a + 1):
                m[x, slot_res[b]] -= ga * big_p[b]
                if both:
                    m2[x, slot_res[b]] -= ga2 * big_p[b]
    for q in range(len(w)):
        for e in range(pattern_ptr[q], pattern_ptr[q + 1]):
            x = pattern_res[e]
            for f in range(pattern_ptr[q], e + 1):
                if w[q] != 0.0:
                    m[x, pattern_res[f]] += w[q]
                if both and w2[q] != 0.0:
                    m2[x, pattern_res[f]] += w2[q]
    return m, m2


@numba.njit(cache=True)
def _split_for(j, priced, vot, theta, available, bounds, cross_ptr, cross_idx, cross_val, route_crossing, *curves):
    """:func:`_priced_split` from the cost arguments the kernels pass around."""
    return _priced_split(j, priced, vot, theta, available, bounds, route_crossing, len(cross_ptr) - 1)


@numba.njit(cache=True)
def _resplit_for(j, priced, before, vot, theta, available, bounds, *rest):
    """:func:`_repriced_split` from the cost arguments the kernels pass around."""
    return _repriced_split(j, priced, before, theta, available, bounds)


@numba.njit(cache=True)
def _shares(v, cols, base_cost, ap_ptr, ap_idx, ap_val, price, pw, *cost_args):
    """:func:`_run_shares` of the runs ``cols`` at their loads ``v`` (``[C, n]``): ``[K, n]``."""
    out = np.empty((base_cost.shape[0], len(cols)))
    for i in range(len(cols)):
        split = _split_for(cols[i], _priced_cost(cols[i], base_cost, ap_ptr, ap_idx, ap_val, price, pw), *cost_args)
        _put_column(out, i, _run_shares(v[:, i].copy(), cols[i], split, *cost_args))
    return out


@numba.njit(cache=True)
def _group_delays(v, j, member_ptr, members, kind, capacity, free_time, alpha, beta, scale, rho_max):
    """Run ``j``'s delay of each group of solved resources at its load ``v`` (``[C]``): the sum of its
    members' curves (``members[member_ptr[c]:member_ptr[c + 1]]``, rows of the curves' arrays)."""
    delay = np.zeros(len(v))
    for c in range(len(v)):
        for e in range(member_ptr[c], member_ptr[c + 1]):
            r = members[e]
            delay[c] += curve_delay(kind[r], v[c], capacity[r, j], free_time[r, j], alpha[j], beta[j], scale[r, j],
                                    rho_max[j])
    return delay


@numba.njit(cache=True)
def _slopes(vj, j, *curves):
    """Run ``j``'s delay slopes ``T'`` (``[C]``) at loads ``vj``, by forward differences."""
    bump = 1e-7 * (1.0 + np.abs(vj))
    return (_group_delays(vj + bump, j, *curves) - _group_delays(vj, j, *curves)) / bump


@numba.njit(cache=True)
def _newton_system(vj, p, j, route_demand, lf, routes, od_route_ptr, route_ptr, route_res, route_slot, slot_res,
                   od_slot_ptr, route_pattern, pattern_ptr, pattern_res, vot, theta, available, bounds, cross_ptr,
                   cross_idx, cross_val, route_crossing, member_ptr, members, kind, capacity, free_time, alpha, beta,
                   scale, rho_max):
    """Run ``j``'s Newton matrix ``I + M T'`` at loads ``vj`` (route shares ``p``), factored for
    :func:`_newton_solve`: the lower triangle of ``M``, ``D = sqrt(T')`` and the Cholesky factor ``L`` of
    ``I + D M D`` (symmetric positive definite, as ``M`` is semi-definite)."""
    m = _run_sensitivity(p, vot[:, j], lf, theta, route_demand, j, len(vj), routes, od_route_ptr, route_ptr,
                         route_res, route_slot, slot_res, od_slot_ptr, route_pattern, pattern_ptr, pattern_res)
    d, low = _newton_factor(vj, j, m, member_ptr, members, kind, capacity, free_time, alpha, beta, scale, rho_max)
    return m, d, low


@numba.njit(cache=True)
def _newton_and_price_systems(vj, p, j, route_demand, lf, pw, routes, od_route_ptr, route_ptr, route_res, route_slot,
                              slot_res, od_slot_ptr, route_pattern, pattern_ptr, pattern_res, vot, theta, available,
                              bounds, cross_ptr, cross_idx, cross_val, route_crossing, member_ptr, members, kind,
                              capacity, free_time, alpha, beta, scale, rho_max):
    """:func:`_newton_system`'s factors and the prices' sensitivity ``M_u``: ``M`` with the prices' weights
    ``pw`` (the load per cost unit) in place of the value of time, both triangles — minus the loads'
    derivative in each resource's price, ``[C, C]``. One pass over the routes for both."""
    n_c = len(vj)
    m, by_price = _run_sensitivities(p, vot[:, j], pw, True, lf, theta, route_demand, j, n_c, routes, od_route_ptr,
                                     route_ptr, route_res, route_slot, slot_res, od_slot_ptr, route_pattern,
                                     pattern_ptr, pattern_res)
    d, low = _newton_factor(vj, j, m, member_ptr, members, kind, capacity, free_time, alpha, beta, scale, rho_max)
    for x in range(n_c):
        for c in range(x):
            by_price[c, x] = by_price[x, c]
    return m, d, low, by_price


@numba.njit(cache=True)
def _newton_factor(vj, j, m, *curves):
    """``D = sqrt(T')`` at loads ``vj`` and the Cholesky factor ``L`` of ``I + D M D``, row by row, from
    ``M``'s lower triangle."""
    n_c = len(vj)
    d = np.sqrt(_slopes(vj, j, *curves))
    low = np.empty((n_c, n_c))
    for x in range(n_c):
        for c in range(x + 1):
            total = d[x] * m[x, c] * d[c] + (1.0 if x == c else 0.0)
            for t in range(c):
                total -= low[x, t] * low[c, t]
            low[x, c] = np.sqrt(total) if x == c else total / low[c, c]
    return d, low


@numba.njit(cache=True)
def _newton_solve(m, d, low, r):
    """``dv`` with ``(I + M T') dv = r``, from :func:`_newton_system`'s factors: ``y = D dv`` solves
    ``(I + D M D) y = D r``, and then ``dv = r − M D y`` (half the work of a general solve)."""
    n_c = len(r)
    y = d * r
    for x in range(n_c):            # L z = D r
        for t in range(x):
            y[x] -= low[x, t] * y[t]
        y[x] /= low[x, x]
    for x in range(n_c - 1, -1, -1):  # Lᵀ y = z
        for t in range(x + 1, n_c):
            y[x] -= low[t, x] * y[t]
        y[x] /= low[x, x]
    dy = d * y
    dv = r.copy()
    for x in range(n_c):
        total = 0.0
        for c in range(x + 1):
            total += m[x, c] * dy[c]
        for c in range(x + 1, n_c):
            total += m[c, x] * dy[c]
        dv[x] -= total
    return dv


@numba.njit(cache=True)
def _over_idle(load, cap, u, max_price):
    """A capacity's state at ``load``: over (above capacity while its price can still rise) and idle
    (priced with room to spare); and its load / capacity (0 where it has no capacity)."""
    ratio = 0.0 if np.isnan(cap) else load / cap
    return (ratio > 1.0 + CAPACITY_TOLERANCE) and (u < max_price), (u > 0) and (ratio < 1.0 - SLACK_TOLERANCE), ratio


@numba.njit(cache=True)
def _run_price_step(j, f, m, d, low, by_price, hard_pos, cap, price, price_unit, max_price, steps_taken, last_step,
                    radius, last_move):
    """One Newton step of run ``j``'s prices (the run at an equilibrium under them, its loads ``F`` =
    ``f``) toward loads just under capacity, on log-loads so that a price far above the one that clears
    a facility (its load a logistic tail) comes back in a few steps. The loads' response to the prices is
    the equilibrium's own: ``dv/du = −(I + M T')⁻¹ M_u`` (``m``, ``d``, ``low``: :func:`_newton_system`'s
    factors of ``I + M T'``; ``by_price``: ``M_u``). The prices that take part are those of full
    facilities and of overfull ones whose price can still rise; the others stay. At most a fivefold rise
    a step above ``price_unit``; never below zero or above ``max_price``. Updates ``price[:, j]`` and
    the run's step history in place, and returns the loads' linear response to the step taken
    (``dv = −(I + M T')⁻¹ M_u du``). Newton resumes from there: over 1,000 coupled runs of a Latin
    hypercube it took 5.0 Newton steps a run-year where resuming from the loads before the price step took
    6.8; taking the prediction only where its residual was the smaller gave the same counts, so it is taken
    unchecked."""
    n_h = len(hard_pos)
    load = np.empty(n_h)
    ratio = np.empty(n_h)
    over = np.zeros(n_h, dtype=np.bool_)
    idle = np.zeros(n_h, dtype=np.bool_)
    active = np.zeros(n_h, dtype=np.bool_)
    u = price[:, j].copy()
    for h in range(n_h):
        load[h] = max(f[hard_pos[h]], 1e-9 * cap[h, j]) if not np.isnan(cap[h, j]) else f[hard_pos[h]]
        o, i, r = _over_idle(load[h], cap[h, j], u[h], max_price)
        over[h], idle[h], ratio[h] = o, i, r
        active[h] = (u[h] > 0 and u[h] < max_price) or over[h] or (u[h] >= max_price and idle[h])
    play = np.flatnonzero(active)
    # d ln v / du over the prices in play: the loads' response to them, divided by each load; the
    # identity elsewhere
    system = np.eye(n_h)
    responses = np.empty((len(f), len(play)))
    for b in range(len(play)):
        response = _newton_solve(m, d, low, by_price[:, hard_pos[play[b]]].copy())
        responses[:, b] = response
        for a in range(len(play)):
            system[play[a], play[b]] = -response[hard_pos[play[a]]] / load[play[a]]
    target = np.empty(n_h)
    rhs = np.zeros(n_h)
    diagonal = np.empty(n_h)
    for h in range(n_h):
        target[h] = np.log(1.0 - CAPACITY_TOLERANCE / 2) - np.log(ratio[h] if ratio[h] > 0 else 1.0)
        if active[h]:
            rhs[h] = target[h]
        diagonal[h] = abs(system[h, h])
    # each price in units of its own response (a small ferry answers a price far more than a main line),
    # then a pseudo-inverse: facilities in series carry the same flows, so only the sum of their prices
    # is determined, and the least-norm step shares it between them (where one's routes are all the
    # other's and its capacity no smaller, ``_implied`` has already dropped it)
    unit = _price_units(diagonal, u, price_unit)
    scaled = system / unit[None, :]
    step = _least_norm(scaled, rhs, active) / unit
    # a group's step needs targets the least-norm step leaves unmet (it drops the group's direction, and
    # the group is over or under as a whole); where it meets them all, the SVD is not paid for
    together = np.zeros(n_h)
    stuck = steps_taken[j] >= STUCK_PRICE_STEPS
    if np.abs(rhs - system @ step).max() > CAPACITY_TOLERANCE / 2:
        together = _group_step(scaled, unit, active, load, cap[:, j], u, price_unit, stuck)
    guarded = steps_taken[j] >= FREE_PRICE_STEPS
    # within the free steps, each log-load's linear response to the joint step (see NEAR_FULL)
    predicted = np.zeros(n_h) if guarded else system @ np.where(np.isfinite(step), step, 0.0)
    for h in range(n_h):
        rise = 4.0 * (u[h] + price_unit)
        sh = step[h] if active[h] and np.isfinite(step[h]) else 0.0
        # a load no price moves (no alternative route) rises fivefold while over capacity; a priced
        # facility with room whose step would not lower its price halves it, unless the joint step fills
        # it (its partners' prices rising) while it is nearly full and the steps are still free
        if active[h] and over[h] and diagonal[h] * (u[h] + price_unit) < 1e-6:
            sh = rise
        filled = (not guarded and ratio[h] >= NEAR_FULL
                  and ratio[h] * np.exp(predicted[h]) >= 1.0 - SLACK_TOLERANCE)
        if active[h] and idle[h] and sh >= 0 and not filled:
            sh = -u[h] / 2
        # past STUCK_PRICE_STEPS, an overfull facility's price no longer falls or stays: where the joint
        # least-norm step would leave it (it shares routes with another full facility, and the step goes
        # to the other, in a cycle), it takes its own Newton step, its load's response to its own price
        # alone (research/price_loop_refit.md); and a facility over capacity or priced with room whose
        # joint step goes its own way by less than half its own step takes its own: the joint step can
        # shrink toward nothing while the facility stays 7% over (a crawl of a few USD a step on a price
        # of 90 USD/t for 900 steps, research/price_loop_crawl.md)
        if stuck and active[h] and over[h] and sh <= 0:
            own = target[h] / system[h, h] if system[h, h] != 0 else np.inf
            sh = own if np.isfinite(own) and own > 0 else rise
        if stuck and active[h] and (over[h] or idle[h]):
            own = target[h] / system[h, h] if system[h, h] != 0 else np.inf
            if np.isfinite(own) and own * sh >= 0 and abs(sh) < 0.5 * abs(own):
                sh = own
        sh = min(sh, rise)
        # past FREE_PRICE_STEPS, a price whose step turns back is held to half its last step: the loads'
        # response to a price can be far from linear (a class of freight switching routes over a small
        # range of prices), and the full Newton step then cycles
        last = last_step[h, j]
        if guarded:
            bound = PRICE_RADIUS_GROWTH * radius[h, j] if sh * last > 0 else radius[h, j]
            if sh * last < 0:
                bound = min(bound, 0.5 * abs(last))
            bound = max(bound, PRICE_RADIUS_FLOOR * (u[h] + price_unit))
            radius[h, j] = bound
            sh = min(max(sh, -bound), bound)
        # the group's step comes on top: the rules above are about each price's own load, which the
        # group's step does not move (so the trust radius remembers the own step alone). Past
        # FREE_PRICE_STEPS, a group's step that turns back on the price's last move (``last_move``, the
        # group's step included) is held to half that move: prices lowered from the cap by their own
        # steps (their facilities empty there) and raised back to it by the group's (the freight flooding
        # back over capacity below it) had cycled for 2,700 steps. Remembering the whole move in
        # ``last_step`` instead would let the group's steps shrink the own steps' radius: prices with a
        # segment of bulk refusing one transit country then crawled (bench/results/price_loop.md)
        group = together[h]
        if guarded and group * last_move[h, j] < 0:
            group = min(max(group, -0.5 * abs(last_move[h, j])), 0.5 * abs(last_move[h, j]))
        new = min(max(u[h] + sh + group, 0.0), max_price)
        price[h, j] = new
        if new - u[h] != 0:
            last_step[h, j] = new - u[h] if together[h] == 0 else sh
            last_move[h, j] = new - u[h]
        elif stuck and sh != 0 and 0 < new < max_price:
            # a step below the price's last bit leaves it as it was; remembered anyway, so that the radius
            # grows while the steps keep their way (it had shrunk below the last bit of a price of 54
            # USD/t, and a stale step of the other sign held it there, research/price_loop_crawl.md)
            last_step[h, j] = sh
    steps_taken[j] += 1
    moved = np.zeros(len(f))      # the loads' linear response to the step taken
    for b in range(len(play)):
        moved -= responses[:, b] * (price[play[b], j] - u[play[b]])
    return moved


@numba.njit(cache=True)
def _overshoots(j, f_before, f, before, price, hard_pos, cap):
    """Whether run ``j``'s price step sends a facility across its capacity to farther beyond it on the
    other side than it stood (``f_before``: the loads before the step; ``f``: the split at the new prices
    and the loads the step predicts). The step is linear in the log-loads, and where a class of freight
    switches outlets over a small range of prices the linear step overshoots: three parallel border
    crossings in a cold first year went from 1.3 times full to a fifth full and back for 60 Newton steps
    (research/price_step_halving.md)."""
    for k in range(len(hard_pos)):
        if price[k, j] == before[k] or np.isnan(cap[k, j]):
            continue
        r0 = max(f_before[hard_pos[k]], 1e-12 * cap[k, j]) / cap[k, j]
        r1 = max(f[hard_pos[k]], 1e-12 * cap[k, j]) / cap[k, j]
        if np.log(r0) * np.log(r1) < 0 and abs(np.log(r1)) > abs(np.log(r0)):
            return True
    return False


@numba.njit(cache=True)
def _halve_price_step(j, before, price, last_step, last_move):
    """Take half of run ``j``'s last price step, and remember the halved step."""
    for k in range(len(before)):
        if price[k, j] != before[k]:
            price[k, j] = before[k] + 0.5 * (price[k, j] - before[k])
            last_step[k, j] *= 0.5
            last_move[k, j] *= 0.5


@numba.njit(cache=True)
def _loads_step(vj, p, f, res, j, split, route_demand, lf, jac_args, cost_args):
    """One damped Newton step of run ``j``'s loads under fixed prices (``split``): ``(I + M T') dv = F(v) − v``,
    backtracking on ``|v − F(v)|²`` (at most ``MAX_HALVINGS`` halvings, then the shortest step is taken).
    Returns the new loads, shares, flows, ``F(v)`` and residual."""
    step = f - vj
    if len(vj):
        step = _newton_solve(*_newton_system(vj, p, j, route_demand, lf, *jac_args, *cost_args), step)
    a = 1.0
    for halving in range(MAX_HALVINGS + 1):
        trial = np.maximum(vj + a * step, 0.0)
        tp, th, tf, tr = _run_point(trial, j, split, route_demand, lf, *cost_args)
        if tr <= (1.0 - 1e-4 * a) * res or halving == MAX_HALVINGS:
            break
        a *= 0.5
    return trial, tp, th, tf, tr


#: Price steps of the loop after which a run still violating a capacity solves its loads and prices
#: together (:func:`_joint_solve`), from where it stood before its first price step. 99% of run-years
#: settle within FREE_PRICE_STEPS and are as they were; the rest, where the loop can crawl (parallel
#: outlets of freight that chooses by cost), mostly settle in a few joint iterations. Where the joint
#: solve does not settle within JOINT_STEPS iterations, the run goes back to the loop where it left it.
JOINT_AFTER = FREE_PRICE_STEPS
JOINT_STEPS = 30
#: The joint solve gives up where its residual has not halved over this many iterations: near the
#: solution it falls by orders of magnitude an iteration, and a stalled solve had spent its 30 before the
#: loop resumed (two captive outlets: 60 Newton steps where the loop alone took 36).
JOINT_STALL = 5
#: A price within this of zero or of the cap (in JOINT_PRICE_SHARE of the cap) counts as at that bound;
#: loads settled between joint steps are settled to this, relative to the largest.
JOINT_TOL = 1e-9
#: The loads' part of the joint residual, relative to the largest load, at which the loop may take over
#: (:func:`_joint_settled`): its Newton on the loads finishes them under fixed prices.
JOINT_LOADS_TOL = 1e-4
#: The least-squares cut of the joint step's price system, relative to its largest singular value:
#: exact redundancies only (facilities in series). A cut of 1e-4, the loop's, dropped weakly answered
#: directions the joint solve needs: 409,418 Newton steps on the bench's design against 344,317.
JOINT_RCOND = 1e-10
#: Halvings of a joint step before the loads are settled under the prices as they stand (a steep queue
#: makes the loads' fixed point far more curved than the prices'), and the Newton steps that may take.
JOINT_HALVINGS = 8
JOINT_SETTLE_STEPS = 10
#: Prices enter the joint solve in this share of the cap, so that a price and a slack weigh about alike
#: in its residual (a price of 100 USD/t against a cap of 1,000 reads 1).
JOINT_PRICE_SHARE = 0.1


@numba.njit(cache=True)
def _floor_load(cap, load):
    """A load kept a billionth of its capacity above zero, for its logarithm."""
    return max(load, 1e-9 * cap)


@numba.njit(cache=True)
def _slack(cap, load):
    """A capacity's slack in the joint solve: ``ln(target / load)``, the target the middle of the capacity
    band. On log-loads, as the loop's price step: a facility left empty by a price far above the one
    that clears it reads a slack so large that its price is at the lower bound of its ``mid`` function
    and falls, where a slack relative to the capacity (at most 1) would have kept it in the middle piece
    with no load to answer it."""
    return np.log(cap * (1.0 - CAPACITY_TOLERANCE / 2) / _floor_load(cap, load))


@numba.njit(cache=True)
def _joint_residual(v, f, u, act, hard_pos, cap_j, scale, unit, top, r):
    """Half the squared residual of the joint solve at loads ``v`` (their image ``f``) and prices ``u``,
    its parts written to ``r``: ``(f - v) / scale`` for the loads, then for each capacity ``act[i]``
    ``a - mid(0, top, a - b)`` with ``a`` its price in ``unit`` and ``b`` its slack (:func:`_slack`): zero
    exactly where the price is zero and the facility has room, the price is between its bounds and the
    facility at the capacity band's middle, or the price is at the cap and the facility over."""
    n_c = len(v)
    for c in range(n_c):
        r[c] = (f[c] - v[c]) / scale
    for i in range(len(act)):
        h = act[i]
        a = u[h] / unit
        b = _slack(cap_j[h], v[hard_pos[h]])
        r[n_c + i] = a - min(max(a - b, 0.0), top)
    return 0.5 * np.sum(r * r)


@numba.njit(cache=True)
def _joint_step(v, p, r, j, act, hard_pos, price, cap, unit, top, scale, route_demand, lf, pw, jac_args, cost_args):
    """The semismooth Newton step of :func:`_joint_solve` (loads, then the prices ``act`` in ``unit``) for
    its residual ``r``. A price at a bound of its ``mid`` function steps to it (its row is the identity);
    the loads' block, ``-(I + M T')``, is eliminated with :func:`_newton_system`'s factor, so that only
    the prices of capacities in the middle piece (few) are solved for, by least squares (facilities in
    series leave only the sum of their prices determined), each row relative to its capacity."""
    n_c, count = len(v), len(act)
    m, d, low, by_price = _newton_and_price_systems(v, p, j, route_demand, lf, pw, *jac_args, *cost_args)
    step = np.zeros(n_c + count)
    inner = np.zeros(count, dtype=np.int64)      # the capacities in the middle piece
    n_m = 0
    rhs = scale * r[:n_c]           # (I + M T') dv = scale r_L - M_u unit da
    for i in range(count):
        h = act[i]
        g = hard_pos[h]
        a = price[h, j] / unit
        b = _slack(cap[h, j], v[g])
        if 0.0 < a - b < top:       # the middle piece: the residual is the slack
            inner[n_m] = i
            n_m += 1
        else:                       # at a bound: the residual is the price's distance to it
            step[n_c + i] = -r[n_c + i]
            for x in range(n_c):
                rhs[x] -= by_price[x, g] * unit * step[n_c + i]
    base = _newton_solve(m, d, low, rhs)
    if n_m == 0:
        step[:n_c] = base
        return step
    # each middle price's response (dv per unit of the price)
    response = np.empty((n_c, n_m))
    for k in range(n_m):
        g = hard_pos[act[inner[k]]]
        response[:, k] = _newton_solve(m, d, low, by_price[:, g] * unit)
    # a facility over capacity whose load its own price barely moves (even the whole range to the cap
    # would move it less than the capacity band: no other route) goes to the cap, its excess rationed,
    # as the loop's rule has it; the rest solve the system that puts each load where its row wants it
    step[:n_c] = base
    free = np.zeros(n_m, dtype=np.int64)
    n_f = 0
    for k in range(n_m):
        i = inner[k]
        h = act[i]
        g = hard_pos[h]
        load = _floor_load(cap[h, j], v[g])
        if r[n_c + i] < -CAPACITY_TOLERANCE / 2 and abs(response[g, k]) / load * top < CAPACITY_TOLERANCE:
            step[n_c + i] = top - price[h, j] / unit
            step[:n_c] -= response[:, k] * step[n_c + i]
        else:
            free[n_f] = k
            n_f += 1
    if n_f == 0:
        return step
    system = np.empty((n_f, n_f))
    target = np.empty(n_f)
    for a in range(n_f):        # the slack's row: r - dv / v = 0, relative to the load
        i = inner[free[a]]
        h = act[i]
        g = hard_pos[h]
        load = _floor_load(cap[h, j], v[g])
        for c in range(n_f):
            system[a, c] = response[g, free[c]] / load
        target[a] = step[g] / load - r[n_c + i]
    scaled_unit = np.ones(n_f)
    for c in range(n_f):
        own = abs(system[c, c])
        if own > 1e-12:
            scaled_unit[c] = own
    da = np.linalg.lstsq(system / scaled_unit[None, :], target, rcond=JOINT_RCOND)[0] / scaled_unit
    for c in range(n_f):
        step[n_c + inner[free[c]]] = da[c]
        step[:n_c] -= response[:, free[c]] * da[c]
    return step


@numba.njit(cache=True)
def _joint_settled(v, r, price, j, act, hard_pos, cap, unit, top):
    """Whether the joint solve may hand run ``j`` back to the loop: its loads within ``JOINT_LOADS_TOL`` of
    their fixed point (relative to the largest; the loop's Newton on the loads finishes them under fixed
    prices) and each capacity settled as the loop counts it: a price at zero (within ``JOINT_TOL`` of
    the cap's tenth) with the facility not over, at the cap (as close) with it over, or between with the
    load inside the capacity band. Near a direction the prices barely move the loads in, the residual's
    last digits come at one bit an iteration, and the loop needs none of them."""
    n_c = len(v)
    for c in range(n_c):
        if abs(r[c]) > JOINT_LOADS_TOL:
            return False
    for i in range(len(act)):
        h = act[i]
        a = price[h, j] / unit
        ratio = v[hard_pos[h]] / cap[h, j]
        if a <= JOINT_TOL:
            if ratio > 1.0 + CAPACITY_TOLERANCE / 2:
                return False
        elif a >= top - JOINT_TOL:
            if ratio < 1.0 - CAPACITY_TOLERANCE / 2:
                return False
        elif ratio > 1.0 + CAPACITY_TOLERANCE / 2 or ratio < 1.0 - SLACK_TOLERANCE / 2:
            return False
    return True


@numba.njit(cache=True)
def _joint_solve(j, vj, route_demand, lf, hard_pos, cap, price, max_price, base_cost, ap_ptr, ap_idx, ap_val, pw,
                 jac_args, cost_args):
    """Run ``j``'s capacity-constrained equilibrium as one system in its loads and its capacities' prices:
    a semismooth Newton method on :func:`_joint_residual`, whose Jacobian is the equilibrium's own
    (``-(I + M T')`` in the loads, ``-M_u`` in the prices, :func:`_newton_and_price_systems`) bordered by the rows of the capacities, each read in the piece of its
    ``mid`` function it sits in; a least-squares step (facilities in series leave only the sum of their
    prices determined) and a backtracking line search on the residual. The level of a group of parallel
    outlets and the split between them move in one step, where the price loop moves them apart and
    crawls (research/next_structural_steps.md). Where a step's line search fails, the loads are settled
    under the prices as they stand and it steps again; a second failure in a row gives up. Returns
    whether it settled (:func:`_joint_settled`), the loads, and the iterations and loads' Newton steps
    taken; writes ``price[:, j]`` where it settled (prices that should be zero or at the cap set exactly
    there) and leaves it as it was where not."""
    n_c = len(vj)
    act = np.flatnonzero((hard_pos >= 0) & ~np.isnan(cap[:, j]))     # the capacities in force
    count = len(act)
    n_x = n_c + count
    unit = JOINT_PRICE_SHARE * max_price
    top = max_price / unit
    saved = price[:, j].copy()
    v = vj.copy()
    split = _split_for(j, _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw), *cost_args)
    p, _, f, _ = _run_point(v, j, split, route_demand, lf, *cost_args)
    scale = max(np.abs(f).max(), 1e-12)
    r = np.empty(n_x)
    trial_r = np.empty(n_x)
    merit = _joint_residual(v, f, price[:, j], act, hard_pos, cap[:, j], scale, unit, top, r)
    restored = False
    work = 0        # iterations and the Newton steps of the loads settled between them
    history = np.full(JOINT_STEPS + 1, np.inf)     # the merit at each iteration, for the stall test
    for it in range(JOINT_STEPS + 1):
        history[it] = merit
        if it >= JOINT_STALL and merit > 0.5 * history[it - JOINT_STALL]:
            break
        if _joint_settled(v, r, price, j, act, hard_pos, cap, unit, top):
            for i in range(count):      # each price exactly at its bound where its piece says so
                h = act[i]
                a = price[h, j] / unit
                b = _slack(cap[h, j], v[hard_pos[h]])
                price[h, j] = 0.0 if a - b <= 0 else max_price if a - b >= top else min(max(price[h, j], 0.0), max_price)
            return True, v, it + work
        if it == JOINT_STEPS:
            break
        step = _joint_step(v, p, r, j, act, hard_pos, price, cap, unit, top, scale, route_demand, lf, pw, jac_args, cost_args)
        t = 1.0
        done = False
        start = price[:, j].copy()
        for _ in range(JOINT_HALVINGS + 1):
            trial = np.maximum(v + t * step[:n_c], 0.0)
            for i in range(count):
                price[act[i], j] = min(max(start[act[i]] + t * step[n_c + i] * unit, 0.0), max_price)
            split = _split_for(j, _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw), *cost_args)
            tp, _, tf, _ = _run_point(trial, j, split, route_demand, lf, *cost_args)
            tm = _joint_residual(trial, tf, price[:, j], act, hard_pos, cap[:, j], scale, unit, top, trial_r)
            if tm <= (1.0 - 1e-4 * t) * merit:
                v, p, f, merit = trial, tp, tf, tm
                r[:] = trial_r
                done = True
                break
            t *= 0.5
        if not done:
            # the step's linear model holds too short a way: the loads' fixed point is far more curved than
            # the prices' (a steep queue). Settle the loads under the prices as they stand, as the loop
            # does, and step again from there; a second failure in a row gives up
            _put_column(price, j, start)
            if restored:
                break
            split = _split_for(j, _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw), *cost_args)
            res = np.sum((v - f) ** 2)
            for _ in range(JOINT_SETTLE_STEPS):
                if np.sqrt(res) <= JOINT_TOL * scale:
                    break
                v, p, _, f, res = _loads_step(v, p, f, res, j, split, route_demand, lf, jac_args, cost_args)
                work += 1
            merit = _joint_residual(v, f, price[:, j], act, hard_pos, cap[:, j], scale, unit, top, r)
        restored = not done
    _put_column(price, j, saved)
    return False, vj, it + work


@numba.njit(cache=True, nogil=True)
def _equilibrium(cols, max_iter, tol, joint_after, price_halvings, v, share, flow, load, residual, gap, steps,
                 route_demand, od_demand, lf, hard_pos, cap, price_unit, max_price, steps_taken, last_step, radius,
                 last_move, routes, od_route_ptr, route_ptr, route_res, route_slot, slot_res, od_slot_ptr,
                 route_pattern, pattern_ptr, pattern_res, base_cost, ap_ptr, ap_idx, ap_val, price, pw, vot, theta,
                 available, bounds, cross_ptr, cross_idx, cross_val, route_crossing, member_ptr, members, kind,
                 capacity, free_time, alpha, beta, scale, rho_max):
    """The equilibrium of each run in ``cols``: damped Newton on its solved loads ``v`` until its gap is
    at most ``tol``; then, while the equilibrium violates a capacity, a price step (within the free
    steps halved while it overshoots, at most ``price_halvings`` times) and Newton again from the loads the
    step predicts, or once, after ``joint_after`` price steps, the joint solve from the state before the
    first; at most ``max_iter`` Newton steps in all (``steps``, a joint iteration counted as one). Writes
    each run's loads, route shares, flows, ``F(v)``, residual, gap and prices back in place, in its own
    column only, so that threads can share the arrays (the GIL is released)."""
    last_price_step = max_iter - min(LOADS_ONLY_STEPS, max_iter // 2)     # the steps after it: loads only
    for j in cols:
        jac_args = (routes, od_route_ptr, route_ptr, route_res, route_slot, slot_res, od_slot_ptr, route_pattern,
                    pattern_ptr, pattern_res)
        cost_args = (vot, theta, available, bounds, cross_ptr, cross_idx, cross_val, route_crossing, member_ptr,
                     members, kind, capacity, free_time, alpha, beta, scale, rho_max)
        vj = v[:, j].copy()
        joint_tried = False
        v_first = vj
        price_first = price[:, j].copy()
        split = _split_for(j, _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw), *cost_args)
        p, h, f, res = _run_point(vj, j, split, route_demand, lf, *cost_args)
        while True:
            # the gap of the flows h(v): how far the logit split at their loads moves them; not measured
            # while the loads' own residual says they are still far (see GAP_SKIP_RESIDUAL)
            if res <= (GAP_SKIP_RESIDUAL * tol) ** 2 * np.sum(f * f) or steps[j] >= max_iter:
                target = _run_shares(f, j, split, *cost_args)
                g = 0.0
                for d in range(len(bounds) - 1):
                    moved = 0.0
                    for r in range(bounds[d], bounds[d + 1]):
                        moved += abs(route_demand[r, j] * target[r] - h[r])
                    g = max(g, moved / od_demand[d, j])
                gap[j] = g
                if g <= tol:   # an equilibrium under the present prices: reprice what it violates
                    violated = False
                    for k in range(len(hard_pos)):
                        over, idle, _ = _over_idle(f[hard_pos[k]], cap[k, j], price[k, j], max_price)
                        violated = violated or over or idle
                    if not violated or steps[j] >= last_price_step:
                        break
                    if steps_taken[j] == 0 and not joint_tried:     # where the joint solve would start
                        v_first = vj.copy()
                        price_first = price[:, j].copy()
                    if (not joint_tried and steps_taken[j] >= joint_after
                            and steps[j] + JOINT_STEPS < last_price_step):
                        joint_tried = True
                        price_loop = price[:, j].copy()
                        _put_column(price, j, price_first)
                        settled, v_joint, used = _joint_solve(j, v_first, route_demand, lf, hard_pos, cap, price,
                                                              max_price, base_cost, ap_ptr, ap_idx, ap_val, pw,
                                                              jac_args, cost_args)
                        steps[j] += used
                        if settled:
                            vj = v_joint
                            split = _resplit_for(j, _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw),
                                                 split, *cost_args)
                            p, h, f, res = _run_point(vj, j, split, route_demand, lf, *cost_args)
                            continue
                        _put_column(price, j, price_loop)
                        if steps[j] >= last_price_step:     # its attempt used the steps kept for the loads
                            break
                    m, d, low, by_price = _newton_and_price_systems(vj, p, j, route_demand, lf, pw, *jac_args,
                                                                    *cost_args)
                    before, f_before = price[:, j].copy(), f
                    moved = _run_price_step(j, f, m, d, low, by_price, hard_pos, cap, price, price_unit,
                                            max_price, steps_taken, last_step, radius, last_move)
                    halvings = price_halvings if steps_taken[j] <= FREE_PRICE_STEPS else 0   # guarded: radii
                    for halving in range(halvings + 1):
                        split = _resplit_for(j, _priced_cost(j, base_cost, ap_ptr, ap_idx, ap_val, price, pw),
                                             split, *cost_args)
                        p, h, f, res = _run_point(np.maximum(vj + moved, 0.0), j, split, route_demand, lf, *cost_args)
                        if halving == halvings or not _overshoots(j, f_before, f, before, price, hard_pos, cap):
                            break
                        _halve_price_step(j, before, price, last_step, last_move)
                        moved *= 0.5
                    vj = np.maximum(vj + moved, 0.0)
            if steps[j] >= max_iter:
                break
            steps[j] += 1
            vj, p, h, f, res = _loads_step(vj, p, f, res, j, split, route_demand, lf, jac_args, cost_args)
        _put_column(v, j, vj)
        _put_column(share, j, p)
        _put_column(flow, j, h)
        _put_column(load, j, f)
        residual[j] = res


def _group_capacity(structure: _Structure, solved: DelayCurves) -> np.ndarray:
    """``[groups, N]``: the smallest capacity among each group's members that have a delay curve (inf
    where none has)."""
    capacity = np.where((solved.kind != NO_DELAY)[:, None] & np.isfinite(solved.capacity), solved.capacity, np.inf)
    out = np.full((len(structure.member_ptr) - 1, capacity.shape[1]), np.inf)
    np.minimum.at(out, structure.group, capacity)
    return out


def solve_logit_sue(incidence: sparse.csr_matrix, load_per_unit, base_cost, vot, theta, available,
                    route_od, demand, curves: DelayCurves, tol=EQUILIBRIUM_TOL, max_iter=200, congestible=None,
                    start=None, capacity=None, start_price=None, price_unit=1.0, max_price=1e4,
                    price_weight=None, joint_after=JOINT_AFTER, price_halvings=PRICE_HALVINGS) -> SUEResult:
    """Solve the batched logit SUE, with capacities as side constraints when ``capacity`` is given.

    incidence: [R, K] 0/1 resource-route incidence; load_per_unit: [K] Mt per unit of route flow;
    base_cost: [K, N] free-flow generalised cost; vot: [K, N] cost per hour of delay; theta: [K, N]
    logit scale (one value per OD and run); available: [K, N] bool; route_od: [K] OD index, sorted;
    demand: [D, N]; curves: each resource's delay curve (:class:`~multivector.freight.vdf.DelayCurves`, a
    function of its own load); congestible: [R] bool, the resources whose delay can be non-zero
    (default: every resource a route uses). ``start`` ([K, N] route flows, e.g. last
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
    toward loads at capacity (see :func:`_run_price_step`: the equilibrium's own response of loads to prices,
    at most a fivefold rise above ``price_unit``), and Newton on the loads resumes from there; within the
    free steps (``FREE_PRICE_STEPS``) a step that sends a facility across its capacity to farther beyond
    it than it stood is halved, up to ``price_halvings`` times (:func:`_overshoots`); the
    run is done when its equilibrium violates no constraint: every load within
    ``CAPACITY_TOLERANCE`` of its capacity or its price at ``max_price`` (demand no route can take:
    the caller rations it), and no price on a resource more than ``SLACK_TOLERANCE`` below capacity;
    ``converged`` says so (a run the step cap stops is not; its last ``LOADS_ONLY_STEPS`` steps take no
    price step, so it ends at the equilibrium under its last prices). Freight that must cross one of a group of
    full facilities and needs more than they hold moves the group's prices together to the cap
    (:func:`_group_step`). A run that has taken ``joint_after`` price steps and still violates a
    capacity solves its loads and prices together from where it stood before its first price step
    (:func:`_joint_solve`, a semismooth Newton method), and goes back to the loop where that does not
    settle.
    The prices begin at ``start_price`` (``[R, N]``, e.g. last year's) or at zero.

    Each run iterates on its own in one compiled kernel (:func:`_equilibrium`; runs split across threads
    by :func:`use_threads`), so its result does not depend on what else is in the batch.
    ``iterations`` is one more than the most Newton steps any run took (the last pass only measures).
    """
    n = base_cost.shape[1]
    per_route_demand = demand.T[:, route_od].T           # [K, N], column-major (below)
    lf = load_per_unit[:, None]                                                 # load per unit of route flow
    pw = lf if price_weight is None else np.asarray(price_weight, dtype=float)[:, None]   # load per cost unit
    hard = np.flatnonzero(np.isfinite(capacity).any(axis=1)) if capacity is not None else np.zeros(0, int)
    solve = np.diff(incidence.indptr) > 0                     # the resources Newton solves for
    if congestible is not None:
        solve &= np.asarray(congestible, dtype=bool)
    solve[hard] = True
    rows = np.flatnonzero(solve)
    structure = _structure_for(incidence, rows, hard, route_od, load_per_unit)
    bounds, hard_pos = structure.bounds, structure.hard_pos                   # each OD's routes
    a_load, jacobian = structure.a_load, structure.jacobian
    # the kernel reads and writes one run's column at a time: in column-major order each run's column is
    # contiguous, where in row-major order every element of it sits on its own cache line (a batch of
    # 1,000 coupled runs 1.14× faster; the arithmetic is the same, so are the answers)
    col = lambda x, dtype=float: np.asfortranarray(x, dtype=dtype)
    base_cost, vot, theta = (col(np.broadcast_to(x, base_cost.shape)) for x in (base_cost, vot, theta))
    available = col(np.broadcast_to(available, base_cost.shape), bool)
    pw_k = np.ascontiguousarray(pw[:, 0], dtype=float)
    for name, x in {"value of time": vot, "logit scale": theta, "load per unit": lf, "price weight": pw}.items():
        od = _varies_within_od(x, bounds)        # [K, N], or [K, 1] where one value serves every run
        if od >= 0:
            raise ValueError(f"the {name} differs between the routes of OD {od}: it must be one value per OD and run")
    price = col(np.zeros((len(hard), n)) if start_price is None else start_price[hard])
    cap = capacity[hard] if len(hard) else np.zeros((0, n))
    implied = _implied(structure.nested, cap)       # a constraint another implies takes no price
    cap = np.where(implied, np.nan, cap)
    price[implied] = 0.0
    steps_taken = np.zeros(n, dtype=np.int64)               # price steps each run has taken
    last_step = np.zeros((len(hard), n))                    # each price's last non-zero step of its own
    last_move = np.zeros((len(hard), n))                    # and its last move, a group's step included
    radius = np.full((len(hard), n), np.inf)                # its trust radius once guarded
    solved = curves.rows(rows)
    # what the compiled route costs read (the prices change in place)
    price_args = (base_cost, *structure.ap_csr, price, pw_k)
    cost_args = (vot, theta, available, bounds, *structure.crossings, structure.route_crossing,
                 structure.member_ptr, structure.members, solved.kind, col(solved.capacity), col(solved.free_time),
                 solved.alpha, solved.beta, col(solved.scale), solved.rho_max)
    groups = len(structure.member_ptr) - 1      # Newton's unknowns: the loads of the solved resources' groups
    if start is None:
        v = np.zeros((groups, n))
    else:   # last year's route shares at this year's demand
        h0 = np.where(available, np.maximum(start, 0.0), 0.0)
        od_total = np.add.reduceat(h0, bounds[:-1], axis=0)[route_od]
        share = np.divide(h0, od_total, out=np.zeros_like(h0), where=od_total > 0)
        idle = np.flatnonzero((od_total == 0).any(axis=0))     # runs with an OD that carried nothing
        if len(idle):                                           # take their free-flow logit split there
            free = _shares(np.zeros((groups, len(idle))), idle, *price_args, *cost_args)
            share[:, idle] = np.where(od_total[:, idle] > 0, share[:, idle], free)
        v = np.minimum(matmul(a_load, per_route_demand * share), START_OVERLOAD * _group_capacity(structure, solved))
    k_n = len(route_od)
    residual, gap, steps = np.zeros(n), np.full(n, np.inf), np.zeros(n, dtype=np.int64)
    od_demand = np.where(demand > 0, demand, np.inf)
    rep = _first_of_equal(v, per_route_demand, od_demand, cap, price, base_cost, vot, theta, available, solved.capacity,
                          solved.free_time, solved.alpha, solved.beta, solved.scale, solved.rho_max)
    p, h, f = (np.zeros(shape, order="F") for shape in ((k_n, n), (k_n, n), (groups, n)))
    _in_threads(_equilibrium, np.flatnonzero(rep == np.arange(n)), max_iter, tol, joint_after, price_halvings, col(v),
                p, h, f, residual, gap, steps, per_route_demand, col(od_demand),
                np.ascontiguousarray(load_per_unit, dtype=float), hard_pos, col(cap), float(price_unit),
                float(max_price), steps_taken, col(last_step), col(radius), col(last_move), *jacobian.arrays(),
                *price_args, *cost_args)
    h = np.ascontiguousarray(h)
    if (rep != np.arange(n)).any():
        for x in (h, price, residual, gap, steps):     # a repeated run's answer is its first's
            x[..., :] = x[..., rep]
    load = matmul(incidence, h * lf)
    delay = curves.delay(load)
    full = np.zeros_like(load)
    full[hard] = price
    with np.errstate(invalid="ignore"):     # NaN capacity: never over, never idle
        over = (load[hard] / cap > 1.0 + CAPACITY_TOLERANCE) & (price < max_price)
        idle = (price > 0) & (load[hard] / cap < 1.0 - SLACK_TOLERANCE)      # stopped at max_iter, still priced
    settled = ~(over | idle).any(axis=0)

    def route_cost():
        paid = pw * (structure.a_price @ price) if len(hard) else 0.0      # what each route pays the prices
        return base_cost + vot * (structure.routes_by_resource @ delay) + paid

    return SUEResult(flow=h, load=load, delay=delay, gap=gap, iterations=min(int(steps.max(initial=0)) + 1, max_iter),
                     converged=(gap <= tol) & settled, price=full, route_cost=route_cost)
