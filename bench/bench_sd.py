"""Batched system-dynamics runs vs PySD running our XMILE export (run by hand; not a test).

    python bench/bench_sd.py [--model PATH] [--n 10000] [--pysd-runs 100] [--repeats 5]

The model (default: tests/data/sd/example.toml) is run for N parameter sets (a Latin hypercube
over every constant that has a min and a max) as one batch. PySD runs the model's XMILE export one
parameter set at a time; it is timed on a subset (--pysd-runs) and extrapolated to N, which the
output says. A one-run-at-a-time loop of our own engine is timed on the same subset for reference.
The stocks of the PySD subset are compared with the batch (max relative difference). Prints the
table and writes bench/results/sd.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import qmc

from multivector.sd import compile_model, to_xmile

from publish import publish

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "tests" / "data" / "sd" / "example.toml"


def design(model, n, seed):
    names = [k for k, c in model.spec.constants.items() if c.min is not None and c.max is not None and c.max > c.min]
    if not names:
        return {}
    lo = np.array([model.spec.constants[k].min for k in names])
    hi = np.array([model.spec.constants[k].max for k in names])
    x = qmc.scale(qmc.LatinHypercube(d=len(names), seed=seed).random(n), lo, hi)
    return {k: x[:, i] for i, k in enumerate(names)}


def timed(fn, repeats):
    """Median seconds of ``repeats`` calls and the last result. The previous result is let go before each
    call, so that a batch's memory (10,000 runs at every step: hundreds of MB) is reused, not held twice."""
    out, times = None, []
    for _ in range(repeats):
        out = None
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--pysd-runs", type=int, default=100, help="PySD runs timed before extrapolating to N")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sd.md")
    args = ap.parse_args()

    if args.model.name == "politics.toml":  # a dataset's political register (with coupling tables)
        from multivector.dataset import load_politics

        model = load_politics(args.model).sd
    else:
        model = compile_model(args.model)
    n, m = args.n, min(args.pysd_runs, args.n)
    params = design(model, n, args.seed)
    model.run(n=2)  # warm up
    batch_s, ds = timed(lambda: model.run(params, n), args.repeats)

    def loop():
        return [model.run({k: v[i] for k, v in params.items()}) for i in range(m)]

    loop_s, _ = timed(loop, 1)

    rows = [("multivector.sd, one batch", n, batch_s, "measured")]
    rows.append(("multivector.sd, one run at a time", n, loop_s * n / m, f"extrapolated from {m} runs"))
    pysd_note, max_rel = "", None
    try:
        import pysd
    except ImportError:
        pysd = None
        pysd_note = "PySD is not installed (pip install pysd): no PySD timing."
    if pysd is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.xmile"
            to_xmile(model, None, None, path)
            t = time.perf_counter()
            pm = pysd.read_xmile(str(path))
            translate_s = time.perf_counter() - t
            stocks = model.stock_names
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PySD warns on every lookup call beyond its last point
                pm.run(return_columns=stocks)  # warm up
                results = []
                t = time.perf_counter()
                for i in range(m):
                    results.append(pm.run(params={k: float(v[i]) for k, v in params.items()},
                                          return_columns=stocks))
                pysd_s = time.perf_counter() - t
        rows.append((f"PySD {pysd.__version__} on the XMILE export", n, pysd_s * n / m, f"extrapolated from {m} runs"))
        max_rel = 0.0
        for i, df in enumerate(results):
            for s in stocks:
                ours = ds[s].values[i]
                col = next(c for c in df.columns if c.lower().replace(" ", "_") == s)
                rel = np.abs(df[col].values - ours) / np.maximum(np.abs(ours), 1e-12)
                max_rel = max(max_rel, float(rel.max()))
        pysd_note = (f"PySD translated the XMILE file in {translate_s:.2f} s (not included). "
                     f"Max relative difference of the stocks, PySD vs batch, over the {m} runs: {max_rel:.1e}.")

    base = rows[0][1] / rows[0][2]
    lines = [
        f"# System dynamics: one batch vs PySD ({args.model.name})",
        "",
        f"Model: {model}. N = {n:,} parameter sets (Latin hypercube over {len(params)} constants with a "
        f"range), every step recorded. Batch time: median of {args.repeats}. Machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
        "| engine | N | seconds | runs/s | batch faster by | note |",
        "|:--|--:|--:|--:|--:|:--|",
    ]
    for name, nn, secs, note in rows:
        rate = nn / secs
        lines.append(f"| {name} | {nn:,} | {secs:.3f} | {rate:,.0f} | {base / rate:,.0f}x | {note} |")
    lines += ["", pysd_note] if pysd_note else []
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    publish(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
