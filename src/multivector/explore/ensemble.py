"""Ensembles at scale: designs, chunked execution on several executors, streaming to the store.

An exploration is a design (one row of parameter and lever values per run) cut into chunks. Each
chunk is one batched ``simulate`` call; its outcomes are written to the DuckDB store in one
transaction and then forgotten, so memory stays bounded by the chunk size. Run ``i`` is always the
same design row with the same random stream (the seed and the run's future, :meth:`Design.futures`),
so the results do not depend on the chunk size, the executor, or whether the run was interrupted and
resumed. Runs of one future share their random stream and their posterior draws: the points of a
Morris trajectory, the rows of a Saltelli base sample, one sample under every policy. What differs
between them is then the design alone (common random numbers).
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multivector import __version__
from multivector.dataset import Scenario, default_dataset, load
from multivector.errors import ConvergenceWarning, InputError
from multivector.explore.store import Store
from multivector.io import require
from multivector.model import simulate

SAMPLERS = ("lhs", "sobol", "morris")


# ------------------------------------------------------------------------------------------------
# designs

def uncertain_names(scenario: Scenario) -> list[str]:
    """The uncertain parameters an exploration samples by default.

    Every ranged ``parameter`` of the political register (not the ones that define the outcome:
    ``[outcomes]`` threshold, floor, year and ``definitional``), plus the network parameters listed in
    ``model.toml`` under ``[model.exploration] uncertain``.
    """
    names = []
    pol = scenario.politics
    if pol is not None:
        definitional = set(pol.definitional) | set(pol.consolidation.values())
        for name, c in pol.sd.spec.constants.items():
            p = scenario.parameters[name]
            if c.kind == "parameter" and p.max > p.min and name not in definitional:
                names.append(name)
    for name in scenario.model.get("exploration", {}).get("uncertain", []):
        scenario.check_names([name])
        if name not in names:
            names.append(name)
    return names


def lever_names(scenario: Scenario) -> list[str]:
    return [p.name for p in scenario.parameters.values() if p.kind == "lever" and p.max > p.min]


def read_levers(scenario: Scenario, path: Path) -> pd.DataFrame:
    """Policies from a CSV file: one row per policy, columns ``policy`` (optional) and lever names."""
    path = Path(path)
    if not path.is_file():
        raise InputError("levers file not found", file=path, hint="a CSV with one column per lever, one row per policy")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot be read as CSV: {exc}", file=path) from None
    if "policy" not in table.columns:
        table.insert(0, "policy", [f"policy-{i}" for i in range(len(table))])
    if table.empty:
        raise InputError("no policy rows", file=path)
    for col in table.columns.drop("policy"):
        try:
            scenario.check_names([col], what="lever")
        except InputError as exc:
            raise InputError(exc.message, file=path, row=1, column=col, hint=exc.hint) from None
        p = scenario.parameters[col]
        if p.kind != "lever":
            raise InputError(f"'{col}' is an uncertain parameter, not a lever", file=path, row=1,
                             column=col, hint="policies set levers only; 'multivector params' marks which are levers")
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() | (values < p.min) | (values > p.max)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"'{table[col].iloc[i]}' is not a number in [{p.min:g}, {p.max:g}]", file=path,
                             row=i + 2, column=col)
        table[col] = values.astype(float)
    if table["policy"].duplicated().any():
        raise InputError("duplicate policy name", file=path, column="policy")
    return table.reset_index(drop=True)


#: Designs made for sensitivity indices: every parameter they name must vary on its own.
SENSITIVITY_SAMPLERS = ("morris", "sobol")


@dataclass
class Design:
    """What to run: sampled names and bounds, the sampler, N, the seed and fixed policies."""

    names: list[str]
    bounds: list[tuple[float, float]]
    sampler: str
    n: int
    seed: int
    policies: list[dict] | None = None       # lever settings crossed with every sample
    posterior: bool = False                   # each run also draws the free coefficients from the posterior

    def problem(self) -> dict:
        return {"num_vars": len(self.names), "names": list(self.names), "bounds": [list(b) for b in self.bounds]}

    def to_json(self) -> dict:
        return {"names": self.names, "bounds": self.bounds, "sampler": self.sampler, "n": self.n,
                "seed": self.seed, "policies": self.policies, "posterior": self.posterior}

    @classmethod
    def from_json(cls, d: dict) -> "Design":
        return cls(names=list(d["names"]), bounds=[tuple(b) for b in d["bounds"]], sampler=d["sampler"],
                   n=int(d["n"]), seed=int(d["seed"]), policies=d.get("policies"),
                   posterior=bool(d.get("posterior", False)))

    def _rows_per_sample(self) -> int:
        """Design rows each of the ``n`` samples makes: a Morris trajectory's k + 1 points, a Saltelli base
        sample's A and B rows and the k between them, a Latin hypercube's one."""
        return {"lhs": 1, "morris": len(self.names) + 1, "sobol": len(self.names) + 2}[self.sampler]

    def futures(self) -> np.ndarray:
        """Each run's future, one per row of :meth:`samples`: the key of its random stream and of its
        posterior draw. A sample's rows (:meth:`_rows_per_sample`) are one future, and a levers file's
        policies share the futures."""
        per = self._rows_per_sample()
        return np.tile(np.arange(self.n * per) // per, len(self.policies) if self.policies else 1)

    def samples(self) -> pd.DataFrame:
        """The full design, one row per run (deterministic in the seed)."""
        lo = np.array([b[0] for b in self.bounds])
        hi = np.array([b[1] for b in self.bounds])
        if self.sampler == "lhs":
            # Latin hypercube filled one column at a time (one stratum per run and parameter, a
            # uniform draw inside it): at 10^6 runs x 65 parameters scipy.stats.qmc's version holds
            # three design-sized arrays at once (1.7 GB); this holds one
            rng = np.random.default_rng(self.seed)
            x = np.empty((self.n, len(self.names)))
            for j in range(len(self.names)):
                x[:, j] = (rng.permutation(self.n) + rng.random(self.n)) / self.n
            x *= hi - lo
            x += lo
        elif self.sampler == "sobol":
            from SALib.sample import sobol

            x = sobol.sample(self.problem(), self.n, calc_second_order=False, seed=self.seed)
        elif self.sampler == "morris":
            from SALib.sample import morris

            x = morris.sample(self.problem(), self.n, num_levels=4, seed=self.seed)
        else:
            raise InputError(f"unknown sampler '{self.sampler}'", hint="one of " + ", ".join(SAMPLERS))
        frame = pd.DataFrame(x, columns=self.names, copy=False)
        if self.policies:
            policies = pd.DataFrame(self.policies)
            frame = policies.merge(frame, how="cross")
            frame = frame[["policy", *[c for c in frame.columns if c != "policy"]]]
        return frame

    @property
    def total(self) -> int:
        return self.n * self._rows_per_sample() * (len(self.policies) if self.policies else 1)


def make_design(scenario: Scenario, n: int, sampler: str = "lhs", seed: int = 0, levers: str | Path | None = None,
                names: Sequence[str] | None = None, posterior: bool | None = None) -> Design:
    """A design over the scenario's uncertain parameters and, with ``levers='all'``, its levers too;
    with a levers CSV, every policy row is crossed with every sample. With ``posterior`` (by default,
    when the dataset stores one), every run also takes the parameters the dataset's stored posteriors
    sample (the network's free coefficients, the political constants its history match samples) from
    them (:func:`design_samples`); ``posterior=False`` explores the prior. A Latin hypercube leaves them
    out of its design and draws them jointly; a Morris or Sobol design keeps those it names, so that each
    gets its own index, and reads their design values as quantiles of their posterior marginals."""
    if sampler not in SAMPLERS:
        raise InputError(f"unknown sampler '{sampler}'", hint="one of " + ", ".join(SAMPLERS))
    if n < 1:
        raise InputError("--n must be at least 1")
    if sampler == "sobol" and n & (n - 1):
        raise InputError(f"--n {n}: the Sobol (Saltelli) design needs a power of two", hint="e.g. --n 1024")
    names = list(names) if names else uncertain_names(scenario)
    policies = None
    if levers == "all":
        names += [x for x in lever_names(scenario) if x not in names]
    elif levers not in (None, "", "none"):
        table = read_levers(scenario, Path(levers))
        names = [x for x in names if x not in table.columns]
        policies = table.to_dict(orient="records")
    scenario.check_names(names)
    if posterior is None:
        from multivector.model.posterior import has_stored_posterior

        posterior = has_stored_posterior(scenario)
    if posterior:
        from multivector.model.posterior import stored_posteriors

        drawn = {c for post in stored_posteriors(scenario) for c in post.draw(1).columns}   # or say how to make one
        if sampler not in SENSITIVITY_SAMPLERS:
            names = [x for x in names if x not in drawn]
    if not names:
        raise InputError("nothing to sample: the scenario declares no uncertain parameter")
    bounds = [(scenario.parameters[x].min, scenario.parameters[x].max) for x in names]
    return Design(names=names, bounds=bounds, sampler=sampler, n=int(n), seed=int(seed), policies=policies,
                  posterior=bool(posterior))


def design_samples(scenario: Scenario, design: Design) -> pd.DataFrame:
    """The design's runs, one row each. With ``design.posterior``, the parameters the dataset's posteriors
    sample follow them: one the design names takes the posterior marginal's quantile at its design
    value's place in the prior range (a sensitivity index needs each input varied on its own, so a
    Morris or Sobol design gives up the posterior's correlations for those); the others are, in each
    future (:meth:`Design.futures`), a joint draw from each posterior (deterministic in the design's
    seed; the network's and the history's posteriors are drawn independently)."""
    frame = design.samples()
    if design.posterior:
        from multivector.model.posterior import stored_posteriors

        futures = design.futures()
        for k, post in enumerate(stored_posteriors(scenario)):
            draws = post.draw(int(futures.max()) + 1, design.seed + k)
            for name in draws.columns:
                if name in design.names:
                    lo, hi = design.bounds[design.names.index(name)]
                    at = np.clip((frame[name].to_numpy(float) - lo) / (hi - lo), 0.0, 1.0)
                    frame[name] = np.quantile(post.samples[name].to_numpy(float), at)
                else:
                    frame[name] = draws[name].to_numpy()[futures]
    return frame


# ------------------------------------------------------------------------------------------------
# one chunk

@functools.lru_cache(maxsize=4)
def cached_scenario(source: str) -> Scenario:
    """A scenario loaded once per process (and so compiled once): chunks, the server and reports share it."""
    return load(source)


def chunk_outcomes(ds) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run-year and per-run outcome tables of one simulated chunk."""
    runs = ds["run_id"].values if "run_id" in ds else ds["run"].values
    years = ds["year"].values
    n, y = len(runs), len(years)
    cols = {"run": np.repeat(runs, y), "year": np.tile(years, n)}
    flat = lambda a: np.asarray(a, dtype=float).reshape(n * y)
    index_name = ds.attrs["index"]
    cols[index_name] = flat(ds[index_name].values)
    if "counterfactual_index" in ds:
        cols[f"{index_name}_counterfactual"] = flat(ds["counterfactual_index"].values)
        cols[f"{index_name}_gain"] = flat(ds[index_name].values - ds["counterfactual_index"].values)
    cols["focus_overland_share"] = flat(ds["focus_overland_share"].values)
    cols["transit_revenue_usd_bn"] = flat(ds["focus_transit_revenue"].values)
    for c in ds["corridor"].values:
        if c == "other":
            continue
        t = ds["teu"].sel(corridor=c).values
        if np.any(t > 0):
            cols[f"{c}_teu"] = flat(t)
        cols[f"{c}_mt"] = flat(ds["tonnes"].sel(corridor=c).values / 1e6)
    kinds = dict(zip(ds["variable"].values, ds["variable_kind"].values))
    record = set(ds.attrs.get("record", ()))
    for v in ds["variable"].values:
        if kinds[v] == "stock" or v in record:
            cols[str(v)] = flat(ds["political"].sel(variable=v).values)
    yearly = pd.DataFrame(cols)
    index = ds[index_name].values
    per_run = pd.DataFrame({"run": runs, "consolidated": ds["consolidated"].values.astype(bool),
                            f"{index_name}_final": index[:, -1],
                            f"{index_name}_min": index.min(axis=1),
                            "converged": ds["converged"].values.all(axis=1)})
    if "consolidated_over_definitions" in ds:
        per_run["consolidated_over_definitions"] = ds["consolidated_over_definitions"].values
    if "counterfactual_index" in ds:
        per_run[f"{index_name}_gain_final"] = index[:, -1] - ds["counterfactual_index"].values[:, -1]
    return yearly, per_run


def run_chunk(source: str, samples: pd.DataFrame, run_ids: np.ndarray, seed: int, futures: np.ndarray):
    """Simulate one chunk (a top-level function, so that process pools and Dask can ship it): run
    ``run_ids[i]`` draws the random stream of its future ``futures[i]``."""
    t = time.perf_counter()
    scenario = cached_scenario(source)
    params = samples.drop(columns=["policy"], errors="ignore").reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # recorded per run as 'converged'
        ds = simulate(scenario, samples=params, seed=seed, run_ids=np.asarray(futures))
    yearly, per_run = chunk_outcomes(ds)
    per_run["run"] = np.asarray(run_ids)
    yearly["run"] = np.repeat(np.asarray(run_ids), ds.sizes["year"])
    experiments = samples.reset_index(drop=True).copy()
    experiments.insert(0, "run", np.asarray(run_ids))
    return experiments, yearly, per_run, time.perf_counter() - t


# ------------------------------------------------------------------------------------------------
# executors

class _InProcess:
    def map(self, fn, tasks):
        for task in tasks:
            yield task[0], fn(*task[1:])

    def close(self):
        pass


def _on_one_thread(fn, *args):
    """``fn(*args)`` with the equilibrium on one thread: in a worker process, of which there is one a
    core already."""
    from multivector.freight.sue import use_threads

    use_threads(1)
    return fn(*args)


class _Processes:
    def __init__(self, workers: int):
        from concurrent.futures import ProcessPoolExecutor

        from multivector.io import retain_freed_memory

        self.pool = ProcessPoolExecutor(max_workers=workers, initializer=retain_freed_memory)
        self.workers = workers

    def map(self, fn, tasks):
        from concurrent.futures import FIRST_COMPLETED, wait

        tasks = iter(tasks)
        pending = {}
        while True:
            while len(pending) < 2 * self.workers:
                task = next(tasks, None)
                if task is None:
                    break
                pending[self.pool.submit(_on_one_thread, fn, *task[1:])] = task[0]
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut.result()

    def close(self):
        self.pool.shutdown(cancel_futures=True)


class _Dask:
    def __init__(self, address: str | None):
        distributed = require("distributed", "dask", "the Dask executor")
        Client, LocalCluster = distributed.Client, distributed.LocalCluster
        if address is None:
            import dask

            from multivector.io import ENV_RETAIN

            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ low in its workers, which also turns off glibc's
            # adaptive mmap threshold: every large NumPy temporary is then mapped and unmapped afresh,
            # and the model ran 2.3x slower than in-process. The workers keep freed memory instead,
            # as the command line's own process does (multivector.io.retain_freed_memory).
            with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in ENV_RETAIN.items()}):
                self.cluster = LocalCluster(n_workers=max(1, os.cpu_count() or 1), threads_per_worker=1,
                                            processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        else:
            self.cluster = None
            try:
                self.client = Client(address, timeout="5s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn, tasks):
        from distributed import as_completed

        tasks = iter(tasks)
        futures = {}
        ac = as_completed()
        for _ in range(2 * self.workers):
            task = next(tasks, None)
            if task is None:
                break
            f = self.client.submit(_on_one_thread, fn, *task[1:], pure=False, retries=3)
            futures[f] = task[0]
            ac.add(f)
        for f in ac:
            yield futures.pop(f), f.result()
            task = next(tasks, None)
            if task is not None:
                g = self.client.submit(_on_one_thread, fn, *task[1:], pure=False, retries=3)
                futures[g] = task[0]
                ac.add(g)

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def check_scheduler(scheduler: str | None) -> None:
    """Refuse an unknown scheduler before anything starts."""
    if scheduler in (None, "", "inprocess", "in-process", "processes", "local"):
        return
    if not scheduler.startswith(("tcp://", "tls://", "ws://")):
        raise InputError(f"unknown scheduler '{scheduler}'", hint="local, processes, or a tcp://host:port address")


def executor(scheduler: str | None):
    check_scheduler(scheduler)
    if scheduler in (None, "", "inprocess", "in-process"):
        return _InProcess()
    if scheduler == "processes":
        return _Processes(max(1, os.cpu_count() or 1))
    return _Dask(None if scheduler == "local" else scheduler)


# ------------------------------------------------------------------------------------------------
# the exploration

def new_run_id(scenario_name: str) -> str:
    return f"{scenario_name}-{_dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def explore(scenario: str | Path, n: int = 100, *, sampler: str = "lhs", levers=None,
            seed: int = 0, run_id: str | None = None, db: str | Path = "multivector.duckdb",
            scheduler: str | None = None, chunk_size: int = 250, resume: str | None = None,
            progress: Callable[[int, int], None] | None = None, on_start: Callable[[str, int], None] | None = None,
            names: Sequence[str] | None = None, posterior: bool | None = None) -> str:
    """Run (or resume) an exploration into the store; return its run id. Each run draws the parameters
    the dataset's posteriors sample from them (``explore --from posterior``, the default when the
    dataset stores one); ``posterior=False`` keeps them at their stated values or ranges (``--from prior``).

    With ``scheduler="local"`` or ``"processes"``, worker processes start by importing the calling
    script, so a script must call this under ``if __name__ == "__main__":`` (as with any process pool).
    """
    check_scheduler(scheduler)
    if resume and not Path(db).is_file():
        raise InputError(f"no run '{resume}': the store {db} does not exist", hint="choose --db PATH")
    if not resume:
        # everything that can be checked is checked before the store file is created
        source = str(scenario)
        s = cached_scenario(source)
        if s.politics is None:
            raise InputError(f"scenario '{source}' has no political register to explore")
        if chunk_size < 1:
            raise InputError("--chunk-size must be at least 1")
        design = make_design(s, n, sampler, seed, levers, names, posterior)
        run_id = run_id or new_run_id(s.name)
        if not run_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InputError(f"run id '{run_id}' may hold only letters, digits, '-', '_' and '.'")
        source = str(Path(source).resolve()) if Path(source).is_dir() else source
    ex = executor(scheduler)              # an unreachable cluster fails here, before anything is written
    store = Store(db)
    try:
        if resume:
            meta = store.get_run(resume)
            run_id, source, seed = resume, meta["scenario"], int(meta["seed"])
            chunk_size = int(meta["chunk_size"])
            design = Design.from_json(meta["design"])
            s = cached_scenario(source)
            if s.fingerprint() != meta["scenario_hash"]:
                raise InputError(f"the scenario '{source}' changed since run {resume} started",
                                 hint="resume with the same dataset, or start a new run")
        else:
            store.create_run(run_id, {"scenario": source, "scenario_hash": s.fingerprint(),
                                      "code_version": __version__, "seed": seed, "sampler": design.sampler,
                                      "n": design.total, "chunk_size": chunk_size, "design": design.to_json()})
        if on_start:
            on_start(run_id, design.total)
        samples = design_samples(s, design)
        total = len(samples)
        done = store.finished_chunks(run_id)
        chunks = [(c, c * chunk_size, min(total, (c + 1) * chunk_size))
                  for c in range(-(-total // chunk_size)) if c not in done]
        finished = total - sum(b - a for _, a, b in chunks)
        if progress:
            progress(finished, total)
        futures = design.futures()
        tasks = ((c, source, samples.iloc[a:b], np.arange(a, b), seed, futures[a:b]) for c, a, b in chunks)
        bounds = {c: (a, b) for c, a, b in chunks}
        t0 = time.perf_counter()
        for c, (experiments, yearly, per_run, secs) in ex.map(run_chunk, tasks):
            a, b = bounds[c]
            for frame in (experiments, yearly, per_run):
                frame.insert(0, "run_id", run_id)
            store.write_chunk(run_id, c, a, b, experiments, yearly, per_run, secs)
            finished += b - a
            if progress:
                progress(finished, total)
        store.finish_run(run_id, time.perf_counter() - t0)
        return run_id
    finally:
        ex.close()
        store.close()


def explore_default(scenario: str | Path | None = None, n: int = 1000, **kwargs) -> str:
    """``explore`` on the default built-in dataset when no scenario is named: the public API's entry."""
    return explore(scenario or default_dataset(), n, **kwargs)


def strategies(scenario: str | Path, levers: str | Path, n: int = 200, *, outcome: str | None = None,
               db: str | Path = "multivector.duckdb", **kwargs) -> tuple[str, pd.DataFrame]:
    """Evaluate each policy of a levers CSV over one shared ensemble of ``n`` futures; return the run id
    and the table per policy (probability of consolidation, expected, worst, regret, Pareto)."""
    from multivector.explore.analysis import strategy_table

    if levers is None:
        raise InputError("strategies need a levers file", hint="a CSV with one column per lever, one row per policy")
    run_id = explore(scenario, n, sampler="lhs", levers=levers, db=db, **kwargs)
    with Store(db, read_only=True) as store:
        return run_id, strategy_table(store, run_id, outcome)


# ------------------------------------------------------------------------------------------------
# one stored run again

#: How closely a replayed run must match what its exploration stored (the model is deterministic in a
#: run's parameters, seed and run id, and a run's result does not depend on its batch).
REPLAY_RTOL = 1e-6


def replay(store: Store, run_id: str, run: int | None = None, *, keep_routes: bool = True):
    """Simulate run ``run`` of a stored exploration again, from its recorded parameters, seed and
    future (its random stream), to get what the store does not keep (link flows, route flows). The
    default run is the one whose final headline index is the ensemble's median. Returns
    ``(scenario, ds, run, policy)``.

    The replay must reproduce the stored outcomes (corridor volumes, index, stocks, per year), else
    the model or the dataset changed since and an :class:`InputError` says so.
    """
    meta = store.get_run(run_id)
    scenario = cached_scenario(meta["scenario"])
    if scenario.fingerprint() != meta["scenario_hash"]:
        raise InputError(f"the scenario '{meta['scenario']}' changed since run {run_id}",
                         hint="replay it with the dataset it was run with")
    if run is None:
        run = store.median_run(run_id, store.headline(run_id))
    row = store.experiments(run_id, run=run)
    if row.empty:
        done = store.finished_runs(run_id)
        raise InputError(f"run {run_id} holds no run {run}",
                         hint=f"--run takes 0–{int(meta['n']) - 1}; the finished chunks hold {done:,} of them")
    policy = str(row["policy"].iloc[0]) if "policy" in row else None
    samples = row.drop(columns=["policy"], errors="ignore").reset_index(drop=True)
    future = Design.from_json(meta["design"]).futures()[run]          # the run's random stream
    ds = simulate(scenario, samples=samples, seed=int(meta["seed"]), run_ids=np.array([future]),
                  keep_routes=keep_routes)
    yearly, _ = chunk_outcomes(ds)
    stored = store.outcomes(run_id, run=run)
    common = [c for c in yearly.columns if c in stored.columns and c not in ("run", "year")]
    a = yearly[common].to_numpy(dtype=float)
    b = stored[common].to_numpy(dtype=float)
    if a.shape != b.shape or not np.allclose(a, b, rtol=REPLAY_RTOL, atol=1e-9, equal_nan=True):
        raise InputError(f"run {run} of {run_id} does not come out as stored (stored by code version "
                         f"{meta['code_version']}, this is {__version__})",
                         hint="the model changed since; export a fresh run with --scenario instead")
    return scenario, ds, int(run), policy
