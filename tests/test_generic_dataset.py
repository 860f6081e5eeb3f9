"""A second, made-up dataset through every interface, with no code change: the engine is generic.

``tests/data/landlocked`` is a fictional landlocked country, Landlockia (LL), with two outlets to the
sea (the ``highland`` rail line across Alandia, the ``lakeside`` rail ferry across Lake Tessel), its
own commodities (``goods`` in TEU, ``ore`` in Mt), capacity groups, a three-stock political register
(``reputation``, ``investment``, ``fiscal_buffer``) and a headline index ``standing_index``. None of
its names is a Kazakhstan name, so anything the engine still hard-codes shows up here as a failure.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from multivector.interfaces.cli import app

DATA = Path(__file__).parent / "data" / "landlocked"
INDEX = "standing_index"
CORRIDORS = ("highland", "lakeside")
STOCKS = {"reputation", "investment", "fiscal_buffer"}
FIRST, LAST = 2024, 2035
# words of the built-in dataset that must not leak into what the views say about Landlockia
FOREIGN = re.compile(r"kazakh|middle[ _-]power|caspian|\bcpc\b|astana|diplomatic capital", re.IGNORECASE)

runner = CliRunner()


def cli(*args):
    """Invoke the CLI in-process; a wide terminal so that table headers are not wrapped."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def visible_text(page: str) -> str:
    """An HTML page without its scripts and styles (the embedded plotly.js lists every country)."""
    page = re.sub(r"<script\b.*?</script>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    page = re.sub(r"<style\b.*?</style>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture(scope="module")
def landlocked(tmp_path_factory):
    """An editable copy of the Landlockia dataset (shared by this module's tests)."""
    target = tmp_path_factory.mktemp("generic") / "landlocked"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture(scope="module")
def store(landlocked, tmp_path_factory):
    """A store with a 16-run LHS exploration 'g1' (two chunks) and a Morris exploration 'm1'."""
    db = tmp_path_factory.mktemp("generic-store") / "s.duckdb"
    ok(cli("explore", landlocked, "--n", 16, "--db", db, "--run-id", "g1", "--chunk-size", 8))
    # RBD-FAST on an LHS design needs >= 60 runs; a 2-trajectory Morris design is cheaper
    ok(cli("explore", landlocked, "--n", 2, "--sampler", "morris", "--db", db, "--run-id", "m1",
           "--chunk-size", 64))
    return db


# ------------------------------------------------------------------------------------------------
# the dataset itself

def test_data_check(landlocked):
    r = ok(cli("data", "check", landlocked))
    assert "landlocked: OK" in r.output


def test_every_number_has_an_assumption():
    with open(DATA / "sources.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["id"].startswith("A-") and r["kind"] == "assumption" for r in rows)
    assert all(r["title"] and r["note"] for r in rows)


def test_params_loops_sources_list_the_datasets_own_names(landlocked):
    params = {p["name"]: p for p in json.loads(ok(cli("params", landlocked, "--json")).stdout)}
    assert {"logit_scale_goods", "vot_ore", "capacity_factor_ll_rail", "standing_threshold"} <= set(params)
    assert params["transit_tariff_stance"]["kind"] == "lever"
    r = ok(cli("loops", landlocked))
    for text in ("R1", "B1", "B2", "standing draws donors", "reinforcing", "balancing"):
        assert text in r.output
    r = ok(cli("data", "sources", landlocked))
    assert "A-LL-POL-OUTAGE" in r.output


# ------------------------------------------------------------------------------------------------
# one run

def test_run_prints_the_datasets_own_table(landlocked):
    from multivector.dataset import load

    r = ok(cli("run", landlocked))
    for column in load(landlocked).focus.table:
        assert column.label in r.output, f"column '{column.label}' missing from the printed table"
    assert "Landlockia" in r.output
    assert "standing index" in r.output                     # the verdict names the dataset's index
    for corridor in CORRIDORS:
        assert corridor in r.output
    assert not FOREIGN.search(r.stdout), FOREIGN.search(r.stdout).group(0)


def test_run_json(landlocked):
    doc = json.loads(ok(cli("run", landlocked, "--json", "--seeds", "1")).stdout)
    assert doc["scenario"] == "landlocked"
    assert doc["years"] == list(range(FIRST, LAST + 1))
    for corridor in CORRIDORS:
        teu = doc["corridors"][corridor]["teu"]
        assert len(teu) == len(doc["years"]) and all(v is not None and v > 0 for v in teu), corridor
        assert all(v > 0 for v in doc["corridors"][corridor]["tonnes"])
    assert all(0.0 <= v <= 1.0 for v in doc[INDEX])
    assert all(0.0 <= v <= 1.0 for v in doc["focus_overland_share"])
    assert all(v > 0 for v in doc["transit_revenue_usd_bn"])
    assert isinstance(doc["consolidated"], bool)
    assert set(doc["stocks"]) == STOCKS
    assert set(doc["network_parameters"]) == {"capacity_factor_ll_rail", "capacity_factor_lake_fleet",
                                              "focus_tariff_factor"}
    assert not FOREIGN.search(json.dumps(doc))


def test_a_lever_reaches_the_network(landlocked):
    """[coupling.to_network]: the tariff lever (from 2025) sets focus_tariff_factor, and a cheaper
    transit through Landlockia wins it a larger share of the overland boxes."""
    base = json.loads(ok(cli("run", landlocked, "--years", "2024:2026", "--json")).stdout)
    cut = json.loads(ok(cli("run", landlocked, "--years", "2024:2026", "--json",
                            "--set", "transit_tariff_stance=0.8")).stdout)
    assert base["network_parameters"]["focus_tariff_factor"] == pytest.approx([1.0, 1.0, 1.0])
    assert cut["network_parameters"]["focus_tariff_factor"] == pytest.approx([1.0, 0.8, 0.8])
    assert cut["focus_overland_share"][-1] > base["focus_overland_share"][-1]


def test_network_only_run(landlocked):
    r = ok(cli("run", landlocked, "--network-only", "--json"))
    doc = json.loads(r.stdout)
    assert doc["years"] == [FIRST] and INDEX not in doc
    assert all(doc["corridors"][c]["teu"][0] > 0 for c in CORRIDORS)


def test_claims_calibrate_and_xmile(landlocked, tmp_path):
    claims = json.loads(ok(cli("claims", landlocked, "--json")).stdout)
    assert {row["id"] for row in claims} == {"C-LL-SHARE", "C-LL-HIGHLAND", "C-LL-REPUTATION"}
    assert all(row["model"] is not None for row in claims)
    fit = json.loads(ok(cli("calibrate", landlocked, "--json", "--max-evaluations", 4)).stdout)
    assert set(fit["values"]) == {"logit_scale_goods"}
    assert {row["target"] for row in fit["fit"]} == {"T-HIGHLAND-2024", "T-FERRY-2024"}
    target = tmp_path / "landlocked.xmile"
    ok(cli("export", "xmile", target, "--scenario", landlocked))
    text = target.read_text()
    assert INDEX in text and "fiscal_buffer" in text


# ------------------------------------------------------------------------------------------------
# explorations and their analyses

def test_exploration_is_stored_under_the_datasets_names(store):
    from multivector.explore.store import Store

    with Store(store, read_only=True) as s:
        yearly, per_run = s.outcomes("g1"), s.run_outcomes("g1")
        assert not s.integrity("g1")
    assert len(per_run) == 16
    for column in (INDEX, "focus_overland_share", "transit_revenue_usd_bn", "highland_teu", "lakeside_teu",
                   "highland_mt", "lakeside_mt", *STOCKS, "reliability", "toll_income"):
        assert column in yearly.columns, column
    assert yearly[INDEX].between(0, 1).all()
    assert sorted(yearly["year"].unique()) == list(range(FIRST, LAST + 1))
    final = per_run[f"{INDEX}_final"]
    assert final.nunique() > 1, "the sampled ranges should make the outcome vary"
    assert 0.0 < per_run["consolidated"].mean() < 1.0, "the consolidated test should split the runs"
    r = ok(cli("runs", "--db", store, "--json"))
    assert "g1" in r.output and "m1" in r.output


def test_sensitivity(store, landlocked):
    from multivector.dataset import load

    r = ok(cli("sensitivity", "m1", "--db", store, "--outcome", f"{INDEX}_final", "--json"))
    doc = json.loads(r.stdout)
    assert doc["method"] == "morris" and doc["indices"]
    assert {row["parameter"] for row in doc["indices"]} <= set(load(landlocked).parameters)
    ok(cli("sensitivity", "m1", "--db", store, "--outcome", INDEX, "--year", 2030))


def test_discover(store):
    r = ok(cli("discover", "g1", "--db", store, "--json"))
    assert "stats" in json.loads(r.stdout)
    ok(cli("discover", "g1", "--db", store, "--outcome", f"{INDEX}_final", "--threshold", 0.66))


def test_strategies(landlocked, store, tmp_path):
    policies = tmp_path / "policies.csv"
    policies.write_text("policy,transit_tariff_stance,corridor_budget\nthrifty,1.0,0.0\ndiscount,0.8,0.08\n")
    r = ok(cli("strategies", landlocked, "--levers", policies, "--n", 4, "--db", store, "--run-id", "p1",
               "--chunk-size", 8, "--json"))
    doc = json.loads(r.stdout)
    assert doc["outcome"].startswith(INDEX)
    assert {row["policy"] for row in doc["policies"]} == {"thrifty", "discount"}


def test_report_of_the_exploration(store, tmp_path):
    out = tmp_path / "r.html"
    ok(cli("report", "g1", "--db", store, "--out", out))
    page = out.read_text()
    text = visible_text(page)
    assert "landlocked" in text and "Landlockia" in page
    assert "standing" in text
    assert not FOREIGN.search(text), FOREIGN.search(text).group(0)


def test_report_of_one_run(landlocked, tmp_path):
    out = tmp_path / "one.html"
    ok(cli("report", "--scenario", landlocked, "--out", out))
    page = out.read_text()
    text = visible_text(page)
    assert "landlocked" in text and "Landlockia" in page
    assert not FOREIGN.search(text), FOREIGN.search(text).group(0)


# ------------------------------------------------------------------------------------------------
# the server: it serves built-in scenarios by name only, and any exploration in its store

def test_server_reads_the_exploration(store, landlocked):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from multivector.interfaces.server import create_app

    client = TestClient(create_app(db=store))
    r = client.get("/api/runs")
    assert r.status_code == 200, r.text
    runs = {row["run_id"]: row for row in r.json()}
    assert {"g1", "m1"} <= set(runs)
    assert Path(runs["g1"]["scenario"]) == Path(landlocked)

    r = client.get("/api/runs/g1/outcomes", params={"outcome": f"{INDEX}_final"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["total"] == 16 and all(0 <= row[f"{INDEX}_final"] <= 1 for row in doc["rows"])

    r = client.get("/api/runs/g1/outcomes")                     # the default outcome is the dataset's index
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == f"{INDEX}_final"

    r = client.get("/api/runs/g1/ensemble")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["runs"] == 16
    assert {INDEX, "highland_mt", "lakeside_mt"} <= set(doc["bands"])
    assert not FOREIGN.search(json.dumps(doc["bands"]))

    r = client.get("/api/runs/m1/sensitivity", params={"outcome": f"{INDEX}_final"})
    assert r.status_code == 200, r.text
    r = client.get("/api/runs/g1/discover")
    assert r.status_code == 200, r.text

    r = client.get("/api/runs/g1/report")
    assert r.status_code == 200, r.text
    assert "Landlockia" in r.text and "landlocked" in visible_text(r.text)
    assert not FOREIGN.search(visible_text(r.text))

    # requests name scenarios, never folders: a folder is served only when the operator says so
    assert client.get("/api/scenarios/landlocked/parameters").status_code == 404
    assert client.post("/api/explorations", json={"scenario": str(landlocked), "n": 4}).status_code == 404


def test_server_serves_the_dataset_by_name(tmp_path, landlocked):
    """serve --dataset DIR: the dashboard's endpoints run the made-up country like a built-in one."""
    pytest.importorskip("httpx")
    import time

    from fastapi.testclient import TestClient

    from multivector.interfaces.server import create_app

    client = TestClient(create_app(db=tmp_path / "served.duckdb", datasets=[landlocked]))
    names = [row["name"] for row in client.get("/api/scenarios").json()]
    assert "landlocked" in names and "kazakhstan" in names
    params = client.get("/api/scenarios/landlocked/parameters").json()
    assert params["featured"] and all(p in {row["name"] for row in params["parameters"]} for p in params["featured"])
    r = client.post("/api/scenarios/landlocked/run", json={"seed": 1, "seeds": 3})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["index"] == INDEX and len(doc[INDEX]) == len(doc["years"]) and doc["runs"] == 3
    assert not FOREIGN.search(json.dumps({k: v for k, v in doc.items() if k != "figures"}))
    job = client.post("/api/explorations", json={"scenario": "landlocked", "n": 8, "chunk_size": 4})
    assert job.status_code == 202, job.text
    url = job.json()["status_url"]
    for _ in range(600):
        status = client.get(url).json()
        if status["status"] in ("finished", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "finished", status


def test_claims_measure_the_arguments_share_of_the_variance(tmp_path, landlocked):
    """claims --sobol RUN: the [focus] argument's parameters' first-order and total Sobol shares."""
    db = str(tmp_path / "sobol.duckdb")
    ok(cli("explore", landlocked, "--n", "8", "--sampler", "sobol", "--run-id", "s1", "--db", db, "--chunk-size", "64"))
    doc = json.loads(ok(cli("claims", landlocked, "--sobol", "s1", "--db", db, "--json")).stdout)
    arg = doc["argument"]
    assert arg["parameters"] == ["donor_rate", "lake_outage_rate"] and arg["sampled"] > 2
    rows = {r["outcome"]: r for r in arg["outcomes"]}
    assert set(rows) == {"consolidated", f"{INDEX}_final"}
    for r in rows.values():
        assert 0 <= r["group_S1"] <= r["all_S1"] + 1e-9 and 0 <= r["group_ST"] <= r["all_ST"] + 1e-9
    res = cli("claims", landlocked, "--sobol", "no_such_run", "--db", db)
    assert res.exit_code == 2


def test_hard_capacities_hold_where_soft_ones_overflow(tmp_path):
    """[model] capacities = "hard" (Landlockia): with the lake fleet closed and demand at its highest,
    no facility exceeds its capacity and the goods that cannot pass are unserved; the same corner with
    "soft" capacities queues far past them. A bad value is refused at load."""
    import warnings

    import numpy as np

    import multivector as mv
    from multivector.errors import ConvergenceWarning, InputError

    s = mv.load(DATA)
    corner = {"capacity_factor_lake_fleet": 0.0, "capacity_factor_ll_rail": 0.3,
              "demand_growth_goods": 0.08, "demand_growth_ore": 0.05}
    soft_dir = tmp_path / "soft"
    shutil.copytree(DATA, soft_dir)
    toml = soft_dir / "model.toml"
    toml.write_text(toml.read_text().replace('capacities = "hard"', 'capacities = "soft"'))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        hard = mv.simulate(s, 1, overrides=corner)
        soft = mv.simulate(mv.load(soft_dir), 1, overrides=corner)
    assert float(hard["utilisation"].max()) <= 1.005 and float(soft["utilisation"].max()) > 2
    assert float(hard["unserved"].sel(commodity="goods").max()) > 0
    # per OD: the commodity's total is the sum of its ODs', and the run document names them
    by_od = hard["unserved_od"].groupby(hard["od_commodity"]).sum("od")
    np.testing.assert_allclose(by_od.sel(od_commodity="goods").values, hard["unserved"].sel(commodity="goods").values)
    from multivector.views.document import run_document
    rows = run_document(hard)["unserved_by_od"]
    assert rows and all(r["commodity"] in ("goods", "ore") and max(r["volume"]) > 0 for r in rows)
    toml.write_text(toml.read_text().replace('capacities = "soft"', 'capacities = "firm"'))
    with pytest.raises(InputError, match="capacities must be one of soft, hard"):
        mv.load(soft_dir)


def test_the_order_of_demand_rows_does_not_change_the_answer(landlocked, tmp_path):
    """Routes are enumerated commodity by commodity and the solver sums them per OD, so ODs must come
    out grouped by commodity whatever order demand.csv lists them in (an ore row between two goods rows
    once scrambled every share)."""
    import numpy as np

    import multivector as mv
    from multivector.model.compiled import compiled

    shuffled = tmp_path / "shuffled"
    shutil.copytree(landlocked, shuffled)
    lines = (landlocked / "demand.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    ore = [r for r in rows if ",ore," in r]
    goods = [r for r in rows if ",ore," not in r]
    (shuffled / "demand.csv").write_text("\n".join([header, goods[0], *ore, *goods[1:]]) + "\n")
    a, b = mv.load(landlocked), mv.load(shuffled)
    net = compiled(b).network
    assert (np.diff(net.route_od) >= 0).all()
    da, db = mv.simulate(a, years=[2024], coupled=False), mv.simulate(b, years=[2024], coupled=False)
    np.testing.assert_allclose(db["tonnes"].values, da["tonnes"].values, rtol=1e-9)
    np.testing.assert_allclose(db["flow_mt"].values, da["flow_mt"].values, rtol=1e-9, atol=1e-12)


def test_a_commodity_may_pay_its_own_risk_premium(tmp_path):
    """A premium is quoted per cost unit, which is a TEU for goods and a TEU-equivalent for ore: where a
    dataset declares ``risk_<class>_<commodity>``, that commodity's routes pay it once per edge of the
    class and every other commodity pays ``risk_<class>``."""
    import numpy as np

    import multivector as mv
    from multivector.freight.model import FreightModel, _Costs
    from multivector.freight.network import compile_network

    own = tmp_path / "own"
    shutil.copytree(DATA, own)
    toml = own / "model.toml"
    toml.write_text(toml.read_text() + '\n[parameters.risk_lake_storm_ore]\nvalue = 7.0\nmin = 0.0\n'
                    'max = 50.0\nunit = "USD per TEU-eq"\nsource = "A-LL-RISK-LAKE"\n'
                    'description = "the storms\' deterrent on a TEU-equivalent of ore"\n')
    s = mv.load(own)
    net = compile_network(s)
    model = FreightModel(s, net)
    defaults = s.defaults()
    p = {k: np.array([v]) for k, v in defaults.items()}
    costs = _Costs(net, model.cost_layout, p, 1)
    lake_edges = net.route_edges @ (net.edge_risk == "lake_storm").astype(float)      # [K]
    is_ore = np.array(model.commodities)[model.route_comm] == "ore"
    premium = np.where(is_ore, 7.0, defaults["risk_lake_storm"])
    assert (lake_edges[is_ore] > 0).any() and (lake_edges[~is_ore] > 0).any()
    np.testing.assert_allclose(costs.route_risk[:, 0], lake_edges * premium)


SEGMENT = ('\n[segments.no_lake]\nlabel = "shippers who will not cross Lake Tessel"\ncommodity = "goods"\n'
           'avoids = ["lake_storm"]\nsource = "A-LL-RISK-LAKE"\n'
           '\n[parameters.segment_share_no_lake]\nvalue = 0.4\nmin = 0.0\nmax = 0.6\nunit = "share"\n'
           'source = "A-LL-RISK-LAKE"\ndescription = "goods whose forwarder will not book the lake ferry"\n')


def test_a_segment_chooses_only_among_routes_that_avoid_its_risk_classes(tmp_path):
    """[segments.NAME]: a share of a commodity's demand leaves the routes crossing a risk class out of
    its choice set (a forwarder that stopped booking a country), on the ODs where that leaves some
    routes but not all; outputs per OD are reported on the whole ODs."""
    import numpy as np

    import multivector as mv
    from multivector.freight.model import FreightModel
    from multivector.freight.network import compile_network

    own = tmp_path / "own"
    shutil.copytree(DATA, own)
    (own / "model.toml").write_text((own / "model.toml").read_text() + SEGMENT)
    s = mv.load(own)
    net = compile_network(s)
    seg = np.flatnonzero(net.od_segment == "no_lake")
    assert len(seg) and set(net.od_commodity[seg]) == {"goods"}
    lake = (net.route_edges @ (net.edge_risk == "lake_storm").astype(float)) > 0
    for d in seg:
        base = net.od_base[d]
        assert net.od_segment[base] == "" and (net.od_origin[d], net.od_destination[d]) == \
            (net.od_origin[base], net.od_destination[base])
        assert not lake[net.route_od == d].any() and lake[net.route_od == base].any()
    # the share moves demand from the whole OD to the segment's, and the total stays
    model = FreightModel(s, net)
    p = {k: np.array([v]) for k, v in s.defaults().items()}
    demand = model.demand(2024, p, 1)[:, 0]
    whole = FreightModel(mv.load(DATA), compile_network(mv.load(DATA))).demand(2024, p, 1)[:, 0]
    np.testing.assert_allclose(demand[seg], 0.4 * whole[net.od_base[seg]])
    np.testing.assert_allclose(np.bincount(net.od_base, weights=demand)[net.od_segment == ""], whole)
    # the lake carries less when more shippers refuse it; with no one refusing, the answer is the one
    # without the segment
    ds = {share: mv.simulate(s, years=[2024], coupled=False, overrides={"segment_share_no_lake": share})
          for share in (0.0, 0.6)}
    lakeside = {k: float(d["volume"].sel(commodity="goods", corridor="lakeside").sum()) for k, d in ds.items()}
    assert lakeside[0.6] < 0.8 * lakeside[0.0]
    plain = mv.simulate(mv.load(DATA), years=[2024], coupled=False)
    np.testing.assert_allclose(ds[0.0]["volume"].values, plain["volume"].values, rtol=1e-5, atol=1e-3)
    assert ds[0.6].sizes["od"] == plain.sizes["od"] == int((net.od_segment == "").sum())


PREMIUM = ('\n[parameters.segment_premium_no_lake]\nvalue = 300.0\nmin = 0.0\nmax = 20000.0\nunit = "USD per TEU"\n'
           'source = "A-LL-RISK-LAKE"\ndescription = "what a shipper who shuns the lake pays on top of a lake route '
           'before taking it"\n')


def _paying(text: str) -> str:
    """The segment of ``SEGMENT`` paying ``segment_premium_no_lake`` on the routes it avoids."""
    return text.replace('avoids = ["lake_storm"]\n', 'avoids = ["lake_storm"]\npremium = "segment_premium_no_lake"\n')


def test_a_segment_with_a_premium_pays_it_on_the_routes_it_avoids_instead_of_leaving_them(tmp_path):
    """``premium``: the segment keeps every route of its OD and pays the premium, once, on those
    crossing its avoided classes. At a premium of 0 it chooses as everyone else does; at a prohibitive
    one as a segment that leaves those routes; in between, in between."""
    import numpy as np

    import multivector as mv
    from multivector.freight.network import compile_network

    def lakeside(d):
        return float(d["volume"].sel(commodity="goods", corridor="lakeside").sum())

    own, avoiding = tmp_path / "own", tmp_path / "avoiding"
    for folder, extra in ((own, _paying(SEGMENT) + PREMIUM), (avoiding, SEGMENT)):
        shutil.copytree(DATA, folder)
        (folder / "model.toml").write_text((folder / "model.toml").read_text() + extra)
    s = mv.load(own)
    net = compile_network(s)
    lake = (net.route_edges @ (net.edge_risk == "lake_storm").astype(float)) > 0
    seg = np.flatnonzero(net.od_segment == "no_lake")
    assert len(seg)
    for d in seg:      # the segment's OD has its whole OD's routes, some across the lake and some not
        mine, theirs = net.route_od == d, net.route_od == net.od_base[d]
        assert (net.route_edges[mine] != net.route_edges[theirs]).nnz == 0
        assert lake[mine].any() and not lake[mine].all()
    run = dict(years=[2024], coupled=False)
    by_premium = {x: lakeside(mv.simulate(s, **run, overrides={"segment_premium_no_lake": x,
                                                                  "segment_share_no_lake": 0.6}))
                  for x in (0.0, 300.0, 20000.0)}
    plain = lakeside(mv.simulate(mv.load(DATA), **run))
    refusing = lakeside(mv.simulate(mv.load(avoiding), **run, overrides={"segment_share_no_lake": 0.6}))
    np.testing.assert_allclose(by_premium[0.0], plain, rtol=1e-4)
    np.testing.assert_allclose(by_premium[20000.0], refusing, rtol=1e-4)
    assert refusing < by_premium[300.0] < plain and refusing < 0.8 * plain


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('commodity = "goods"\navoids', 'commodity = "gods"\navoids'), "commodity 'gods'"),
    (lambda t: t.replace('avoids = ["lake_storm"]', 'avoids = ["lake_strom"]'), "avoids 'lake_strom'"),
    (lambda t: t.replace("value = 0.4\nmin = 0.0\nmax = 0.6", "value = 0.4\nmin = 0.0\nmax = 1.6"),
     "within [0, 1]"),
    (lambda t: t.replace("[parameters.segment_share_no_lake]", "[parameters.segment_share_no_lakes]"),
     "no parameter 'segment_share_no_lake'"),
    (lambda t: _paying(t) + PREMIUM.replace("premium_no_lake]", "premium_no_lakes]"),
     "premium 'segment_premium_no_lake' is not a parameter"),
    (lambda t: _paying(t) + PREMIUM.replace("min = 0.0\nmax = 20000.0", "min = -10.0\nmax = 20000.0"),
     "is not negative"),
    (lambda t: t + '\n[parameters.demand_factor_goodz]\nvalue = 1.0\nmin = 0.5\nmax = 2.0\nunit = "ratio"\n'
                   'source = "A-LL-DEMAND"\n', "demand_factor_goodz"),
])
def test_a_segment_or_demand_factor_that_cannot_work_is_refused(tmp_path, edit, message):
    bad = tmp_path / "bad"
    shutil.copytree(DATA, bad)
    (bad / "model.toml").write_text(edit((bad / "model.toml").read_text() + SEGMENT))
    r = cli("data", "check", bad)
    assert r.exit_code != 0 and message in r.output and "model.toml" in r.output
    assert "Traceback" not in r.output


def test_a_demand_factor_scales_its_commodity_in_every_year(tmp_path):
    """demand_factor_<commodity>: the tabled demand times the factor (a contestable share the table was
    built with, fitted or explored within its range); other commodities keep theirs."""
    import numpy as np

    import multivector as mv
    from multivector.freight.model import FreightModel
    from multivector.freight.network import compile_network

    own = tmp_path / "own"
    shutil.copytree(DATA, own)
    (own / "model.toml").write_text((own / "model.toml").read_text() + (
        '\n[parameters.demand_factor_goods]\nvalue = 1.0\nmin = 0.5\nmax = 2.0\nunit = "ratio"\n'
        'source = "A-LL-DEMAND"\ndescription = "contestable goods relative to the table"\n'))
    s = mv.load(own)
    model = FreightModel(s, compile_network(s))
    p = {k: np.array([v, v]) for k, v in s.defaults().items()}
    p["demand_factor_goods"] = np.array([1.0, 0.5])
    demand = model.demand(2026, p, 2)
    goods = model.net.od_commodity == "goods"
    np.testing.assert_allclose(demand[goods, 1], 0.5 * demand[goods, 0])
    np.testing.assert_allclose(demand[~goods, 1], demand[~goods, 0])
