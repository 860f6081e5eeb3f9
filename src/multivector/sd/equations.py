"""Equations: parse with :mod:`ast` through a whitelist, check names and units, compile to numpy.

An equation is a Python-like arithmetic expression over names (stocks, flows, auxiliaries,
constants, exogenous inputs and ``time``), numbers, ``+ - * / **``, unary minus, comparisons
(``< <= > >= == !=``), ``and`` / ``or`` / ``not``, the functions in :data:`FUNCTIONS` and calls of
lookups (``tolerance_response(x)``). Nothing else is accepted: the text is parsed with
``ast.parse`` and every node is checked against the whitelist, then turned into a small tree of
our own node classes. Raw strings are never evaluated.

The tree is compiled to a function ``f(env) -> array`` where ``env`` maps names to arrays shaped
``[N]`` (one value per run) or scalars (``time``); every operation is a numpy ufunc over the whole
batch, so there is no loop over runs.
"""

from __future__ import annotations

import ast
import difflib
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import InputError
from .units import DIMENSIONLESS, FREE, YEAR, same

__all__ = [
    "FUNCTIONS",
    "Node",
    "Num",
    "Name",
    "Unary",
    "Bin",
    "Cmp",
    "BoolOp",
    "Call",
    "parse_equation",
    "check_names",
    "names_in",
    "compile_numpy",
    "infer_unit",
    "is_boolean",
]

#: Functions an equation may call, with their number of arguments.
FUNCTIONS: dict[str, int] = {
    "min": 2,
    "max": 2,
    "exp": 1,
    "log": 1,
    "sqrt": 1,
    "abs": 1,
    "clip": 3,
    "if_then_else": 3,
    "step": 2,
    "ramp": 3,
}

#: Tolerance (years) of ``step`` and ``ramp`` against round-off in the time grid.
TIME_EPS = 1e-9


# ---------------------------------------------------------------------------------------- nodes
class Node:
    """Base class of equation nodes."""

    __slots__ = ()


@dataclass(frozen=True)
class Num(Node):
    value: float

    def __str__(self):
        v = self.value
        return str(int(v)) if math.isfinite(v) and v.is_integer() and abs(v) < 1e16 else repr(v)


@dataclass(frozen=True)
class Name(Node):
    id: str

    def __str__(self):
        return self.id


@dataclass(frozen=True)
class Unary(Node):
    op: str  # '-', '+', 'not'
    operand: Node

    def __str__(self):
        return f"not {_p(self.operand)}" if self.op == "not" else f"{self.op}{_p(self.operand)}"


@dataclass(frozen=True)
class Bin(Node):
    op: str  # '+', '-', '*', '/', '**'
    left: Node
    right: Node

    def __str__(self):
        return f"{_p(self.left)} {self.op} {_p(self.right)}"


@dataclass(frozen=True)
class Cmp(Node):
    op: str  # '<', '<=', '>', '>=', '==', '!='
    left: Node
    right: Node

    def __str__(self):
        return f"{_p(self.left)} {self.op} {_p(self.right)}"


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # 'and', 'or'
    values: tuple

    def __str__(self):
        return f" {self.op} ".join(_p(v) for v in self.values)


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple

    def __str__(self):
        return f"{self.func}({', '.join(str(a) for a in self.args)})"


def _p(node: Node) -> str:
    return str(node) if isinstance(node, (Num, Name, Call)) else f"({node})"


# ---------------------------------------------------------------------------------------- parse
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_ALLOWED = (
    "numbers, names, + - * / **, unary minus, comparisons, and/or/not, "
    "and calls of " + ", ".join(FUNCTIONS) + " or a lookup"
)


def _err(label: str, message: str, file=None, hint=None) -> InputError:
    return InputError(f"{label}: {message}", file=file, hint=hint)


def parse_equation(text, *, where: str, file=None, field: str = "equation") -> Node:
    """Parse one equation (a string or a number) into a node tree.

    ``where`` names the variable (e.g. ``"flows.capital_gain"``) for error messages.
    """
    label = f"[{where}] {field}"
    if isinstance(text, bool):
        raise _err(label, f"must be an expression or a number, not {text!r}", file)
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise _err(label, f"must be a finite number, not {text!r}", file)
        return Num(float(text))
    if not isinstance(text, str):
        raise _err(label, f"must be an expression (text) or a number, not {text!r}", file)
    src = " ".join(text.split())  # TOML multi-line strings: newlines are blanks
    if not src:
        raise _err(label, "is empty", file)
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise _err(label, f"syntax error{col} in {src!r}: {exc.msg}", file) from None
    return _convert(tree.body, label, file, src)


def _convert(node, label, file, src) -> Node:
    def bad(what, hint=None):
        whole = what.endswith(f"'{src}'")
        return _err(label, f"{what} is not allowed" + ("" if whole else f" in {src!r}"), file,
                    hint=hint or f"allowed: {_ALLOWED}")

    conv = lambda n: _convert(n, label, file, src)  # noqa: E731
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"the literal {ast.unparse(node)}", hint="only numbers are allowed")
        if not math.isfinite(float(v)):
            raise bad(f"the non-finite number {ast.unparse(node)}", hint="numbers must be finite")
        return Num(float(v))
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise bad(f"the operator in '{ast.unparse(node)}'")
        return Bin(op, conv(node.left), conv(node.right))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            inner = conv(node.operand)
            return Num(-inner.value) if isinstance(inner, Num) else Unary("-", inner)
        if isinstance(node.op, ast.UAdd):
            return conv(node.operand)
        if isinstance(node.op, ast.Not):
            return Unary("not", conv(node.operand))
        raise bad(f"the operator in '{ast.unparse(node)}'")
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise bad(f"the chained comparison '{ast.unparse(node)}'", hint="write (a < b) and (b < c)")
        op = _CMPOPS.get(type(node.ops[0]))
        if op is None:
            raise bad(f"the comparison '{ast.unparse(node)}'")
        return Cmp(op, conv(node.left), conv(node.comparators[0]))
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(op, tuple(conv(v) for v in node.values))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise bad(f"the call '{ast.unparse(node)}'", hint="call a function or lookup by its plain name")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise bad(f"the call '{ast.unparse(node)}' with keyword or starred arguments",
                      hint="pass arguments by position")
        return Call(node.func.id, tuple(conv(a) for a in node.args))
    if isinstance(node, ast.IfExp):
        raise bad(f"'{ast.unparse(node)}'", hint="write if_then_else(condition, value_if_true, value_if_false)")
    if isinstance(node, ast.Attribute):
        raise bad(f"the attribute access '{ast.unparse(node)}'", hint="names may not contain '.'")
    raise bad(f"'{ast.unparse(node)}'")


# ---------------------------------------------------------------------------------------- names
def walk(node: Node):
    yield node
    if isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, (Bin, Cmp)):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, BoolOp):
        for v in node.values:
            yield from walk(v)
    elif isinstance(node, Call):
        for a in node.args:
            yield from walk(a)


def names_in(node: Node) -> set[str]:
    """The variable names (and ``time``) an equation reads, lookups excluded.

    ``step`` and ``ramp`` read ``time`` implicitly.
    """
    out = set()
    for n in walk(node):
        if isinstance(n, Name):
            out.add(n.id)
        elif isinstance(n, Call) and n.func in ("step", "ramp"):
            out.add("time")
    return out


def lookups_in(node: Node) -> set[str]:
    return {n.func for n in walk(node) if isinstance(n, Call) and n.func not in FUNCTIONS}


def _suggest(name: str, candidates) -> str | None:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def check_names(node: Node, kinds: dict[str, str], lookups, *, where: str, file=None,
                field: str = "equation", allowed_kinds=None) -> None:
    """Check that every name is defined (and of an allowed kind) and every call is valid.

    ``kinds`` maps each variable name to its kind (``stock``, ``flow``, ``auxiliary``,
    ``constant``, ``exogenous``); ``time`` is always defined unless ``allowed_kinds`` excludes it.
    """
    label = f"[{where}] {field}"
    lookups = set(lookups)
    for n in walk(node):
        if isinstance(n, Name):
            if n.id == "time":
                kind = "time"
            elif n.id in kinds:
                kind = kinds[n.id]
            elif n.id in lookups:
                raise _err(label, f"the lookup '{n.id}' is used as a value", file,
                           hint=f"call it with an argument: {n.id}(x)")
            elif n.id in FUNCTIONS:
                raise _err(label, f"the function '{n.id}' is used as a value", file,
                           hint=f"call it with {FUNCTIONS[n.id]} argument(s)")
            else:
                msg = f"unknown name '{n.id}'"
                sugg = _suggest(n.id, list(kinds) + ["time"])
                if sugg:
                    msg += f"; {sugg}"
                raise _err(label, msg, file)
            if allowed_kinds is not None and kind not in allowed_kinds:
                raise _err(label, f"'{n.id}' is a {kind}; only {' and '.join(sorted(allowed_kinds))}s "
                           "and numbers may be used here", file)
        elif isinstance(n, Call):
            if n.func in FUNCTIONS:
                arity = FUNCTIONS[n.func]
            elif n.func in lookups:
                arity = 1
            elif n.func in kinds:
                raise _err(label, f"'{n.func}' is a {kinds[n.func]}, not a function or lookup", file,
                           hint="multiply with '*' if that was meant")
            else:
                msg = f"unknown function '{n.func}'"
                sugg = _suggest(n.func, list(FUNCTIONS) + sorted(lookups))
                if sugg:
                    msg += f"; {sugg}"
                raise _err(label, msg, file, hint="functions: " + ", ".join(FUNCTIONS))
            if len(n.args) != arity:
                raise _err(label, f"{n.func}() takes {arity} argument(s), got {len(n.args)} in '{n}'", file)


def is_boolean(node: Node) -> bool:
    return isinstance(node, (Cmp, BoolOp)) or (isinstance(node, Unary) and node.op == "not")


# ---------------------------------------------------------------------------------------- numpy
def _step(time, height, t0, dt=0.0):
    """``height`` from the time-grid point nearest ``t0`` on (Vensim's and PySD's STEP), so that a
    step at an off-grid time switches in the same step in every tool."""
    return np.where(time + dt / 2 + TIME_EPS > t0, height, 0.0) if dt else \
        np.where(time + TIME_EPS >= t0, height, 0.0)


def _ramp(time, slope, t0, t1):
    return np.where(time + TIME_EPS > t0, slope * (np.minimum(time, t1) - t0), 0.0)


def _clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


def _ite(c, a, b):
    return np.where(c, a, b)


_NUMPY_FUNCS = {
    "min": np.minimum,
    "max": np.maximum,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "clip": _clip,
    "if_then_else": _ite,
}
_NUMPY_BIN = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "**": np.power}
_NUMPY_CMP = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
              "==": np.equal, "!=": np.not_equal}


def compile_numpy(node: Node, lookups: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Compile a checked node tree to ``f(env) -> value``; ``env`` maps names to arrays.

    The tree becomes the source of one Python function whose body is a single expression of numpy
    calls (one call per operation, in the tree's order), so evaluating an equation costs one Python
    call, not one per node. Constant sub-expressions are folded once, at compile time, and enter the
    function as bound values; so do lookup tables. Only our own checked tree is turned into source:
    names appear as string keys of ``env``, never as code."""
    bound: dict[str, object] = {"np": np, "_step": _step, "_ramp": _ramp, "_clip": _clip, "_ite": _ite}

    def bind(value) -> str:
        key = f"_k{len(bound)}"
        bound[key] = value
        return key

    def go(n: Node) -> str:
        if isinstance(n, Num):
            return bind(n.value)
        if isinstance(n, Name):
            return f"env[{n.id!r}]"
        if not names_in(n):
            with np.errstate(all="ignore"):
                return bind(eval(compile(f"lambda env: {op(n)}", "<equation>", "eval"), bound)({}))
        return op(n)

    def op(n: Node) -> str:
        if isinstance(n, Unary):
            inner = go(n.operand)
            return {"-": f"np.negative({inner})", "not": f"np.logical_not({inner})"}.get(n.op, inner)
        if isinstance(n, Bin):
            return f"{bind(_NUMPY_BIN[n.op])}({go(n.left)}, {go(n.right)})"
        if isinstance(n, Cmp):
            return f"{bind(_NUMPY_CMP[n.op])}({go(n.left)}, {go(n.right)})"
        if isinstance(n, BoolOp):
            fn = "np.logical_and" if n.op == "and" else "np.logical_or"
            out = go(n.values[0])
            for v in n.values[1:]:
                out = f"{fn}({out}, {go(v)})"
            return out
        if isinstance(n, Call):
            args = [go(a) for a in n.args]
            if n.func == "step":
                return f"_step(env['time'], {args[0]}, {args[1]}, env.get('__dt__', 0.0))"
            if n.func == "ramp":
                return f"_ramp(env['time'], {', '.join(args)})"
            if n.func in _NUMPY_FUNCS:
                return f"{bind(_NUMPY_FUNCS[n.func])}({', '.join(args)})"
            xp, fp = lookups[n.func]
            return f"np.interp({args[0]}, {bind(xp)}, {bind(fp)})"
        raise TypeError(f"cannot compile {n!r}")  # pragma: no cover - the parser rejects it first

    body = go(node)
    return eval(compile(f"lambda env: {body}", "<equation>", "eval"), bound)


_SCALAR_FUNCS = {"min": "_fmin", "max": "_fmax", "exp": "math.exp", "log": "math.log", "sqrt": "math.sqrt",
                 "abs": "abs"}


def source_scalar(node: Node, local: dict[str, str], tables: dict[str, str],
                  lookups: dict[str, tuple[np.ndarray, np.ndarray]], dt: float) -> str:
    """The source of one scalar expression for the compiled kernel (:mod:`multivector.sd.kernel`):
    ``local`` maps each name to the kernel's variable, ``tables`` each lookup to its globals
    ``<table>_x``/``<table>_y``; ``time`` is the kernel's ``time`` and ``dt`` the model's step.

    The operations and their order are :func:`compile_numpy`'s, and constant sub-expressions are folded
    by numpy as there (written with ``repr``, which round-trips a float), so the two agree to the bit
    except where numpy's ``exp``, ``log`` or ``power`` are not the C library's."""

    def num(v) -> str:
        v = float(np.asarray(v, dtype=np.float64))
        if math.isnan(v):
            return "math.nan"
        return repr(v) if math.isfinite(v) else ("math.inf" if v > 0 else "(-math.inf)")

    def go(n: Node) -> str:
        if isinstance(n, Num):
            return num(n.value)
        if isinstance(n, Name):
            return "time" if n.id == "time" else local[n.id]
        if not names_in(n):
            with np.errstate(all="ignore"):
                return num(compile_numpy(n, lookups)({}))
        return op(n)

    def op(n: Node) -> str:
        if isinstance(n, Unary):
            inner = go(n.operand)
            return {"-": f"(-{inner})", "not": f"(not {inner})"}.get(n.op, inner)
        if isinstance(n, Bin):
            return f"({go(n.left)} {n.op} {go(n.right)})"
        if isinstance(n, Cmp):
            return f"({go(n.left)} {n.op} {go(n.right)})"
        if isinstance(n, BoolOp):
            out = f"({go(n.values[0])} != 0)"
            for v in n.values[1:]:
                out = f"({out} {n.op} ({go(v)} != 0))"
            return out
        if isinstance(n, Call):
            args = [go(a) for a in n.args]
            if n.func == "step":
                test = f"time + {num(dt / 2)} + {num(TIME_EPS)} > {args[1]}" if dt else f"time + {num(TIME_EPS)} >= {args[1]}"
                return f"({args[0]} if {test} else 0.0)"
            if n.func == "ramp":
                return f"({args[0]} * (_fmin(time, {args[2]}) - {args[1]}) if time + {num(TIME_EPS)} > {args[1]} else 0.0)"
            if n.func == "clip":
                return f"_fmin(_fmax({args[0]}, {args[1]}), {args[2]})"
            if n.func == "if_then_else":
                return f"({args[1]} if {args[0]} else {args[2]})"
            if n.func in _SCALAR_FUNCS:
                return f"{_SCALAR_FUNCS[n.func]}({', '.join(args)})"
            return f"_interp({args[0]}, {tables[n.func]}_x, {tables[n.func]}_y)"
        raise TypeError(f"cannot compile {n!r}")  # pragma: no cover - the parser rejects it first

    return go(node)


# ---------------------------------------------------------------------------------------- units
def _const_value(node: Node):
    """The value of a sub-expression made of numbers only, else None."""
    if names_in(node) or lookups_in(node):
        return None
    with np.errstate(all="ignore"):
        v = compile_numpy(node, {})({})
    return float(v)


def infer_unit(node: Node, units: dict, lookups: dict, *, where: str, file=None, field: str = "equation"):
    """The unit of an equation, or :data:`FREE` for a numbers-only expression.

    ``units`` maps variable names to :class:`Unit`; ``lookups`` maps lookup names to
    ``(x_unit, unit)``. Raises :class:`InputError` naming the variable and the offending part.
    """
    label = f"[{where}] {field}"

    def show(u):
        return "a bare number" if u is FREE else f"'{u}'"

    def fail(msg, hint=None):
        raise _err(label, f"unit mismatch: {msg}", file, hint=hint)

    def unify(parts, what, sub):
        units_ = [(u, p) for u, p in parts if u is not FREE]
        if not units_:
            return FREE
        first, fp = units_[0]
        for u, p in units_[1:]:
            if u != first:
                fail(f"{what} needs equal units, but '{fp}' is {show(first)} and '{p}' is {show(u)} in '{sub}'")
        return first

    def need_dimless(u, p, what, sub):
        if u is not FREE and u != DIMENSIONLESS:
            fail(f"the argument of {what} must be dimensionless, but '{p}' is {show(u)} in '{sub}'")

    def need_year(u, p, what, sub):
        if u is not FREE and u != YEAR:
            fail(f"{what} must be a time in 'year', but '{p}' is {show(u)} in '{sub}'")

    def go(n):
        if isinstance(n, Num):
            return FREE
        if isinstance(n, Name):
            return YEAR if n.id == "time" else units[n.id]
        if isinstance(n, Unary):
            u = go(n.operand)
            return DIMENSIONLESS if n.op == "not" else u
        if isinstance(n, Bin):
            a, b = go(n.left), go(n.right)
            if n.op in "+-":
                return unify([(a, n.left), (b, n.right)], f"'{n.op}'", n)
            if n.op == "*":
                if a is FREE:
                    return b
                return a if b is FREE else a * b
            if n.op == "/":
                if a is FREE and b is FREE:
                    return FREE
                if b is FREE:
                    return a
                return (DIMENSIONLESS if a is FREE else a) / b
            # power
            need_dimless(b, n.right, "an exponent", n)
            if a is FREE or a == DIMENSIONLESS:
                return a
            e = _const_value(n.right)
            if e is None or not math.isfinite(e):
                fail(f"'{n.left}' has unit {show(a)}, so its exponent must be a plain number in '{n}'")
            return a ** Fraction(e).limit_denominator(1000)
        if isinstance(n, Cmp):
            unify([(go(n.left), n.left), (go(n.right), n.right)], f"the comparison '{n.op}'", n)
            return DIMENSIONLESS
        if isinstance(n, BoolOp):
            for v in n.values:
                go(v)
            return DIMENSIONLESS
        if isinstance(n, Call):
            us = [go(a) for a in n.args]
            f = n.func
            if f in ("min", "max", "clip"):
                return unify(list(zip(us, n.args, strict=True)), f"{f}()", n)
            if f == "abs":
                return us[0]
            if f == "sqrt":
                return us[0] if us[0] is FREE else us[0] ** Fraction(1, 2)
            if f in ("exp", "log"):
                need_dimless(us[0], n.args[0], f"{f}()", n)
                return us[0] if us[0] is FREE else DIMENSIONLESS
            if f == "if_then_else":
                return unify([(us[1], n.args[1]), (us[2], n.args[2])], "the two branches of if_then_else()", n)
            if f == "step":
                need_year(us[1], n.args[1], "the start of step()", n)
                return us[0]
            if f == "ramp":
                need_year(us[1], n.args[1], "the start of ramp()", n)
                need_year(us[2], n.args[2], "the end of ramp()", n)
                return us[0] if us[0] is FREE else us[0] * YEAR
            x_unit, unit = lookups[f]
            if not same(us[0], x_unit):
                fail(f"the lookup {f}() takes x in '{x_unit}', but '{n.args[0]}' is {show(us[0])}")
            return unit
        raise TypeError(n)  # pragma: no cover

    return go(node)
