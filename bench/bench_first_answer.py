"""The first answer from the shell: `multivector run kazakhstan --seeds 1` on a fresh machine, with and
without a cached route set, and `multivector run kazakhstan` as typed (its 200 disruption streams) with
the cache (run by hand).

    python bench/bench_first_answer.py [--repeats 5] [--fresh-repeats 2] [--out FILE]

A fresh machine: empty route-set, kernel and Numba caches, so everything compiles (what a new install's
first command costs). Then each repeat runs the one-stream command in a fresh process twice: once with an
empty route-set cache (route enumeration included) and once with the cache the first left behind; then the
default command once with that cache. Medians and their ratio go to bench/results/first_answer.md. Run it
with ``PYTHONPATH`` set to another checkout's ``src`` (and ``--out``) to measure that code the same way.
The environment's packages count: with Dask installed (the ``dask`` and ``test`` extras) xarray imports
it the first time it builds a result, about 0.3 s that a plain install does not pay.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from publish import publish

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "multivector", "run", "kazakhstan"]


def timed(env, *extra) -> float:
    start = time.perf_counter()
    subprocess.run(COMMAND + list(extra), env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fresh-repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "first_answer.md")
    args = ap.parse_args()
    fresh, cold, warm, default = [], [], [], []
    for _ in range(args.fresh_repeats):
        with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as numba_folder:
            fresh.append(timed({**os.environ, "MULTIVECTOR_CACHE_DIR": folder, "NUMBA_CACHE_DIR": numba_folder},
                               "--seeds", "1"))
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "MULTIVECTOR_CACHE_DIR": folder}
            cold.append(timed(env, "--seeds", "1"))
            warm.append(timed(env, "--seeds", "1"))
            default.append(timed(env))
    c, w, d = statistics.median(cold), statistics.median(warm), statistics.median(default)
    lines = [
        "# The first answer: `multivector run kazakhstan` from the shell",
        "",
        f"Fresh process each time; median of {args.repeats}. Machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Measured {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| command | route sets | seconds (median) | range |",
        "|:--|:--|--:|--:|",
        f"| `--seeds 1`, fresh machine | compiled, and every kernel compiled (empty caches; median of "
        f"{args.fresh_repeats}) | {statistics.median(fresh):.2f} | {min(fresh):.2f}-{max(fresh):.2f} |",
        f"| `--seeds 1` | compiled (empty cache) | {c:.2f} | {min(cold):.2f}-{max(cold):.2f} |",
        f"| `--seeds 1` | read from the cache | {w:.2f} | {min(warm):.2f}-{max(warm):.2f} |",
        f"| as typed (200 streams) | read from the cache | {d:.2f} | {min(default):.2f}-{max(default):.2f} |",
        "",
        f"Ratio: {c / w:.2f}x faster with the cache.",
        "",
    ]
    publish(args.out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
