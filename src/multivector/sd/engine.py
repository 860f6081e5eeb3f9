"""Compile a model spec and integrate it over a batch of runs.

:func:`compile_model` checks every equation (names, syntax, algebraic loops, units) and returns an
:class:`SDModel`. The model integrates all runs at once: every stock, flow and auxiliary is an
array shaped ``[N]``. Euler steps run in one compiled function per model (:mod:`.kernel`), a loop
over runs with every value in a local variable; RK4, and the repeat of an interval that produced a
non-finite value (to name it), evaluate each equation as numpy operations over the whole batch.

Two ways to run, with identical numbers:

* one shot: ``ds = model.run(constants, n, exogenous)`` returns an :class:`xarray.Dataset` with
  dims ``(run, time)``;
* incrementally, for a coupling loop that computes the exogenous inputs from the state::

      rec = model.recorder()
      state = model.initial_state(constants, n)
      for year in range(start, stop):
          inputs = {"revenue": revenue_from_elsewhere(state)}        # arrays [N]
          rec.record(state, exogenous=inputs)        # values at `year` under this year's inputs
          state = model.advance(state, year, year + 1, exogenous=inputs)
      rec.record(state)                              # (or with the last year's inputs)
      ds = rec.to_dataset()

Conventions
-----------
* Time steps lie on the grid ``start + k*dt``; ``1/dt`` is a whole number so years are grid points.
* Exogenous inputs are piecewise constant within a year: the value for year ``y`` is in force on
  ``[y, y+1)``. Values recorded at time ``t`` are computed with the inputs in force at ``t``.
* Euler: ``S(t+dt) = S(t) + dt * net_flow(t)``. RK4: the classic four stages, inputs held at the
  step's start value. A ``non_negative`` stock is floored at 0 after each step (and, under RK4, in
  each stage) -- a documented non-linearity, as in XMILE/PySD.
* After every evaluation the engine checks that each value is finite; the first variable (in
  evaluation order) that is NaN or infinite raises :class:`SimulationError` with the year and the
  number of runs affected.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError, MultivectorError
from . import equations as eq
from .kernel import Kernel
from .spec import SDSpec, load_spec, parse_spec
from .units import YEAR, Unit, parse_unit, same

__all__ = ["SimulationError", "State", "Recorder", "SDModel", "compile_model"]


class SimulationError(MultivectorError):
    """A value became NaN or infinite during a run.

    Attributes: ``variable``, ``time`` (years), ``n_affected``, ``n_runs``, ``runs`` (indices of
    the affected runs).
    """

    def __init__(self, variable: str, time: float, runs: np.ndarray, n_runs: int, kind: str = "",
                 where: str = ""):
        self.variable = variable
        self.time = float(time)
        self.runs = np.asarray(runs)
        self.n_affected = int(len(self.runs))
        self.n_runs = int(n_runs)
        first = ", ".join(str(int(r)) for r in self.runs[:5]) + (", ..." if len(self.runs) > 5 else "")
        label = f"[{where}] " if where else ""
        super().__init__(
            f"{label}{kind + ' ' if kind else ''}'{variable}' became non-finite (NaN or infinite) at year "
            f"{self.time:g} in {self.n_affected} of {self.n_runs} runs (runs {first})"
        )


@dataclass
class State:
    """The model at one time: stocks and every other value, arrays shaped ``[N]``.

    ``state["name"]`` gives any stock, flow, auxiliary, exogenous input or constant.
    """

    time: float
    n: int
    stocks: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    constants: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    static: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.values:
            return self.values[name]
        if name in self.constants:
            return self.constants[name]
        raise KeyError(name)

    def __contains__(self, name) -> bool:
        return name in self.values or name in self.constants


def _as_n(v, n: int) -> np.ndarray:
    if isinstance(v, np.ndarray) and v.shape == (n,):
        return v if v.dtype == np.float64 else v.astype(np.float64)
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()


def _unit_text(declared: str, unit: Unit) -> str:
    """``'USD bn / year'`` and, where it reads differently, the unit it means."""
    return f"'{declared}'" if str(unit) == declared else f"'{declared}' (= {unit})"


def _suggest(name, candidates):
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class Recorder:
    """Collects states (one per recorded time) into an :class:`xarray.Dataset` with dims (run, time)."""

    def __init__(self, model: "SDModel"):
        self.model = model
        self.times: list[float] = []
        self._cols: dict[str, list[np.ndarray]] = {name: [] for name in model.recorded}
        self._constants: dict[str, np.ndarray] | None = None
        self.n: int | None = None

    def record(self, state: State, exogenous: Mapping | None = None) -> State:
        """Store the values of ``state`` (re-evaluated with ``exogenous`` when given)."""
        if exogenous is not None:
            state = self.model.evaluate(state, exogenous)
        self._add(state.time, state.values, state.n, state.constants)
        return state

    def _add(self, t, values, n, constants):
        if self.n is None:
            self.n = n
            self._constants = constants
        elif n != self.n:
            raise InputError(f"cannot record a state of {n} runs into a recording of {self.n} runs")
        if self.times and t <= self.times[-1] + 1e-12:
            raise InputError(f"states must be recorded in time order (year {t:g} after {self.times[-1]:g})")
        self.times.append(float(t))
        for name, col in self._cols.items():
            col.append(_as_n(values[name], n))

    def stacked(self) -> tuple[list[str], np.ndarray]:
        """The recorded variables' names and their values as one ``[run, time, variable]`` array."""
        if not self.times:
            raise InputError("nothing was recorded")
        names = list(self._cols)
        return names, np.stack([np.stack(self._cols[v], axis=1) for v in names], axis=-1)

    def to_dataset(self) -> xr.Dataset:
        m = self.model
        if not self.times:
            raise InputError("nothing was recorded")
        data = {}
        for name, col in self._cols.items():
            # stacked time-major (a contiguous copy per time) and viewed as (run, time)
            data[name] = (("run", "time"), np.stack(col, axis=0).T, m.attrs(name))
        return m._dataset(data, self._constants, self.times, self.n)


class SDModel:
    """A compiled, checked system-dynamics model. Build it with :func:`compile_model`."""

    def __init__(self, spec: SDSpec):
        self.spec = spec
        self.sim = spec.sim
        self.start, self.stop, self.dt = spec.sim.start, spec.sim.stop, spec.sim.dt
        self.method = spec.sim.method
        self.file = spec.file
        self.stock_names = list(spec.stocks)
        self.flow_names = list(spec.flows)
        self.aux_names = list(spec.auxiliaries)
        self.constant_names = list(spec.constants)
        self.exogenous_names = list(spec.exogenous)
        self.lookup_names = list(spec.lookups)
        self.kinds = spec.kinds()
        self._compile()

    # ------------------------------------------------------------------------------ compile
    def _compile(self):
        spec, file = self.spec, self.file
        kinds = self.kinds
        lookups = set(spec.lookups)
        self.units: dict[str, Unit] = {}
        for section in ("constants", "stocks", "flows", "auxiliaries", "exogenous"):
            for name, item in getattr(spec, section).items():
                self.units[name] = parse_unit(item.unit)
        lookup_units = {n: (parse_unit(lk.x_unit), parse_unit(lk.unit)) for n, lk in spec.lookups.items()}
        self.lookup_data = {n: (np.asarray(lk.x, float), np.asarray(lk.y, float)) for n, lk in spec.lookups.items()}

        # parse and check names
        self.equations: dict[str, eq.Node] = {}
        for name in self.flow_names + self.aux_names:
            item = spec.flows.get(name) or spec.auxiliaries[name]
            where = spec.where(name)
            node = eq.parse_equation(item.equation, where=where, file=file)
            eq.check_names(node, kinds, lookups, where=where, file=file)
            self.equations[name] = node
        self.initials: dict[str, eq.Node] = {}
        for name, s in spec.stocks.items():
            where = f"stocks.{name}"
            node = eq.parse_equation(s.initial, where=where, file=file, field="initial")
            eq.check_names(node, kinds, lookups, where=where, file=file, field="initial",
                           allowed_kinds={"constant"})
            self.initials[name] = node

        # algebraic loops and evaluation order
        self.order = self._topological_order()

        # units
        for name in self.order:
            where = spec.where(name)
            got = eq.infer_unit(self.equations[name], self.units, lookup_units, where=where, file=file)
            want = self.units[name]
            if not same(got, want):
                declared = (spec.flows.get(name) or spec.auxiliaries[name]).unit
                raise InputError(
                    f"[{where}] unit mismatch: the equation gives '{got}' but the declared unit is "
                    f"{_unit_text(declared, want)}", file=file, hint="fix the equation or the unit")
        for name, s in spec.stocks.items():
            where = f"stocks.{name}"
            got = eq.infer_unit(self.initials[name], self.units, lookup_units, where=where, file=file,
                                field="initial")
            if not same(got, self.units[name]):
                raise InputError(f"[{where}] unit mismatch: the initial value is in '{got}' but the stock is in "
                                 f"{_unit_text(s.unit, self.units[name])}", file=file)
            per_year = self.units[name] / YEAR
            for f in s.inflows + s.outflows:
                if self.units[f] != per_year:
                    raise InputError(
                        f"[flows.{f}] unit mismatch: the flow is in "
                        f"{_unit_text(spec.flows[f].unit, self.units[f])} but "
                        f"stock '{name}' is in '{s.unit}', so its flows must be in '{per_year}'",
                        file=file, hint="a flow's unit is its stock's unit per year")

        # compile to numpy
        self._funcs = {name: eq.compile_numpy(node, self.lookup_data) for name, node in self.equations.items()}
        for name, node in self.equations.items():
            if eq.is_boolean(node):
                f = self._funcs[name]
                self._funcs[name] = lambda env, f=f: np.asarray(f(env), dtype=np.float64)
        self._initial_funcs = {name: eq.compile_numpy(node, self.lookup_data) for name, node in self.initials.items()}

        # static variables: depend on constants (and other static variables) only
        static = set()
        for name in self.order:
            if all(d in spec.constants or d in static for d in eq.names_in(self.equations[name])):
                static.add(name)
        self.static_names = [n for n in self.order if n in static]
        self.dynamic_names = [n for n in self.order if n not in static]
        self._static_funcs = [(n, self._funcs[n]) for n in self.static_names]
        self._dynamic_funcs = [(n, self._funcs[n]) for n in self.dynamic_names]
        self._net = [(s, list(spec.stocks[s].inflows), list(spec.stocks[s].outflows)) for s in self.stock_names]
        self._nonneg = [s for s in self.stock_names if spec.stocks[s].non_negative]
        # values checked after every evaluation, in evaluation order
        self._check_order = self.stock_names + self.dynamic_names
        self.recorded = self.stock_names + self.flow_names + self.aux_names + self.exogenous_names
        # Euler steps run compiled (sd/kernel.py); RK4 and the error reports run on numpy
        self._kernel = Kernel(self) if self.method == "euler" else None

    def _topological_order(self) -> list[str]:
        names = self.flow_names + self.aux_names
        computed = set(names)
        deps = {n: [d for d in sorted(eq.names_in(self.equations[n])) if d in computed] for n in names}
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        order: list[str] = []
        for root in names:
            if root in state:
                continue
            stack = [(root, iter(deps[root]))]
            path = [root]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    order.append(node)
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    cycle = list(reversed(cycle))  # in the direction of causation: a -> b means b uses a
                    where = self.spec.where(cycle[0])
                    raise InputError(
                        f"[{where}] algebraic loop: {' -> '.join(cycle)} (each uses the one before it)",
                        file=self.file, hint="every feedback loop must pass through a stock")
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(deps[nxt])))
        return order

    # ------------------------------------------------------------------------------ metadata
    @property
    def times(self) -> np.ndarray:
        """The time grid ``start + k*dt`` (years)."""
        return self.start + np.arange(self.sim.n_steps + 1) * self.dt

    @property
    def years(self) -> np.ndarray:
        """The whole years ``start .. stop`` (the rows of a yearly exogenous series)."""
        return np.arange(int(self.start), int(self.stop) + 1)

    def attrs(self, name: str) -> dict:
        kind = self.kinds[name]
        section = {"stock": "stocks", "flow": "flows", "auxiliary": "auxiliaries", "constant": "constants",
                   "exogenous": "exogenous"}[kind]
        item = getattr(self.spec, section)[name]
        out = {"kind": kind, "units": item.unit}
        if item.source:
            out["source"] = item.source
        if item.doc:
            out["doc"] = item.doc
        return out

    def dataset_attrs(self) -> dict:
        out = {"start": self.start, "stop": self.stop, "dt": self.dt, "method": self.method}
        if self.file:
            out["model_file"] = str(self.file)
        if self.spec.title:
            out["title"] = self.spec.title
        return out

    def defaults(self) -> dict[str, float]:
        """The default value of every constant."""
        return {n: c.value for n, c in self.spec.constants.items()}

    def __repr__(self):
        return (f"SDModel({len(self.stock_names)} stocks, {len(self.flow_names)} flows, {len(self.aux_names)} "
                f"auxiliaries, {len(self.constant_names)} constants, {self.start:g}-{self.stop:g}, dt={self.dt:g}, "
                f"{self.method})")

    # ------------------------------------------------------------------------------ inputs
    def _infer_n(self, constants, exogenous, n):
        sizes = {}
        for name, v in (constants or {}).items():
            if not callable(v) and np.ndim(v) == 1:
                sizes[f"constant '{name}'"] = len(v)
        for name, v in (exogenous or {}).items():
            if not callable(v) and np.ndim(v) == 2:
                sizes[f"exogenous '{name}'"] = np.shape(v)[1]
        found = {s for s in sizes.values() if s != 1}
        if n is None:
            if len(found) > 1:
                raise InputError("inputs disagree on the number of runs: " +
                                 ", ".join(f"{k} has {v}" for k, v in sizes.items()))
            n = found.pop() if found else 1
        n = int(n)
        if n < 1:
            raise InputError(f"the number of runs must be at least 1, not {n}")
        for k, v in sizes.items():
            if v not in (1, n):
                raise InputError(f"{k} has {v} values but there are {n} runs")
        return n

    def _check_known(self, given, defined, what: str) -> None:
        for name in given:
            if name not in defined:
                kind = self.kinds.get(name)
                extra = f" (it is a {kind})" if kind else _suggest(name, defined)
                raise InputError(f"unknown {what} '{name}'{extra}", file=self.file)

    def _per_run(self, table: str, name: str, value, n: int, when: str = "") -> np.ndarray:
        """``value`` (one number or one per run) as a finite ``[N]`` array (a copy), or a clear error."""
        if type(value) is np.ndarray and value.shape == (n,) and value.dtype == np.float64:
            if math.isfinite(np.add.reduce(value)):      # the common case, checked in one sum
                return value.copy()
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] not in (1, n)):
            raise InputError(f"[{table}.{name}] needs one value or {n} values (one per run), got shape "
                             f"{arr.shape}", file=self.file)
        arr = np.broadcast_to(arr.reshape(-1) if arr.ndim else arr, (n,)).copy()
        bad = ~np.isfinite(arr)
        if bad.any():
            raise InputError(f"[{table}.{name}] {int(bad.sum())} of {n} values{when} are not finite", file=self.file)
        return arr

    def _constants(self, constants, n) -> dict[str, np.ndarray]:
        constants = dict(constants or {})
        self._check_known(constants, self.spec.constants, "constant")
        out = {}
        for name, c in self.spec.constants.items():
            arr = self._per_run("constants", name, constants.get(name, c.value), n)
            lo = -np.inf if c.min is None else c.min
            hi = np.inf if c.max is None else c.max
            out_of = (arr < lo) | (arr > hi)
            if out_of.any():
                i = int(np.argmax(out_of))
                raise InputError(f"[constants.{name}] {int(out_of.sum())} of {n} values are outside "
                                 f"[{lo:g}, {hi:g}] (run {i}: {arr[i]:g})", file=self.file,
                                 hint="widen min/max in the model file if the range is meant")
            out[name] = arr
        return out

    def _inputs(self, exogenous, n, year=None) -> dict[str, np.ndarray]:
        """Exogenous inputs for one interval: name -> array [N] (defaults where not given)."""
        exogenous = dict(exogenous or {})
        self._check_known(exogenous, self.spec.exogenous, "exogenous input")
        out = {}
        when = f" for year {year}" if year is not None else ""
        for name, x in self.spec.exogenous.items():
            out[name] = self._per_run("exogenous", name, exogenous.get(name, x.default), n, when)
        return out

    def _series(self, exogenous, n) -> Callable[[int], dict]:
        """Yearly exogenous series for :meth:`run`: returns ``inputs(i)`` for year ``start + i``."""
        exogenous = dict(exogenous or {})
        self._inputs({k: 0.0 for k in exogenous}, n)  # unknown names
        n_years = int(self.stop - self.start)
        getters = {}
        for name, v in exogenous.items():
            if callable(v):
                cache = {}

                def get(i, f=v, cache=cache):
                    if i not in cache:
                        cache[i] = f(int(self.start) + i)
                    return cache[i]

                getters[name] = get
                continue
            arr = np.asarray(v, dtype=np.float64)
            if arr.ndim == 0:
                getters[name] = lambda i, a=arr: a
                continue
            if arr.ndim > 2:
                raise InputError(f"[exogenous.{name}] needs an array [years] or [years, runs], got shape {arr.shape}",
                                 file=self.file)
            rows = arr.shape[0]
            if rows not in (n_years, n_years + 1):
                raise InputError(
                    f"[exogenous.{name}] has {rows} yearly values but the run needs {n_years} "
                    f"({int(self.start)}-{int(self.stop) - 1}) or {n_years + 1} (to {int(self.stop)})",
                    file=self.file, hint="row i is the value for year start + i")
            getters[name] = lambda i, a=arr: a[min(i, a.shape[0] - 1)]
        return lambda i: self._inputs({k: g(i) for k, g in getters.items()}, n, year=int(self.start) + i)

    # ------------------------------------------------------------------------------ core
    def _grid(self, t: float) -> int:
        k = (t - self.start) / self.dt
        kr = int(round(k))
        if abs(k - kr) > 1e-6:
            raise InputError(f"time {t:g} is not on the time grid (start {self.start:g}, dt {self.dt:g})")
        return kr

    def _time(self, k: int) -> float:
        return self.start + k * self.dt

    def _base(self, constants, static, inputs):
        base = dict(constants)
        base.update(static)
        base.update(inputs)
        return base

    def _eval(self, base, stocks, t):
        env = dict(base)
        env.update(stocks)
        env["time"] = np.float64(t)
        env["__dt__"] = self.spec.sim.dt
        for name, f in self._dynamic_funcs:
            env[name] = f(env)
        return env

    def _check(self, env, t, n):
        # fast path: one sum per variable (NaN and inf propagate into it); a sum that overflows
        # without any non-finite value falls through the scan below harmlessly
        total = 0.0
        reduce = np.add.reduce
        for name in self._check_order:
            total += reduce(env[name], None)
        if math.isfinite(total):
            return
        for name in self._check_order:
            v = np.asarray(env[name], dtype=np.float64)
            bad = ~np.isfinite(v)
            if bad.any():
                runs = np.flatnonzero(np.broadcast_to(bad, (n,)))
                raise SimulationError(name, t, runs, n, kind=self.kinds[name], where=self.spec.where(name))

    def _deriv(self, env):
        out = {}
        for s, ins, outs in self._net:
            d = 0.0
            for f in ins:
                d = d + env[f]
            for f in outs:
                d = d - env[f]
            out[s] = d
        return out

    def _floor(self, stocks):
        for s in self._nonneg:
            stocks[s] = np.maximum(stocks[s], 0.0)
        return stocks

    def _stage(self, base, stocks, t, n):
        env = self._eval(base, stocks, t)
        self._check(env, t, n)  # RK4 stages are checked too, so the error names the culprit
        return self._deriv(env)

    def _step(self, base, stocks, env, t, n):
        dt = self.dt
        k1 = self._deriv(env)
        if self.method == "euler":
            new = {s: stocks[s] + dt * k1[s] for s in stocks}
            return self._floor(new)
        half = t + 0.5 * dt
        k2 = self._stage(base, self._floor({s: stocks[s] + (0.5 * dt) * k1[s] for s in stocks}), half, n)
        k3 = self._stage(base, self._floor({s: stocks[s] + (0.5 * dt) * k2[s] for s in stocks}), half, n)
        k4 = self._stage(base, self._floor({s: stocks[s] + dt * k3[s] for s in stocks}), t + dt, n)
        new = {s: stocks[s] + (dt / 6.0) * (k1[s] + 2.0 * k2[s] + 2.0 * k3[s] + k4[s]) for s in stocks}
        return self._floor(new)

    def _state(self, env, t, n, constants, static, inputs, stocks) -> State:
        values = {name: _as_n(env[name], n) for name in self.recorded}
        return State(time=t, n=n, stocks={s: values[s] for s in stocks}, values=values,
                     constants=constants, inputs=inputs, static=static)

    def _integrate(self, state: State, k0: int, k1: int, inputs: dict, on_eval=None) -> State:
        if self._kernel is not None and on_eval is None:
            done = self._compiled(state.constants, state.static, state.stocks, inputs, state.n, k0, k1)
            if done is not None:
                return done
        n = state.n
        base = self._base(state.constants, state.static, inputs)
        stocks = dict(state.stocks)
        with np.errstate(all="ignore"):
            for k in range(k0, k1):
                t = self._time(k)
                env = self._eval(base, stocks, t)
                self._check(env, t, n)
                if on_eval is not None:
                    on_eval(k, env, inputs)
                stocks = self._step(base, stocks, env, t, n)
            t = self._time(k1)
            env = self._eval(base, stocks, t)
            self._check(env, t, n)
        return self._state(env, t, n, state.constants, state.static, inputs, stocks)

    def _compiled(self, constants: dict, static: dict, stocks: dict, inputs: dict, n: int, k0: int,
                  k1: int) -> State | None:
        """The state at grid step ``k1`` from ``stocks`` at ``k0``, by the compiled kernel; ``None`` where a
        value was not finite (the numpy path then repeats the interval and names the variable)."""
        out, at_end, bad = self._kernel.integrate(constants, static, inputs, stocks, self.start, self.dt, k0, k1, n)
        if bad.size:
            return None
        env = self._base(constants, static, inputs)
        env.update(zip(self._kernel.values, np.ascontiguousarray(out[:, 0, :].T)))
        values = {name: env[name] for name in self.recorded}     # every one an array [N] already
        return State(time=self._time(k1), n=n, stocks=dict(zip(self._kernel.stocks, at_end)), values=values,
                     constants=constants, inputs=inputs, static=static)

    def _run_compiled(self, state: State, series, every: int) -> xr.Dataset | None:
        """:meth:`run` by the compiled kernel: each year's steps in one call, written straight into one
        ``[run, time, variable]`` array; ``None`` where a value was not finite (``run`` then starts
        again on the numpy path, which names the variable)."""
        n, kernel, per_year, stocks = state.n, self._kernel, self.sim.steps_per_year, state.stocks
        n_years = int(self.stop - self.start)
        whole = np.empty((n, self.sim.n_steps + 1, len(kernel.values)))       # every step, as computed
        inputs_by_year = []
        for i in range(n_years + 1):
            inputs = series(i)
            k0 = i * per_year
            k1 = k0 + per_year if i < n_years else k0
            # a year's last evaluation is overwritten by the next year's first, under the next inputs
            _, at_end, bad = kernel.integrate(state.constants, state.static, inputs, stocks, self.start,
                                              self.dt, k0, k1, n, every=True, out=whole[:, k0:k1 + 1, :])
            if bad.size:
                return None
            inputs_by_year.append(inputs)
            stocks = dict(zip(kernel.stocks, at_end))
        steps = np.append(np.arange(0, self.sim.n_steps, every), self.sim.n_steps)     # and the end, always
        values = whole if every == 1 else whole[:, steps, :]
        times = [self._time(k) for k in steps]
        inputs_by_time = [inputs_by_year[k // per_year] for k in steps]
        column = {name: values[:, :, i] for i, name in enumerate(kernel.values)}
        data = {}
        for name in self.recorded:
            if name in column:
                arr = column[name]
            elif name in state.static:
                arr = np.repeat(state.static[name][:, None], len(times), axis=1)
            else:
                arr = np.stack([x[name] for x in inputs_by_time], axis=1)
            data[name] = (("run", "time"), arr, self.attrs(name))
        return self._dataset(data, state.constants, times, n)

    def _dataset(self, data: dict, constants: dict, times, n: int) -> xr.Dataset:
        """The labelled result of a run: ``data`` (name -> dims, values, attrs) and the constants."""
        for name, arr in constants.items():
            data[name] = (("run",), np.asarray(arr), self.attrs(name))
        ds = xr.Dataset(data, coords={"run": np.arange(n), "time": np.asarray(times, dtype=float)})
        ds["time"].attrs["units"] = "year"
        ds.attrs.update(self.dataset_attrs())
        return ds

    # ------------------------------------------------------------------------------ public API
    def initial_state(self, constants: Mapping | None = None, n: int | None = None,
                      exogenous: Mapping | None = None) -> State:
        """The state at ``start``: constants (scalars or arrays [N]), stocks at their initial values.

        ``exogenous`` (name -> scalar or array [N]) only affects the values reported at ``start``.
        """
        n = self._infer_n(constants, None, n)
        consts = self._constants(constants, n)
        inputs = self._inputs(exogenous, n, year=int(self.start))
        with np.errstate(all="ignore"):
            env = dict(consts)
            static = {}
            for name, f in self._static_funcs:
                env[name] = static[name] = _as_n(f(env), n)
                bad = ~np.isfinite(static[name])
                if bad.any():
                    raise SimulationError(name, self.start, np.flatnonzero(bad), n, kind=self.kinds[name],
                                          where=self.spec.where(name))
            stocks = {}
            for name in self.stock_names:
                stocks[name] = _as_n(self._initial_funcs[name](consts), n)
            self._floor(stocks)
            if self._kernel is not None:
                done = self._compiled(consts, static, stocks, inputs, n, 0, 0)
                if done is not None:
                    return done
            base = self._base(consts, static, inputs)
            env = self._eval(base, stocks, self.start)
            self._check(env, self.start, n)
        return self._state(env, self.start, n, consts, static, inputs, stocks)

    def evaluate(self, state: State, exogenous: Mapping | None = None) -> State:
        """The same state with every value recomputed under other exogenous inputs."""
        inputs = self._inputs(exogenous, state.n, year=int(math.floor(state.time + 1e-9)))
        k = self._on_grid(state.time)
        if self._kernel is not None and k is not None:
            done = self._compiled(state.constants, state.static, state.stocks, inputs, state.n, k, k)
            if done is not None:
                return done
        with np.errstate(all="ignore"):
            env = self._eval(self._base(state.constants, state.static, inputs), state.stocks, state.time)
            self._check(env, state.time, state.n)
        return self._state(env, state.time, state.n, state.constants, state.static, inputs, state.stocks)

    def _on_grid(self, t: float) -> int | None:
        """The grid step whose time is exactly ``t``, if there is one."""
        k = int(round((t - self.start) / self.dt))
        return k if self._time(k) == t else None

    def rates(self, state: State, stocks: Mapping, exogenous: Mapping | None, t: float) -> tuple[dict, dict]:
        """Every value, and each stock's net rate of change, for the given stocks and inputs at time
        ``t`` (the state supplies constants): a look at the model's local structure, no integration."""
        inputs = self._inputs(exogenous, state.n, year=int(math.floor(t + 1e-9)))
        with np.errstate(all="ignore"):
            env = self._eval(self._base(state.constants, state.static, inputs),
                             {s: _as_n(v, state.n) for s, v in stocks.items()}, t)
        return env, self._deriv(env)

    def advance(self, state: State, t0: float | None, t1: float, exogenous: Mapping | None = None) -> State:
        """Integrate from ``t0`` (the state's time) to ``t1`` in steps of dt and return the state at ``t1``.

        ``exogenous`` maps input names to scalars or arrays [N], held constant over ``[t0, t1)``;
        inputs not given take their defaults. The returned values at ``t1`` are computed with these
        inputs too (use :meth:`evaluate` or ``Recorder.record(state, exogenous=...)`` to report them
        under the next interval's inputs).
        """
        t0 = state.time if t0 is None else t0
        if abs(t0 - state.time) > 1e-9:
            raise InputError(f"advance() from year {t0:g}, but the state is at year {state.time:g}")
        k0, k1 = self._grid(state.time), self._grid(t1)
        if k1 <= k0:
            raise InputError(f"advance() needs t1 > t0, got t0 = {t0:g}, t1 = {t1:g}")
        if k1 > self.sim.n_steps:
            raise InputError(f"advance() to year {t1:g} is past the end of the run ({self.stop:g})")
        inputs = self._inputs(exogenous, state.n, year=int(math.floor(t0 + 1e-9)))
        return self._integrate(state, k0, k1, inputs)

    def recorder(self) -> Recorder:
        """An empty :class:`Recorder` for this model."""
        return Recorder(self)

    def record(self, states) -> xr.Dataset:
        """A Dataset (run, time) from a sequence of states."""
        rec = Recorder(self)
        for s in states:
            rec.record(s)
        return rec.to_dataset()

    def run(self, constants: Mapping | None = None, n: int | None = None, exogenous: Mapping | None = None,
            *, save_every: float | None = None) -> xr.Dataset:
        """Run the whole horizon for ``n`` runs at once and return a Dataset with dims (run, time).

        ``constants``: name -> scalar or array [N] (others take their defaults).
        ``exogenous``: name -> scalar, array [years] (same for every run), array [years, N], or a
        callable ``f(year) -> scalar or array [N]`` (called once per year). Row ``i`` is the value
        for year ``start + i`` and holds on ``[start+i, start+i+1)``; give ``stop - start`` rows,
        or one more for the value reported at ``stop``.
        ``save_every``: record every this many years (a multiple of dt; default: every step).
        """
        n = self._infer_n(constants, exogenous, n)
        series = self._series(exogenous, n)
        every = 1 if save_every is None else int(round(save_every / self.dt))
        if every < 1 or (save_every is not None and abs(every * self.dt - save_every) > 1e-9):
            raise InputError(f"save_every = {save_every} must be a positive multiple of dt = {self.dt:g}")
        rec = Recorder(self)
        state = self.initial_state(constants, n, exogenous=series(0))
        if self._kernel is not None:
            done = self._run_compiled(state, series, every)
            if done is not None:
                return done

        def on_eval(k, env, inputs):
            if k % every == 0:
                vals = {name: env[name] for name in self.recorded}
                rec._add(self._time(k), vals, n, state.constants)

        per_year = self.sim.steps_per_year
        n_years = int(self.stop - self.start)
        for i in range(n_years):
            state = self._integrate(state, i * per_year, (i + 1) * per_year, series(i), on_eval)
        state = self.evaluate(state, series(n_years))
        rec._add(state.time, state.values, n, state.constants)
        return rec.to_dataset()


def compile_model(spec) -> SDModel:
    """Check and compile a model: an :class:`SDSpec`, a path to a TOML file, or a dict like one."""
    if isinstance(spec, SDSpec):
        return SDModel(spec)
    if isinstance(spec, (str, Path)):
        return SDModel(load_spec(spec))
    if isinstance(spec, Mapping):
        return SDModel(parse_spec(dict(spec)))
    raise TypeError(f"compile_model() takes a spec, a path or a dict, not {type(spec).__name__}")
