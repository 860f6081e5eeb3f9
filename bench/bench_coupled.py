"""The coupled model (network + political register, 2024-2040): wall time and runs/s (run by hand).

    python bench/bench_coupled.py [--sizes 1000 10000] [--repeats 5] [--loop-runs 20] [--pysd-runs 5]

Measures, in one script on this machine: one default coupled run (warm, median of --repeats); the
default run's 200 disruption streams, as `multivector run` simulates them; the
coupled model over N parameter sets in one batch (Latin hypercube over every ranged constant of the
political register); a plain Python loop over single-run ``simulate`` (timed on --loop-runs runs
and extrapolated, which the table says); and, as issue 14 asks, PySD looping over the political register
alone (its XMILE export, the same time step, the network's outputs held as the export holds them; the same
design's first --pysd-runs rows, extrapolated; 0 skips it). Writes bench/results/coupled.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc

import multivector as mv
import multivector.io

from publish import publish

ROOT = Path(__file__).resolve().parents[1]


def design(scenario, n, seed=1):
    consts = scenario.politics.sd.spec.constants
    # the outcome's own definition (index weights, consolidation threshold, floor and year) is not sampled
    names = [c for c, spec in consts.items() if spec.min is not None and spec.max is not None
             and spec.max > spec.min and not c.startswith(("consolidation_", "mpi_weight_"))]
    lo = np.array([consts[c].min for c in names])
    hi = np.array([consts[c].max for c in names])
    return pd.DataFrame(qmc.scale(qmc.LatinHypercube(d=len(names), seed=seed).random(n), lo, hi), columns=names)


def pysd_seconds_per_run(scenario, samples, runs: int) -> float:
    """Seconds per run of PySD on the political register's XMILE export, one design row at a time."""
    import pysd

    from multivector.model.xmile import export_xmile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "register.xmile"
        export_xmile(scenario, path)
        model = pysd.read_xmile(str(path))
        index = scenario.politics.index
        t = time.perf_counter()
        for i in range(runs):
            model.run(params=samples.iloc[i].to_dict(), return_columns=[index])
        return (time.perf_counter() - t) / runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--loop-runs", type=int, default=20)
    ap.add_argument("--pysd-runs", type=int, default=5)
    ap.add_argument("--no-retain", action="store_true",
                    help="leave glibc's allocator at its defaults (the command line keeps freed memory)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "coupled.md")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    retained = False if args.no_retain else mv.io.retain_freed_memory()
    s = mv.load("kazakhstan")
    mv.simulate(s)  # compile and warm up
    single = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        mv.simulate(s)
        single.append(time.perf_counter() - t)
    rows = [("one default run (warm)", 1, statistics.median(single), "median of %d" % args.repeats)]
    streams = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        mv.simulate(s, 200)
        streams.append(time.perf_counter() - t)
    rows.append(("default run, 200 disruption streams (the CLI's `run`)", 200, statistics.median(streams),
                 "median of %d; with its counterfactual, 400 solves a year" % args.repeats))
    samples = design(s, max(args.sizes))
    t = time.perf_counter()
    for i in range(args.loop_runs):
        mv.simulate(s, samples=samples.iloc[[i]].reset_index(drop=True), run_ids=[i])
    per_run = (time.perf_counter() - t) / args.loop_runs
    pysd_run = pysd_seconds_per_run(s, samples, args.pysd_runs) if args.pysd_runs else None
    for n in args.sizes:
        t = time.perf_counter()
        ds = mv.simulate(s, samples=samples.iloc[:n].reset_index(drop=True))
        secs = time.perf_counter() - t
        rows.append((f"batch of {n:,}", n, secs, f"{float(ds['consolidated'].mean()):.0%} consolidated"))
        rows.append((f"Python loop over single runs, N = {n:,}", n, per_run * n,
                     f"extrapolated from {args.loop_runs} runs; the batch is {per_run * n / secs:.1f}x faster"))
        if pysd_run is not None:
            rows.append((f"PySD loop over the political register alone, N = {n:,}", n, pysd_run * n,
                         f"extrapolated from {args.pysd_runs} runs; the coupled batch is "
                         f"{pysd_run * n / secs:.1f}x faster"))
        print(*rows[-3:], sep="\n", flush=True)
    lines = [
        "# Coupled model 2024-2040: wall time and runs per second",
        "",
        f"Kazakhstan dataset; Latin hypercube over {samples.shape[1]} ranged constants of the political "
        f"register. Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}. Measured {time.strftime('%Y-%m-%d %H:%M')}. Freed memory "
        + ("kept for reuse, as the command line keeps it (`multivector.io.retain_freed_memory`)." if retained
           else "returned to the system (glibc's defaults, `--no-retain`)."),
        "",
        "| what | N | seconds | runs/s | note |",
        "|:--|--:|--:|--:|:--|",
    ]
    for name, n, secs, note in rows:
        lines.append(f"| {name} | {n:,} | {secs:.3f} | {n / secs:,.1f} | {note} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    publish(args.out, text)


if __name__ == "__main__":
    main()
