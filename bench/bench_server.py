"""Concurrent single runs on the server: one worker process against one per core (run by hand).

    python bench/bench_server.py [--repeats 3] [--workers N]

Starts `multivector serve` in a subprocess on a free local port for each pool size (1 worker: runs
take turns, as before the pool; N workers, default one per core), warms every worker (each loads and
compiles the scenario once), then times from client threads:

- one run alone (median of 2 x repeats + 1),
- 8 runs sent at once (each with its own overrides and seed; median wall time of `repeats` batches,
  interleaved with the single runs so that both meet the same load from anything else on the machine),
- 50 runs sent at once (what is answered, what is told to retry (429), latency of the answered).

For comparison outside the server, 8 runs in 2 threads of one process (each thread with its own
loaded scenario) against the same 8 one after another: whether threads would do (the GIL).
Writes bench/results/server.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from multivector.interfaces.server.runner import available_cpus
from multivector.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"
RUN = "/api/scenarios/kazakhstan/run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`multivector serve` in a subprocess, with a token (as for a team)."""

    def __init__(self, workers: int, db: Path):
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "multivector", "serve", "--port", port, "--db", str(db), "--workers", str(workers)],
            env={**os.environ, "MULTIVECTOR_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/api/server", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("the server did not start")

    def run(self, i: int) -> tuple[int, float]:
        """One run with its own overrides and seed: (status, seconds)."""
        t = time.perf_counter()
        with httpx.Client(timeout=600, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = c.post(self.url + RUN, json={"overrides": {"mediation_activity": i % 10}, "seed": i})
        return r.status_code, time.perf_counter() - t

    def at_once(self, n: int, offset: int = 0) -> tuple[list[tuple[int, float]], float]:
        t = time.perf_counter()
        with ThreadPoolExecutor(n) as threads:
            answers = list(threads.map(self.run, range(offset, offset + n)))
        return answers, time.perf_counter() - t

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def measure(workers: int, repeats: int, db: Path, fifty: bool) -> dict:
    server = Server(workers, db)
    try:
        for _ in range(2):                                  # every worker loads and compiles once
            answers, _ = server.at_once(workers)
            assert all(code == 200 for code, _ in answers), answers
        alone, batches = [], []
        for r in range(repeats):                            # interleaved, so both see the same other load
            alone += [server.run(100 + 2 * r), server.run(101 + 2 * r)]
            answers, wall = server.at_once(8, offset=200 + 8 * r)
            assert all(code == 200 for code, _ in answers), answers
            batches.append(wall)
        alone.append(server.run(99))
        assert all(code == 200 for code, _ in alone)
        out = {"workers": workers, "one": statistics.median(s for _, s in alone),
               "eight": statistics.median(batches), "eight_range": (min(batches), max(batches))}
        if fifty:
            answers, wall = server.at_once(50, offset=1000)
            ok = np.array([s for code, s in answers if code == 200])
            out["fifty"] = {"codes": dict(sorted(collections.Counter(c for c, _ in answers).items())),
                            "wall": wall, "p50": float(np.median(ok)), "p95": float(np.percentile(ok, 95))}
        return out
    finally:
        server.close()


def threads_in_one_process(threads: int, runs: int = 8) -> tuple[float, float]:
    """Seconds for ``runs`` runs one after another, and in ``threads`` threads (each its own scenario)."""
    import warnings

    import multivector as mv
    from multivector.model import simulate
    from multivector.views.report import collect_run

    local = threading.local()

    def one(i):
        if not hasattr(local, "scenario"):
            local.scenario = mv.load("kazakhstan")
            simulate(local.scenario, 1)                      # compile outside the timing
        overrides = {"mediation_activity": i % 10}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = simulate(local.scenario, 1, seed=i, overrides=overrides, keep_routes=True)
            collect_run(local.scenario, seed=i, overrides=overrides, ds=ds)

    with ThreadPoolExecutor(threads) as pool:                # warm every thread
        list(pool.map(one, range(threads)))
        t = time.perf_counter()
        list(pool.map(one, range(runs)))
        parallel = time.perf_counter() - t
    one(0)
    t = time.perf_counter()
    for i in range(runs):
        one(i)
    return time.perf_counter() - t, parallel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=available_cpus(), help="the pool to compare with one worker")
    args = ap.parse_args()
    import tempfile

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(1, args.repeats, Path(folder) / "a.duckdb", fifty=False),
                measure(args.workers, args.repeats, Path(folder) / "b.duckdb", fifty=True)]
    serial, threaded = threads_in_one_process(2)
    load_after = os.getloadavg()

    lines = [
        "# Concurrent single runs on the server",
        "",
        f"`python bench/bench_server.py` — `multivector serve` in a subprocess (with a token), clients in threads; "
        f"`POST {RUN}` with its own overrides and seed per run. Medians: one run alone of {2 * args.repeats + 1}, "
        f"8 at once of {args.repeats} batches. Machine: {os.cpu_count()} cores ({available_cpus()} available), "
        f"Python {platform.python_version()}; shared with other work (load average over 1 min before the "
        f"bench {load_before[0]:.1f}, after {load_after[0]:.1f}). Measured {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| worker processes | one run alone, s | 8 runs at once: wall, s | range | 8 at once / one alone |",
        "|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lo, hi = r["eight_range"]
        lines.append(f"| {r['workers']} | {r['one']:.2f} | {r['eight']:.2f} | {lo:.2f}-{hi:.2f} | "
                     f"{r['eight'] / r['one']:.2f}x |")
    pool = rows[1]
    ideal = 8 / min(8, pool["workers"], available_cpus())
    lines += [
        "",
        f"With {pool['workers']} workers, 8 runs at once take {pool['eight'] / pool['one']:.2f}x one run alone "
        f"(one worker: {rows[0]['eight'] / rows[0]['one']:.2f}x). The floor on this machine is {ideal:.0f}x: "
        "each run keeps one core busy for its whole time, so 8 runs on "
        f"{min(8, pool['workers'], available_cpus())} cores need at least {ideal:.0f} run-times.",
    ]
    f = pool["fifty"]
    lines += [
        "",
        f"50 runs at once ({pool['workers']} running, 32 waiting, the rest told to retry): answers {f['codes']}, "
        f"wall {f['wall']:.1f} s, latency of the answered p50 {f['p50']:.1f} s / p95 {f['p95']:.1f} s.",
        "",
        f"Threads instead of processes (no server; 8 runs of simulate + collect_run, each thread with its "
        f"own loaded scenario): one after another {serial:.2f} s, in 2 threads {threaded:.2f} s "
        f"(speed-up {serial / threaded:.2f}x).",
        "",
    ]
    path = atomic_write(ROOT / "bench" / "results" / "server.md", "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
