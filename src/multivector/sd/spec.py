"""Read and validate a system-dynamics model file (TOML) into an :class:`SDSpec`.

This module checks the *structure* of a model file: known tables and keys, names, types, numbers,
ranges, lookups, the simulation settings, and that every flow a stock lists is defined. Equations
(names, syntax, cycles, units) are checked when the model is compiled (:mod:`.engine`). Every
problem is an :class:`~multivector.errors.InputError` whose message starts with the variable, e.g.
``[stocks.population] inflows: ...``.

The format::

    [sd]
    start = 2024          # whole years
    stop = 2040
    dt = 0.25             # years; at most 0.25 unless allow_coarse = true; 1/dt a whole number
    method = "euler"      # or "rk4"

    [constants.NAME]      value, unit, source; optional min, max, doc
    [stocks.NAME]         unit, initial, source; optional inflows, outflows, non_negative, doc
    [flows.NAME]          unit, equation; optional source, doc
    [auxiliaries.NAME]    unit, equation; optional source, doc
    [lookups.NAME]        x, y, x_unit, unit, source; optional doc
    [exogenous.NAME]      unit, default, source; optional doc
    [meta]                free-form notes (not read)
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .equations import FUNCTIONS
from .units import UnitSyntaxError, parse_unit

__all__ = [
    "SimSpec",
    "ConstantSpec",
    "StockSpec",
    "FlowSpec",
    "AuxSpec",
    "LookupSpec",
    "ExogenousSpec",
    "SDSpec",
    "SECTIONS",
    "load_spec",
    "parse_spec",
    "UnusedFlowWarning",
]

MAX_DT = 0.25
METHODS = ("euler", "rk4")

#: table name -> kind of the variables defined in it
SECTIONS = {
    "constants": "constant",
    "stocks": "stock",
    "flows": "flow",
    "auxiliaries": "auxiliary",
    "lookups": "lookup",
    "exogenous": "exogenous",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: names a variable may not have: ``time``, the functions, Python and XMILE keywords, and the
#: control variables of XMILE/PySD (a model variable called ``time_step`` would shadow them).
RESERVED = (
    {"time", "dt", "starttime", "stoptime", "initial_time", "final_time", "time_step", "saveper",
     "if", "then", "else", "and", "or", "not", "mod", "pi", "inf", "nan", "self"}
    | set(FUNCTIONS)
    | set(keyword.kwlist)
)


class UnusedFlowWarning(UserWarning):
    """A flow that no stock lists as an inflow or outflow (it is computed but integrates nowhere)."""


@dataclass(frozen=True)
class SimSpec:
    start: float
    stop: float
    dt: float
    method: str = "euler"
    allow_coarse: bool = False

    @property
    def steps_per_year(self) -> int:
        return int(round(1.0 / self.dt))

    @property
    def n_steps(self) -> int:
        return int(round((self.stop - self.start) / self.dt))


@dataclass(frozen=True)
class ConstantSpec:
    name: str
    value: float
    unit: str
    source: str
    min: float | None = None
    max: float | None = None
    doc: str = ""
    kind: str = "parameter"      # "parameter" (uncertain) or "lever" (a policy choice)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(min, max)``; a side declared without a bound is the value itself."""
        return (float(self.value if self.min is None else self.min),
                float(self.value if self.max is None else self.max))


@dataclass(frozen=True)
class StockSpec:
    name: str
    unit: str
    initial: str | float
    source: str
    inflows: tuple[str, ...] = ()
    outflows: tuple[str, ...] = ()
    non_negative: bool = False
    doc: str = ""


@dataclass(frozen=True)
class EquationSpec:
    """A variable defined by an equation: flows and auxiliaries share this shape."""

    name: str
    unit: str
    equation: str | float
    source: str = ""
    doc: str = ""


class FlowSpec(EquationSpec):
    """A rate into or out of stocks (unit: the stock's unit per year)."""


class AuxSpec(EquationSpec):
    """An auxiliary: a value computed from others at each step."""


@dataclass(frozen=True)
class LookupSpec:
    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    x_unit: str
    unit: str
    source: str
    doc: str = ""


@dataclass(frozen=True)
class ExogenousSpec:
    name: str
    unit: str
    default: float
    source: str
    doc: str = ""


@dataclass
class SDSpec:
    """A validated model file: simulation settings and the variables, by table."""

    sim: SimSpec
    constants: dict[str, ConstantSpec] = field(default_factory=dict)
    stocks: dict[str, StockSpec] = field(default_factory=dict)
    flows: dict[str, FlowSpec] = field(default_factory=dict)
    auxiliaries: dict[str, AuxSpec] = field(default_factory=dict)
    lookups: dict[str, LookupSpec] = field(default_factory=dict)
    exogenous: dict[str, ExogenousSpec] = field(default_factory=dict)
    file: Path | None = None
    title: str = ""
    doc: str = ""

    def kinds(self) -> dict[str, str]:
        """Every defined name (lookups excluded) -> its kind."""
        out = {}
        for section, kind in SECTIONS.items():
            if section != "lookups":
                out.update({name: kind for name in getattr(self, section)})
        return out

    def where(self, name: str) -> str:
        """``"flows.capital_gain"``: the table entry that defines a name."""
        for section in SECTIONS:
            if name in getattr(self, section):
                return f"{section}.{name}"
        return name

    def sources(self) -> dict[str, str]:
        """``"stocks.x" -> source`` for every variable that names one."""
        out = {}
        for section in SECTIONS:
            for name, item in getattr(self, section).items():
                if item.source:
                    out[f"{section}.{name}"] = item.source
        return out


# ---------------------------------------------------------------------------------------- helpers
def _suggest(word, candidates):
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class _Ctx:
    def __init__(self, file):
        self.file = file

    def error(self, where, message, hint=None):
        return InputError(f"[{where}] {message}", file=self.file, hint=hint)

    def number(self, where, key, value, *, allow_none=False):
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(where, f"{key} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise self.error(where, f"{key} must be finite, not {value!r}")
        return float(value)

    def text(self, where, key, value, *, required=True):
        if value is None:
            if required:
                raise self.error(where, f"{key} is missing")
            return ""
        if not isinstance(value, str):
            raise self.error(where, f"{key} must be text, not {value!r}")
        if required and not value.strip():
            raise self.error(where, f"{key} is empty")
        return value

    def unit(self, where, key, value):
        if value is None:
            raise self.error(where, f"{key} is missing", hint="e.g. unit = \"index\", \"1/year\" or \"USD bn/year\"")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 1:
            value = "1"
        if not isinstance(value, str):
            raise self.error(where, f"{key} must be text, not {value!r}")
        try:
            parse_unit(value)
        except UnitSyntaxError as exc:
            raise self.error(where, f"{key}: {exc}") from None
        return value

    def keys(self, where, table, allowed, required):
        if not isinstance(table, dict):
            raise self.error(where, f"must be a table of keys ({', '.join(sorted(required))}), not {table!r}")
        for key in table:
            if key not in allowed:
                sugg = _suggest(key, allowed)
                raise self.error(where, f"unknown key '{key}'" + (f"; {sugg}" if sugg else ""),
                                 hint="keys: " + ", ".join(sorted(allowed)))
        for key in sorted(required):
            if key not in table:
                raise self.error(where, f"{key} is missing")

    def equation(self, where, key, value):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(where, f"{key} must be an expression (text) or a number, not {value!r}")
        return value


# ---------------------------------------------------------------------------------------- parse
def load_spec(path) -> SDSpec:
    """Read a model file (TOML) and validate its structure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("model file not found", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read model file: {exc}", file=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        hint = None
        if "Cannot overwrite a value" in msg or "Cannot declare" in msg:
            hint = "a name or key is defined twice"
        raise InputError(f"not valid TOML: {msg}", file=path, hint=hint) from None
    return parse_spec(data, file=path)


def parse_spec(data: dict, file=None) -> SDSpec:
    """Validate an already-parsed model (a dict shaped like the TOML file)."""
    ctx = _Ctx(None if file is None else Path(file))
    if not isinstance(data, dict):
        raise InputError("a model must be a table", file=ctx.file)
    allowed_top = {"sd", "meta", *SECTIONS}
    for key in data:
        if key not in allowed_top:
            sugg = _suggest(key, allowed_top)
            raise InputError(f"[{key}] unknown table" + (f"; {sugg}" if sugg else ""), file=ctx.file,
                             hint="tables: " + ", ".join(["sd", *SECTIONS, "meta"]))
    if "sd" not in data:
        raise InputError("[sd] table is missing", file=ctx.file, hint="[sd] start = 2024, stop = 2040, dt = 0.25")
    sim, title, doc = _parse_sim(ctx, data["sd"])

    seen: dict[str, str] = {}
    tables = {}
    for section in SECTIONS:
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise InputError(f"[{section}] must be a table of variables", file=ctx.file)
        for name in table:
            where = f"{section}.{name}"
            if not isinstance(name, str) or not _NAME.match(name):
                raise ctx.error(where, f"bad name '{name}'",
                                hint="names are lower-case letters, digits and '_', starting with a letter")
            if name in RESERVED:
                raise ctx.error(where, f"'{name}' is a reserved word", hint="choose another name")
            if name in seen:
                raise ctx.error(where, f"name '{name}' is defined twice: [{seen[name]}] and [{where}]",
                                hint="every name must be unique across all tables")
            seen[name] = where
        tables[section] = table

    spec = SDSpec(sim=sim, file=ctx.file, title=title, doc=doc)
    for name, t in tables["constants"].items():
        spec.constants[name] = _parse_constant(ctx, f"constants.{name}", name, t)
    for name, t in tables["stocks"].items():
        spec.stocks[name] = _parse_stock(ctx, f"stocks.{name}", name, t)
    for name, t in tables["flows"].items():
        spec.flows[name] = _parse_eq_var(ctx, f"flows.{name}", name, t, FlowSpec)
    for name, t in tables["auxiliaries"].items():
        spec.auxiliaries[name] = _parse_eq_var(ctx, f"auxiliaries.{name}", name, t, AuxSpec)
    for name, t in tables["lookups"].items():
        spec.lookups[name] = _parse_lookup(ctx, f"lookups.{name}", name, t)
    for name, t in tables["exogenous"].items():
        spec.exogenous[name] = _parse_exogenous(ctx, f"exogenous.{name}", name, t)
    _check_stock_flows(ctx, spec, seen)
    return spec


def _parse_sim(ctx, t):
    where = "sd"
    ctx.keys(where, t, {"start", "stop", "dt", "method", "allow_coarse", "title", "doc"}, {"start", "stop", "dt"})
    start = ctx.number(where, "start", t["start"])
    stop = ctx.number(where, "stop", t["stop"])
    dt = ctx.number(where, "dt", t["dt"])
    allow = t.get("allow_coarse", False)
    if not isinstance(allow, bool):
        raise ctx.error(where, f"allow_coarse must be true or false, not {allow!r}")
    method = t.get("method", "euler")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ctx.error(where, f"method must be \"euler\" or \"rk4\", not {method!r}")
    for key, v in (("start", start), ("stop", stop)):
        if not float(v).is_integer():
            raise ctx.error(where, f"{key} must be a whole year, not {v!r}",
                            hint="exogenous inputs are yearly, so the run starts and ends on a year")
    if stop <= start:
        raise ctx.error(where, f"stop ({stop:g}) must be after start ({start:g})")
    if dt <= 0:
        raise ctx.error(where, f"dt must be positive, not {dt!r}")
    if dt > MAX_DT and not allow:
        raise ctx.error(where, f"dt = {dt:g} years is coarser than a quarter year ({MAX_DT})",
                        hint="use a smaller dt, or set allow_coarse = true if you really mean it")
    per_year = 1.0 / dt
    if abs(per_year - round(per_year)) > 1e-9 * per_year:
        raise ctx.error(where, f"dt = {dt:g} does not divide a year (1/dt = {per_year:g} is not a whole number)",
                        hint="use e.g. 0.25, 0.125, 0.1, 0.0625 or 0.05")
    title = ctx.text(where, "title", t.get("title"), required=False)
    doc = ctx.text(where, "doc", t.get("doc"), required=False)
    return SimSpec(start=start, stop=stop, dt=dt, method=method.lower(), allow_coarse=allow), title, doc


def _parse_constant(ctx, where, name, t):
    ctx.keys(where, t, {"value", "min", "max", "unit", "source", "doc", "kind"}, {"value", "unit", "source"})
    kind = t.get("kind", "parameter")
    if kind not in ("parameter", "lever"):
        raise ctx.error(where, f"kind must be 'parameter' or 'lever', not {kind!r}")
    value = ctx.number(where, "value", t["value"])
    lo = ctx.number(where, "min", t.get("min"), allow_none=True)
    hi = ctx.number(where, "max", t.get("max"), allow_none=True)
    if lo is not None and hi is not None and lo > hi:
        raise ctx.error(where, f"min ({lo:g}) is greater than max ({hi:g})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
        raise ctx.error(where, f"value {value:g} is outside its range {rng}")
    return ConstantSpec(
        name=name, value=value, min=lo, max=hi,
        unit=ctx.unit(where, "unit", t["unit"]),
        source=ctx.text(where, "source", t["source"]),
        doc=ctx.text(where, "doc", t.get("doc"), required=False),
        kind=kind,
    )


def _flow_list(ctx, where, key, value):
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.error(where, f"{key} must be a list of flow names, not {value!r}")
    dup = {v for v in value if value.count(v) > 1}
    if dup:
        raise ctx.error(where, f"{key} lists '{sorted(dup)[0]}' twice")
    return tuple(value)


def _parse_stock(ctx, where, name, t):
    ctx.keys(where, t, {"unit", "initial", "inflows", "outflows", "non_negative", "source", "doc"},
             {"unit", "initial", "source"})
    nn = t.get("non_negative", False)
    if not isinstance(nn, bool):
        raise ctx.error(where, f"non_negative must be true or false, not {nn!r}")
    inflows = _flow_list(ctx, where, "inflows", t.get("inflows"))
    outflows = _flow_list(ctx, where, "outflows", t.get("outflows"))
    both = set(inflows) & set(outflows)
    if both:
        raise ctx.error(where, f"'{sorted(both)[0]}' is both an inflow and an outflow",
                        hint="a flow may be negative; list it once")
    return StockSpec(
        name=name,
        unit=ctx.unit(where, "unit", t["unit"]),
        initial=ctx.equation(where, "initial", t["initial"]),
        inflows=inflows, outflows=outflows, non_negative=nn,
        source=ctx.text(where, "source", t["source"]),
        doc=ctx.text(where, "doc", t.get("doc"), required=False),
    )


def _parse_eq_var(ctx, where, name, t, cls):
    ctx.keys(where, t, {"unit", "equation", "source", "doc"}, {"unit", "equation"})
    return cls(
        name=name,
        unit=ctx.unit(where, "unit", t["unit"]),
        equation=ctx.equation(where, "equation", t["equation"]),
        source=ctx.text(where, "source", t.get("source"), required=False),
        doc=ctx.text(where, "doc", t.get("doc"), required=False),
    )


def _parse_lookup(ctx, where, name, t):
    ctx.keys(where, t, {"x", "y", "x_unit", "unit", "source", "doc"}, {"x", "y", "x_unit", "unit", "source"})
    xs, ys = t["x"], t["y"]
    for key, v in (("x", xs), ("y", ys)):
        if not isinstance(v, list):
            raise ctx.error(where, f"{key} must be a list of numbers, not {v!r}")
    x = tuple(ctx.number(where, f"x[{i}]", v) for i, v in enumerate(xs))
    y = tuple(ctx.number(where, f"y[{i}]", v) for i, v in enumerate(ys))
    if len(x) != len(y):
        raise ctx.error(where, f"x has {len(x)} points but y has {len(y)}", hint="give one y for every x")
    if len(x) < 2:
        raise ctx.error(where, "a lookup needs at least two points")
    for i in range(1, len(x)):
        if not x[i] > x[i - 1]:
            raise ctx.error(where, f"x must be strictly increasing, but x[{i}] = {x[i]:g} follows "
                            f"x[{i - 1}] = {x[i - 1]:g}")
    return LookupSpec(
        name=name, x=x, y=y,
        x_unit=ctx.unit(where, "x_unit", t["x_unit"]),
        unit=ctx.unit(where, "unit", t["unit"]),
        source=ctx.text(where, "source", t["source"]),
        doc=ctx.text(where, "doc", t.get("doc"), required=False),
    )


def _parse_exogenous(ctx, where, name, t):
    ctx.keys(where, t, {"unit", "default", "source", "doc"}, {"unit", "default", "source"})
    return ExogenousSpec(
        name=name,
        unit=ctx.unit(where, "unit", t["unit"]),
        default=ctx.number(where, "default", t["default"]),
        source=ctx.text(where, "source", t["source"]),
        doc=ctx.text(where, "doc", t.get("doc"), required=False),
    )


def _check_stock_flows(ctx, spec: SDSpec, seen: dict[str, str]):
    used = set()
    for name, s in spec.stocks.items():
        where = f"stocks.{name}"
        for key, flows in (("inflows", s.inflows), ("outflows", s.outflows)):
            for f in flows:
                if f in spec.flows:
                    used.add(f)
                    continue
                if f in seen:
                    raise ctx.error(where, f"{key}: '{f}' is not a flow (it is defined in [{seen[f]}])",
                                    hint=f"define it as [flows.{f}]")
                sugg = _suggest(f, spec.flows)
                raise ctx.error(where, f"{key}: flow '{f}' is not defined" + (f"; {sugg}" if sugg else ""),
                                hint=f"add a [flows.{f}] table")
    for name in spec.flows:
        if name not in used:
            where = f" in {ctx.file}" if ctx.file else ""
            warnings.warn(f"[flows.{name}] is not an inflow or outflow of any stock{where}",
                          UnusedFlowWarning, stacklevel=3)
