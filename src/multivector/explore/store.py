"""The DuckDB store of explorations: runs, their designs, per-year outcomes, and finished chunks.

Layout (wide tables, one column per parameter or outcome, so that a 10^6-run exploration stays a few
columns of compressed doubles rather than 10^8 long-format rows):

- ``runs``: one row per exploration — id, scenario, scenario hash, code version, seed, sampler, N,
  chunk size, the sampled names, status, timings;
- ``experiments``: one row per run — the run id, the run index and every sampled value;
- ``outcomes``: one row per run and year — every yearly outcome;
- ``run_outcomes``: one row per run — scalar outcomes such as ``consolidated``;
- ``chunks``: one row per finished chunk.

A chunk's experiments, outcomes and its ``chunks`` row are written in one transaction, so a chunk is
wholly there or absent, whatever kills the process; a resumed run skips the chunks it finds.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from multivector.errors import InputError

MEMORY_LIMIT = "512MB"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, scenario VARCHAR, scenario_hash VARCHAR, code_version VARCHAR,
    seed BIGINT, sampler VARCHAR, n BIGINT, chunk_size BIGINT, design JSON, status VARCHAR,
    created DOUBLE, finished DOUBLE, seconds DOUBLE);
CREATE TABLE IF NOT EXISTS chunks (
    run_id VARCHAR, chunk BIGINT, first BIGINT, stop BIGINT, seconds DOUBLE, written DOUBLE,
    PRIMARY KEY (run_id, chunk));
"""


def _quoted(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """One lock per store file in this process: DuckDB lets threads write through separate
    connections, but two transactions that create or alter the same table conflict."""
    key = str(Path(path).resolve())
    with _LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


class Store:
    """A DuckDB file holding explorations. Open it with ``Store(path)``; close with ``close()``."""

    def __init__(self, path: str | Path = "multivector.duckdb", read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._con = None

    @property
    def con(self):
        if self._con is None:
            import duckdb
            if self.read_only and not self.path.exists():
                raise InputError(f"store {self.path} does not exist", hint="run 'multivector explore' first")
            if not self.read_only and not self.path.resolve().parent.exists():
                raise InputError(f"folder {self.path.resolve().parent} does not exist", hint="choose --db PATH")
            try:
                self._con = duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as exc:
                raise InputError(f"cannot open store {self.path}: {exc}",
                                 hint="is another multivector process using it, or is the folder read-only?") \
                    from None
            except duckdb.Error as exc:
                raise InputError(f"{self.path} is not a multivector store: {exc}") from None
            # DuckDB would otherwise cache up to 80% of the machine's memory; with a cap it spills to
            # disk instead, so an exploration's memory stays bounded whatever the size of the store
            self._con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            if not self.read_only:
                self._con.execute(SCHEMA)
        return self._con

    def close(self):
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """One all-or-nothing write, one at a time per store file in this process. A write the disk
        refuses (full, read-only) is rolled back and reported as an InputError naming the store;
        what was committed before stays intact."""
        import duckdb
        con = self.con
        with _write_lock(self.path):
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.Error:
                        pass              # the failed write already invalidated the transaction
                    raise
                con.execute("COMMIT")
            except (duckdb.IOException, duckdb.FatalException, duckdb.TransactionException, OSError) as exc:
                self.close()
                raise InputError(f"could not write to the store {self.path}: {str(exc).splitlines()[0]}",
                                 hint="is the disk full or the folder read-only? Free space, then continue "
                                      "with 'multivector explore --resume RUN_ID'") from None

    # -- runs --------------------------------------------------------------------------------------

    def create_run(self, run_id: str, meta: dict) -> None:
        if self.get_run(run_id, missing_ok=True) is not None:
            raise InputError(f"run '{run_id}' already exists in {self.path}",
                             hint=f"choose another --run-id, or continue it with --resume {run_id}")
        with self.transaction() as con:
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                        [run_id, meta["scenario"], meta["scenario_hash"], meta["code_version"], meta["seed"],
                         meta["sampler"], meta["n"], meta["chunk_size"], json.dumps(meta["design"]),
                         "running", time.time()])

    def get_run(self, run_id: str, missing_ok: bool = False) -> dict | None:
        if not self._has_table("runs"):
            if missing_ok:
                return None
            raise InputError(f"no run '{run_id}' in {self.path}", hint="'multivector runs' lists them")
        row = self.con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).fetchdf()
        if row.empty:
            if missing_ok:
                return None
            known = self.con.execute("SELECT run_id FROM runs ORDER BY created DESC LIMIT 5").fetchall()
            raise InputError(f"no run '{run_id}' in {self.path}",
                             hint="recent runs: " + (", ".join(r[0] for r in known) or "none"))
        meta = row.iloc[0].to_dict()
        meta["design"] = json.loads(meta["design"])
        return meta

    def list_runs(self) -> pd.DataFrame:
        if not self._has_table("runs"):
            return pd.DataFrame(columns=["run_id", "scenario", "sampler", "n", "status", "done"])
        return self.con.execute("""
            SELECT r.run_id, any_value(r.scenario) AS scenario, any_value(r.sampler) AS sampler,
                   any_value(r.n) AS n, any_value(r.seed) AS seed, any_value(r.status) AS status,
                   coalesce(sum(c.stop - c.first), 0) AS done, any_value(r.seconds) AS seconds,
                   to_timestamp(any_value(r.created)) AS created
            FROM runs r LEFT JOIN chunks c USING (run_id)
            GROUP BY r.run_id ORDER BY created""").fetchdf()

    def finished_runs(self, run_id: str) -> int:
        """How many runs of ``run_id`` its finished chunks hold."""
        return int(self.con.execute("SELECT coalesce(sum(stop - first), 0) FROM chunks WHERE run_id = ?",
                                    [run_id]).fetchone()[0])

    def unconverged_runs(self, run_id: str) -> int:
        """How many finished runs of ``run_id`` did not converge in some year (the route choice's gap
        missed, or a capacity price left unsettled; ``run_outcomes.converged`` flags each)."""
        return int(self.con.execute("SELECT count(*) FROM run_outcomes WHERE run_id = ? AND NOT converged",
                                    [run_id]).fetchone()[0])

    def finished_chunks(self, run_id: str) -> set[int]:
        return {r[0] for r in self.con.execute("SELECT chunk FROM chunks WHERE run_id = ?", [run_id]).fetchall()}

    def finish_run(self, run_id: str, seconds: float) -> None:
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = 'finished', finished = ?, seconds = coalesce(seconds, 0) + ? "
                        "WHERE run_id = ?", [time.time(), seconds, run_id])

    # -- chunks ------------------------------------------------------------------------------------

    def write_chunk(self, run_id: str, chunk: int, first: int, stop: int, experiments: pd.DataFrame,
                    outcomes: pd.DataFrame, run_outcomes: pd.DataFrame, seconds: float) -> None:
        """Write one chunk's rows and its ``chunks`` row in a single transaction."""
        with self.transaction() as con:
            for table, frame in (("experiments", experiments), ("outcomes", outcomes),
                                 ("run_outcomes", run_outcomes)):
                con.register("frame_view", frame)
                if not self._has_table(table):
                    con.execute(f"CREATE TABLE {table} AS SELECT * FROM frame_view")
                else:
                    # runs over other parameters (or scenarios) add their columns; others read NULL
                    have = set(con.execute(f"DESCRIBE {table}").fetchdf()["column_name"])
                    types = con.execute("DESCRIBE frame_view").fetchdf()
                    for col, kind in zip(types["column_name"], types["column_type"]):
                        if col not in have:
                            con.execute(f"ALTER TABLE {table} ADD COLUMN {_quoted(col)} {kind}")
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame_view")
                con.unregister("frame_view")
            con.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                        [run_id, chunk, first, stop, seconds, time.time()])

    # -- reading -----------------------------------------------------------------------------------

    def experiments(self, run_id: str, run: int | None = None) -> pd.DataFrame:
        """The design rows of ``run_id`` (only run ``run``'s when given), indexed by run."""
        self.get_run(run_id)
        sql, args = "SELECT * EXCLUDE (run_id) FROM experiments WHERE run_id = ?", [run_id]
        if run is not None:
            sql += " AND run = ?"
            args.append(int(run))
        frame = self.con.execute(sql + " ORDER BY run", args).fetchdf().set_index("run")
        return frame.dropna(axis=1, how="all")      # columns of other runs' parameters

    def outcomes(self, run_id: str, year: int | None = None, run: int | None = None) -> pd.DataFrame:
        self.get_run(run_id)
        sql = "SELECT * EXCLUDE (run_id) FROM outcomes WHERE run_id = ?"
        args = [run_id]
        if year is not None:
            sql += " AND year = ?"
            args.append(int(year))
        if run is not None:
            sql += " AND run = ?"
            args.append(int(run))
        return self.con.execute(sql + " ORDER BY run, year", args).fetchdf()

    def median_run(self, run_id: str, outcome: str) -> int:
        """The run whose run-level ``outcome`` is the (lower) median of the exploration's; the lowest such run."""
        self.get_run(run_id)
        if not self._has_table("run_outcomes"):
            raise InputError(f"run '{run_id}' has no finished runs yet", hint=f"multivector explore --resume {run_id}")
        if outcome not in set(self.con.execute("DESCRIBE run_outcomes").fetchdf()["column_name"]):
            raise InputError(f"run '{run_id}' has no outcome '{outcome}'")
        col = _quoted(outcome)
        row = self.con.execute(
            f"SELECT run FROM run_outcomes WHERE run_id = $1 AND {col} IS NOT NULL "
            f"AND {col} = (SELECT quantile_disc({col}, 0.5) FROM run_outcomes WHERE run_id = $1) "
            "ORDER BY run LIMIT 1", [run_id]).fetchone()
        if row is None:
            raise InputError(f"run '{run_id}' has no finished runs yet", hint=f"multivector explore --resume {run_id}")
        return int(row[0])

    def outcome_names(self) -> list[str]:
        """The yearly outcome columns in the store."""
        if not self._has_table("outcomes"):
            return []
        cols = self.con.execute("DESCRIBE outcomes").fetchdf()["column_name"].tolist()
        return [c for c in cols if c not in ("run_id", "run", "year")]

    def yearly_percentiles(self, run_id: str, outcomes, qs=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict[str, pd.DataFrame]:
        """Percentiles per year of each outcome, computed in DuckDB (a 10^6-run exploration never
        comes into memory whole). Returns outcome -> DataFrame indexed by year, columns p5, p25, …"""
        self.get_run(run_id)
        known = set(self.outcome_names())
        out = {}
        for o in outcomes:
            if o not in known:
                continue
            qlist = ", ".join(repr(float(q)) for q in qs)
            frame = self.con.execute(
                f"SELECT year, quantile_cont({_quoted(o)}, [{qlist}]) AS q FROM outcomes WHERE run_id = ? "
                "GROUP BY year ORDER BY year", [run_id]).fetchdf()
            out[o] = pd.DataFrame(frame["q"].tolist(), index=frame["year"].astype(int),
                                  columns=[f"p{round(q * 100)}" for q in qs])
        return out

    def run_outcomes(self, run_id: str) -> pd.DataFrame:
        self.get_run(run_id)
        return self.con.execute("SELECT * EXCLUDE (run_id) FROM run_outcomes WHERE run_id = ? ORDER BY run",
                                [run_id]).fetchdf().set_index("run")

    def export(self, run_id: str, folder: Path, fmt: str) -> list[Path]:
        """Write a run's experiments, yearly outcomes and run outcomes as ``fmt`` files (parquet or csv)
        into ``folder`` (new or empty); all three appear together or none does."""
        from multivector.io import atomic_folder

        if fmt not in ("parquet", "csv"):
            raise InputError(f"unknown export format '{fmt}'", hint="parquet or csv")
        design = self.get_run(run_id)["design"]
        sampled = (["policy"] if design.get("policies") else []) + list(design["names"])
        columns = ", ".join(["run_id", "run"] + [_quoted(c) for c in sampled])

        def fill(tmp: Path):
            for table in ("experiments", "outcomes", "run_outcomes"):
                cols = columns if table == "experiments" else "*"          # not other runs' parameters
                order = "run, year" if table == "outcomes" else "run"
                rel = self.con.sql(f"SELECT {cols} FROM {table} WHERE run_id = $1 ORDER BY {order}", params=[run_id])
                path = tmp / f"{table}.{fmt}"
                if fmt == "parquet":
                    rel.write_parquet(str(path))
                else:
                    rel.write_csv(str(path), header=True)

        return atomic_folder(folder, fill, new=True)

    def headline(self, run_id: str) -> str:
        """The run-level outcome analyses default to: the headline index's final value (``<index>_final``)."""
        cols = [c for c in self.run_outcomes(run_id).columns if c.endswith("_final")]
        if not cols:
            raise InputError(f"run '{run_id}' has no final index outcome", hint="name an --outcome")
        return cols[0]

    def integrity(self, run_id: str) -> list[str]:
        """Problems that would mean a half-written chunk: rows without their chunk, or the reverse."""
        problems = []
        meta = self.get_run(run_id)
        years = self.con.execute("SELECT count(DISTINCT year) FROM outcomes WHERE run_id = ?", [run_id]).fetchone()[0] \
            if self._has_table("outcomes") else 0
        chunks = self.con.execute("SELECT first, stop FROM chunks WHERE run_id = ?", [run_id]).fetchall()
        expected = sum(b - a for a, b in chunks)
        for table, per_run in (("experiments", 1), ("run_outcomes", 1), ("outcomes", max(years, 1))):
            if not self._has_table(table):
                if expected:
                    problems.append(f"{table} is missing")
                continue
            n = self.con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]
            if n != expected * per_run:
                problems.append(f"{table} holds {n} rows, the finished chunks account for {expected * per_run}")
            key = "(run, year)" if table == "outcomes" else "run"
            dup = self.con.execute(f"SELECT count(*) - count(DISTINCT {key}) FROM {table} WHERE run_id = ?",
                                   [run_id]).fetchone()[0]
            if dup:
                problems.append(f"{table} has {dup} duplicate rows")
        if meta["status"] == "finished" and expected != meta["n"]:
            problems.append(f"run marked finished with {expected} of {meta['n']} runs")
        return problems

    def _has_table(self, name: str) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0])
