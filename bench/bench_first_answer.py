"""The first answer from the shell: `multivector run kazakhstan --seeds 1` with and without a cached
route set (run by hand).

    python bench/bench_first_answer.py [--repeats 5]

Each repeat runs the command in a fresh process twice: once with an empty route-set cache (route
enumeration included) and once with the cache the first left behind. Medians and their ratio go to
bench/results/first_answer.md.
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

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "multivector", "run", "kazakhstan", "--seeds", "1"]


def timed(env) -> float:
    start = time.perf_counter()
    subprocess.run(COMMAND, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "MULTIVECTOR_CACHE_DIR": folder}
            cold.append(timed(env))
            warm.append(timed(env))
    c, w = statistics.median(cold), statistics.median(warm)
    lines = [
        "# The first answer: `multivector run kazakhstan --seeds 1` from the shell",
        "",
        f"Fresh process each time; median of {args.repeats}. Machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Measured {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| route sets | seconds (median) | range |",
        "|:--|--:|--:|",
        f"| compiled (empty cache) | {c:.2f} | {min(cold):.2f}-{max(cold):.2f} |",
        f"| read from the cache | {w:.2f} | {min(warm):.2f}-{max(warm):.2f} |",
        "",
        f"Ratio: {c / w:.2f}x faster with the cache.",
        "",
    ]
    out = ROOT / "bench" / "results" / "first_answer.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
