"""The command line as a user meets it: tables, JSON, errors without tracebacks, nothing half-written."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from multivector.interfaces.cli import app

from conftest import edit_csv

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_prints_tables(tiny_dir):
    r = invoke("run", tiny_dir, "--years", "2024:2024")
    assert r.exit_code == 0, r.output
    assert "middle" in r.output and "Top bottlenecks" in r.output
    assert "Kazakhstan's share of overland" in r.output


def test_run_json_keys(tiny_dir):
    r = invoke("run", tiny_dir, "--json")
    doc = json.loads(r.stdout)
    assert doc["years"] == [2024]
    for c in ("sea", "middle", "north"):
        assert set(doc["corridors"][c]) >= {"teu", "tonnes", "share"}
        assert len(doc["corridors"][c]["teu"]) == 1
    assert 0 <= doc["focus_overland_share"][0] <= 1
    assert {"link", "year", "utilisation"} <= set(doc["bottlenecks"][0])


def test_first_run_on_a_machine_says_it_is_compiling(tiny_dir, monkeypatch):
    """A fresh install spends its first 20 s compiling the route choice: the bar must not sit at 0 unexplained."""
    import multivector.freight.sue as sue
    import multivector.interfaces.cli as cli

    monkeypatch.setattr(sue, "kernels_cached", lambda: False)
    monkeypatch.setattr(cli, "_noticed", False)
    r = invoke("run", tiny_dir, "--years", "2024:2024")
    assert r.exit_code == 0, r.output
    assert "compiling the model's kernels" in r.stderr
    monkeypatch.setattr(cli, "_noticed", False)
    assert "compiling" not in invoke("run", tiny_dir, "--json").stderr        # --json writes its document alone
    monkeypatch.setattr(sue, "kernels_cached", lambda: True)
    monkeypatch.setattr(cli, "_noticed", False)
    assert "compiling" not in invoke("run", tiny_dir, "--years", "2024:2024").stderr


def test_kernels_cached_reads_numbas_cache(tmp_path):
    """An empty Numba cache (a fresh machine) reads as not compiled, not as unknown."""
    probe = "from multivector.freight.sue import kernels_cached; print(kernels_cached())"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    fresh = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"


def test_every_command_keeps_freed_memory(tiny_dir, monkeypatch):
    """The command line's process keeps what a batch frees for the next year's arrays (glibc's thresholds;
    a batch of 1,000 ran 1.3x faster here), whatever the command."""
    import multivector.io as io

    calls = []
    monkeypatch.setattr(io, "retain_freed_memory", lambda: calls.append(1) or True)
    assert invoke("data", "check", tiny_dir).exit_code == 0
    assert invoke("run", tiny_dir, "--json").exit_code == 0
    assert len(calls) == 2


def test_retain_freed_memory_takes_on_glibc():
    import platform

    from multivector.io import ENV_RETAIN, retain_freed_memory

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is expected
    assert retain_freed_memory() is expected                        # asking twice is harmless
    assert set(ENV_RETAIN) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}   # what spawned workers take


def test_set_changes_result_and_unknown_name_is_an_error(tiny_dir):
    base = json.loads(invoke("run", tiny_dir, "--json").stdout)
    dear = json.loads(invoke("run", tiny_dir, "--json", "--set", "tariff_sea=0.3").stdout)
    assert dear["corridors"]["sea"]["teu"][0] < base["corridors"]["sea"]["teu"][0]
    r = invoke("run", tiny_dir, "--set", "tarif_sea=0.3")
    assert r.exit_code == 2
    assert "unknown parameter 'tarif_sea'" in r.output and "tariff_sea" in r.output
    assert invoke("run", tiny_dir, "--set", "tariff_sea=cheap").exit_code == 2


def test_out_writes_png_map(tiny_dir, tmp_path):
    out = tmp_path / "maps"
    r = invoke("run", tiny_dir, "--out", out)
    assert r.exit_code == 0, r.output
    png = out / "flows_2024.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_run_writes_nothing(tiny_dir, tmp_path):
    edit_csv(tiny_dir / "links.csv", 0, "length_km", "far")
    out = tmp_path / "maps"
    r = invoke("run", tiny_dir, "--out", out)
    assert r.exit_code == 2
    assert "links.csv, row 2, column 'length_km'" in r.output.replace("\n", "")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mv-")]


def test_bad_input_has_no_traceback_in_a_real_process(tiny_dir):
    edit_csv(tiny_dir / "links.csv", 1, "from", "NOWHERE")
    p = subprocess.run([sys.executable, "-m", "multivector", "run", str(tiny_dir)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "unknown node 'NOWHERE'" in p.stderr


def test_data_check_copy_and_sources(tiny_dir, tmp_path):
    r = invoke("data", "check", tiny_dir)
    assert r.exit_code == 0 and "OK" in r.output
    r = invoke("data", "sources", tiny_dir, "--json")
    assert json.loads(r.stdout)[0]["id"] == "A-TOY"
    edit_csv(tiny_dir / "sources.csv", 0, "note", "")
    r = invoke("data", "check", tiny_dir)
    assert r.exit_code == 2 and "rationale" in r.output


def test_data_check_fails_on_a_number_without_source(tiny_dir):
    edit_csv(tiny_dir / "links.csv", 2, "sources", "length_km=A-TOY")
    r = invoke("data", "check", tiny_dir)
    assert r.exit_code == 2
    assert "capacity_mt = 0.5 has no source" in r.output.replace("\n", "")


def test_calibrate_reaches_the_target(tiny_dir):
    r = invoke("calibrate", tiny_dir, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert abs(doc["fit"][0]["rel_error"]) < 0.01
    again = json.loads(invoke("calibrate", tiny_dir, "--json").stdout)
    assert again["values"] == doc["values"]          # reproducible
    r = invoke("calibrate", tiny_dir, "--write")
    assert r.exit_code == 0 and (tiny_dir / "calibration.toml").exists()
    run = json.loads(invoke("run", tiny_dir, "--json").stdout)
    assert run["corridors"]["middle"]["teu"][0] == pytest.approx(10000, rel=0.01)


def test_calibrate_with_a_coefficient_at_its_upper_bound(tiny_dir):
    # the finite-difference step must not leave the range: a coefficient at its upper bound steps down
    toml = tiny_dir / "model.toml"
    text = toml.read_text()
    at = text.index("[parameters.logit_scale_container]")
    toml.write_text(text[:at] + text[at:].replace("max = 1.0", "max = 0.002", 1))
    r = invoke("calibrate", tiny_dir, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["values"]["logit_scale_container"] <= 0.002


def test_params_json(tiny_dir):
    rows = json.loads(invoke("params", tiny_dir, "--json").stdout)
    assert {"name", "default", "min", "max", "unit", "source"} <= set(rows[0])


def test_bad_years(tiny_dir):
    r = invoke("run", tiny_dir, "--years", "2025:2024")
    assert r.exit_code == 2 and "before the first" in r.output


SIOUX = __import__("pathlib").Path(__file__).parent / "data" / "tntp" / "SiouxFalls"


def test_tntp_command_writes_flows(tmp_path):
    out = tmp_path / "flows.tsv"
    r = invoke("tntp", SIOUX / "SiouxFalls_net.tntp", SIOUX / "SiouxFalls_trips.tntp", "--gap", "1e-4",
               "--out", out)
    assert r.exit_code == 0, r.output
    assert "relative gap" in r.output and "converged" in r.output
    lines = out.read_text().splitlines()
    assert lines[0].split() == ["From", "To", "Volume", "Cost"] and len(lines) == 77


def test_tntp_command_wrong_header_is_a_clear_error(tmp_path):
    out = tmp_path / "flows.tsv"
    r = invoke("tntp", SIOUX / "SiouxFalls_trips.tntp", SIOUX / "SiouxFalls_trips.tntp", "--out", out)
    assert r.exit_code == 2 and "NUMBER OF NODES" in r.output
    assert not out.exists()


def test_tntp_command_reports_non_convergence(tmp_path):
    r = invoke("tntp", SIOUX / "SiouxFalls_net.tntp", SIOUX / "SiouxFalls_trips.tntp", "--gap", "1e-9",
               "--max-iter", "5")
    assert r.exit_code == 1 and "did NOT converge" in r.output


def test_run_reports_the_verdict_as_a_probability_over_disruption_streams():
    """The verdict is P(consolidated) over seeds with its interval and the index's 5-95% band."""
    res = runner.invoke(app, ["run", "kazakhstan", "--json", "--seeds", "12"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["runs"] == 12
    lo, hi = doc["p_consolidated_interval"]
    assert 0 <= lo <= doc["p_consolidated"] <= hi <= 1
    band, index = doc["index_band"], doc["middle_power_index"]
    assert all(a <= m <= b for a, m, b in zip(band["p5"], index, band["p95"]))
    text = runner.invoke(app, ["run", "kazakhstan", "--seeds", "12"]).output
    assert "over 12 disruption streams" in text


def test_calibration_weighs_each_target_by_its_stated_error(tiny_dir):
    """Two observations of one quantity, 10,000 TEU (±5%) and 20,000 TEU (±50%): least squares on
    log(modelled/observed)/error lands on their precision-weighted log mean, 10,000 × 2^(4/404)."""
    (tiny_dir / "targets.csv").write_text(
        "id,year,metric,observed,unit,source,note,error\n"
        "T1,2024,corridor:middle:teu,10000,TEU,A-TOY,precise,0.05\n"
        "T2,2024,corridor:middle:teu,20000,TEU,A-TOY,rough,0.5\n")
    r = invoke("calibrate", tiny_dir, "--json")
    assert r.exit_code == 0, r.output
    fit = {row["target"]: row for row in json.loads(r.stdout)["fit"]}
    assert fit["T1"]["modelled"] == pytest.approx(10000 * 2 ** (4 / 404), rel=0.01)
    assert fit["T1"]["error"] == 0.05


def test_an_upper_bound_target_counts_only_above_its_bound(tiny_dir):
    """A ceiling ("test trains at most") is no count: below it the model misses by nothing, so a precise
    10,000 TEU (±5%) with a ceiling of 20,000 fits at 10,000 (as a count the ceiling would pull the fit to
    10,000 × 2^(1/5)); a ceiling of 5,000 (±5%) meets the count halfway on the log scale, 7,071."""
    def fitted(bound, ceiling):
        (tiny_dir / "targets.csv").write_text(
            "id,year,metric,observed,unit,source,note,error,bound\n"
            "T1,2024,corridor:middle:teu,10000,TEU,A-TOY,precise,0.05,\n"
            f"T2,2024,corridor:middle:teu,{ceiling},TEU,A-TOY,a ceiling,{0.1 if ceiling > 10000 else 0.05},{bound}\n")
        r = invoke("calibrate", tiny_dir, "--json")
        assert r.exit_code == 0, r.output
        return {row["target"]: row for row in json.loads(r.stdout)["fit"]}

    above = fitted("upper", 20000)
    assert above["T1"]["modelled"] == pytest.approx(10000, rel=0.01)
    assert above["T2"]["bound"] == "upper" and above["T2"]["within_error"]
    assert fitted("", 20000)["T1"]["modelled"] == pytest.approx(10000 * 2 ** 0.2, rel=0.01)
    below = fitted("upper", 5000)
    assert below["T1"]["modelled"] == pytest.approx(10000 * 0.5 ** 0.5, rel=0.01)
    assert not below["T2"]["within_error"]


def test_an_unknown_bound_is_refused(tiny_dir):
    (tiny_dir / "targets.csv").write_text("id,year,metric,observed,unit,source,note,error,bound\n"
                                          "T1,2024,corridor:middle:teu,10000,TEU,A-TOY,a count,0.1,lower\n")
    r = invoke("data", "check", tiny_dir)
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "targets.csv" in r.output and "row 2" in r.output and "'bound'" in r.output and "upper" in r.output


def test_a_transit_time_is_a_target(tiny_dir):
    """corridor:NAME:time_h is the corridor's mean transit time; an empty error is the default 10%."""
    import multivector as mv
    from multivector.model.calibrate import metric_values

    (tiny_dir / "targets.csv").write_text("id,year,metric,observed,unit,source,note,error\n"
                                          "T3,2024,corridor:middle:time_h,100,h,A-TOY,a time target,\n")
    s = mv.load(tiny_dir)
    ds = mv.simulate(s, years=[2024])
    assert metric_values(s, ds, "corridor:middle:time_h", 2024)[0] == \
        float(ds["transit_time_h"].sel(corridor="middle", year=2024)[0])
    fit = json.loads(invoke("calibrate", tiny_dir, "--json").stdout)["fit"][0]
    assert fit["error"] == 0.1 and fit["modelled"] > 100      # a Caspian crossing takes more than 100 h


@pytest.mark.parametrize("metric,expect", [("corridor:middle:time_h:westbound", "one commodity's"),
                                           ("corridor:middle:time_h:boxes", "one commodity's")])
def test_a_corridor_s_time_names_a_commodity(tiny_dir, metric, expect):
    import multivector as mv
    from multivector.errors import InputError

    (tiny_dir / "targets.csv").write_text("id,year,metric,observed,unit,source,note,error\n"
                                          f"T3,2024,{metric},100,h,A-TOY,a time target,\n")
    with pytest.raises(InputError, match=expect) as info:
        mv.load(tiny_dir)
    assert "targets.csv" in str(info.value) and "row 2" in str(info.value) and "container" in str(info.value)


def test_calibrate_prints_each_target_against_its_band(tiny_dir):
    r = invoke("calibrate", tiny_dir)
    assert r.exit_code == 0, r.output
    assert "±10%" in r.output and "targets within their stated error" in r.output


def test_calibrate_refits_until_its_route_set_holds(tiny_dir, monkeypatch):
    """Route sets follow the stored fit's costs, so calibrate refits on its own answer's route set;
    a set that keeps moving is reported, not written as a success."""
    import multivector as mv
    from multivector.model import calibrate as cal

    answers = iter([False, True])
    monkeypatch.setattr(cal, "_same_routes", lambda a, b: next(answers))
    res = cal.calibrate(mv.load(tiny_dir), max_nfev=5)
    assert res.rounds == 2 and res.success
    monkeypatch.setattr(cal, "_same_routes", lambda a, b: False)
    res = cal.calibrate(mv.load(tiny_dir), max_nfev=5)
    assert res.rounds == cal.ROUTE_ROUNDS and not res.success and "route set" in res.message
    monkeypatch.undo()
    res = cal.calibrate(mv.load(tiny_dir), max_nfev=5)
    assert res.rounds == 1 and cal._same_routes(mv.load(tiny_dir), cal.with_fit(mv.load(tiny_dir), res.values))


def test_calibrate_from_several_starts_keeps_the_best(tiny_dir):
    """--starts N fits from the stored values and from N-1 Latin-hypercube points over the free ranges
    (seeded), and keeps the lowest cost: never worse than the single fit it begins with."""
    import multivector as mv
    from multivector.model import calibrate as cal

    s = mv.load(tiny_dir)
    free = s.model["calibration"]["free"]
    points = cal.start_points(s, free, 4, seed=3)
    assert points[0] == {p: s.defaults()[p] for p in free} and len(points) == 4
    assert points == cal.start_points(s, free, 4, seed=3) != cal.start_points(s, free, 4, seed=4)
    for p in points[1:]:
        assert all(s.parameters[k].min <= v <= s.parameters[k].max for k, v in p.items())
    one = cal.calibrate(s, max_nfev=5)
    several = cal.calibrate(s, max_nfev=5, starts=4, seed=3)
    assert several.starts == 4 and several.cost <= one.cost + 1e-12
    r = invoke("calibrate", tiny_dir, "--starts", 0)
    assert r.exit_code != 0 and "starts must be 1 or more" in r.output and "Traceback" not in r.output
