"""A small unit algebra for the system-dynamics engine.

A unit is a product of named base units with rational exponents, e.g. ``USD bn/year`` is
``USD^1 · bn^1 · year^-1``. There are no scale factors: ``USD bn`` and ``USD`` are different units
and are never converted into each other, so two quantities are compatible only when their units
are *equal*.

Unit strings are read left to right: names and ``1`` are factors, a blank or ``*`` multiplies,
``/`` divides by the next factor only, ``^`` (or ``**``) raises a factor to an integer or a fraction
(``km^2``, ``year^-1``, ``x^(1/2)``), and parentheses group (``1/(year km)``). So
``USD bn/year`` is ``(USD · bn) / year`` and ``t/km/year`` is ``t / (km · year)``.

``index``, ``1``, ``dimensionless``, ``dmnl`` and ``fraction`` all mean "no unit": an index is a
pure number. ``year``, ``years`` and ``yr`` are the time unit.

Bare numeric literals in equations get the special unit :data:`FREE`: they are dimensionless but
compatible with anything, so ``1 - share`` has the unit of ``share``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Unit", "UnitSyntaxError", "DIMENSIONLESS", "YEAR", "FREE", "parse_unit", "same"]

DIMENSIONLESS_NAMES = {"1", "index", "dimensionless", "dmnl", "fraction"}
ALIASES = {"years": "year", "yr": "year"}


class UnitSyntaxError(ValueError):
    """A unit string that cannot be read."""


@dataclass(frozen=True)
class Unit:
    """A product of base units with rational exponents (sorted, no zero exponents)."""

    dims: tuple[tuple[str, Fraction], ...] = ()

    @staticmethod
    def of(mapping: dict[str, Fraction]) -> "Unit":
        return Unit(tuple(sorted((k, Fraction(v)) for k, v in mapping.items() if v != 0)))

    def _map(self) -> dict[str, Fraction]:
        return dict(self.dims)

    def __mul__(self, other: "Unit") -> "Unit":
        m = self._map()
        for k, v in other.dims:
            m[k] = m.get(k, Fraction(0)) + v
        return Unit.of(m)

    def __truediv__(self, other: "Unit") -> "Unit":
        return self * other ** -1

    def __pow__(self, exponent) -> "Unit":
        e = Fraction(exponent)
        return Unit.of({k: v * e for k, v in self.dims})

    @property
    def dimensionless(self) -> bool:
        return not self.dims

    def __str__(self) -> str:
        if not self.dims:
            return "1"

        def fmt(name, e):
            name = name.replace("_", " ")
            if e == 1:
                return name
            if e.denominator == 1:
                return f"{name}^{e.numerator}"
            return f"{name}^({e})"

        num = [fmt(k, v) for k, v in self.dims if v > 0]
        den = [fmt(k, -v) for k, v in self.dims if v < 0]
        top = " ".join(num) if num else "1"
        if not den:
            return top
        bottom = den[0] if len(den) == 1 else "(" + " ".join(den) + ")"
        return f"{top}/{bottom}"


class _Free:
    """The unit of a bare numeric literal: dimensionless but compatible with any unit."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __str__(self) -> str:
        return "number"

    __repr__ = __str__


FREE = _Free()
DIMENSIONLESS = Unit()
YEAR = Unit.of({"year": Fraction(1)})

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:/\d+)?)|(?P<name>[A-Za-z_%$€£][\w%$€£.]*)|(?P<op>\*\*|[*/^()])|(?P<bad>\S))"
)


def _tokens(text: str):
    pos = 0
    out = []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing blanks
            break
        pos = m.end()
        if m.group("bad"):
            raise UnitSyntaxError(f"unexpected character {m.group('bad')!r} in unit {text!r}")
        if m.group("num") is not None:
            out.append(("num", m.group("num")))
        elif m.group("name") is not None:
            out.append(("name", m.group("name")))
        else:
            op = m.group("op")
            out.append(("op", "^" if op == "**" else op))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self) -> Unit:
        if not self.toks:
            raise UnitSyntaxError("empty unit (write '1' or 'index' for a pure number)")
        u = self.expr()
        if self.i != len(self.toks):
            raise UnitSyntaxError(f"cannot read unit {self.text!r} past {self.peek()[1]!r}")
        return u

    def expr(self) -> Unit:
        u = self.factor()
        while True:
            kind, val = self.peek()
            if kind == "op" and val == "*":
                self.take()
                u = u * self.factor()
            elif kind == "op" and val == "/":
                self.take()
                u = u / self.factor()
            elif kind in ("name", "num") or (kind == "op" and val == "("):
                u = u * self.factor()  # juxtaposition multiplies: "USD bn"
            else:
                return u

    def factor(self) -> Unit:
        u = self.atom()
        kind, val = self.peek()
        if kind == "op" and val == "^":
            self.take()
            u = u ** self.exponent()
        return u

    def exponent(self) -> Fraction:
        kind, val = self.take()
        if kind == "num":
            return Fraction(val)
        if kind == "op" and val == "(":
            k2, v2 = self.take()
            k3, v3 = self.take()
            if k2 == "num" and k3 == "op" and v3 == ")":
                return Fraction(v2)
        raise UnitSyntaxError(f"bad exponent in unit {self.text!r} (write e.g. 'km^2' or 'year^-1')")

    def atom(self) -> Unit:
        kind, val = self.take()
        if kind == "num":
            if val != "1":
                raise UnitSyntaxError(
                    f"numbers other than 1 are not allowed in unit {self.text!r} "
                    "(units have no scale factors: write e.g. 'kt' instead of '1000 t')"
                )
            return DIMENSIONLESS
        if kind == "name":
            low = val.lower()
            if low in DIMENSIONLESS_NAMES:
                return DIMENSIONLESS
            return Unit.of({ALIASES.get(low, val): Fraction(1)})
        if kind == "op" and val == "(":
            u = self.expr()
            k, v = self.take()
            if not (k == "op" and v == ")"):
                raise UnitSyntaxError(f"missing ')' in unit {self.text!r}")
            return u
        raise UnitSyntaxError(f"cannot read unit {self.text!r}")


def parse_unit(text) -> Unit:
    """Read a unit string such as ``"USD bn/year"`` (raises :class:`UnitSyntaxError`)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text == 1:
        return DIMENSIONLESS
    if not isinstance(text, str):
        raise UnitSyntaxError(f"a unit must be text, not {text!r}")
    # a scaled currency ("USD bn", "USD M") is one unit, so "index/USD bn" means per billion dollars
    text = re.sub(r"\b(USD|EUR)\s+(bn|M|m|k)\b", r"\1_\2", text)
    return _Parser(text).parse()


def same(a, b) -> bool:
    """True when two units (or FREE) are compatible."""
    return a is FREE or b is FREE or a == b


def show(u) -> str:
    return str(u)
