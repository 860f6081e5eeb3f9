"""Progress of long commands: the library reports ``(done, total)`` as it goes, the CLI draws one kind
of bar on stderr, and a command asked for JSON still prints only its document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import multivector as mv
from multivector.interfaces.cli import app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


class Recorder:
    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int):
        self.calls.append((done, total))

    def assert_counts_up_to_the_total(self):
        assert self.calls, "progress was never reported"
        done = [d for d, _ in self.calls]
        assert all(b >= a for a, b in zip(done, done[1:])), done
        assert all(0 <= d <= t for d, t in self.calls), self.calls
        assert self.calls[-1][0] == self.calls[-1][1], self.calls[-1]
        assert len(set(done)) > 1, "more than one step"


@pytest.fixture()
def landlocked(tmp_path):
    target = tmp_path / "landlocked"
    shutil.copytree(DATA / "landlocked", target)
    return target


def test_simulate_reports_each_year(landlocked):
    rec = Recorder()
    ds = mv.simulate(mv.load(landlocked), progress=rec)
    years = ds.sizes["year"]
    assert rec.calls == [(k, years) for k in range(1, years + 1)]
    rec = Recorder()
    mv.simulate(mv.load(DATA / "tiny"), years=[2024, 2025, 2026], progress=rec)
    assert rec.calls == [(1, 3), (2, 3), (3, 3)]


def test_calibrate_reports_evaluations_up_to_the_total(tiny_dir):
    from multivector.model.calibrate import calibrate

    rec = Recorder()
    res = calibrate(mv.load(tiny_dir), max_nfev=10, progress=rec)
    rec.assert_counts_up_to_the_total()
    assert rec.calls[-1][0] == rec.calls[-1][1], "the bar ends full however many fits it took"
    assert res.values == calibrate(mv.load(tiny_dir), max_nfev=10).values    # reporting changes nothing


def test_checks_report_runs_up_to_the_total(landlocked):
    from multivector.explore.checks import run_checks

    (landlocked / "checks.toml").write_text('[settings]\npairs = 2\nyears = [2030, 2035]\n\n[[direction]]\n'
                                           'id = "TARIFF"\nparameter = "transit_tariff_stance"\nexpect = "not_up"\n'
                                           'outcome = "focus_overland_share"\n\n[[bound]]\nid = "INDEX"\n'
                                           'outcome = "index"\nmin = 0\nmax = 1\n')
    rec = Recorder()
    report = run_checks(mv.load(landlocked), pairs=2, seed=0, scan=True, progress=rec)
    rec.assert_counts_up_to_the_total()
    assert rec.calls[-1][0] == report.runs, "the total is every run the checks simulated"
    quiet = run_checks(mv.load(landlocked), pairs=2, seed=0, scan=True)
    assert quiet.table().equals(report.table()) and quiet.dead == report.dead


def test_report_of_an_exploration_reports_its_steps(landlocked, tmp_path):
    from multivector.explore.ensemble import explore
    from multivector.explore.store import Store
    from multivector.views.report import collect_exploration

    db = tmp_path / "r.duckdb"
    explore(str(landlocked), n=8, seed=1, db=db, run_id="r1", chunk_size=8)
    rec = Recorder()
    with Store(db, read_only=True) as store:
        collect_exploration(store, "r1", progress=rec)
    rec.assert_counts_up_to_the_total()
    assert [d for d, _ in rec.calls] == list(range(1, rec.calls[-1][1] + 1)), "one call per step"


def test_json_commands_print_only_their_document(tiny_dir):
    """--json: no bar and no log lines, even on stderr (scripts may read 2>&1)."""
    r = runner.invoke(app, ["calibrate", str(tiny_dir), "--json", "--max-evaluations", "8"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == json.loads(r.stdout) and r.stderr == ""
    r = runner.invoke(app, ["run", str(tiny_dir), "--json", "--years", "2024:2025"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["years"] == [2024, 2025] and r.stderr == ""


def test_without_a_terminal_progress_is_a_line_per_step_on_stderr(tiny_dir):
    r = runner.invoke(app, ["calibrate", str(tiny_dir), "--max-evaluations", "8"])
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stderr.splitlines() if x.startswith("calibrating tiny: ")]
    from multivector.model.calibrate import ROUTE_ROUNDS

    total = ROUTE_ROUNDS * 8 + 1        # the bar's total allows for refits; one that is not needed is skipped
    assert lines and lines[-1].startswith(f"calibrating tiny: {total}/{total} evaluations")
    assert "evaluations" not in r.stdout and "observed vs modelled" in r.stdout
