"""The political register's history match (``calibrate DATASET --politics``): one likelihood evaluation
and the sampler's steps per second (run by hand; not a test).

    python bench/bench_history.py [--dataset kazakhstan] [--steps 300] [--repeats 20]

Times, in one process: ``evaluate_history`` for one step of the sampler (its walkers as one batch, the
stored provenance's number of walkers), median of --repeats; and ``sample_history`` over --steps steps
(emcee, seed 0), wall time and steps per second. The first call compiles the history's register (Numba,
cached on disk) and is not timed. Writes bench/results/history.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

import multivector as mv
from multivector.model.history import _history, evaluate_history, sample_history

from publish import publish

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="kazakhstan")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "history.md")
    args = ap.parse_args()

    scenario = mv.load(args.dataset)
    h = _history(scenario)
    spec = scenario.politics.sd.spec
    walkers = max(16, 2 * len(h.free) + 4)          # what the sampler takes by default
    rng = np.random.default_rng(0)
    values = pd.DataFrame({c: rng.uniform(spec.constants[c].min, spec.constants[c].max, walkers) for c in h.free})
    evaluate_history(scenario, values)                                        # compile, read observations
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        evaluate_history(scenario, values)
        times.append(time.perf_counter() - t)
    one = statistics.median(times)
    t = time.perf_counter()
    sample_history(scenario, steps=args.steps, seed=0)
    sampling = time.perf_counter() - t
    text = "\n".join([
        f"# The political register's history match ({args.dataset})",
        "",
        f"History {h.start}-{h.stop - 1}, {len(h.free)} free constants and the discrepancy, {walkers} walkers. "
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"Measured {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| what | seconds | rate |",
        "|:--|--:|--:|",
        f"| one likelihood evaluation ({walkers} walkers in one batch), median of {args.repeats} | {one:.4f} | "
        f"{walkers / one:,.0f} register runs/s |",
        f"| the sampler, {args.steps} steps | {sampling:.2f} | {args.steps / sampling:.1f} steps/s |",
        "",
    ])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    publish(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
