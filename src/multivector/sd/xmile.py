"""Export a compiled model as an XMILE 1.0 file (for Stella, PySD, and other XMILE tools).

The export is a plain translation: stocks with their initial equations, inflows, outflows and
``<non_negative/>``; flows and auxiliaries with their equations; lookups as named graphical
functions (``<gf>`` with ``<xpts>``/``<ypts>``); constants as auxiliaries with a number (so tools
that vary parameters, such as PySD's ``run(params=...)``, can set them); and exogenous inputs as
auxiliaries ``TIME`` passed through a *discrete* (step-wise) graphical function with one point per
year, which holds each year's value until the next year -- our convention for exogenous inputs.

Function names are translated to XMILE builtins: ``min -> MIN``, ``max -> MAX``, ``exp -> EXP``,
``log -> LN``, ``sqrt -> SQRT``, ``abs -> ABS``, ``if_then_else(c, a, b) -> IF c THEN a ELSE b``,
``step -> STEP``, ``ramp(s, t0, t1) -> RAMP(s, t0) - RAMP(s, t1)`` (XMILE's RAMP has no end
time), ``clip(x, lo, hi) -> MIN(MAX(x, lo), hi)``, ``** -> ^``, ``== -> =``, ``!= -> <>``.
Every sub-expression is parenthesised, so operator precedence and associativity cannot differ
between tools (PySD, for one, binds unary minus tighter than ``^``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from ..errors import InputError
from . import equations as eq

__all__ = ["XMILE_NS", "to_xmile", "xmile_expression"]

XMILE_NS = "http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"

_FUNCS = {"min": "MIN", "max": "MAX", "exp": "EXP", "log": "LN", "sqrt": "SQRT", "abs": "ABS", "step": "STEP"}
_CMP = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "<>"}


def _num(v: float) -> str:
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def xmile_expression(node: eq.Node) -> str:
    """An equation node as XMILE expression text."""
    x = xmile_expression
    if isinstance(node, eq.Num):
        return _num(node.value) if node.value >= 0 else f"({_num(node.value)})"
    if isinstance(node, eq.Name):
        return "TIME" if node.id == "time" else node.id
    if isinstance(node, eq.Unary):
        if node.op == "not":
            return f"(NOT ({x(node.operand)}))"
        return f"(-({x(node.operand)}))" if node.op == "-" else x(node.operand)
    if isinstance(node, eq.Bin):
        op = "^" if node.op == "**" else node.op
        return f"({x(node.left)} {op} {x(node.right)})"
    if isinstance(node, eq.Cmp):
        return f"({x(node.left)} {_CMP[node.op]} {x(node.right)})"
    if isinstance(node, eq.BoolOp):
        return "(" + f" {node.op.upper()} ".join(x(v) for v in node.values) + ")"
    if isinstance(node, eq.Call):
        args = [x(a) for a in node.args]
        f = node.func
        if f == "if_then_else":
            return f"(IF {args[0]} THEN {args[1]} ELSE {args[2]})"
        if f == "clip":
            return f"MIN(MAX({args[0]}, {args[1]}), {args[2]})"
        if f == "ramp":
            return f"(RAMP({args[0]}, {args[1]}) - RAMP({args[0]}, {args[2]}))"
        return f"{_FUNCS.get(f, f)}({', '.join(args)})"
    raise TypeError(node)  # pragma: no cover


def _sub(parent, tag, text=None, **attrib):
    el = ET.SubElement(parent, tag, {k: str(v) for k, v in attrib.items()})
    if text is not None:
        el.text = str(text)
    return el


def _meta(el, item, unit=None):
    _sub(el, "units", item.unit if unit is None else unit)
    doc = item.doc or ""
    if item.source:
        doc = (doc + " " if doc else "") + f"[source: {item.source}]"
    if doc:
        _sub(el, "doc", doc)


def _pts(values) -> str:
    return ",".join(_num(v) for v in values)


def to_xmile(model, constants: Mapping | None = None, exogenous_series: Mapping | None = None,
             path=None) -> str:
    """Write the model as XMILE 1.0 and return the XML text.

    ``constants``: name -> float (others take their defaults; XMILE has one value per constant).
    ``exogenous_series``: name -> ``(times, values)``, a step-wise series (one value per year is
    the convention: each value holds until the next time); inputs not given are exported as
    their default (a constant). ``path``: where to write the file (optional).
    """
    spec = model.spec
    constants = dict(constants or {})
    for name, v in constants.items():
        if name not in spec.constants:
            raise InputError(f"to_xmile: unknown constant '{name}'")
        if np.ndim(v) != 0:
            raise InputError(f"to_xmile: constant '{name}' must be one number (XMILE has no batch of runs), "
                             f"got shape {np.shape(v)}")
        c = spec.constants[name]
        if not np.isfinite(v) or (c.min is not None and v < c.min) or (c.max is not None and v > c.max):
            raise InputError(f"to_xmile: constant '{name}' = {v} is not finite or outside its range "
                             f"[{c.min}, {c.max}]")
    exogenous_series = dict(exogenous_series or {})
    for name in exogenous_series:
        if name not in spec.exogenous:
            raise InputError(f"to_xmile: unknown exogenous input '{name}'")

    root = ET.Element("xmile", {"version": "1.0", "xmlns": XMILE_NS})
    header = _sub(root, "header")
    _sub(header, "vendor", "multivector")
    _sub(header, "product", "multivector.sd", version="1.0", lang="en")
    _sub(header, "name", spec.title or (spec.file.stem if spec.file else "model"))
    sim = _sub(root, "sim_specs", method="RK4" if model.method == "rk4" else "Euler", time_units="year")
    _sub(sim, "start", _num(model.start))
    _sub(sim, "stop", _num(model.stop))
    _sub(sim, "dt", _num(model.dt))
    xmodel = _sub(root, "model")
    variables = _sub(xmodel, "variables")

    for name, s in spec.stocks.items():
        el = _sub(variables, "stock", name=name)
        _sub(el, "eqn", xmile_expression(model.initials[name]))
        for f in s.inflows:
            _sub(el, "inflow", f)
        for f in s.outflows:
            _sub(el, "outflow", f)
        if s.non_negative:
            _sub(el, "non_negative")
        _meta(el, s)
    for name, f in spec.flows.items():
        el = _sub(variables, "flow", name=name)
        _sub(el, "eqn", xmile_expression(model.equations[name]))
        _meta(el, f)
    for name, a in spec.auxiliaries.items():
        el = _sub(variables, "aux", name=name)
        _sub(el, "eqn", xmile_expression(model.equations[name]))
        _meta(el, a)
    for name, c in spec.constants.items():
        el = _sub(variables, "aux", name=name)
        _sub(el, "eqn", _num(constants.get(name, c.value)))
        _meta(el, c)
        if c.min is not None or c.max is not None:
            rng = {}
            if c.min is not None:
                rng["min"] = _num(c.min)
            if c.max is not None:
                rng["max"] = _num(c.max)
            _sub(el, "range", **rng)
    for name, lk in spec.lookups.items():
        el = _sub(variables, "gf", name=name)
        # PySD quirk: when <xscale> is present PySD ignores <xpts> and spreads the points evenly
        # over the scale, so xscale is written only for evenly spaced x, and xpts otherwise.
        dx = np.diff(lk.x)
        if np.allclose(dx, dx[0], rtol=1e-12, atol=0):
            _sub(el, "xscale", min=_num(lk.x[0]), max=_num(lk.x[-1]))
        else:
            _sub(el, "xpts", _pts(lk.x))
        _sub(el, "yscale", min=_num(min(lk.y)), max=_num(max(lk.y)))
        _sub(el, "ypts", _pts(lk.y))
        _meta(el, lk)
    taken = set(model.kinds) | set(spec.lookups)
    for name, x in spec.exogenous.items():
        el = _sub(variables, "aux", name=name)
        if name in exogenous_series:
            times, values = exogenous_series[name]
            times = np.asarray(times, dtype=float).reshape(-1)
            values = np.asarray(values, dtype=float).reshape(-1)
            if len(times) != len(values) or len(times) < 1:
                raise InputError(f"to_xmile: exogenous '{name}' has {len(times)} times but {len(values)} values")
            if np.any(np.diff(times) <= 0):
                raise InputError(f"to_xmile: the times of exogenous '{name}' must be increasing")
            if not (np.isfinite(times).all() and np.isfinite(values).all()):
                raise InputError(f"to_xmile: exogenous '{name}' has non-finite values")
            if len(times) == 1:  # a graphical function needs two points
                times = np.append(times, times[0] + 1.0)
                values = np.append(values, values[0])
            # A named, discrete (step-wise) graphical function, called with TIME. PySD quirk: an
            # *inline* <gf> inside an <aux> is always interpolated linearly (PySD 3.14 ignores its
            # type), whereas a named <gf type="discrete"> is held backward, as XMILE specifies.
            series = f"{name}_series"
            while series in taken:
                series += "_"
            taken.add(series)
            _sub(el, "eqn", f"{series}(TIME)")
            _meta(el, x)
            gf = _sub(variables, "gf", name=series, type="discrete")
            _sub(gf, "yscale", min=_num(values.min()), max=_num(values.max()))
            _sub(gf, "xpts", _pts(times))
            _sub(gf, "ypts", _pts(values))
            _sub(gf, "units", x.unit)
            _sub(gf, "doc", f"Exogenous input '{name}' by year (step-wise: each value holds until the next year).")
        else:
            _sub(el, "eqn", _num(x.default))
            _meta(el, x)

    ET.indent(root)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
