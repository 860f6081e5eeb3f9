"""How often the capacity prices fail to settle away from the default explorations (run by hand).

    python bench/bench_price_loop.py [--runs 300] [--seeds 2 3] [--baseline-src OTHER/src]
                                     [--bulk-scales 0 0.0068] [--trajectories 16] [--steps-only]

The explorations sample the political register and the few network parameters ``model.toml`` lists;
there no run ends a year unsettled. A transport modeller who samples the network's own parameters
(speeds, tariffs, logit scales, capacities, premiums: what ``calibrate`` draws from their priors) reaches
states the explorations never do. This script draws N runs uniformly over each parameter's range, for
two sets: the network's parameters the explorations leave fixed, and every ranged parameter. It counts
the runs that end some year unsettled and sorts each unsettled run-year by its state at the end: the
loads off their equilibrium (gap above tolerance), a facility priced with room, a facility above
capacity below the price cap. With ``--baseline-src`` the same draws run first under another checkout's
``src`` (its own caches), in the same invocation. It also counts the Newton steps a Morris design
takes with ``logit_scale_bulk`` as drawn and held where a fit lets bulk choose by cost: the crawl that
blocks such a fit (``--steps-only`` for that table alone, written to bench/results/price_loop_steps.md).
Writes bench/results/price_loop.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from publish import publish


def worker(runs: int, seeds: list[int]) -> dict:
    """Simulate the draws under the code on the path; counts per (set, seed)."""
    import pandas as pd

    import multivector as mv
    from multivector.explore.ensemble import uncertain_names
    from multivector.freight.sue import EQUILIBRIUM_TOL, SLACK_TOLERANCE

    warnings.simplefilter("ignore")           # the unsettled runs' warnings are what is counted
    s = mv.load("kazakhstan")
    explored = set(uncertain_names(s))
    ranged = [k for k, p in s.parameters.items() if p.max > p.min]
    mv.simulate(s, 1)                       # compile the kernels (a fresh cache) before any timing
    sets = {"network (not explored)": [k for k in ranged if k not in explored], "every ranged parameter": ranged}
    out = {}
    for label, names in sets.items():
        for seed in seeds:
            rng = np.random.default_rng(seed)
            samples = pd.DataFrame({k: rng.uniform(s.parameters[k].min, s.parameters[k].max, runs) for k in names})
            t = time.perf_counter()
            ds = mv.simulate(s, samples=samples, seed=3)
            secs = time.perf_counter() - t
            bad = ~ds["converged"].values                                  # [run, year]
            util, price = ds["utilisation"].values, ds["capacity_price"].values
            # each unsettled run-year in the first state it ends in; the output rations what a facility
            # cannot take, so a facility over capacity below the cap shows as neither of the first two
            off = (ds["gap"].values > EQUILIBRIUM_TOL) & bad
            room = ((price > 0) & (util < 1.0 - SLACK_TOLERANCE)).any(axis=-1) & bad & ~off
            over = bad & ~off & ~room
            out[f"{label}|{seed}"] = {
                "runs": runs, "unsettled runs": int(bad.any(axis=1).sum()), "unsettled run-years": int(bad.sum()),
                "loads off equilibrium": int(off.sum()), "priced with room": int(room.sum()),
                "over capacity below the cap": int(over.sum()),
                "largest load/capacity shipped": float(np.nan_to_num(util).max()), "seconds": secs}
    return out


def steps_worker(scales: list[float], trajectories: int) -> dict:
    """The README's kind of Morris design (``trajectories``, seed 0, the stored posterior's draws) with
    ``logit_scale_bulk`` held at each of ``scales`` (0: the draws' own): Newton steps per run-year,
    counted by wrapping the kernel's thread pool, unsettled runs and seconds. The fitted bulk choice is
    nearly blind to price; bulk that chooses by cost (the scale a fit with a segment of bulk avoiding
    Russian ports finds, 0.0068) is what makes the prices crawl (research/next_structural_steps.md)."""
    import multivector as mv
    import multivector.freight.sue as sue
    from multivector.explore.ensemble import make_design

    warnings.simplefilter("ignore")
    counted = []
    pool = sue._in_threads

    def counting(kernel, runs, *args):
        out = pool(kernel, runs, *args)
        # found by name: the kernel's arguments differ between the checkouts compared
        steps = args[list(inspect.signature(kernel.py_func).parameters).index("steps") - 1]
        counted.append(steps[runs].copy())
        return out

    sue._in_threads = counting
    s = mv.load("kazakhstan")
    samples = make_design(s, trajectories, sampler="morris", seed=0).samples()
    mv.simulate(s, 1)
    out = {}
    for scale in scales:
        drawn = samples.copy()
        if scale > 0:
            drawn["logit_scale_bulk"] = scale
        counted.clear()
        t = time.perf_counter()
        ds = mv.simulate(s, samples=drawn, seed=0)
        secs = time.perf_counter() - t
        steps = np.concatenate(counted)
        p50, p90, p99 = np.percentile(steps, [50, 90, 99])
        out[str(scale)] = {"runs": len(drawn), "Newton steps": int(steps.sum()),
                           "p50 / p90 / p99 / max a run-year": f"{p50:.0f} / {p90:.0f} / {p99:.0f} / {steps.max()}",
                           "unsettled runs": int((~ds["converged"]).any("year").sum()), "seconds": secs}
    return out


def run_code(src: Path | None, runs: int, seeds: list[int], extra: tuple = ()) -> dict:
    """One worker in a fresh process under ``src`` (its own caches), or this checkout: the draws, or with
    ``extra`` the arguments of another worker."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
        env["MULTIVECTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="mv_cache_")
    cmd = [sys.executable, __file__, *(extra or ("--worker",)), "--runs", str(runs), "--seeds", *map(str, seeds)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--baseline-src", type=Path, default=None, help="another checkout's src folder")
    ap.add_argument("--bulk-scales", type=float, nargs="+", default=[0.0, 0.0068],
                    help="logit_scale_bulk for the Morris step counts (0: the draws' own)")
    ap.add_argument("--trajectories", type=int, default=16, help="Morris trajectories for the step counts")
    ap.add_argument("--steps-only", action="store_true", help="only the Morris step counts")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None,
                    help="default bench/results/price_loop.md, or price_loop_steps.md with --steps-only")
    args = ap.parse_args()
    results = Path(__file__).parent / "results"
    args.out = args.out or results / ("price_loop_steps.md" if args.steps_only else "price_loop.md")
    if args.worker:
        print(json.dumps(worker(args.runs, args.seeds)))
        return
    if args.steps_worker:
        print(json.dumps(steps_worker(args.bulk_scales, args.trajectories)))
        return
    step_args = ("--steps-worker", "--trajectories", str(args.trajectories), "--bulk-scales",
                 *map(str, args.bulk_scales))
    srcs = ({"baseline": args.baseline_src.resolve()} if args.baseline_src is not None else {}) | {"this checkout": None}
    codes = {} if args.steps_only else {code: run_code(src, args.runs, args.seeds) for code, src in srcs.items()}
    counts = {code: run_code(src, args.runs, args.seeds, step_args) for code, src in srcs.items()}
    lines = ["# Capacity prices that do not settle, over the network's parameter ranges\n",
             f"Kazakhstan coupled model 2024-2040; {args.runs} runs per draw, uniform over each parameter's "
             f"range (seeds {', '.join(map(str, args.seeds))}), each run with its counterfactual half. Each "
             f"unsettled run-year is counted once, in the first of its end states: the loads off their "
             f"equilibrium (gap above tolerance), a facility priced with room to spare, else a facility over "
             f"capacity at a price below the cap (the output ships only what the capacity takes, the rest "
             f"counted unserved; hence the largest load/capacity shipped). Machine: Python "
             f"{platform.python_version()}, measured {time.strftime('%Y-%m-%d %H:%M')}.\n"]
    keys = ["unsettled runs", "unsettled run-years", "loads off equilibrium", "priced with room",
            "over capacity below the cap", "largest load/capacity shipped", "seconds"]
    lines.append("| code | parameters | seed | " + " | ".join(keys) + " |")
    lines.append("|" + ":--|" * 3 + "--:|" * len(keys))
    for code, result in codes.items():
        for key, row in result.items():
            label, seed = key.split("|")
            cells = [f"{row[k]:.3f}" if k.startswith("largest") else f"{row[k]:.1f}" if k == "seconds" else str(row[k])
                     for k in keys]
            lines.append(f"| {code} | {label} | {seed} | " + " | ".join(cells) + " |")
    if args.steps_only:
        lines = ["# Newton steps with bulk choosing by cost\n",
                 f"`python bench/bench_price_loop.py --steps-only`. Machine: Python {platform.python_version()}, "
                 f"measured {time.strftime('%Y-%m-%d %H:%M')}. The stored fit leaves bulk nearly blind to price "
                 "(`logit_scale_bulk` at its floor and its posterior's draws near it); a fit that lets bulk choose "
                 "by cost (0.0068, with a segment of Kazakh bulk avoiding Russian ports) meets a crawl of the "
                 "Caspian outlets' capacity prices (`research/next_structural_steps.md`). This table is the "
                 "measure for whatever fixes it."]
    lines.append(f"\nNewton steps over a Morris design ({args.trajectories} trajectories, seed 0, the stored "
                 "posterior's draws), with `logit_scale_bulk` as drawn (0) or held at a value:\n")
    keys = ["runs", "Newton steps", "p50 / p90 / p99 / max a run-year", "unsettled runs", "seconds"]
    lines.append("| code | logit_scale_bulk | " + " | ".join(keys) + " |")
    lines.append("|" + ":--|" * 2 + "--:|" * len(keys))
    for code, result in counts.items():
        for scale, row in result.items():
            cells = [f"{row[k]:.1f}" if k == "seconds" else str(row[k]) for k in keys]
            lines.append(f"| {code} | {scale} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    publish(args.out, text)


if __name__ == "__main__":
    main()
