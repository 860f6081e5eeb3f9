"""Reality checks a dataset declares (``checks.toml``): expected directions and bounds, as Vensim's
Reality Check does, so that a model whose signs contradict its own argument fails loudly.

A *direction* check moves one parameter from the low to the high end of its range, holding everything
else (and each run's random stream) fixed, and states how an outcome must respond: ``not_up``,
``not_down``, ``up`` or ``down``. A *bound* states that an outcome stays within ``[min, max]`` in every
run and year. Outcomes are named as in :data:`OUTCOME_HELP`; every name is checked here, at load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from multivector.errors import InputError
from multivector.io import read_toml

EXPECT = ("not_up", "not_down", "up", "down")
OUTCOME_HELP = ("a political variable (stock, auxiliary or input), 'index', 'consolidated', "
                "'corridor:NAME:tonnes|teu', 'focus_overland_share', 'focus_transit_revenue', "
                "'corridor_share', 'utilisation', 'utilisation:GROUP[,GROUP]' or 'parameter:NAME'")


@dataclass(frozen=True)
class Direction:
    id: str
    parameter: str                # moved from its range's min (low) to its max (high)
    outcome: str
    expect: str                   # not_up, not_down, up, down
    years: tuple[int, ...] = ()   # compared in these years (default: the settings' years)
    loop: str = ""
    doc: str = ""
    atol: float = 0.0             # an absolute change below which the outcome "did not move" (its unit)


@dataclass(frozen=True)
class Bound:
    id: str
    outcome: str
    min: float = -math.inf
    max: float = math.inf
    doc: str = ""


@dataclass(frozen=True)
class Checks:
    directions: tuple[Direction, ...]
    bounds: tuple[Bound, ...]
    years: tuple[int, ...]        # default comparison years of direction checks
    pairs: int                    # default number of paired runs per direction check
    tolerance: float              # relative change below which an outcome "did not move"
    path: Path | None = None


def outcome_known(outcome: str, scenario) -> bool:
    """Whether an outcome name resolves in this scenario (see :data:`OUTCOME_HELP`)."""
    kind, _, rest = outcome.partition(":")
    pol = scenario.politics
    if outcome in ("index", "consolidated", "focus_overland_share", "focus_transit_revenue", "corridor_share",
                   "utilisation"):
        return outcome not in ("index", "consolidated") or pol is not None
    if kind == "corridor":
        name, _, unit = rest.partition(":")
        return name in scenario.corridors and unit in ("tonnes", "teu")
    if kind == "utilisation":
        return bool(rest) and set(rest.split(",")) <= set(scenario.capacity_groups)
    if kind == "parameter":
        return rest in scenario.parameters
    if pol is None:
        return False
    spec = pol.sd.spec
    return outcome in spec.stocks or outcome in spec.auxiliaries or outcome in spec.flows or outcome in spec.exogenous


def load_checks(path: Path, scenario) -> Checks:
    """Read and validate ``checks.toml`` against the scenario: every parameter, outcome and bound."""
    path = Path(path)
    doc = read_toml(path)
    settings = doc.get("settings", {})
    years = tuple(int(y) for y in settings.get("years", []))
    seen: set[str] = set()

    def ident(i: int, body: dict, section: str) -> str:
        cid = str(body.get("id", ""))
        if not cid:
            raise InputError(f"[[{section}]] number {i + 1} has no id", file=path)
        if cid in seen:
            raise InputError(f"[[{section}]] {cid}: duplicate id", file=path)
        seen.add(cid)
        return cid

    directions = []
    for i, body in enumerate(doc.get("direction", [])):
        cid = ident(i, body, "direction")
        param, outcome, expect = body.get("parameter", ""), body.get("outcome", ""), body.get("expect", "")
        if param not in scenario.parameters:
            raise InputError(f"[[direction]] {cid}: unknown parameter '{param}'", file=path,
                             hint="see 'multivector params'")
        p = scenario.parameters[param]
        if not p.max > p.min:
            raise InputError(f"[[direction]] {cid}: '{param}' has no range to move over ({p.min:g})", file=path)
        if expect not in EXPECT:
            raise InputError(f"[[direction]] {cid}: expect must be one of {', '.join(EXPECT)}", file=path)
        if not outcome_known(outcome, scenario):
            raise InputError(f"[[direction]] {cid}: unknown outcome '{outcome}'", file=path, hint=OUTCOME_HELP)
        own_years = tuple(int(y) for y in body.get("years", years))
        if not own_years:
            raise InputError(f"[[direction]] {cid}: no years to compare", file=path,
                             hint="give years = [...] here or in [settings]")
        atol = body.get("atol", 0.0)
        if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol < 0:
            raise InputError(f"[[direction]] {cid}: atol must be a non-negative number", file=path,
                             hint="the absolute change, in the outcome's unit, that counts as solver noise")
        directions.append(Direction(cid, param, outcome, expect, own_years, str(body.get("loop", "")),
                                    str(body.get("doc", "")), float(atol)))
    bounds = []
    for i, body in enumerate(doc.get("bound", [])):
        cid = ident(i, body, "bound")
        outcome = body.get("outcome", "")
        if not outcome_known(outcome, scenario):
            raise InputError(f"[[bound]] {cid}: unknown outcome '{outcome}'", file=path, hint=OUTCOME_HELP)
        lo, hi = float(body.get("min", -math.inf)), float(body.get("max", math.inf))
        if not lo <= hi:
            raise InputError(f"[[bound]] {cid}: min {lo:g} is above max {hi:g}", file=path)
        bounds.append(Bound(cid, outcome, lo, hi, str(body.get("doc", ""))))
    if scenario.politics is not None:
        sim = scenario.politics.sd.spec.sim
        for d in directions:
            for y in d.years:
                if not sim.start <= y <= sim.stop:
                    raise InputError(f"[[direction]] {d.id}: year {y} is outside the run ({sim.start:g}–{sim.stop:g})",
                                     file=path)
    return Checks(tuple(directions), tuple(bounds), years, int(settings.get("pairs", 50)),
                  float(settings.get("tolerance", 1e-9)), path)
