"""The Newton matrix's structure built once per route set, against once per year (run by hand).

    python bench/bench_structure_cache.py [--repeats 5] [--batch 200]

``_Structure`` (the OD and resource slots that ``M = A S Aᵀ`` sums over, the CSR arrays) depends only on the route sets,
yet was built every simulated year. This measures, alternating the two in one process: one warm default
coupled run (2024-2040) and one coupled batch, with the structure kept (``_structure_for``, the code) and
rebuilt every call (the baseline). Results are bit for bit the same (checked). Writes
bench/results/structure_cache.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import multivector as mv
from multivector.freight import sue

from publish import publish

ROOT = Path(__file__).resolve().parents[1]


def rebuilt(incidence, rows, hard, route_od, load_per_unit):
    return sue._Structure(incidence, rows, hard, route_od, load_per_unit)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "structure_cache.md")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    s = mv.load("kazakhstan")
    mv.simulate(s)                                     # compile, warm the kernels
    kept = sue._structure_for
    times = {("single", "kept"): [], ("single", "rebuilt"): [], ("batch", "kept"): [], ("batch", "rebuilt"): []}
    results = {}
    for _ in range(args.repeats):
        for variant, fn in (("rebuilt", rebuilt), ("kept", kept)):
            sue._structure_for = fn
            try:
                t1, one = timed(lambda: mv.simulate(s))
                tb, many = timed(lambda: mv.simulate(s, args.batch))
            finally:
                sue._structure_for = kept
            times[("single", variant)].append(t1)
            times[("batch", variant)].append(tb)
            results[variant] = many["middle_power_index"].values
    assert np.array_equal(results["kept"], results["rebuilt"]), "the structure cache changed a result"
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        "# The Newton matrix's structure: built once per route set vs once per year",
        "",
        f"Kazakhstan, coupled 2024-2040, warm; median of {args.repeats} alternated repeats in one process. "
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}. "
        f"Measured {time.strftime('%Y-%m-%d %H:%M')}. Results identical bit for bit.",
        "",
        "| workload | rebuilt every year (s) | kept (s) | ratio |",
        "|:--|--:|--:|--:|",
        f"| one default run | {med[('single', 'rebuilt')]:.3f} | {med[('single', 'kept')]:.3f} | "
        f"{med[('single', 'rebuilt')] / med[('single', 'kept')]:.2f}x |",
        f"| batch of {args.batch} | {med[('batch', 'rebuilt')]:.2f} | {med[('batch', 'kept')]:.2f} | "
        f"{med[('batch', 'rebuilt')] / med[('batch', 'kept')]:.2f}x |",
        "",
    ]
    publish(args.out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
