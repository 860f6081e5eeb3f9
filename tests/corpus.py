"""A corpus of broken inputs: each must get a clear error, a non-zero exit (or a 4xx), never a
traceback (or a 5xx), and leave nothing written.

Used by ``tests/test_hardening.py`` (every case is a test) and by ``bench/hardening.py`` (counts for
the report). A case is a ``Case``: how to prepare its inputs in an empty folder, and what to run.
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

DATA = Path(__file__).parent / "data"


@dataclass
class Case:
    id: str
    kind: str                                   # "cli" or "http"
    prepare: Callable[[Path], None] | None = None
    argv: list[str] = field(default_factory=list)             # cli: arguments ("{dir}" = the folder)
    method: str = "POST"                                      # http
    path: str = ""
    body: object = None                                       # http: JSON value, or bytes sent raw
    headers: dict = field(default_factory=dict)
    expect: str = ""                                          # text the error must contain (where/what)


# ------------------------------------------------------------------------------------------------
# helpers that break a copy of the tiny dataset

def _tiny(folder: Path) -> Path:
    target = folder / "ds"
    shutil.copytree(DATA / "tiny", target)
    return target


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def set_cell(file: str, column: str, value: str, row: int = 0):
    def prepare(folder: Path):
        ds = _tiny(folder)
        fields, rows = _rows(ds / file)
        if not rows:
            rows = [dict.fromkeys(fields, "")]
        rows[row][column] = value
        _write(ds / file, fields, rows)
    return prepare


def add_row(file: str, values: dict):
    def prepare(folder: Path):
        ds = _tiny(folder)
        fields, rows = _rows(ds / file)
        rows.append({f: values.get(f, "") for f in fields})
        _write(ds / file, fields, rows)
    return prepare


def drop_column(file: str, column: str):
    def prepare(folder: Path):
        ds = _tiny(folder)
        fields, rows = _rows(ds / file)
        _write(ds / file, [f for f in fields if f != column], rows)
    return prepare


def replace_file(file: str, content: bytes | None):
    def prepare(folder: Path):
        ds = _tiny(folder)
        if content is None:
            (ds / file).unlink()
        else:
            (ds / file).write_bytes(content)
    return prepare


def edit_text(file: str, old: str, new: str, dataset: str = "tiny"):
    def prepare(folder: Path):
        if dataset == "tiny":
            ds = _tiny(folder)
        else:
            from importlib import resources

            ds = folder / "ds"
            shutil.copytree(Path(str(resources.files("multivector") / "datasets" / dataset)), ds)
        text = (ds / file).read_text(encoding="utf-8")
        assert old in text, f"corpus: '{old}' not in {file}"
        (ds / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    return prepare


def tntp_edit(which: str, old: str | None, new: str):
    def prepare(folder: Path):
        for name in ("SiouxFalls_net.tntp", "SiouxFalls_trips.tntp"):
            shutil.copy(DATA / "tntp" / "SiouxFalls" / name, folder / name)
        path = folder / f"SiouxFalls_{which}.tntp"
        text = path.read_text()
        if old is None:
            path.write_text(new)
        else:
            assert old in text, f"corpus: '{old}' not in {path.name}"
            path.write_text(text.replace(old, new, 1))
    return prepare


def write_file(name: str, content: str):
    def prepare(folder: Path):
        (folder / name).write_text(content)
    return prepare


RUN = ["run", "{dir}/ds"]


def _dataset_cases() -> list[Case]:
    cases: list[Case] = []
    bad_cells = {
        "nodes.csv": {"id": ["", "L1"], "kind": ["spaceport", ""], "lat": ["abc", "95", "nan", ""],
                      "lon": ["abc", "200", "inf", ""], "source": ["NOSUCH", ""]},
        "links.csv": {"id": [""], "from": ["NOWHERE", ""], "to": ["NOWHERE", ""], "mode": ["teleport", ""],
                      "gauge_mm": ["1000", "abc"], "length_km": ["-1", "abc", "nan", "inf", ""],
                      "capacity_mt": ["-3", "abc", "inf", "nan"], "extra_time_h": ["-2", "abc"],
                      "extra_cost_usd": ["abc", "nan"], "risk_class": ["extreme"], "commodities": ["unobtainium"],
                      "sources": ["NOSUCH", "*=NOSUCH", "width=A-TOY"]},
        "transfers.csv": {"node": ["NOWHERE", ""], "between": ["rail_1435", "rail_1435|teleport", ""],
                          "capacity_mt": ["-1", "abc"], "time_h": ["-1", "abc", "nan"], "cost_usd": ["abc", "inf"],
                          "risk_class": ["extreme"], "sources": ["NOSUCH"]},
        "demand.csv": {"origin": ["NOWHERE", ""], "destination": ["NOWHERE", ""], "commodity": ["unobtainium", ""],
                       "year": ["abc", "20x4", ""], "volume": ["-5", "abc", "nan", "inf", ""], "source": ["NOSUCH", ""]},
        "sources.csv": {"id": [""], "kind": ["rumour", ""]},
        "targets.csv": {"year": ["abc", "2031"],
                        "metric": ["corridor:nowhere:teu", "nonsense", "", "gateway:XIAN:teu", "gateway:DOSTYK:teu:up"],
                        "observed": ["abc", "-1", ""], "source": ["NOSUCH"]},
    }
    for file, columns in bad_cells.items():
        for column, values in columns.items():
            for v in values:
                cases.append(Case(f"csv:{file}:{column}={v or 'empty'}", "cli", set_cell(file, column, v), RUN,
                                  expect=file))
    cases.append(Case("csv:nodes.csv:duplicate id", "cli", set_cell("nodes.csv", "id", "DOSTYK"), RUN, expect="nodes.csv"))
    cases.append(Case("csv:links.csv:duplicate id", "cli", set_cell("links.csv", "id", "L2"), RUN, expect="links.csv"))
    for file, values in {"timeline.csv": [{"year": "2024", "parameter": "nosuch", "value": "1", "source": "A-TOY"},
                                          {"year": "abc", "parameter": "vot_container", "value": "1", "source": "A-TOY"},
                                          {"year": "2024", "parameter": "vot_container", "value": "abc", "source": "A-TOY"},
                                          {"year": "2024", "parameter": "vot_container", "value": "1", "source": "NOSUCH"}],
                         "demand.csv": [{"origin": "XIAN", "destination": "DUISBURG", "commodity": "container",
                                         "year": "2024", "volume": "5", "source": "A-TOY"}]}.items():
        for i, row in enumerate(values):
            cases.append(Case(f"csv:{file}:row {i}", "cli", add_row(file, row), RUN, expect=file))
    required = {"nodes.csv": ["id", "lat", "lon", "kind"], "links.csv": ["id", "from", "to", "mode", "length_km"],
                "transfers.csv": ["node", "between", "time_h"], "demand.csv": ["origin", "destination", "volume", "year"],
                "sources.csv": ["id", "kind"]}
    for file, cols in required.items():
        for col in cols:
            cases.append(Case(f"csv:{file}:no column {col}", "cli", drop_column(file, col), RUN, expect=file))
    for file in ("nodes.csv", "links.csv", "demand.csv", "sources.csv", "transfers.csv"):
        for label, content in (("empty", b""), ("binary", bytes(range(256)) * 4), ("semicolons", b"id;name\nA;B\n"),
                               ("missing", None)):
            cases.append(Case(f"csv:{file}:{label}", "cli", replace_file(file, content), RUN, expect=file))
    head = b"series,output,year,value,error,unit,source,note\n"
    for label, row in (("year after 2024", b"x,,2025,1,0.1,Mt,A-TOY,"), ("unknown source", b"x,,2020,1,0.1,Mt,NOSUCH,"),
                       ("text value", b"x,,2020,lots,0.1,Mt,A-TOY,"), ("error 0", b"x,,2020,1,0,Mt,A-TOY,"),
                       ("bad output path", b"x,corridors..teu,2020,1,0.1,TEU,A-TOY,"),
                       ("duplicate year", b"x,,2020,1,0.1,Mt,A-TOY,\nx,,2020,2,0.1,Mt,A-TOY,"),
                       ("no error column", None)):
        content = head + row + b"\n" if row is not None else b"series,output,year,value,unit,source,note\n"
        cases.append(Case(f"csv:observations.csv:{label}", "cli", replace_file("observations.csv", content), RUN,
                          expect="observations.csv"))
    model_edits = [
        ("syntax error", "[model]", "[model"),
        ("base_year text", "base_year = 2024", 'base_year = "soon"'),
        ("negative tonnes per unit", "tonnes_per_unit = 10.0", "tonnes_per_unit = -10.0"),
        ("value above max", "value = 0.002", "value = 5.0"),
        ("min above max", "min = 0.0001\nmax = 1.0", "min = 2.0\nmax = 1.0"),
        ("nan value", "value = 0.002", "value = nan"),
        ("inf value", "value = 0.002", "value = inf"),
        ("text value", "value = 0.002", 'value = "low"'),
        ("unknown source", 'source = "A-TOY"', 'source = "NOSUCH"'),
        ("unknown via node", 'via_nodes = ["BAKU"]', 'via_nodes = ["ATLANTIS"]'),
        ("unknown overland corridor", 'overland_corridors = ["north", "middle"]', 'overland_corridors = ["polar"]'),
        ("unknown parameter key", 'unit = "1/USD"', 'unit = "1/USD"\ncolour = "red"'),
        ("missing engine parameter", "[parameters.vot_container]", "[parameters.vot_containers]"),
        ("unknown calibration parameter", 'calibration.free = ["logit_scale_container"]', 'calibration.free = ["nosuch"]'),
        ("gateway kinds not a list", "base_year = 2024", 'base_year = 2024\ngateway_kinds = "port"'),
        ("unknown gateway kind", "base_year = 2024", 'base_year = 2024\ngateway_kinds = ["harbour"]'),
    ]
    for label, old, new in model_edits:
        cases.append(Case(f"toml:model.toml:{label}", "cli", edit_text("model.toml", old, new), RUN, expect="model.toml"))
    return cases


def _politics_cases() -> list[Case]:
    p = "politics.toml"
    edits = [
        ("undefined name", 'equation = "eu_investment_committed * eu_realisation_fraction / eu_disbursement_lag"',
         'equation = "eu_investment_commited * eu_realisation_fraction / eu_disbursement_lag"'),
        ("syntax error", 'equation = "eu_investment_committed * eu_realisation_fraction / eu_disbursement_lag"',
         'equation = "eu_investment_committed * * eu_realisation_fraction"'),
        ("forbidden call", 'equation = "eu_investment_committed * eu_realisation_fraction / eu_disbursement_lag"',
         'equation = "__import__(\'os\').system(\'true\')"'),
        ("unit mismatch", 'equation = "eu_investment_committed * eu_realisation_fraction / eu_disbursement_lag"',
         'equation = "eu_investment_committed * eu_realisation_fraction"'),
        ("dt too large", "dt = 0.0625", "dt = 2.0"),
        ("toml syntax", "[sd]", "[sd"),
        ("lever default out of range", "value = 1000.0\nmin = 0.0\nmax = 1500.0", "value = 9000.0\nmin = 0.0\nmax = 1500.0"),
        ("unknown method", 'method = "euler"', 'method = "leapfrog"'),
    ]
    return [Case(f"toml:politics.toml:{label}", "cli", edit_text(p, old, new, dataset="kazakhstan"),
                 ["data", "check", "{dir}/ds"], expect="politics.toml") for label, old, new in edits]


def _cli_cases() -> list[Case]:
    net, trips = "{dir}/SiouxFalls_net.tntp", "{dir}/SiouxFalls_trips.tntp"
    kz = ["run", "kazakhstan", "--network-only"]
    cases = [Case(f"set:{s}", "cli", None, [*kz, "--set", s], expect=s.split("=")[0] or "--set")
             for s in ["vdf_alpha", "=1", "vdf_alpha=", "nosuch=1", "vdf_alpha=abc", "vdf_alpha=nan",
                       "vdf_alpha=inf", "vdf_alpha=-1", "vdf_alpha=1e308", "mediation_activity=11", "vdf_alpha==1"]]
    cases += [Case(f"args:run --years {y}", "cli", None, [*kz, "--years", y], expect="--years")
              for y in ["abc", "2030:2020", "2024:abc", ":"]]
    cases.append(Case("args:run --years 1990", "cli", None, [*kz, "--years", "1990"], expect="1990"))
    cases += [
        Case("args:run --tol 0", "cli", None, [*kz, "--tol", "0"], expect="--tol"),
        Case("args:run --tol 2", "cli", None, [*kz, "--tol", "2"], expect="--tol"),
        Case("args:run unknown scenario", "cli", None, ["run", "nosuch"], expect="nosuch"),
        Case("args:run path traversal", "cli", None, ["run", "../../etc"], expect="etc"),
        Case("args:run coupled --years 2050", "cli", None, ["run", "kazakhstan", "--years", "2041:2045"], expect="2040"),
        Case("args:run --out into a file", "cli", write_file("afile", "x"), [*kz, "--out", "{dir}/afile/x"],
             expect="afile"),
        Case("args:explore --n 0", "cli", None, ["explore", "--n", "0", "--db", "{dir}/x.duckdb"], expect="--n"),
        Case("args:explore --n -3", "cli", None, ["explore", "--n", "-3", "--db", "{dir}/x.duckdb"], expect="--n"),
        Case("args:explore --n abc", "cli", None, ["explore", "--n", "abc", "--db", "{dir}/x.duckdb"], expect="--n"),
        Case("args:explore --sampler foo", "cli", None, ["explore", "--n", "4", "--sampler", "foo", "--db", "{dir}/x.duckdb"],
             expect="foo"),
        Case("args:explore sobol not power of two", "cli", None,
             ["explore", "--n", "100", "--sampler", "sobol", "--db", "{dir}/x.duckdb"], expect="power of two"),
        Case("args:explore --chunk-size 0", "cli", None, ["explore", "--n", "4", "--chunk-size", "0", "--db", "{dir}/x.duckdb"],
             expect="--chunk-size"),
        Case("args:explore --db in missing folder", "cli", None, ["explore", "--n", "4", "--db", "{dir}/no/x.duckdb"],
             expect="does not exist"),
        Case("args:explore --db on a read-only file system", "cli", None, ["explore", "--n", "4", "--db", "/proc/x.duckdb"],
             expect="/proc"),
        Case("args:explore --db is not a store", "cli", write_file("fake.duckdb", "not a database"),
             ["explore", "--n", "4", "--db", "{dir}/fake.duckdb"], expect="fake.duckdb"),
        Case("args:explore --resume unknown", "cli", None, ["explore", "--resume", "nosuch", "--db", "{dir}/x.duckdb"],
             expect="nosuch"),
        Case("args:explore --run-id with spaces", "cli", None,
             ["explore", "--n", "4", "--run-id", "a b/c", "--db", "{dir}/x.duckdb"], expect="run id"),
        Case("args:explore --levers missing", "cli", None,
             ["explore", "--n", "4", "--levers", "{dir}/none.csv", "--db", "{dir}/x.duckdb"], expect="none.csv"),
        Case("args:explore --params unknown", "cli", None,
             ["explore", "--n", "4", "--params", "nosuch", "--db", "{dir}/x.duckdb"], expect="nosuch"),
        Case("args:explore --scheduler bogus", "cli", None,
             ["explore", "--n", "4", "--scheduler", "bogus", "--db", "{dir}/x.duckdb"], expect="bogus"),
        Case("args:explore --scheduler unreachable", "cli", None,
             ["explore", "--n", "4", "--scheduler", "tcp://127.0.0.1:9", "--db", "{dir}/x.duckdb"], expect="127.0.0.1:9"),
    ]
    for label, content in [("unknown lever", "policy,nosuch\na,1\n"), ("out of range", "policy,mediation_activity\na,99\n"),
                           ("not a number", "policy,mediation_activity\na,lots\n"),
                           ("duplicate policy", "policy,mediation_activity\na,1\na,2\n"), ("no rows", "policy,mediation_activity\n"),
                           ("empty file", ""), ("uncertain parameter as lever", "policy,cpc_weather_rate\na,1\n")]:
        cases.append(Case(f"levers:{label}", "cli", write_file("levers.csv", content),
                          ["strategies", "--levers", "{dir}/levers.csv", "--n", "2", "--db", "{dir}/x.duckdb"],
                          expect="levers.csv"))
    for cmd in (["sensitivity", "nosuch", "--outcome", "middle_power_index"], ["discover", "nosuch"],
                ["export", "parquet", "nosuch", "{dir}/out"], ["export", "csv", "nosuch", "{dir}/out"],
                ["report", "nosuch"], ["runs"]):
        cases.append(Case(f"store:{' '.join(cmd[:2])} on a missing store", "cli", None,
                          [*cmd, "--db", "{dir}/missing.duckdb"], expect="missing.duckdb"))
    cases += [
        Case("args:report neither run nor scenario", "cli", None, ["report", "--out", "{dir}/r.html"], expect="run id"),
        Case("args:report bad suffix", "cli", None, ["report", "--scenario", "kazakhstan", "--out", "{dir}/r.pdf"],
             expect="HTML"),
        Case("args:export xmile into missing folder", "cli", None, ["export", "xmile", "{dir}/no/kz.xmile"],
             expect="no"),
        Case("args:data copy unknown", "cli", None, ["data", "copy", "nosuch", "{dir}/copy"], expect="nosuch"),
        Case("args:data copy onto existing", "cli", write_file("exists", "x"), ["data", "copy", "kazakhstan", "{dir}"],
             expect="exists"),
        Case("args:params unknown scenario", "cli", None, ["params", "nosuch"], expect="nosuch"),
        Case("args:calibrate dataset without politics targets", "cli", replace_file("targets.csv", b"id,year\n"),
             ["calibrate", "{dir}/ds"], expect="targets"),
    ]
    tntp = [
        ("net: no header", "net", "<NUMBER OF NODES> 24", "", "NUMBER OF NODES"),
        ("net: capacity text", "net", "25900.20064", "lots", "capacity"),
        ("net: negative capacity", "net", "25900.20064", "-25900", "capacity"),
        ("net: zero capacity", "net", "25900.20064", "0", "capacity"),
        ("net: node out of range", "net", "\t1\t2\t25900.20064", "\t1\t99\t25900.20064", "99"),
        ("net: short row", "net", "\t1\t2\t25900.20064\t6\t6\t0.15\t4\t0\t0\t1\t;", "\t1\t2\t25900.20064\t;", "column"),
        ("net: negative time", "net", "\t1\t2\t25900.20064\t6\t6", "\t1\t2\t25900.20064\t6\t-6", "free_flow_time"),
        ("net: empty", "net", None, "", "SiouxFalls_net.tntp"),
        ("net: binary", "net", None, "\x00\x01\x02garbage", "SiouxFalls_net.tntp"),
        ("trips: demand text", "trips", "2 :    100.0;", "2 :    many;", "SiouxFalls_trips.tntp"),
        ("trips: unknown zone", "trips", "2 :    100.0;", "99 :    100.0;", "99"),
        ("trips: negative demand", "trips", "2 :    100.0;", "2 :    -100.0;", "SiouxFalls_trips.tntp"),
        ("trips: no origin line", "trips", "Origin \t1", "Origni \t1", "SiouxFalls_trips.tntp"),
        ("trips: empty", "trips", None, "", "SiouxFalls_trips.tntp"),
    ]
    for label, which, old, new, expect in tntp:
        cases.append(Case(f"tntp:{label}", "cli", tntp_edit(which, old, new), ["tntp", net, trips], expect=expect))
    cases += [
        Case("tntp:missing file", "cli", None, ["tntp", "{dir}/none_net.tntp", "{dir}/none_trips.tntp"], expect="none_net"),
        Case("tntp:--gap 0", "cli", tntp_edit("net", None, (DATA / "tntp" / "SiouxFalls" / "SiouxFalls_net.tntp").read_text()),
             ["tntp", net, trips, "--gap", "0"], expect="--gap"),
    ]
    return cases


def _http_cases() -> list[Case]:
    run = "/api/scenarios/kazakhstan/run"
    exp = "/api/explorations"
    cases = [
        Case("http:run invalid json", "http", path=run, body=b"{not json", headers={"content-type": "application/json"},
             expect="invalid"),
        Case("http:run json array", "http", path=run, body=[1, 2], expect="invalid"),
        Case("http:run json string", "http", path=run, body="hello", expect="invalid"),
        Case("http:run NaN token", "http", path=run, body=b'{"overrides": {"vdf_alpha": NaN}}',
             headers={"content-type": "application/json"}, expect="vdf_alpha"),
        Case("http:run Infinity", "http", path=run, body=b'{"overrides": {"vdf_alpha": 1e999}}',
             headers={"content-type": "application/json"}, expect="vdf_alpha"),
        Case("http:run overrides list", "http", path=run, body={"overrides": [1]}, expect="overrides"),
        Case("http:run override text", "http", path=run, body={"overrides": {"vdf_alpha": "x"}}, expect="vdf_alpha"),
        Case("http:run override null", "http", path=run, body={"overrides": {"vdf_alpha": None}}, expect="vdf_alpha"),
        Case("http:run unknown override", "http", path=run, body={"overrides": {"nosuch": 1}}, expect="nosuch"),
        Case("http:run override out of range", "http", path=run, body={"overrides": {"mediation_activity": 50}},
             expect="mediation_activity"),
        Case("http:run seed text", "http", path=run, body={"seed": "x"}, expect="seed"),
        Case("http:run seed negative", "http", path=run, body={"seed": -4}, expect="seed"),
        Case("http:run seed huge", "http", path=run, body={"seed": 2**70}, expect="seed"),
        Case("http:run seed float", "http", path=run, body={"seed": 1.5}, expect="seed"),
        Case("http:run year text", "http", path=run, body={"year": "soon"}, expect="year"),
        Case("http:run year outside", "http", path=run, body={"year": 2099}, expect="2099"),
        Case("http:run extra field", "http", path=run, body={"colour": "red"}, expect="colour"),
        Case("http:run too many overrides", "http", path=run, body={"overrides": {f"p{i}": 1 for i in range(250)}},
             expect="overrides"),
        Case("http:run oversized body", "http", path=run, body=b"{" + b" " * 70_000 + b"}",
             headers={"content-type": "application/json"}, expect="KiB"),
        Case("http:run text/plain", "http", path=run, body=b"seed=1", headers={"content-type": "text/plain"},
             expect="invalid"),
        Case("http:run unknown scenario", "http", path="/api/scenarios/atlantis/run", body={}, expect="atlantis"),
        Case("http:run traversal", "http", path="/api/scenarios/..%2F..%2Fetc%2Fpasswd/run", body={}, expect=""),
        Case("http:params unknown scenario", "http", method="GET", path="/api/scenarios/atlantis/parameters",
             expect="atlantis"),
        Case("http:explore n zero", "http", path=exp, body={"n": 0}, expect="n"),
        Case("http:explore n text", "http", path=exp, body={"n": "ten"}, expect="n"),
        Case("http:explore n missing", "http", path=exp, body={}, expect="n"),
        Case("http:explore n over limit", "http", path=exp, body={"n": 10**6}, expect="limit"),
        Case("http:explore sampler", "http", path=exp, body={"n": 4, "sampler": "grid"}, expect="sampler"),
        Case("http:explore sobol not power of two", "http", path=exp, body={"n": 5, "sampler": "sobol"},
             expect="power of two"),
        Case("http:explore levers file", "http", path=exp, body={"n": 4, "levers": "/etc/passwd"}, expect="levers"),
        Case("http:explore run id path", "http", path=exp, body={"n": 4, "run_id": "../../x"}, expect="run_id"),
        Case("http:explore chunk size", "http", path=exp, body={"n": 4, "chunk_size": 0}, expect="chunk_size"),
        Case("http:explore scenario path", "http", path=exp, body={"n": 4, "scenario": "/etc"}, expect="/etc"),
        Case("http:explore extra field", "http", path=exp, body={"n": 4, "db": "/tmp/x.duckdb"}, expect="db"),
        Case("http:job unknown", "http", method="GET", path="/api/explorations/nosuch", expect="nosuch"),
        Case("http:run unknown", "http", method="GET", path="/api/runs/nosuch", expect="nosuch"),
        Case("http:run id with semicolon", "http", method="GET", path="/api/runs/a;drop%20table/ensemble", expect=""),
        Case("http:sensitivity unknown outcome", "http", method="GET", path="/api/runs/lhs64/sensitivity?outcome=nosuch",
             expect="nosuch"),
        Case("http:sensitivity bad year", "http", method="GET", path="/api/runs/lhs64/sensitivity?outcome=middle_power_index&year=1999",
             expect="1999"),
        Case("http:discover numeric without threshold", "http", method="GET",
             path="/api/runs/lhs64/discover?outcome=middle_power_index_final", expect="threshold"),
        Case("http:discover threshold nan", "http", method="GET",
             path="/api/runs/lhs64/discover?outcome=middle_power_index_final&threshold=nan", expect="threshold"),
        Case("http:discover threshold text", "http", method="GET",
             path="/api/runs/lhs64/discover?outcome=middle_power_index_final&threshold=high", expect="threshold"),
        Case("http:static traversal", "http", method="GET", path="/static/..%2F..%2Fserver.py", expect=""),
        Case("http:static unknown", "http", method="GET", path="/static/secrets.txt", expect="secrets"),
    ]
    return cases


def all_cases() -> list[Case]:
    return _dataset_cases() + _politics_cases() + _cli_cases() + _http_cases()


# ------------------------------------------------------------------------------------------------
# running a case

def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_cli(case: Case, folder: Path) -> tuple[bool, str]:
    """Run a CLI case in ``folder`` (also the working directory); return (passed, why)."""
    from typer.testing import CliRunner

    from multivector.interfaces.cli import app

    if case.prepare:
        case.prepare(folder)
    before = snapshot(folder)
    argv = [a.replace("{dir}", str(folder)) for a in case.argv]
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, argv)
    finally:
        os.chdir(cwd)
    text = result.output
    written = snapshot(folder) - before
    if result.exit_code == 0:
        return False, "exit 0"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return False, f"traceback: {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in text or "internal error" in text:
        return False, "traceback in output"
    if "error" not in text.lower() and "usage" not in text.lower():
        return False, f"no error message: {text[-300:]!r}"
    if case.expect and case.expect.replace("{dir}", str(folder)).lower() not in text.lower():
        return False, f"message does not mention '{case.expect}': {text[-300:]!r}"
    if written:
        return False, f"wrote {sorted(written)[:3]}"
    return True, text.strip().splitlines()[-1][:200] if text.strip() else ""


def run_http(case: Case, client) -> tuple[bool, str]:
    """Send an HTTP case; pass on a 4xx with a JSON detail that names the problem."""
    kw = {"headers": case.headers}
    if isinstance(case.body, bytes):
        kw["content"] = case.body
    elif case.body is not None:
        kw["json"] = case.body
    r = client.request(case.method, case.path, **kw)
    if not 400 <= r.status_code < 500:
        return False, f"status {r.status_code}: {r.text[:200]}"
    try:
        detail = str(r.json().get("detail", ""))
    except ValueError:
        return False, "not JSON"
    if not detail:
        return False, "empty detail"
    if case.expect and case.expect.lower() not in detail.lower():
        return False, f"detail does not mention '{case.expect}': {detail[:200]}"
    return True, f"{r.status_code} {detail[:160]}"
