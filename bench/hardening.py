"""Hardening report (run by hand; not a test): the broken-input corpus case by case, and the fault,
interruption, load and property tests, into bench/results/hardening.md.

    python bench/hardening.py
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from publish import publish

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def corpus_table() -> tuple[list[str], int, int]:
    from corpus import all_cases, run_cli, run_http

    from multivector.explore.ensemble import explore
    from multivector.interfaces.server import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    tmp = Path(tempfile.mkdtemp())
    db = tmp / "small.duckdb"
    explore("kazakhstan", n=64, seed=2, db=db, run_id="lhs64", chunk_size=32,
            names=["cpc_weather_rate", "mediation_activity", "eu_investment_willingness",
                   "capital_gain_per_event", "capital_decay_rate"])
    client = TestClient(create_app(db=db, max_n=1000), raise_server_exceptions=False)
    by_kind: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    failures = []
    cases = all_cases()
    for i, case in enumerate(cases):
        folder = tmp / f"case{i}"
        folder.mkdir()
        try:
            ok, why = run_cli(case, folder) if case.kind == "cli" else run_http(case, client)
        except Exception as exc:  # a broken case is a failure of the corpus, counted as such
            ok, why = False, f"{type(exc).__name__}: {exc}"
        kind = case.id.split(":")[0]
        by_kind[kind][0] += 1
        by_kind[kind][1] += ok
        if not ok:
            failures.append(f"- `{case.id}`: {why}")
    lines = ["| inputs | tried | clear error |", "|:--|--:|--:|"]
    names = {"csv": "dataset CSV cells, columns and files", "toml": "model.toml and politics.toml",
             "set": "--set overrides", "args": "CLI arguments", "levers": "levers (policy) files",
             "store": "store commands on a missing store", "tntp": "TNTP network and trip files",
             "http": "HTTP requests (bodies, paths, queries)"}
    for kind, (n, ok) in by_kind.items():
        lines.append(f"| {names.get(kind, kind)} | {n} | {ok} |")
    tried, passed = sum(v[0] for v in by_kind.values()), sum(v[1] for v in by_kind.values())
    lines.append(f"| **all** | **{tried}** | **{passed}** |")
    return lines + ([""] + failures if failures else []), tried, passed


def load_table() -> list[str]:
    """50 concurrent single runs and 5 concurrent explorations against a live server."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import numpy as np

    from conftest import serving
    from multivector.interfaces.server import create_app

    tmp = Path(tempfile.mkdtemp())
    lines = ["| load | answers | wall s | latency p50 / p95 s |", "|:--|:--|--:|--:|"]
    with serving(create_app(db=tmp / "load.duckdb", max_n=40, max_jobs=2, max_queued_runs=32)) as url:
        with httpx.Client(timeout=300) as c:
            c.post(f"{url}/api/scenarios/kazakhstan/run", json={})          # warm: load and compile once

        def run(i):
            t = time.perf_counter()
            with httpx.Client(timeout=300) as c:
                code = c.post(f"{url}/api/scenarios/kazakhstan/run",
                              json={"overrides": {"mediation_activity": i % 10}, "seed": i}).status_code
            return code, time.perf_counter() - t

        t = time.perf_counter()
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(run, range(50)))
        wall = time.perf_counter() - t
        codes = collections.Counter(c for c, _ in answers)
        ok = np.array([s for c, s in answers if c == 200])
        lines.append(f"| 50 concurrent runs (queue 32) | {dict(sorted(codes.items()))} | {wall:,.1f} | "
                     f"{np.median(ok):,.1f} / {np.percentile(ok, 95):,.1f} |")

        def start(i):
            with httpx.Client(timeout=60) as c:
                return c.post(f"{url}/api/explorations", json={"n": 8, "chunk_size": 4, "seed": i, "run_id": f"c{i}"})

        t = time.perf_counter()
        with ThreadPoolExecutor(5) as pool:
            started = list(pool.map(start, range(5)))
        with httpx.Client(timeout=60) as c:
            urls = [a.json()["status_url"] for a in started if a.status_code == 202]
            while True:
                states = [c.get(url + u).json()["status"] for u in urls]
                if all(x in ("finished", "failed") for x in states):
                    break
                time.sleep(0.5)
        codes = collections.Counter(a.status_code for a in started)
        lines.append(f"| 5 concurrent explorations of 8 runs (2 jobs at once) | {dict(sorted(codes.items()))}; "
                     f"jobs {dict(collections.Counter(states))} | {time.perf_counter() - t:,.1f} | |")
    return lines


def pytest_table() -> list[str]:
    files = ["tests/test_faults.py", "tests/test_properties.py", "tests/test_api_schema.py"]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *files],
                          cwd=ROOT, capture_output=True, text=True)
    secs = time.perf_counter() - t
    lines = ["| check | result |", "|:--|:--|"]
    for m in re.finditer(r"^(PASSED|FAILED|SKIPPED|ERROR) (\S+)", proc.stdout, re.M):
        lines.append(f"| `{m.group(2).split('::')[-1]}` | {m.group(1).lower()} |")
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return lines + ["", f"pytest: {summary} ({secs:,.0f} s)"]


def main():
    corpus, tried, passed = corpus_table()
    text = "\n".join([
        "# Hardening", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, Python {sys.version.split()[0]}.", "",
        "## Broken inputs", "",
        "Each case must end in a clear error — a non-zero exit naming the file, row, field or parameter, or a 4xx "
        "with a JSON `detail` that names it — with no traceback or 5xx and nothing written (tests/corpus.py).", "",
        *corpus, "",
        "## Interruption, faults, load, numerics, properties", "",
        "`test_sigkill_at_random_points_then_resume_is_identical`: 20 SIGKILLs at random moments of one "
        "exploration, the store's integrity checked after each, the resumed result equal to an uninterrupted "
        "run. `test_a_dask_worker_killed_mid_run_changes_nothing`: a worker process killed after the first "
        "chunk. `test_a_full_disk_gives_a_clear_error_and_no_corruption`: RLIMIT_FSIZE makes writes fail "
        "mid-run. `test_fifty_concurrent_runs_are_answered`, `test_five_concurrent_explorations_respect_the_job_limit`: "
        "a live uvicorn server. Schemathesis generates requests for every operation in the OpenAPI spec.", "",
        *pytest_table(), "", "## Load on a live server", "", *load_table(), ""])
    out = ROOT / "bench" / "results" / "hardening.md"
    publish(out, text)
    print(text)
    print(f"corpus: {passed} of {tried} passed")


if __name__ == "__main__":
    main()
