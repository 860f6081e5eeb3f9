"""Explorations side by side on this machine (run by hand; not a test).

    python bench/bench_explore.py [--ns 1000 10000] [--executors inprocess processes local]
                                  [--pysd-runs 20] [--loop-runs 10] [--rss 1000 4000]

(``--pysd-runs 0`` and ``--loop-runs 0`` skip those baselines, ``--rss`` with no size the memory rows.)

- the full coupled model through ``explore`` at each N: in-process, on a process pool and on a Dask
  LocalCluster (ratios against in-process at the same N);
- at the largest N, a plain Python loop over our single-run ``simulate`` (timed on --loop-runs,
  extrapolated), and EMA Workbench driving PySD on our XMILE export of the political register (timed on --pysd-runs
  experiments, extrapolated). PySD cannot run the freight network, so this side runs the political
  register alone with the network's contributions of a default run as fixed series: it does less work;
- peak RSS of ``multivector explore`` in a fresh process for the --rss sizes, and of building the
  design alone at 10^5 and 10^6 runs (the part of memory that grows with N; chunks do not).
Writes bench/results/explore.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


import multivector as mv
from multivector.explore.ensemble import explore, make_design

from publish import publish

ROOT = Path(__file__).resolve().parents[1]


class RssSampler:
    """Peak resident memory of this process and its children (sampled every second), in MB."""

    def __enter__(self):
        import threading

        import psutil

        self.largest = self.total = 0.0
        self._stop = threading.Event()
        me = psutil.Process()

        def sample():
            while not self._stop.wait(1.0):
                procs = [me, *me.children(recursive=True)]
                sizes = []
                for p in procs:
                    try:
                        sizes.append(p.memory_info().rss / 2**20)
                    except psutil.Error:
                        pass
                self.largest = max(self.largest, max(sizes, default=0))
                self.total = max(self.total, sum(sizes))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def partial_rss(n: int, minutes: float, scheduler: str, chunk_size: int) -> dict:
    """Start ``multivector explore --n n`` in a fresh process, sample the peak memory of its
    process tree for ``minutes``, then kill it: the memory of a run too long to finish here.
    Returns peak RSS (largest process; all processes summed, which counts pages that forked workers
    share with the parent once per process) and the peak sum of PSS (each shared page split among
    its sharers: the memory the run really takes), runs written, and seconds."""
    import signal

    import psutil

    from multivector.explore.store import Store

    db = Path(tempfile.mkdtemp()) / "partial.duckdb"
    cmd = [sys.executable, "-m", "multivector", "explore", "kazakhstan", "--n", str(n), "--chunk-size",
           str(chunk_size), "--db", str(db), "--run-id", "p", "--scheduler", scheduler]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    root = psutil.Process(proc.pid)
    largest = total = pss = 0.0
    t = time.perf_counter()
    while time.perf_counter() - t < minutes * 60 and proc.poll() is None:
        sizes, shares = [], []
        for p in [root, *root.children(recursive=True)]:
            try:
                m = p.memory_full_info()
                sizes.append(m.rss / 2**20)
                shares.append(m.pss / 2**20)
            except psutil.Error:
                pass
        largest, total = max(largest, max(sizes, default=0)), max(total, sum(sizes))
        pss = max(pss, sum(shares))
        time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(db, read_only=True) as store:
        done = int(store.con.execute("SELECT coalesce(sum(stop - first), 0) FROM chunks").fetchone()[0])
        problems = store.integrity("p")
    return {"largest": largest, "total": total, "pss": pss, "done": done, "seconds": time.perf_counter() - t,
            "problems": problems}


def child_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Peak resident memory (MB) and wall time of a command run in a fresh process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True).stdout
    rss, secs = out.split()
    return float(rss), float(secs)


def ema_pysd(scenario, runs: int) -> float:
    """Seconds per experiment of EMA Workbench + PySD on the political register's XMILE export."""
    import pysd
    from ema_workbench import Model, RealParameter, ScalarOutcome, SequentialEvaluator, perform_experiments

    from multivector.model.xmile import export_xmile

    tmp = Path(tempfile.mkdtemp()) / "kz.xmile"
    export_xmile(scenario, tmp)
    pm = pysd.read_xmile(str(tmp))
    design = make_design(scenario, 2)

    def run_pysd(**params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pm.run(params=params, return_columns=["middle_power_index"])
        return {"mpi_final": float(out["middle_power_index"].iloc[-1])}

    model = Model("kz", function=run_pysd)
    model.uncertainties = [RealParameter(n, lo, hi) for n, (lo, hi) in zip(design.names, design.bounds)]
    model.outcomes = [ScalarOutcome("mpi_final")]
    with SequentialEvaluator(model) as evaluator:
        t = time.perf_counter()
        perform_experiments(model, scenarios=runs, evaluator=evaluator)
        return (time.perf_counter() - t) / runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", type=int, nargs="+", default=[1000, 10000], help="ensemble sizes to time")
    ap.add_argument("--executors", nargs="+", default=["inprocess", "processes", "local"],
                    choices=["inprocess", "processes", "local"])
    ap.add_argument("--chunk-size", type=int, default=250)
    ap.add_argument("--pysd-runs", type=int, default=20)
    ap.add_argument("--loop-runs", type=int, default=10)
    ap.add_argument("--rss", type=int, nargs="*", default=[1000, 4000])
    ap.add_argument("--partial", type=float, nargs=2, metavar=("N", "MINUTES"),
                    help="only: peak memory of an N-run exploration over its first MINUTES, then stop "
                         "(executor: the first of --executors)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "explore.md")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.partial:
        n, minutes = int(args.partial[0]), args.partial[1]
        scheduler = args.executors[0] if args.executors[0] != "inprocess" else "inprocess"
        r = partial_rss(n, minutes, scheduler, args.chunk_size)
        text = (f"# Memory of a {n:,}-run exploration (first {minutes:g} minutes)\n\n"
                f"Executor '{scheduler}' ({os.cpu_count()} cores), chunks of {args.chunk_size}, measured "
                f"{time.strftime('%Y-%m-%d %H:%M')}: {r['done']:,} runs written in {r['seconds']:,.0f} s, then killed "
                f"(SIGKILL; store integrity after the kill: {r['problems'] or 'clean'}).\n\n"
                f"| peak RSS | MB |\n|:--|--:|\n| largest process | {r['largest']:,.0f} |\n"
                f"| all processes, RSS summed | {r['total']:,.0f} |\n"
                f"| all processes, PSS summed (shared pages counted once) | {r['pss']:,.0f} |\n")
        print(text)
        publish(args.out, text)
        return
    s = mv.load("kazakhstan")
    tmp = Path(tempfile.mkdtemp())
    rows = []

    labels = {"inprocess": "in-process", "processes": f"process pool ({os.cpu_count()} workers)",
              "local": f"Dask LocalCluster ({os.cpu_count()} workers, start included)"}
    for n in args.ns:
        for ex in args.executors:
            t = time.perf_counter()
            with RssSampler() as rss:
                explore("kazakhstan", n=n, db=tmp / f"{ex}{n}.duckdb", run_id="r", chunk_size=args.chunk_size,
                        scheduler=None if ex == "inprocess" else ex)
            rows.append((f"explore, {labels[ex]}", n, time.perf_counter() - t,
                         f"measured; peak RSS {rss.largest:,.0f} MB largest process, {rss.total:,.0f} MB all"))
            print(rows[-1], flush=True)
    args.n = max(args.ns)
    if args.loop_runs > 0:           # 0 skips the baseline
        design = make_design(s, args.loop_runs).samples()
        t = time.perf_counter()
        for i in range(args.loop_runs):
            mv.simulate(s, samples=design.iloc[[i]].reset_index(drop=True), run_ids=[i])
        per_run = (time.perf_counter() - t) / args.loop_runs
        rows.append(("Python loop over single-run simulate", args.n, per_run * args.n,
                     f"extrapolated from {args.loop_runs} runs"))
    try:
        if args.pysd_runs > 0:       # 0 skips the baseline
            per_exp = ema_pysd(s, args.pysd_runs)
            rows.append(("EMA Workbench + PySD, political register only", args.n, per_exp * args.n,
                         f"extrapolated from {args.pysd_runs} experiments; no network"))
    except ImportError as exc:
        rows.append(("EMA Workbench + PySD", args.n, float("nan"), f"not installed: {exc}"))

    rss_rows = []
    for n in args.rss:
        db = tmp / f"rss{n}.duckdb"
        rss, secs = child_rss_mb([sys.executable, "-m", "multivector", "explore", "kazakhstan", "--n", str(n),
                                  "--chunk-size", str(args.chunk_size), "--db", str(db), "--run-id", f"r{n}"])
        rss_rows.append((f"explore N = {n:,}", rss, secs))
        print(rss_rows[-1], flush=True)
    for n in (100_000, 1_000_000):
        code = (f"import multivector as mv; from multivector.explore.ensemble import make_design; "
                f"d = make_design(mv.load('kazakhstan'), {n}).samples(); print(d.shape)")
        rss, secs = child_rss_mb([sys.executable, "-c", code])
        rss_rows.append((f"design alone N = {n:,}", rss, secs))
        print(rss_rows[-1], flush=True)

    base = {n: n / secs for name, n, secs, _ in rows if name == "explore, in-process"}
    lines = ["# Explorations: executors, baselines and memory", "",
             f"Kazakhstan dataset, coupled 2024-2040, LHS over {len(make_design(s, 2).names)} uncertain "
             f"parameters, chunks of {args.chunk_size}. Machine: {os.cpu_count()} cores, Python "
             f"{platform.python_version()}. Measured {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "| what | N | seconds | runs/s | time vs in-process | note |", "|:--|--:|--:|--:|--:|:--|"]
    for name, n, secs, note in rows:
        rate = n / secs if secs == secs else float("nan")
        ratio = base[n] / rate if n in base else float("nan")
        lines.append(f"| {name} | {n:,} | {secs:,.1f} | {rate:,.1f} | {ratio:,.2f}x | {note} |")
    lines += ["", "| peak RSS | MB | seconds |", "|:--|--:|--:|"]
    lines += [f"| {name} | {rss:,.0f} | {secs:,.1f} |" for name, rss, secs in rss_rows]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    publish(args.out, text)


if __name__ == "__main__":
    main()
