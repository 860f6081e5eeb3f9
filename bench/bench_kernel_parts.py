"""What one run-year of the compiled equilibrium spends on each of its calls (run by hand; not a test).

    python bench/bench_kernel_parts.py [--year 2030] [--runs 50] [--out FILE]

Simulates a Latin-hypercube batch of the Kazakhstan dataset (``bench_coupled.design``), keeps the
equilibrium's arguments of ``--year`` as the kernel left them, and times each compiled call the kernel
makes for one run of that year, called from Python one at a time (best of 7 repeats, microseconds a
call, call overhead included): the Newton matrix and its parts, the Newton solve, a point's shares and
loads, the gap's logit split, the priced costs, their factored split and the split a price step makes
from the one before it, the prices' sensitivity and a price step. Together with the steps a run-year
takes (``bench_coupled.py``'s counts, or ``research/speed_plan.md``) they say where a batch's kernel
time goes. Writes bench/results/kernel_parts.md. Runs on older checkouts too (``PYTHONPATH=<src>``),
leaving out the calls they lack.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import timeit
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import multivector as mv  # noqa: E402
from multivector.freight import sue  # noqa: E402

from bench_coupled import design  # noqa: E402

from publish import publish

ARGS = ("max_iter tol joint_after price_halvings v share flow load residual gap steps route_demand od_demand lf hard_pos cap price_unit "
        "max_price steps_taken last_step radius last_move routes od_route_ptr route_ptr route_res route_slot slot_res "
        "od_slot_ptr route_pattern pattern_ptr pattern_res base_cost ap_ptr ap_idx ap_val price pw vot theta "
        "available bounds cross_ptr cross_idx cross_val route_crossing member_ptr members kind capacity "
        "free_time alpha beta scale rho_max").split()


def kernel_state(scenario, year: int, runs: int):
    """The equilibrium's arguments in ``year`` of a batch of ``runs``, after the kernel ran, and the
    runs it solved."""
    kept = {}
    solve = sue._in_threads
    first = int(scenario.politics.sd.spec.sim.start)
    calls = iter(range(first, first + 100))

    def grab(kernel, cols, *args):
        solve(kernel, cols, *args)
        if next(calls) == year:
            kept.update(zip(ARGS, args), cols=cols)

    sue._in_threads = grab
    try:
        mv.simulate(scenario, samples=design(scenario, runs))
    finally:
        sue._in_threads = solve
    return kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--year", type=int, default=2030)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kernel_parts.md")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    s = mv.load("kazakhstan")
    a = kernel_state(s, args.year, args.runs)
    j = int(a["cols"][len(a["cols"]) // 2])
    jac = [a[k] for k in ARGS[ARGS.index("routes"):ARGS.index("base_cost")]]
    cost = [a[k] for k in ARGS[ARGS.index("vot"):]]
    curves = cost[ARGS.index("member_ptr") - ARGS.index("vot"):]
    vj = a["v"][:, j].copy()
    priced = sue._priced_cost(j, a["base_cost"], a["ap_ptr"], a["ap_idx"], a["ap_val"], a["price"], a["pw"])
    split = sue._split_for(j, priced, *cost)
    p, h, f, _ = sue._run_point(vj, j, split, a["route_demand"], a["lf"], *cost)
    m, d, low, by_price = sue._newton_and_price_systems(vj, p, j, a["route_demand"], a["lf"], a["pw"], *jac, *cost)

    # a price step's new price state: the run's prices with the first priced facility's doubled (or, with
    # none, the first facility priced at one price unit)
    moved = a["price"].copy()
    h0 = int(np.flatnonzero(moved[:, j] > 0)[0]) if (moved[:, j] > 0).any() else 0
    moved[h0, j] = 2 * moved[h0, j] if moved[h0, j] > 0 else a["price_unit"]
    stepped = sue._priced_cost(j, a["base_cost"], a["ap_ptr"], a["ap_idx"], a["ap_val"], moved, a["pw"])

    def copies():        # the state a price step writes in place, fresh for each call
        return [a[k].copy() for k in ("price", "steps_taken", "last_step", "radius", "last_move")]

    def price_step():
        price, *history = copies()
        return sue._run_price_step(j, f, m, d, low, by_price, a["hard_pos"], a["cap"], price, a["price_unit"],
                                   a["max_price"], *history)

    calls = [
        ("Newton matrix (`_newton_system`)", lambda: sue._newton_system(vj, p, j, a["route_demand"], a["lf"], *jac, *cost)),
        ("  of which the sensitivity M (`_run_sensitivity`)",
         lambda: sue._run_sensitivity(p, a["vot"][:, j], a["lf"], a["theta"], a["route_demand"], j, len(vj), *jac)),
        ("  of which the delay slopes (`_slopes`)", lambda: sue._slopes(vj, j, *curves)),
        ("Newton solve (`_newton_solve`)", lambda: sue._newton_solve(m, d, low, f - vj)),
        ("a point: shares, flows, loads (`_run_point`)",
         lambda: sue._run_point(vj, j, split, a["route_demand"], a["lf"], *cost)),
        ("the gap's logit split (`_run_shares`)", lambda: sue._run_shares(f, j, split, *cost)),
        ("priced route costs (`_priced_cost`)",
         lambda: sue._priced_cost(j, a["base_cost"], a["ap_ptr"], a["ap_idx"], a["ap_val"], a["price"], a["pw"])),
        ("their factored split (`_priced_split`)", lambda: sue._split_for(j, priced, *cost)),
        *([("the split at a price step, from the one before (`_repriced_split`)",
            lambda: sue._resplit_for(j, stepped, split, *cost))] if hasattr(sue, "_resplit_for") else []),
        ("a price step's Newton matrix and the prices' sensitivity, in one pass (`_newton_and_price_systems`)",
         lambda: sue._newton_and_price_systems(vj, p, j, a["route_demand"], a["lf"], a["pw"], *jac, *cost)),
        ("a price step (`_run_price_step`, less its copies)", price_step),
    ]
    best = lambda fn: min(timeit.repeat(fn, number=500, repeat=7)) / 500 * 1e6
    overhead = best(copies)
    rows = [(name, best(fn) - (overhead if "price step" in name else 0.0)) for name, fn in calls]
    active = int(np.count_nonzero(a["price"][:, j] > 0))
    lines = ["# The compiled equilibrium, call by call", "",
             f"Kazakhstan dataset, a Latin-hypercube batch of {args.runs} (with its counterfactuals), year "
             f"{args.year}, run {j}: {len(vj)} groups of solved resources, {len(a['hard_pos'])} priced "
             f"resources ({active} with a price), {len(a['route_crossing'])} routes, {len(a['bounds']) - 1} ODs. "
             f"Each call made from Python one at a time, best of 7 repeats of 500. Machine: 2 cores, Python "
             f"{platform.python_version()}. Measured {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "| call | µs |", "|:--|--:|"]
    lines += [f"| {name} | {us:.1f} |" for name, us in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    publish(args.out, text)


if __name__ == "__main__":
    main()
