"""The system-dynamics engine: analytic solutions, load-time checks, batching, XMILE/PySD equivalence."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import tomli_w

from multivector.errors import InputError, MultivectorError
from multivector.sd import (
    SimulationError,
    UnusedFlowWarning,
    compile_model,
    load_spec,
    parse_unit,
    to_xmile,
)
from multivector.sd.units import DIMENSIONLESS, YEAR, UnitSyntaxError

EXAMPLE = Path(__file__).parent / "data" / "sd" / "example.toml"
NS = {"x": "http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"}


def example_dict() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def decay_spec(k=0.5, dt=0.25, method="euler", stop=10) -> dict:
    return {
        "sd": {"start": 0, "stop": stop, "dt": dt, "method": method},
        "constants": {"k": {"value": k, "min": 0.0, "max": 5.0, "unit": "1/year", "source": "test"}},
        "stocks": {"s": {"unit": "t", "initial": 1.0, "outflows": ["decay"], "source": "test"}},
        "flows": {"decay": {"unit": "t/year", "equation": "k * s"}},
    }


def write(tmp_path, data, name="model.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(tomli_w.dumps(data).encode())
    return path


# ------------------------------------------------------------------------------------------- units
def test_unit_algebra():
    assert parse_unit("USD bn/year") == parse_unit("USD bn") / YEAR
    assert parse_unit("USD bn/year") == parse_unit("USD bn*year^-1")
    assert parse_unit("index/USD bn") == parse_unit("index") / parse_unit("USD bn")
    assert parse_unit("index") == parse_unit("1") == DIMENSIONLESS
    assert parse_unit("index/year") == parse_unit("1/year") == YEAR ** -1
    assert parse_unit("t/km/year") == parse_unit("t") / (parse_unit("km") * YEAR)
    assert parse_unit("km^2") == parse_unit("km") * parse_unit("km")
    assert parse_unit("Mt/year") != parse_unit("t/year")  # no scale conversions
    assert str(parse_unit("USD bn/year")) == "USD bn/year"
    for bad in ("1000 t", "km^", "(km", "", "km $$ ?"):
        with pytest.raises(UnitSyntaxError):
            parse_unit(bad)


# ------------------------------------------------------------------------------------------- analytic
def test_exponential_decay_euler_matches_the_euler_recursion_exactly():
    k, dt = 0.5, 0.25
    m = compile_model(decay_spec(k, dt))
    ds = m.run()
    steps = np.arange(len(ds.time))
    np.testing.assert_allclose(ds.time.values, steps * dt)
    np.testing.assert_allclose(ds["s"].values[0], (1 - k * dt) ** steps, rtol=1e-13, atol=0)
    np.testing.assert_allclose(ds["decay"].values[0], k * (1 - k * dt) ** steps, rtol=1e-13)


def test_exponential_decay_rk4_matches_the_exponential():
    k = 0.5
    m = compile_model(decay_spec(k, dt=1 / 32, method="rk4"))
    ds = m.run({"k": [k, 0.2]})
    t = ds.time.values
    for i, kk in enumerate([k, 0.2]):
        exact = np.exp(-kk * t)
        assert np.max(np.abs(ds["s"].values[i] - exact)) < 1e-8
        assert np.max(np.abs(ds["s"].values[i] / exact - 1)) < 1e-8


def logistic_spec(method, dt):
    return {
        "sd": {"start": 0, "stop": 20, "dt": dt, "method": method},
        "constants": {
            "r": {"value": 0.5, "unit": "1/year", "source": "test"},
            "capacity": {"value": 100.0, "unit": "t", "source": "test"},
            "p0": {"value": 1.0, "unit": "t", "source": "test"},
        },
        "stocks": {"p": {"unit": "t", "initial": "p0", "inflows": ["growth"], "source": "test"}},
        "flows": {"growth": {"unit": "t/year", "equation": "r * p * (1 - p / capacity)"}},
    }


def test_logistic_growth():
    r, cap, p0 = 0.5, 100.0, 1.0
    rk = compile_model(logistic_spec("rk4", 1 / 16)).run()
    t = rk.time.values
    exact = cap / (1 + (cap / p0 - 1) * np.exp(-r * t))
    np.testing.assert_allclose(rk["p"].values[0], exact, rtol=1e-7)
    # Euler follows its own recursion exactly
    dt = 0.125
    eu = compile_model(logistic_spec("euler", dt)).run()
    p, expected = p0, [p0]
    for _ in range(len(eu.time) - 1):
        p = p + dt * (r * p * (1 - p / cap))
        expected.append(p)
    np.testing.assert_allclose(eu["p"].values[0], expected, rtol=1e-13)
    assert abs(eu["p"].values[0, -1] - exact[-1]) < 0.1  # and is close to the logistic curve


def test_functions_step_ramp_clip_lookup():
    spec = {
        "sd": {"start": 2020, "stop": 2030, "dt": 0.25},
        "constants": {"h": {"value": 2.0, "unit": "t/year", "source": "test"}},
        "stocks": {"s": {"unit": "t", "initial": 0, "inflows": ["f"], "source": "test"}},
        "flows": {"f": {"unit": "t/year", "equation": "step(h, 2022) + ramp(h / 1, 2024, 2026) / 1"}},
        "auxiliaries": {
            "r": {"unit": "t", "equation": "ramp(h, 2024, 2026)"},
            "c": {"unit": "year", "equation": "clip(time - 2025, 0, 1)"},
            "g": {"unit": "index", "equation": "curve(c)"},
            "w": {"unit": "1", "equation": "if_then_else(time >= 2027 and not (time > 2028), 1, 0)"},
        },
        "lookups": {"curve": {"x": [0, 1], "y": [10, 20], "x_unit": "year", "unit": "index", "source": "t"}},
    }
    # 'ramp(h/1, ...)' has unit t/year * year = t, added to a t/year flow: a unit error
    with pytest.raises(InputError, match=r"\[flows.f\].*unit mismatch"):
        compile_model(spec)
    spec["flows"]["f"]["equation"] = "step(h, 2022)"
    ds = compile_model(spec).run()
    sel = lambda v, t: float(ds[v].sel(time=t).values[0])  # noqa: E731
    assert sel("f", 2021.75) == 0 and sel("f", 2022) == 2.0
    assert sel("r", 2024) == 0 and sel("r", 2025) == 2.0 and sel("r", 2029) == 4.0
    assert sel("c", 2025) == 0 and sel("c", 2025.5) == 0.5 and sel("c", 2027) == 1
    assert sel("g", 2025.5) == 15.0 and sel("g", 2030) == 20.0
    assert [sel("w", t) for t in (2026.75, 2027, 2028, 2028.25)] == [0, 1, 1, 0]


def test_example_model_runs_in_batch():
    m = compile_model(EXAMPLE)
    assert m.stock_names == ["diplomatic_capital", "russia_tolerance", "eu_investment", "rail_km"]
    n = 50
    rng = np.random.default_rng(0)
    ds = m.run({"mediation_intensity": rng.uniform(0, 1, n)}, exogenous={"transit_revenue": 2.0})
    assert ds["diplomatic_capital"].dims == ("run", "time")
    assert ds.sizes == {"run": n, "time": 65}
    assert ds["eu_investment"].attrs["units"] == "USD bn"
    assert ds["mediation_intensity"].dims == ("run",)
    for v in m.recorded:
        assert np.isfinite(ds[v].values).all()
    assert (ds["russia_tolerance"].values >= 0).all()
    assert (ds["transit_revenue"].values == 2.0).all()
    yearly = m.run(save_every=1)
    assert yearly.time.values.tolist() == list(range(2024, 2041))


def test_non_negative_stock_is_floored():
    spec = decay_spec(k=0.0)
    spec["flows"]["decay"]["equation"] = "k * s + 0.3"
    spec["flows"]["decay"]["unit"] = "t/year"
    ds = compile_model(spec).run()
    assert ds["s"].values.min() < 0
    spec["stocks"]["s"]["non_negative"] = True
    ds = compile_model(spec).run()
    assert ds["s"].values.min() == 0.0
    assert ds["s"].sel(time=10).item() == 0.0


# ------------------------------------------------------------------------------------------- load errors
def _mutations():
    """(id, mutate(spec dict), expected substrings of the error)."""
    m = lambda fn: fn  # noqa: E731 - keeps the table readable

    return [
        ("unknown-name", m(lambda d: d["flows"]["decay"].update(equation="k * ss")),
         ["[flows.decay] equation", "unknown name 'ss'", "did you mean 's'"]),
        ("syntax", m(lambda d: d["flows"]["decay"].update(equation="k * (s")),
         ["[flows.decay] equation", "syntax error"]),
        ("attribute", m(lambda d: d["flows"]["decay"].update(equation="k.real * s")), ["[flows.decay]", "not allowed"]),
        ("string", m(lambda d: d["flows"]["decay"].update(equation="'k' * s")), ["[flows.decay]", "not allowed"]),
        ("floordiv", m(lambda d: d["flows"]["decay"].update(equation="k // 1 * s")), ["[flows.decay]", "not allowed"]),
        ("ifexp", m(lambda d: d["flows"]["decay"].update(equation="k * s if s > 0 else 0")),
         ["[flows.decay]", "if_then_else"]),
        ("import", m(lambda d: d["flows"]["decay"].update(equation="__import__(k)")),
         ["[flows.decay]", "unknown function '__import__'"]),
        ("unknown-function", m(lambda d: d["flows"]["decay"].update(equation="expp(k) * s")),
         ["[flows.decay]", "unknown function 'expp'", "did you mean 'exp'"]),
        ("arity", m(lambda d: d["flows"]["decay"].update(equation="min(k * s)")),
         ["[flows.decay]", "min() takes 2 argument(s), got 1"]),
        ("defined-twice", m(lambda d: d.setdefault("auxiliaries", {}).update(s={"unit": "t", "equation": "1"})),
         ["[auxiliaries.s]", "defined twice", "[stocks.s]"]),
        ("cycle", m(lambda d: (d.setdefault("auxiliaries", {}).update(
            a={"unit": "t/year", "equation": "b + decay2"}, b={"unit": "t/year", "equation": "0.5 * a"}),
            d["flows"].update(decay2={"unit": "t/year", "equation": "a * 0.1"}),
            d["stocks"]["s"]["outflows"].append("decay2"))),
         ["[auxiliaries.a] algebraic loop", "a -> b -> a", "through a stock"]),
        ("self-loop", m(lambda d: d["flows"]["decay"].update(equation="k * s + 0 * decay")),
         ["[flows.decay] algebraic loop", "decay -> decay"]),
        ("undefined-flow", m(lambda d: d["stocks"]["s"].update(outflows=["decy"])),
         ["[stocks.s] outflows", "flow 'decy' is not defined", "did you mean 'decay'"]),
        ("flow-is-aux", m(lambda d: (d.setdefault("auxiliaries", {}).update(loss={"unit": "t/year", "equation": "1"}),
                                     d["stocks"]["s"]["outflows"].append("loss"))),
         ["[stocks.s] outflows", "'loss' is not a flow", "auxiliaries.loss"]),
        ("unit-add", m(lambda d: d["flows"]["decay"].update(equation="k * s + k")),
         ["[flows.decay] equation", "unit mismatch", "'+'", "'t/year'", "'1/year'"]),
        ("unit-declared", m(lambda d: d["flows"]["decay"].update(equation="k")),
         ["[flows.decay] unit mismatch", "gives '1/year'", "declared unit is 't/year'"]),
        ("unit-flow-vs-stock", m(lambda d: (d["constants"].update(v={"value": 1, "unit": "km/year", "source": "x"}),
                                            d["flows"]["decay"].update(unit="km/year", equation="v"))),
         ["[flows.decay] unit mismatch", "stock 's' is in 't'", "must be in 't/year'"]),
        ("unit-lookup-arg", m(lambda d: (d.update(lookups={"curve": {"x": [0, 1], "y": [0, 1], "x_unit": "index",
                                                                     "unit": "1/year", "source": "x"}}),
                                         d["flows"]["decay"].update(equation="curve(s) * s"))),
         ["[flows.decay] equation", "lookup curve() takes x in '1'", "'s' is 't'"]),
        ("unit-exp", m(lambda d: d["flows"]["decay"].update(equation="exp(s) * k")),
         ["[flows.decay] equation", "exp() must be dimensionless", "'s' is 't'"]),
        ("unit-compare", m(lambda d: d["flows"]["decay"].update(equation="if_then_else(s > k, k * s, 0)")),
         ["[flows.decay] equation", "comparison '>'"]),
        ("unit-min", m(lambda d: d["flows"]["decay"].update(equation="min(k * s, k)")),
         ["[flows.decay] equation", "min() needs equal units"]),
        ("unit-initial", m(lambda d: d["stocks"]["s"].update(initial="k")),
         ["[stocks.s] unit mismatch", "initial value is in '1/year'"]),
        ("unit-syntax", m(lambda d: d["flows"]["decay"].update(unit="t / / year")), ["[flows.decay] unit"]),
        ("unit-missing", m(lambda d: d["flows"]["decay"].pop("unit")), ["[flows.decay] unit is missing"]),
        ("initial-uses-stock", m(lambda d: d["stocks"]["s"].update(initial="2 * s")),
         ["[stocks.s] initial", "'s' is a stock", "only constants"]),
        ("constant-out-of-range", m(lambda d: d["constants"]["k"].update(value=7.0)),
         ["[constants.k]", "value 7 is outside its range [0, 5]"]),
        ("constant-min-max", m(lambda d: d["constants"]["k"].update(min=3.0, max=1.0, value=2.0)),
         ["[constants.k]", "min (3) is greater than max (1)"]),
        ("lookup-not-increasing", m(lambda d: d.update(lookups={"curve": {
            "x": [0, 1, 1], "y": [0, 1, 2], "x_unit": "1", "unit": "1", "source": "x"}})),
         ["[lookups.curve]", "strictly increasing", "x[2] = 1"]),
        ("lookup-lengths", m(lambda d: d.update(lookups={"curve": {
            "x": [0, 1, 2], "y": [0, 1], "x_unit": "1", "unit": "1", "source": "x"}})),
         ["[lookups.curve]", "x has 3 points but y has 2"]),
        ("dt-coarse", m(lambda d: d["sd"].update(dt=0.5)), ["[sd]", "dt = 0.5", "coarser than a quarter year"]),
        ("dt-not-dividing-year", m(lambda d: d["sd"].update(dt=0.15)), ["[sd]", "does not divide a year"]),
        ("stop-before-start", m(lambda d: d["sd"].update(stop=0)), ["[sd]", "stop (0) must be after start (0)"]),
        ("method", m(lambda d: d["sd"].update(method="heun")), ["[sd]", "method must be"]),
        ("unknown-key", m(lambda d: d["stocks"]["s"].update(inital=1)),
         ["[stocks.s]", "unknown key 'inital'", "did you mean 'initial'"]),
        ("unknown-table", m(lambda d: d.update(auxiliary={})), ["[auxiliary] unknown table", "'auxiliaries'"]),
        ("reserved-name", m(lambda d: d["constants"].update(time={"value": 1, "unit": "1", "source": "x"})),
         ["[constants.time]", "reserved"]),
        ("bad-name", m(lambda d: d["constants"].update(Rate={"value": 1, "unit": "1", "source": "x"})),
         ["[constants.Rate]", "bad name"]),
        ("missing-source", m(lambda d: d["constants"]["k"].pop("source")), ["[constants.k] source is missing"]),
        ("lookup-as-value", m(lambda d: (d.update(lookups={"curve": {"x": [0, 1], "y": [0, 1], "x_unit": "1",
                                                                     "unit": "1", "source": "x"}}),
                                         d["flows"]["decay"].update(equation="curve * s"))),
         ["[flows.decay]", "lookup 'curve' is used as a value"]),
    ]


@pytest.mark.parametrize("case", _mutations(), ids=lambda c: c[0])
def test_load_errors_name_the_file_and_variable(tmp_path, case):
    _, mutate, expected = case
    data = decay_spec()
    mutate(data)
    path = write(tmp_path, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedFlowWarning)
        with pytest.raises(InputError) as info:
            compile_model(path)
    text = str(info.value)
    assert "model.toml" in text
    for part in expected:
        assert part in text, f"{part!r} not in {text!r}"


def test_the_unmodified_base_model_is_valid():
    compile_model(decay_spec())
    data = decay_spec(dt=0.5)
    data["sd"]["allow_coarse"] = True
    assert compile_model(data).dt == 0.5


def test_toml_duplicate_table_is_an_input_error(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text(tomli_w.dumps(decay_spec()) + '\n[flows.decay]\nunit = "t/year"\nequation = "k"\n')
    with pytest.raises(InputError, match="dup.toml.*not valid TOML"):
        load_spec(path)


def test_unused_flow_is_a_warning():
    data = decay_spec()
    data["flows"]["leak"] = {"unit": "t/year", "equation": "k * s"}
    with pytest.warns(UnusedFlowWarning, match=r"\[flows.leak\]"):
        m = compile_model(data)
    assert "leak" in m.run()


def test_input_errors_at_run_time():
    m = compile_model(EXAMPLE)
    with pytest.raises(InputError, match="unknown constant 'mediation_efect'; did you mean 'mediation_effect'"):
        m.run({"mediation_efect": 0.2})
    with pytest.raises(InputError, match=r"\[constants.mediation_intensity\] 1 of 3 values are outside"):
        m.run({"mediation_intensity": [0.2, 1.5, 0.3]})
    with pytest.raises(InputError, match="exogenous.transit_revenue. has 3 yearly values"):
        m.run(exogenous={"transit_revenue": [1, 2, 3]})
    with pytest.raises(InputError, match="unknown exogenous input 'transit'"):
        m.run(exogenous={"transit": 1.0})
    with pytest.raises(InputError, match="disagree on the number of runs"):
        m.run({"mediation_intensity": [0.1, 0.2]}, exogenous={"transit_revenue": np.ones((16, 3))})
    state = m.initial_state()
    with pytest.raises(InputError, match="not on the time grid"):
        m.advance(state, 2024, 2024.1)


# ------------------------------------------------------------------------------------------- NaN / inf
def crash_spec():
    return {
        "sd": {"start": 2024, "stop": 2040, "dt": 0.25},
        "constants": {"t_crash": {"value": 2030, "unit": "year", "source": "test"},
                      "k": {"value": 0.1, "unit": "1/year", "source": "test"}},
        "stocks": {"s": {"unit": "t", "initial": 1.0, "inflows": ["growth"], "source": "test"}},
        "flows": {"growth": {"unit": "t/year", "equation": "k * s * (1 + y / (1 + y))"}},
        "auxiliaries": {"x": {"unit": "1/year", "equation": "1 / (time - t_crash)"},
                        "y": {"unit": "1", "equation": "abs(x) * t_crash"}},
    }


def test_non_finite_value_names_the_variable_year_and_runs():
    m = compile_model(crash_spec())
    with pytest.raises(SimulationError) as info:
        m.run({"t_crash": [2030.0, 2050.5, 2030.0, 2041.0]})
    err = info.value
    assert isinstance(err, MultivectorError)
    assert err.variable == "x" and err.time == 2030.0 and err.n_affected == 2 and err.n_runs == 4
    assert list(err.runs) == [0, 2]
    assert "'x'" in str(err) and "2030" in str(err) and "2 of 4 runs" in str(err)
    assert "[auxiliaries.x]" in str(err)
    # the incremental API checks too
    state = m.initial_state({"t_crash": [2030.0, 2050.5]})
    state = m.advance(state, 2024, 2029)
    with pytest.raises(SimulationError, match="'x'.*2030"):
        m.advance(state, 2029, 2031)


@pytest.mark.parametrize(("method", "year"), [("euler", "5.25"), ("rk4", "5.125")])
def test_nan_from_sqrt_of_a_negative_stock(method, year):
    # s = 10 - t, so sqrt(s - 5) is NaN from t > 5: at the next step under Euler, at the
    # half-step stage under RK4 (stages are checked too)
    spec = {
        "sd": {"start": 0, "stop": 10, "dt": 0.25, "method": method},
        "stocks": {"s": {"unit": "1", "initial": "10", "outflows": ["drain"], "source": "test"}},
        "flows": {"drain": {"unit": "1/year", "equation": "1"}},
        "auxiliaries": {"z": {"unit": "1", "equation": "sqrt(s - 5)"}},
    }
    with pytest.raises(SimulationError, match=rf"\[auxiliaries.z\] auxiliary 'z'.* year {year} in 1 of 1 runs"):
        compile_model(spec).run()


# ------------------------------------------------------------------------------------------- batching
def test_batch_of_1000_equals_1000_separate_runs():
    data = example_dict()
    data["sd"]["stop"] = 2030  # a shorter horizon keeps the 1000 separate runs quick
    m = compile_model(data)
    n = 1000
    rng = np.random.default_rng(42)
    consts = {
        "mediation_intensity": rng.uniform(0, 1, n),
        "mediation_effect": rng.uniform(0.1, 0.6, n),
        "eu_response": rng.uniform(1, 6, n),
        "rail_cost": rng.uniform(0.003, 0.008, n),
    }
    revenue = rng.uniform(0.5, 3.0, (6, n))
    batch = m.run(consts, n, exogenous={"transit_revenue": revenue}, save_every=1)
    for i in range(n):
        one = m.run({k: v[i] for k, v in consts.items()}, exogenous={"transit_revenue": revenue[:, i]},
                    save_every=1)
        for v in m.stock_names + ["tolerance_target", "rail_construction"]:
            np.testing.assert_array_equal(one[v].values[0], batch[v].values[i], err_msg=f"{v}, run {i}")


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_incremental_api_equals_one_shot_run(method):
    data = example_dict()
    data["sd"]["method"] = method
    m = compile_model(data)
    n = 7
    rng = np.random.default_rng(1)
    consts = {"mediation_intensity": rng.uniform(0, 1, n), "policy_boost": 0.2}
    revenue = rng.uniform(0.5, 3.0, (17, n))  # 2024..2040
    one_shot = m.run(consts, exogenous={"transit_revenue": revenue}, save_every=1)

    rec = m.recorder()
    state = m.initial_state(consts, n)
    for i, year in enumerate(range(2024, 2040)):
        inputs = {"transit_revenue": revenue[i]}
        rec.record(state, exogenous=inputs)
        state = m.advance(state, year, year + 1, exogenous=inputs)
        assert state.time == year + 1
        assert state["rail_km"].shape == (n,)
    rec.record(state, exogenous={"transit_revenue": revenue[16]})
    loop = rec.to_dataset()
    assert loop.time.values.tolist() == one_shot.time.values.tolist()
    for v in m.recorded:
        np.testing.assert_array_equal(loop[v].values, one_shot[v].values, err_msg=v)

    # stepping by dt gives the same numbers too, and so does a callable input
    fine = m.run(consts, exogenous={"transit_revenue": lambda year: revenue[year - 2024]})
    state = m.initial_state(consts, n, exogenous={"transit_revenue": revenue[0]})
    states = [state]
    for k in range(len(m.times) - 1):
        t0, t1 = m.times[k], m.times[k + 1]
        state = m.advance(state, t0, t1, exogenous={"transit_revenue": revenue[int(t0) - 2024]})
        states.append(state)
    for s in m.stock_names:
        np.testing.assert_array_equal(np.stack([st[s] for st in states], axis=1), fine[s].values)


# ------------------------------------------------------------------------------------------- XMILE
def test_xmile_export_structure(tmp_path):
    m = compile_model(EXAMPLE)
    years = m.years
    path = tmp_path / "example.xmile"
    text = to_xmile(m, {"mediation_intensity": 0.7}, {"transit_revenue": (years, np.linspace(1, 2, len(years)))},
                    path)
    assert path.read_text() == text
    root = ET.parse(path).getroot()
    assert root.tag == "{%s}xmile" % NS["x"] and root.attrib["version"] == "1.0"
    assert root.find("x:header/x:vendor", NS).text == "multivector"
    sim = root.find("x:sim_specs", NS)
    assert sim.attrib["method"] == "Euler"
    assert [sim.find(f"x:{k}", NS).text for k in ("start", "stop", "dt")] == ["2024", "2040", "0.25"]
    variables = root.find("x:model/x:variables", NS)
    stock = variables.find("x:stock[@name='russia_tolerance']", NS)
    assert stock.find("x:eqn", NS).text == "0.9"
    assert [e.text for e in stock.findall("x:inflow", NS)] == ["tolerance_adjustment"]
    assert stock.find("x:non_negative", NS) is not None
    cap = variables.find("x:stock[@name='diplomatic_capital']", NS)
    assert cap.find("x:outflow", NS).text == "capital_decay"
    assert variables.find("x:aux[@name='mediation_intensity']/x:eqn", NS).text == "0.7"
    act = variables.find("x:aux[@name='mediation_activity']/x:eqn", NS).text
    assert "MIN(MAX(" in act and "STEP(policy_boost, policy_year)" in act
    gf = variables.find("x:gf[@name='tolerance_response']", NS)
    assert gf.find("x:xscale", NS).attrib == {"min": "0", "max": "1"}
    assert gf.find("x:ypts", NS).text == "1,0.95,0.8,0.5,0.2"
    assert variables.find("x:aux[@name='transit_revenue']/x:eqn", NS).text == "transit_revenue_series(TIME)"
    series = variables.find("x:gf[@name='transit_revenue_series']", NS)
    assert series.attrib["type"] == "discrete" and len(series.find("x:ypts", NS).text.split(",")) == 17
    # RK4 and the function translations
    data = decay_spec(method="rk4")
    data["auxiliaries"] = {"a": {"unit": "1", "equation": "if_then_else(s * k != k * s, 1, ramp(0.1, 2, 4)) + log(2)"}}
    text = to_xmile(compile_model(data), None, None, None)
    assert 'method="RK4"' in text
    assert "(IF ((s * k) &lt;&gt; (k * s)) THEN 1 ELSE (RAMP(0.1, 2) - RAMP(0.1, 4)))" in text and "LN(2)" in text


def _pysd_run(pysd, path, params=None):
    model = pysd.read_xmile(str(path))
    with warnings.catch_warnings():
        # PySD warns whenever a graphical function is evaluated beyond its last point
        warnings.simplefilter("ignore")
        # PySD records at every SAVEPER (= TIME STEP in an XMILE import) from INITIAL TIME to
        # FINAL TIME inclusive, like our run(); it has no RK4 (method="RK4" is ignored: Euler).
        df = model.run(params=params or {})
    return {c.lower().replace(" ", "_"): df[c].values for c in df.columns}, df.index.values


@pytest.mark.requires_pysd
def test_pysd_runs_the_exported_example_like_we_do(tmp_path):
    pysd = pytest.importorskip("pysd")
    m = compile_model(EXAMPLE)
    years = m.years
    revenue = 1.0 + 0.15 * (years - 2024) + 0.3 * np.sin(years)
    consts = {"mediation_intensity": 0.8, "mediation_effect": 0.45, "policy_year": 2031.5}
    path = tmp_path / "example.xmile"
    to_xmile(m, consts, {"transit_revenue": (years, revenue)}, path)
    cols, t = _pysd_run(pysd, path)
    ours = m.run(consts, exogenous={"transit_revenue": revenue})
    np.testing.assert_allclose(t, ours.time.values)
    for v in m.recorded:
        np.testing.assert_allclose(cols[v], ours[v].values[0], rtol=1e-6, atol=1e-12, err_msg=v)
    # and without an exogenous series (default input), with parameters set through PySD
    to_xmile(m, None, None, path)
    cols, _ = _pysd_run(pysd, path, params={"eu_response": 5.0})
    ours = m.run({"eu_response": 5.0})
    for v in m.stock_names:
        np.testing.assert_allclose(cols[v], ours[v].values[0], rtol=1e-6, err_msg=v)


@pytest.mark.requires_pysd
def test_pysd_agrees_on_every_function(tmp_path):
    pysd = pytest.importorskip("pysd")
    spec = {
        "sd": {"start": 2020, "stop": 2032, "dt": 0.125},
        "constants": {"k": {"value": 0.3, "unit": "1/year", "source": "t"},
                      "cap": {"value": 50.0, "unit": "t", "source": "t"}},
        "stocks": {"s": {"unit": "t", "initial": "cap / 5", "inflows": ["f_in"], "outflows": ["f_out"],
                         "source": "t"},
                   "q": {"unit": "1", "initial": 0.3, "inflows": ["q_in"], "non_negative": True, "source": "t"}},
        "flows": {
            "f_in": {"unit": "t/year", "equation": "k * s * (1 - s / cap) * curve(s / cap) + step(2, 2025) * 1"},
            "f_out": {"unit": "t/year", "equation": "max(0, min(k * s / 4, 3)) + ramp(0.5, 2026, 2029)"},
            "q_in": {"unit": "1/year",
                     "equation": "if_then_else(time >= 2023 and s > 12 or time > 2030, 0.2, -1) * k"},
        },
        "auxiliaries": {
            "a": {"unit": "1", "equation": "exp(-(s / cap) ** 2) + log(1 + s / cap) - sqrt(abs(q - 0.1))"},
            "b": {"unit": "t", "equation": "clip(s - 15, -2, 2) * 1 + -s / 2 ** 2"},
            "c": {"unit": "1", "equation": "if_then_else(not (q > 0.05), 1, 0) + (s != s) + (a == a)"},
        },
        "lookups": {"curve": {"x": [0, 0.3, 1], "y": [1, 1.2, 0.5], "x_unit": "1", "unit": "1", "source": "t"}},
    }
    m = compile_model(spec)
    path = tmp_path / "functions.xmile"
    to_xmile(m, None, None, path)
    cols, _ = _pysd_run(pysd, path)
    ours = m.run()
    assert ours["q"].values.min() == 0.0  # the floor of a non-negative stock is exercised
    # (PySD quirk: it floors a non-negative stock only after a step, not its initial value; we
    # floor the initial value too, so this model starts q above zero.)
    for v in m.recorded:
        np.testing.assert_allclose(cols[v], ours[v].values[0], rtol=1e-6, atol=1e-12, err_msg=v)
