"""multivector validate: held-out observations against the model's ensemble, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import multivector as mv
from multivector.interfaces.cli import app
from multivector.views.document import run_document

from conftest import strict_json

DATA = Path(__file__).parent / "data" / "landlocked"


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(tmp_path, text, name="obs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_observation_equal_to_the_default_run_is_matched_exactly(tmp_path):
    """With --from default and one run the ensemble is the default run (same seed, same random stream):
    an observation copied from it has error 0 and lies in the band."""
    s = mv.load(DATA)
    doc = run_document(mv.simulate(s, years=[2024, 2025]))
    teu = doc["corridors"]["highland"]["teu"][1]
    share = doc["focus_overland_share"][0]
    obs = write(tmp_path, f"output,year,value,source\ncorridors.highland.teu,2025,{teu!r},copied\n"
                          f"focus_overland_share,2024,{share!r},copied\n"
                          f"corridors.highland.teu,2024,{2 * doc['corridors']['highland']['teu'][0]!r},double\n")
    r = cli("validate", DATA, "--observations", obs, "--from", "default", "--runs", 1, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    rows = out["rows"]
    assert rows[0]["rel_error"] == pytest.approx(0, abs=1e-12) and rows[0]["in_band"]
    assert rows[1]["rel_error"] == pytest.approx(0, abs=1e-12) and rows[1]["in_band"]
    assert rows[2]["rel_error"] == pytest.approx(-0.5) and not rows[2]["in_band"]
    assert out["summary"]["within_20pct"] == pytest.approx(2 / 3)
    assert out["summary"]["band_coverage"] == pytest.approx(2 / 3)


def test_an_observed_zero_has_no_relative_error_and_the_json_stays_json(tmp_path):
    """A count observed at zero (a year without a coded episode) has no relative error: null in --json
    (NaN is not JSON), a dash in the table, and left out of the within-20% share, whose denominator says
    so; the band's coverage still counts it."""
    s = mv.load(DATA)
    teu = run_document(mv.simulate(s, years=[2024]))["corridors"]["highland"]["teu"][0]
    obs = write(tmp_path, f"output,year,value,source\ncorridors.highland.teu,2024,{teu!r},copied\n"
                          "corridors.highland.teu,2024,0,zero\n")
    r = cli("validate", DATA, "--observations", obs, "--from", "default", "--runs", 1, "--json")
    assert r.exit_code == 0, r.output
    out = strict_json(r.stdout)
    assert out["rows"][1]["rel_error"] is None and not out["rows"][1]["in_band"]
    assert out["summary"]["with_relative_error"] == 1 and out["summary"]["within_20pct"] == 1.0
    assert out["summary"]["band_coverage"] == pytest.approx(0.5)
    r = cli("validate", DATA, "--observations", obs, "--from", "default", "--runs", 1)
    assert r.exit_code == 0, r.output
    assert "nan" not in r.output.lower()
    assert "100% of 1 observations within 20%" in r.output and "1 observed at zero" in r.output
    assert "covers 50% of 2" in r.output


def test_the_summary_counts_observed_zeros_apart_from_rows_the_model_leaves_empty():
    """Neither an observed zero nor a row without a modelled value (every run empty there) has a relative
    error; the summary says how many of each, so that the table's words name the right one."""
    import pandas as pd

    from multivector.views.validation import summary

    table = pd.DataFrame({"observed": [10.0, 0.0, 5.0], "median": [11.0, 0.2, np.nan],
                          "rel_error": [0.1, np.nan, np.nan], "in_band": [True, True, False]})
    out = summary(table)
    assert out["with_relative_error"] == 1 and out["within_20pct"] == 1.0
    assert out["observed_zero"] == 1 and out["without_model_value"] == 1
    assert out["band_coverage"] == pytest.approx(2 / 3)


def test_the_prior_ensemble_gives_a_band_and_the_table_prints(tmp_path):
    obs = write(tmp_path, "output,year,value,source\ncorridors.highland.teu,2024,120000,A-LL-TARGET\n")
    r = cli("validate", DATA, "--observations", obs, "--runs", 16)
    assert r.exit_code == 0, r.output
    assert "observed against 16 runs (prior)" in r.output and "the 5-95% band covers" in r.output
    doc = json.loads(cli("validate", DATA, "--observations", obs, "--runs", 16, "--json").stdout)
    row = doc["rows"][0]
    assert row["p5"] < row["median"] < row["p95"]


@pytest.mark.parametrize("text, expect", [
    ("output,year,value,source\ncorridors.highland.teu,2024,1,x\nno.such.output,2024,1,x\n",
     "row 3, column 'output'"),
    ("output,year,value,source\ncorridors.highland.teu,1999,1,x\n", "row 2, column 'year'"),
    ("output,year,value,source\ncorridors.highland.teu,2024,lots,x\n", "'lots' is not a number"),
    ("output,year,value,source\ncorridors.highland.teu,20x4,1,x\n", "is not a year"),
    ("output,year,value\ncorridors.highland.teu,2024,1\n", "missing column(s) source"),
    ("output,year,value,source\n", "no observation"),
])
def test_bad_observations_are_refused_with_the_row(tmp_path, text, expect):
    r = cli("validate", DATA, "--observations", write(tmp_path, text), "--runs", 2)
    assert r.exit_code == 2
    assert expect in r.output.replace("\n", " ") and "obs.csv" in r.output.replace("\n", "")
    assert "Traceback" not in r.output


def test_data_check_keeps_the_dataset_check():
    r = cli("data", "check", DATA)
    assert r.exit_code == 0 and "landlocked: OK" in r.output


@pytest.mark.slow
def test_the_kazakhstan_2024_file_runs(tmp_path):
    """The shipped example back-test: every row answered; the model's 2024 overland share lies above the
    speech's 80%, within the 92% of China-Europe transit boxes that entered Russia through Kazakhstan
    (NE-ENTRY-2020): 91% since China's boxes cross the Caspian on the feeders alone (Turkmenbashi's
    ferry carries bulk). The row itself reports the miss against the speech."""
    example = Path(__file__).parents[1] / "examples" / "observations_2024.csv"
    r = cli("validate", "kazakhstan", "--observations", example, "--runs", 2, "--from", "default", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["output"]: row for row in json.loads(r.stdout)["rows"]}
    assert len(rows) == 9
    assert 0.75 <= rows["focus_overland_share"]["median"] <= 0.92


@pytest.mark.slow
def test_the_kazakhstan_2025_file_is_held_out(tmp_path):
    """The shipped out-of-sample file: every 2025 row is answered by the model, and no 2025 figure is among
    what the dataset calibrates or history-matches on (targets.csv, observations.csv), so the test it
    makes stays a test."""
    s = mv.load("kazakhstan")
    assert s.targets["year"].max() <= 2024 and s.observations["year"].max() <= 2024
    example = Path(__file__).parents[1] / "examples" / "observations_2025.csv"
    r = cli("validate", "kazakhstan", "--observations", example, "--runs", 2, "--from", "default", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert len(rows) == 9 and {row["year"] for row in rows} == {2025}
    assert all(row["median"] > 0 for row in rows)


def test_run_shows_each_observed_figure_beside_the_model():
    """History is visible in `run`: every calibration target the run document reports (corridor volumes
    and times, gateway volumes by direction) and every observations.csv row that names an output is
    printed beside the modelled value, in its year; the JSON document stays the model's alone."""
    from multivector.views.validation import observed_points

    s = mv.load("kazakhstan")
    points = observed_points(s)
    assert points[("corridors.middle.tonnes", 2023)] == 1_372_000      # TITR less the crude to Baku
    assert points[("corridors.northern.transit_time_h_by_commodity.container", 2023)] == 360   # China's boxes
    assert points[("corridors.northern.transit_time_h_by_commodity.container", 2024)] == 468   # 2024's reports
    assert points[("corridors.oil_cpc.tonnes", 2022)] == pytest.approx(52.2e6)    # observations.csv, an output
    assert not any(path.startswith(("link.", "transfer.")) for path, _ in points)   # no document path
    r = cli("run", "kazakhstan", "--years", "2022:2024", "--json")
    corridors = json.loads(r.stdout)["corridors"]
    assert "obs" not in json.dumps(corridors)
    modelled = corridors["middle"]["tonnes"][1]        # the Middle Corridor's tonnes in 2023
    r = cli("run", "kazakhstan", "--years", "2022:2024")
    assert r.exit_code == 0, r.output
    assert f"{modelled:,.0f} (obs 1,372,000)" in r.stdout
    assert "container h" in r.stdout and "(obs 360)" in r.stdout and "(obs 468)" in r.stdout   # their times
