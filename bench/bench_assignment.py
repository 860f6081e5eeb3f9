"""Batched route choice vs a Python loop over runs (run by hand; not a test).

    python bench/bench_assignment.py [--scenario kazakhstan] [--repeats 3]

For N = 1, 1,000 and 10,000 parameter sets (Latin hypercube over the uncertain parameters of the
assignment), solve the default network's 2024 logit equilibrium once as one batch, and — for the
same parameter sets — one run at a time in a Python loop (the loop is timed on a subset and
extrapolated, which the table says). Prints medians and the ratio; writes bench/results/assignment.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc

import multivector as mv
from multivector.model import compiled, simulate

from publish import publish

VARY = ["logit_scale_container", "vot_container", "tariff_sea", "capacity_factor_water"]


def design(s, n, seed=1):
    names = [v for v in VARY if v in s.parameters]
    lo = np.array([s.parameters[v].min for v in names])
    hi = np.array([s.parameters[v].max for v in names])
    x = qmc.scale(qmc.LatinHypercube(d=len(names), seed=seed).random(n), lo, hi)
    return pd.DataFrame(x, columns=names)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="kazakhstan")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-sample", type=int, default=200, help="runs timed in the loop before extrapolating")
    args = ap.parse_args()
    s = mv.load(args.scenario)
    compiled(s).network  # compile once, outside the timings
    simulate(s, years=[2024], coupled=False)    # warm up
    rows = []
    for n in (1, 1000, 10000):
        samples = design(s, n)
        batch = timed(lambda: simulate(s, samples=samples, years=[2024], coupled=False),
                      args.repeats if n < 10000 else 1)
        m = min(n, args.loop_sample)
        one = lambda: [simulate(s, samples=samples.iloc[[i]], years=[2024], coupled=False) for i in range(m)]
        loop_sample = timed(one, args.repeats if m < 100 else 1)
        loop = loop_sample * n / m
        rows.append({"N": n, "batch_s": batch, "loop_s": loop,
                     "loop_note": "measured" if m == n else f"extrapolated from {m} runs",
                     "batch_runs_per_s": n / batch, "ratio": loop / batch})
        print(rows[-1], flush=True)
    net = compiled(s).network
    table = pd.DataFrame(rows)
    text = (f"# Batched assignment vs Python loop ({args.scenario}, 2024)\n\n"
            f"Network: {len(net.edge_layer)} directed edges, {net.n_resources} resources, "
            f"{net.n_routes} routes, {len(net.od_origin)} OD-commodity pairs. "
            f"Median of {args.repeats} repeats (1 at N = 10,000). Machine: 2 cores.\n\n"
            + table.to_markdown(index=False, floatfmt=".3f") + "\n")
    publish(Path(__file__).with_name("results") / "assignment.md", text)
    print(text)


if __name__ == "__main__":
    main()
