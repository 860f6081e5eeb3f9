"""observations.csv: observed series a dataset declares, checked at load; `data observations`; `validate`
without --observations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import multivector as mv
from multivector.errors import InputError
from multivector.interfaces.cli import app

DATA = Path(__file__).parent / "data" / "landlocked"
HEADER = "series,output,year,value,error,unit,source,note\n"
GOOD = "highland_teu,corridors.highland.teu,2024,120000,0.1,TEU,A-LL-GEO,made up\n"


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def dataset(tmp_path, observations: str | None) -> Path:
    folder = tmp_path / "landlocked"
    shutil.copytree(DATA, folder)
    if observations is not None:
        (folder / "observations.csv").write_text(observations)
    return folder


def test_a_dataset_without_observations_loads_and_lists_none(tmp_path):
    s = mv.load(dataset(tmp_path, None))
    assert s.observations.empty and list(s.observations.columns)[:3] == ["series", "output", "year"]
    r = cli("data", "observations", DATA)
    assert r.exit_code == 0 and "no observations.csv" in r.output
    assert json.loads(cli("data", "observations", DATA, "--json").stdout) == []


def test_good_observations_load_without_changing_the_fingerprint(tmp_path):
    plain = mv.load(dataset(tmp_path / "a", None))
    s = mv.load(dataset(tmp_path / "b", HEADER + GOOD + "events,,2020,0,1,\"events, absolute error\",A-LL-GEO,\n"))
    assert len(s.observations) == 2 and s.observations["value"].dtype == float
    assert s.fingerprint() == plain.fingerprint()     # nothing the model computes depends on observations


@pytest.mark.parametrize("row, column, expect", [
    ("x,,2020,1,0.1,Mt,NO-SUCH-SOURCE,", "source", "not in sources.csv"),
    ("x,,2020,lots,0.1,Mt,A-LL-GEO,", "value", "'lots' is not a number"),
    ("x,,2020,inf,0.1,Mt,A-LL-GEO,", "value", "not a finite number"),
    ("x,,2025,1,0.1,Mt,A-LL-GEO,", "year", "after 2024"),
    ("x,,2020.5,1,0.1,Mt,A-LL-GEO,", "year", "not a whole year"),
    ("x,,2020,1,0,Mt,A-LL-GEO,", "error", "must be > 0"),
    ("x,,2020,1,,Mt,A-LL-GEO,", "error", "value is missing"),
    ("x,,2020,0,0.1,Mt,A-LL-GEO,", "error", "relative error cannot describe a value of 0"),
    ("x,,2020,1,0.1,,A-LL-GEO,", "unit", "no unit"),
    ("x,corridors..teu,2024,1,0.1,TEU,A-LL-GEO,", "output", "not a dotted path"),
    ("x,corridors highland teu,2024,1,0.1,TEU,A-LL-GEO,", "output", "not a dotted path"),
    ("x,corridors.nowhere.teu,2024,1,0.1,TEU,A-LL-GEO,", "output", "known corridor"),
    ("bad name,,2020,1,0.1,Mt,A-LL-GEO,", "series", "not a series name"),
    ("highland_teu,corridors.highland.teu,2024,1,0.1,TEU,A-LL-GEO,", "year", "a second value"),
    ("highland_teu,corridors.highland.teu,2023,1,0.1,Mt,A-LL-GEO,", "unit", "has unit 'Mt' here"),
    ("highland_teu,,2023,1,0.1,TEU,A-LL-GEO,", "output", "has output"),
])
def test_bad_rows_are_refused_with_row_and_column(tmp_path, row, column, expect):
    folder = dataset(tmp_path, HEADER + GOOD + row + "\n")
    with pytest.raises(InputError) as info:
        mv.load(folder)
    err = info.value
    assert expect in str(err)
    assert Path(err.file).name == "observations.csv" and err.row == 3 and err.column == column


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(InputError, match="missing column.*error"):
        mv.load(dataset(tmp_path, "series,output,year,value,unit,source,note\n"))


def test_validate_without_observations_needs_an_output(tmp_path):
    r = cli("validate", DATA, "--runs", 2)
    assert r.exit_code == 2 and "has no observations.csv" in r.output and "--observations" in r.output
    folder = dataset(tmp_path, HEADER + "x,,2020,1,0.1,Mt,A-LL-GEO,\n")
    r = cli("validate", folder, "--runs", 2)
    assert r.exit_code == 2 and "names an output" in r.output and "Traceback" not in r.output


def test_validate_uses_the_datasets_own_observations(tmp_path):
    folder = dataset(tmp_path, HEADER + "early,corridors.highland.teu,1990,1,0.1,TEU,A-LL-GEO,\n" + GOOD
                     + "x,,2020,1,0.1,Mt,A-LL-GEO,\n")
    r = cli("validate", folder, "--runs", 1, "--from", "default", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert [(row["output"], row["year"], row["observed"]) for row in rows] == [("corridors.highland.teu", 2024, 120000)]


def test_kazakhstan_lists_its_series():
    r = cli("data", "observations", "kazakhstan", "--json")
    assert r.exit_code == 0, r.output
    series = {row["series"]: row for row in json.loads(r.stdout)}
    for name in ("national_fund_usd_bn", "oil_production_mt", "fdi_gross_inflow_usd_bn", "cpc_throughput_all_shippers_mt",
                 "trade_kz_russia_usd_bn", "astana_syria_rounds_hosted", "russian_pressure_episodes"):
        assert name in series
    assert all(row["last"] <= 2024 for row in series.values())
    assert series["cpc_kazakh_crude_t"]["output"] == "corridors.oil_cpc.tonnes"
    assert series["russian_pressure_episodes"]["error_kind"] == "absolute"
    table = cli("data", "observations", "kazakhstan")
    assert table.exit_code == 0 and "national_fund_usd_bn" in table.output


def test_kazakhstan_observation_sources_are_figures_with_urls():
    s = mv.load("kazakhstan")
    sources = s.sources.set_index("id")
    for sid in set(s.observations["source"]):
        assert sources.loc[[sid], "kind"].iloc[0] == "figure" and sources.loc[[sid], "url"].iloc[0].startswith("http")
    assert not s.sources["id"].duplicated().any()


def test_validate_kazakhstan_without_observations():
    r = cli("validate", "kazakhstan", "--runs", 2, "--from", "default", "--json")
    assert r.exit_code == 0, r.output
    rows = {(row["output"], row["year"]): row for row in json.loads(r.stdout)["rows"]}
    # the rows of observations.csv that name an output, in the years the network runs (2019 on: 2018 lies
    # before), and those that name a variable of the political history run, in its years (2016-2024)
    assert set(rows) == {("corridors.oil_cpc.tonnes", y) for y in (2021, 2022, 2023)} | \
        {(c, y) for c in ("corridors.northern.directions.westbound.teu", "corridors.middle.tonnes") for y in (2019, 2020, 2021)} | \
        {("focus_transit_teu", y) for y in range(2019, 2025)} | \
        {("focus_transit_tonnes", y) for y in (2019, 2021, 2023, 2024)} | \
        {("history.fiscal_space", y) for y in (2016, 2018, 2019, 2020, 2022, 2023, 2024)} | \
        {("history.pressure_episodes", y) for y in range(2016, 2025)}
    # the dataset's rows state their errors, which widen the band as the history match's own table does:
    # one coded episode (±1) against a rate of about 0.25 a year is inside; so are 2022's six (±2), now
    # that pressure builds with the EU's nine sanctions packages of that year
    doc = json.loads(cli("validate", "kazakhstan", "--runs", 20, "--from", "posterior", "--json").stdout)
    band = {(row["output"], row["year"]): row["in_band"] for row in doc["rows"]}
    assert band[("history.pressure_episodes", 2019)] and band[("history.pressure_episodes", 2022)]
    assert doc["summary"]["widened"] is True
    assert all(abs(rows[("corridors.oil_cpc.tonnes", y)]["rel_error"]) < 0.2 for y in (2021, 2022, 2023))
    # calibrated on 2019-2024 since the Black Sea ports stopped taking China's boxes, the northern route
    # holds its 2021 peak within 20% (the row is ERA's wider count, 7% above the target's ERAI scope);
    # with China's boxes held to the Caspian's container feeders, whose room grew from 2019, the Middle
    # Corridor holds its 2019-2020 tonnes within 15% (bulk that took the EU's land bridge until 2026-12-06
    # now crosses the Caspian in part: 2020 +6%), and 2021 is still too high (+41% since the feeders' 2021
    # room grew 2020's by the TITR Association's +20% in boxes, +70% at half of 2025's): the feeders full
    # of boxes and the ferries' Kazakh bulk (the dataset's README, "The pre-war years"): the table says so
    assert abs(rows[("corridors.northern.directions.westbound.teu", 2021)]["rel_error"]) < 0.2
    assert all(abs(rows[("corridors.middle.tonnes", y)]["rel_error"]) < 0.15 for y in (2019, 2020))
    assert rows[("corridors.middle.tonnes", 2021)]["rel_error"] > 0.3
    # the railway's transit containers (every box from abroad to abroad, held out): the model carries too
    # few in every year, 12% in 2022 and 2024, a fifth to two-fifths in 2019-2021 and 2023 (its China-Europe
    # and China-Russia boxes are near the count's parts; boxes from Central Asia and between Central Asia
    # and Russia or Europe are not demand: the dataset's README, "Transit containers")
    assert all(-0.15 < rows[("focus_transit_teu", y)]["rel_error"] < 0 for y in (2022, 2024))
    assert all(rows[("focus_transit_teu", y)]["rel_error"] < -0.2 for y in (2019, 2020, 2021, 2023))
    # in tonnes (the railway's transit, Russia's bulk for Central Asia in it) -6% and -10% before the war,
    # a fifth to a third short in 2023-2024
    assert all(abs(rows[("focus_transit_tonnes", y)]["rel_error"]) < 0.12 for y in (2019, 2021))
    assert all(rows[("focus_transit_tonnes", y)]["rel_error"] < -0.15 for y in (2023, 2024))
