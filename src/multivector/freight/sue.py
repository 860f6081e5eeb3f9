"""Logit stochastic user equilibrium on fixed route sets, batched over runs.

All arrays carry the run axis last (``[routes, runs]``, ``[resources, runs]``) so that one sparse
product loads every run at once. The fixed point ``h = demand * logit(cost(h))`` is found by
successive averages with self-regulated step sizes (Liu, Lam & Wong 2009): the step shrinks slowly
while the residual falls and quickly when it rises, per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


#: Side constraints: a capacity is met within this share (the reality checks allow 0.5%).
CAPACITY_TOLERANCE = 0.004
#: The longest wait a side constraint may price, in hours: freight that would wait a year is deferred.
MAX_WAIT_H = 8760.0
#: The wait (hours) from which a multiplier grows: the scale of one day's queue.
WAIT_UNIT_H = 24.0
#: A resource that waits must be this close to full (below it the wait is lowered): slackness.
SLACK_TOLERANCE = 0.01


@dataclass
class SUEResult:
    flow: np.ndarray        # [K, N] route flows (commodity units)
    load: np.ndarray        # [R, N] resource loads (Mt)
    delay: np.ndarray       # [R, N] congestion delay (h), the capacity waits included
    cost: np.ndarray        # [K, N] generalised route cost at the solution
    gap: np.ndarray         # [N] worst over groups of sum |logit(cost) - flow| / demand
    iterations: int
    converged: np.ndarray   # [N] bool
    wait: np.ndarray | None = None   # [R, N] the side constraints' multipliers (h): queueing at capacity


def logit_split(cost, theta, available, starts, route_od):
    """Route shares within each OD: softmax of ``-theta * cost`` over the OD's available routes."""
    masked = np.where(available, cost, np.inf)
    low = np.minimum.reduceat(masked, starts, axis=0)[route_od]
    low = np.where(np.isfinite(low), low, 0.0)
    weight = np.where(available, np.exp(-theta * (masked - low)), 0.0)
    total = np.add.reduceat(weight, starts, axis=0)[route_od]
    return np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)


def solve_logit_sue(incidence: sparse.csr_matrix, load_per_unit, base_cost, vot, theta, available,
                    route_od, demand, delay_fn, tol=1e-4, max_iter=300, od_group=None,
                    step_up=1.5, step_down=-0.2, start=None, capacity=None, start_wait=None) -> SUEResult:
    """Solve the batched logit SUE, with capacities as side constraints when ``capacity`` is given.

    incidence: [R, K] 0/1 resource-route incidence; load_per_unit: [K] Mt per unit of route flow;
    base_cost: [K, N] free-flow generalised cost; vot: [K, N] cost per hour of delay; theta: [K, N]
    logit scale; available: [K, N] bool; route_od: [K] OD index, sorted; demand: [D, N];
    delay_fn(load [R, n], cols [n]) -> delay [R, n] for the runs ``cols``; od_group: [D] group of
    each OD (e.g. its commodity) — the gap is the worst over groups of the group's |residual| /
    demand, so that a class measured in Mt is not drowned by one measured in TEU. ``start``
    ([K, N] route flows, e.g. last year's solution) warm-starts the iteration, rescaled to this demand.

    ``capacity`` ([R, N] Mt, NaN where a resource has none) makes every capacity hard: each
    capacitated resource carries a wait ``u`` (hours, a Lagrange multiplier) added to its delay. When a
    run's averaging has reached an equilibrium under the present waits, every wait whose resource is
    over capacity is raised and every wait whose resource has room is lowered (a secant step on the
    resource's load), and the averaging resumes from there; the run is done when its equilibrium
    violates no constraint: every load within ``CAPACITY_TOLERANCE`` of its capacity or its wait at
    ``MAX_WAIT_H`` (demand no route can take: the caller rations it), and no wait on a resource more
    than ``SLACK_TOLERANCE`` below capacity. The waits begin at ``start_wait`` (``[R, N]`` hours, e.g.
    last year's) or at zero.

    Each iteration works on the runs not yet converged only; a converged run stops moving, so its
    result does not depend on what else is in the batch.
    """
    starts = np.flatnonzero(np.r_[True, route_od[1:] != route_od[:-1]])
    per_route_demand = demand[route_od]
    od_group = np.zeros(len(demand), dtype=int) if od_group is None else np.asarray(od_group)
    n_groups = int(od_group.max()) + 1 if len(od_group) else 1
    group_of_route = sparse.csr_matrix((np.ones(len(route_od)), (od_group[route_od], np.arange(len(route_od)))),
                                       shape=(n_groups, len(route_od)))
    group_demand = np.maximum(group_of_route @ per_route_demand, 1e-12)     # [G, N]
    lf = load_per_unit[:, None]
    incidence_t = incidence.T.tocsr()
    n = base_cost.shape[1]
    every = np.arange(n)
    hard = np.flatnonzero(np.isfinite(capacity).any(axis=1)) if capacity is not None else np.zeros(0, int)
    wait = np.zeros((len(hard), n)) if start_wait is None else np.array(start_wait[hard], dtype=float)
    cap = capacity[hard] if len(hard) else np.zeros((0, n))
    tried = np.full((2, len(hard), n), np.nan)      # the last (wait, ratio) priced: the secant's other point

    def evaluate(h, cols):
        load = incidence @ (h * lf)
        delay = delay_fn(load, cols)
        if len(hard):
            delay[hard] += wait[:, cols]
        cost = base_cost[:, cols] + vot[:, cols] * (incidence_t @ delay)
        return load, delay, cost

    def violations(load, cols):
        """``[H, n]``: over capacity while the wait can still grow, or waiting with room to spare."""
        ratio = np.nan_to_num(load[hard] / cap[:, cols], nan=0.0)
        u = wait[:, cols]
        over = (ratio > 1.0 + CAPACITY_TOLERANCE) & (u < MAX_WAIT_H)
        idle = (u > 0) & (ratio < 1.0 - SLACK_TOLERANCE)
        return over | idle, ratio, over

    def price(load, cols):
        """One step of each violated wait toward a load just under capacity: a secant on the last two
        (wait, load) points of the resource, or a proportional step the first time; at most a fivefold
        rise per step, never below zero or above ``MAX_WAIT_H``."""
        bad, ratio, _ = violations(load, cols)
        u = wait[:, cols]
        u0, r0 = tried[0][:, cols], tried[1][:, cols]
        target = 1.0 - CAPACITY_TOLERANCE / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (ratio - r0) / (u - u0)
        secant = np.isfinite(slope) & (slope < 0)
        step = np.where(secant, (target - ratio) / np.where(secant, slope, -1.0),
                        (u + WAIT_UNIT_H) * (ratio - target) * 2.0)
        step = np.clip(step, -u, 4.0 * (u + WAIT_UNIT_H))
        tried[0][:, cols] = np.where(bad, u, u0)
        tried[1][:, cols] = np.where(bad, ratio, r0)
        wait[:, cols] = np.where(bad, np.clip(u + step, 0.0, MAX_WAIT_H), u)

    def split(cost, cols):
        return logit_split(cost, theta[:, cols], available[:, cols], starts, route_od)

    if start is None:
        _, _, cost = evaluate(np.zeros_like(base_cost), every)
        h = per_route_demand * split(cost, every)
    else:
        h = np.where(available, np.maximum(start, 0.0), 0.0)
        od_total = np.add.reduceat(h, starts, axis=0)[route_od]
        share = np.divide(h, od_total, out=np.zeros_like(h), where=od_total > 0)
        _, _, cost = evaluate(h, every)
        h = per_route_demand * np.where(od_total > 0, share, split(cost, every))
    n_od = len(demand)
    eta = np.ones((n_od, n))                 # one step-size state per OD and run
    previous = np.full((n_od, n), np.inf)
    gap = np.full(n, np.inf)
    cols = every
    it = 0
    for it in range(1, max_iter + 1):
        hc = h[:, cols]
        load, _, cost = evaluate(hc, cols)
        diff = per_route_demand[:, cols] * split(cost, cols) - hc
        residual = ((group_of_route @ np.abs(diff)) / group_demand[:, cols]).max(axis=0)
        gap[cols] = residual
        moving = residual > tol
        if len(hard):   # an equilibrium under the present waits: price the constraints it violates
            reprice = ~moving & violations(load, cols)[0].any(axis=0)
            if reprice.any():
                price(load[:, reprice], cols[reprice])
                eta[:, cols[reprice]], previous[:, cols[reprice]] = 1.0, np.inf
                moving |= reprice
        if not moving.any():
            break
        cols, diff = cols[moving], diff[:, moving]
        # self-regulated averaging per OD: an OD whose residual grows takes shorter steps, so a few
        # stiff (congested) ODs do not slow the others down
        od_residual = np.add.reduceat(np.abs(diff), starts, axis=0)
        e, prev = eta[:, cols], previous[:, cols]
        e = np.maximum(1.0, np.where(od_residual >= prev, e + step_up, e + step_down))
        eta[:, cols], previous[:, cols] = e, od_residual
        h[:, cols] += diff / e[route_od]
    load, delay, cost = evaluate(h, every)
    full = np.zeros_like(load)
    full[hard] = wait
    feasible = ~violations(load, every)[2].any(axis=0) if len(hard) else np.ones(n, dtype=bool)
    return SUEResult(flow=h, load=load, delay=delay, cost=cost, gap=gap, iterations=it,
                     converged=(gap <= tol) & feasible, wait=full)
