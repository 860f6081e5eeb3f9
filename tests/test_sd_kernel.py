"""The compiled Euler kernel (``sd/kernel.py``) against the engine's numpy path, which it replaces."""

from __future__ import annotations

import numpy as np
import pytest

import multivector as mv
from multivector.sd import SimulationError, compile_model
from multivector.sd.kernel import Kernel


def every_operation_spec() -> dict:
    """A model whose equations use every operation an equation may: lookups off their ends and on their
    points, min/max/clip, if_then_else with a division by zero in the branch not taken, step, ramp,
    comparisons and boolean operators, and exp, log, sqrt, abs and powers."""
    c = lambda v, lo, hi, unit="1": {"value": v, "min": lo, "max": hi, "unit": unit, "source": "test"}  # noqa: E731
    return {
        "sd": {"start": 2020, "stop": 2035, "dt": 0.25, "method": "euler"},
        "constants": {"a": c(0.3, 0.0, 1.0), "b": c(2.0, 0.5, 4.0), "g": c(0.05, -0.2, 0.2, "1/year"),
                      "t0": c(2026.0, 2020.0, 2035.0, "year"),
                      "r": c(1.0, 0.5, 2.0, "1/year")},
        "lookups": {"curve": {"x": [0.0, 0.5, 1.0, 2.0], "y": [0.2, 1.0, 1.0, 3.0], "x_unit": "1", "unit": "1", "source": "test"}},
        "exogenous": {"shock": {"unit": "1/year", "default": 0.0, "source": "test"}},
        "stocks": {"s": {"unit": "1", "initial": "a", "inflows": ["grow"], "outflows": ["shed"], "source": "test",
                         "non_negative": True},
                   "w": {"unit": "1", "initial": "b * 0.5", "inflows": ["drift"], "source": "test"}},
        "flows": {"grow": {"unit": "1/year", "equation": "g * s * curve(w) + r * step(0.1, t0) + r * ramp(0.01, t0, 2030)"},
                  "shed": {"unit": "1/year", "equation": "r * clip(s - 1.5, 0, 1) * 0.5 + shock"},
                  "drift": {"unit": "1/year", "equation": "if_then_else(w > -100 and not (s < 0), "
                                                          "g * sqrt(abs(w)) - r * min(w, s) * 0.01, r / (w - w))"}},
        "auxiliaries": {"mix": {"unit": "1", "equation": "max(exp(-w), log(1 + s)) + (s / (1 + abs(w))) ** a + b ** 2"},
                        "flag": {"unit": "1", "equation": "s >= w or w > 3"},
                        "clipped": {"unit": "1", "equation": "curve(s * 3 - 1) + curve(0.5) + curve(2)"}},
    }


def _numpy_path(spec):
    """The same model with the compiled kernel switched off."""
    m = compile_model(spec)
    m._kernel = None
    return m


def test_the_kernel_gives_the_numpy_paths_numbers():
    spec = every_operation_spec()
    rng = np.random.default_rng(3)
    constants = {"a": rng.uniform(0, 1, 40), "b": rng.uniform(0.5, 4, 40), "g": rng.uniform(-0.2, 0.2, 40),
                 "t0": rng.uniform(2020, 2035, 40)}
    shock = np.linspace(0, 0.2, 16)                           # an input that changes each year
    fast = compile_model(spec).run(constants, exogenous={"shock": shock})
    slow = _numpy_path(spec).run(constants, exogenous={"shock": shock})
    assert list(fast.data_vars) == list(slow.data_vars) and np.array_equal(fast.time, slow.time)
    for name in fast.data_vars:
        a, b = fast[name].to_numpy(), slow[name].to_numpy()
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14), name
    # without exp, log or a power in their history the values are the same to the last bit
    for name in ("flag", "clipped"):
        assert np.array_equal(fast[name], slow[name]), name
    assert fast["s"].min() >= 0.0                             # the non-negative stock is floored


def test_a_run_gets_the_same_answer_alone_and_in_any_batch():
    m = compile_model(every_operation_spec())
    batch = m.run({"a": [0.1, 0.5, 0.9], "g": [0.1, -0.1, 0.05]})
    alone = m.run({"a": 0.5, "g": -0.1})
    for name in batch.data_vars:
        assert np.array_equal(batch[name].isel(run=1), alone[name].isel(run=0)), name


@pytest.mark.parametrize("every", [0.25, 0.75, 1.0, 2.0])
def test_recording_every_so_often_keeps_the_steps_the_numpy_path_keeps(every):
    spec = every_operation_spec()
    fast = compile_model(spec).run({"a": [0.2, 0.7]}, save_every=every)
    slow = _numpy_path(spec).run({"a": [0.2, 0.7]}, save_every=every)
    assert np.array_equal(fast.time, slow.time) and fast.time[-1] == 2035
    assert np.allclose(fast["s"], slow["s"], rtol=1e-12)


def test_incremental_steps_agree_with_one_shot_run():
    spec = every_operation_spec()
    m = compile_model(spec)
    ds = m.run({"a": [0.2, 0.7]}, save_every=1.0)
    state = m.initial_state({"a": [0.2, 0.7]})
    for year in range(2020, 2035):
        assert np.array_equal(state["mix"], ds["mix"].sel(time=year).to_numpy())
        state = m.advance(state, year, year + 1)


def test_a_non_finite_value_is_still_named_by_the_numpy_path():
    spec = every_operation_spec()
    spec["auxiliaries"]["bad"] = {"unit": "1/year", "equation": "1 / (time - t0)"}
    m = compile_model(spec)
    with pytest.raises(SimulationError) as info:
        m.run({"t0": [2030.0, 2031.1, 2030.0]})
    assert info.value.variable == "bad" and info.value.time == 2030.0 and list(info.value.runs) == [0, 2]


def test_the_generated_kernel_is_cached_on_disk_by_its_source(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIVECTOR_CACHE_DIR", str(tmp_path))
    spec, other = every_operation_spec(), every_operation_spec()
    spec["lookups"]["curve"]["y"][3] = other["lookups"]["curve"]["y"][3] = 3.5    # a source no test has loaded
    spec["constants"]["a"]["value"] = 0.31        # constants are inputs of the kernel, not part of its source
    k = Kernel(compile_model(spec))
    assert k.source == Kernel(compile_model(other)).source
    k._function()
    files = sorted(p.name for p in (tmp_path / "kernels").glob("sd_*.py"))
    assert len(files) == 1 and (tmp_path / "kernels" / files[0]).read_text() == k.source
    spec["lookups"]["curve"]["y"][0] = 0.25       # a lookup is part of the source: another kernel
    Kernel(compile_model(spec))._function()
    assert len(list((tmp_path / "kernels").glob("sd_*.py"))) == 2


def test_without_a_cache_folder_the_kernel_is_built_in_memory(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTIVECTOR_CACHE_DIR", "")
    spec = every_operation_spec()
    spec["sd"]["stop"] = 2031                     # a source no earlier test has loaded
    ds = compile_model(spec).run({"a": 0.4})
    assert np.isfinite(ds["s"]).all()


def test_the_kazakhstan_register_runs_compiled_as_on_numpy():
    pol = mv.load("kazakhstan").politics.sd
    slow = compile_model(pol.spec)
    slow._kernel = None
    a, b = pol.run(n=3), slow.run(n=3)
    for name in a.data_vars:
        assert np.allclose(a[name], b[name], rtol=1e-11, atol=1e-12), name
