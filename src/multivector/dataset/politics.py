"""The political register of a dataset: its system-dynamics model and how it couples to the network.

``politics.toml`` holds an SD model (see :mod:`multivector.sd`) plus tables that are not SD:
``[coupling]`` (which SD outputs set which network parameters, which network outputs feed which SD
inputs, and which input carries the stochastic disruptions), ``[loops]`` (the documented feedback
loops) and ``[outcomes]`` (the headline index, the consolidation test, and the auxiliaries an
exploration records each year). Every name is the dataset's own; this module checks that they exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multivector.errors import InputError
from multivector.io import read_toml
from multivector.sd import SDModel, compile_model, parse_spec
from multivector.sd import equations as eq

COUPLING_MODES = ("relative", "additive", "absolute")


@dataclass
class Cause:
    """One cause of outages: its Poisson hazard (1/year), the share of capacity an event takes while it
    lasts, and how long it lasts (years) — each an SD variable or constant."""

    hazard: str
    severity: str
    duration: str


@dataclass
class Disruption:
    """Stochastic outages: the exogenous input that receives the share of capacity lost each year, the
    causes drawn independently (each from its own random stream), and the name under which a scenario
    can place an outage in a given year (``--event NAME:YEAR:SHARE``)."""

    input: str
    causes: dict[str, Cause]
    event: str = ""


@dataclass
class Loop:
    name: str
    label: str
    polarity: str
    stocks: list[str]
    variables: list[str]
    claim: str = ""
    doc: str = ""


@dataclass
class Counterfactual:
    """A stated reference policy (e.g. "balancing as before"): lever -> value. When a dataset declares
    one, every run is also simulated under it in the same future (same parameters, same random
    streams), and the consolidation test's threshold and floor are margins over its index."""

    label: str
    levers: dict[str, float]
    sources: dict[str, str] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    doc: str = ""


@dataclass
class SeriesLink:
    """A variable tied to an observed series of ``observations.csv``: its values times ``scale`` (which
    turns the series' unit into the variable's); for an initial stock, the ``year`` of the observation
    (a year-end value, the stock at the start of the next year). An input may instead hold a stated
    ``value`` over the whole history, with its ``source`` (e.g. a programme that had not begun); an
    initial stock, an ``equation`` over the model's constants (e.g. a resting level no series records)."""

    series: str | None = None
    scale: float = 1.0
    year: int | None = None
    value: float | None = None
    source: str = ""
    doc: str = ""
    per: str | None = None      # a series each value is divided by, year by year (e.g. an exchange rate)
    equation: str | None = None  # an initial stock stated as an expression of constants


@dataclass
class History:
    """``[history]``: the political register run over observed years, to match what it can of the past.

    From ``start`` to ``stop`` (the integration ends at the start of ``stop``: a year-end stock of
    ``stop - 1``), ``inputs`` replace constants, auxiliaries or exogenous inputs by observed series
    (the value of year ``y`` holds on ``[y, y + 1)``; years between observations are interpolated,
    years outside them take the nearest); ``initial`` sets stocks from an observed year-end value or an
    equation of constants; ``compare`` sets stocks, at each year's end, against observed year-end
    series, and flows or rates (auxiliaries per year), as their total over each year, against observed
    yearly totals. A series may be divided, year by year, by
    another (``per``, e.g. a tenge figure by the year's exchange rate). ``free`` are the constants the
    history match samples (each with a range)."""

    start: int
    stop: int
    free: list[str]
    inputs: dict[str, SeriesLink]
    initial: dict[str, SeriesLink]
    compare: dict[str, SeriesLink]
    doc: str = ""


@dataclass
class PoliticalModel:
    """An SD model with its coupling to the network, its loops and its consolidation test."""

    sd: SDModel
    to_network: dict[str, str]                 # network parameter -> SD variable
    modes: dict[str, str]                      # network parameter -> relative, additive or absolute
    from_network: dict[str, str]               # SD exogenous input -> network output
    loops: dict[str, Loop]
    index: str                                 # the headline index (an auxiliary)
    consolidation: dict[str, str]              # threshold, floor, year -> SD constant names
    path: Path | None = None
    outcomes_doc: str = ""
    record: list[str] = field(default_factory=list)       # auxiliaries explorations keep per year
    definitional: list[str] = field(default_factory=list)  # constants that define the outcome: never sampled
    disruption: Disruption | None = None       # stochastic outages, by cause
    components: dict[str, str] = field(default_factory=dict)  # index component variable -> weight constant
    counterfactual: Counterfactual | None = None  # the verdict's reference policy (margins over its index)
    history: History | None = None             # the register over observed years ([history])


def load_politics(path: Path) -> PoliticalModel:
    """Read ``politics.toml``: compile its SD part and check its coupling tables."""
    path = Path(path)
    data = read_toml(path)
    coupling = data.pop("coupling", {})
    loops_raw = data.pop("loops", {})
    outcomes = data.pop("outcomes", {})
    history_raw = data.pop("history", None)
    model = compile_model(parse_spec(data, file=path))
    names = set(model.stock_names) | set(model.flow_names) | set(model.aux_names)
    exogenous = set(model.spec.exogenous)
    to_network, modes = {}, {}
    for param, entry in coupling.get("to_network", {}).items():
        # "variable" (relative: the network's base-year value times the variable's change since the
        # start), or {variable = "...", mode = "additive"} (base-year value plus the variable's change)
        # or mode = "absolute" (the variable's value itself)
        var, mode = (entry, "relative") if isinstance(entry, str) else (entry.get("variable"), entry.get("mode"))
        if mode not in COUPLING_MODES or not isinstance(var, str):
            raise InputError(f"[coupling.to_network] {param} must be \"VARIABLE\" or "
                             "{variable = \"VARIABLE\", mode = \"relative\" | \"additive\" | \"absolute\"}",
                             file=path)
        if var not in names:
            raise InputError(f"[coupling.to_network] {param} = '{var}': no stock, flow or auxiliary "
                             f"of that name", file=path)
        to_network[param] = var
        modes[param] = mode
    disruption = _disruption(dict(coupling.get("disruption", {})), exogenous, names | set(model.spec.constants), path)
    from_network = dict(coupling.get("from_network", {}))
    for name in from_network:
        if name not in exogenous:
            raise InputError(f"[coupling.from_network] {name}: no [exogenous] input of that name", file=path)
    for name in exogenous - set(from_network) - {disruption.input if disruption else None}:
        raise InputError(f"[exogenous.{name}] has no network output in [coupling.from_network]", file=path,
                         hint="map it to a network output, e.g. corridor:NAME:mt")
    loops = {}
    for name, body in loops_raw.items():
        try:
            loops[name] = Loop(name=name, label=body.get("label", name), polarity=body["polarity"],
                               stocks=list(body.get("stocks", [])), variables=list(body.get("variables", [])),
                               claim=body.get("claim", ""), doc=body.get("doc", ""))
        except KeyError as exc:
            raise InputError(f"[loops.{name}] needs '{exc.args[0]}'", file=path) from None
        if loops[name].polarity not in ("reinforcing", "balancing"):
            raise InputError(f"[loops.{name}] polarity must be reinforcing or balancing", file=path)
        for v in loops[name].stocks:
            if v not in model.stock_names:
                raise InputError(f"[loops.{name}] '{v}' is not a stock", file=path)
        for v in loops[name].variables:
            if v not in names and v not in exogenous:
                raise InputError(f"[loops.{name}] unknown variable '{v}'", file=path)
    index = outcomes.get("index", "")
    if index not in set(model.aux_names):
        raise InputError(f"[outcomes] index '{index}' is not an auxiliary", file=path,
                         hint="index = the auxiliary the verdict rests on")
    consolidation = {key: outcomes.get(key, "") for key in ("threshold", "floor", "year")}
    for key, const in consolidation.items():
        if const not in model.spec.constants:
            raise InputError(f"[outcomes] {key} '{const}' is not a constant", file=path,
                             hint="the consolidated test needs constants for its threshold, floor and year")
    record = list(outcomes.get("record", []))
    for name in record:
        if name not in names and name not in exogenous:
            raise InputError(f"[outcomes] record names an unknown variable '{name}'", file=path)
    components = dict(outcomes.get("components", {}))
    for var, weight in components.items():
        if var not in names:
            raise InputError(f"[outcomes] components: '{var}' is not a variable", file=path)
        if weight not in model.spec.constants:
            raise InputError(f"[outcomes] components: the weight of '{var}', '{weight}', is not a constant", file=path)
    definitional = list(outcomes.get("definitional", []))
    for name in definitional:
        if name not in model.spec.constants:
            raise InputError(f"[outcomes] definitional names an unknown constant '{name}'", file=path)
    counterfactual = _counterfactual(outcomes.get("counterfactual"), model, path)
    return PoliticalModel(sd=model, to_network=to_network, modes=modes, from_network=from_network, loops=loops, index=index,
                          consolidation=consolidation, path=path, outcomes_doc=outcomes.get("doc", ""),
                          record=record, definitional=definitional, disruption=disruption,
                          components=components, counterfactual=counterfactual,
                          history=_history(history_raw, model, path))


def _history(table, model: SDModel, path: Path) -> History | None:
    """``[history]``: ``start``, ``stop``, ``free`` and the ``inputs``, ``initial`` and ``compare`` tables
    (``[history.inputs.VARIABLE] series = ..., scale = ...``), each name checked against the model.
    Whether the series exist is checked with the observations (``dataset.scenario``)."""
    if table is None:
        return None
    where = "[history]"
    if not isinstance(table, dict):
        raise InputError(f"{where} must be a table", file=path)
    extra = set(table) - {"start", "stop", "free", "inputs", "initial", "compare", "doc"}
    if extra:
        raise InputError(f"{where} has unknown key(s) {', '.join(sorted(extra))}", file=path,
                         hint="start, stop, free, inputs, initial, compare, doc")
    start, stop = table.get("start"), table.get("stop")
    if not all(isinstance(y, int) and not isinstance(y, bool) for y in (start, stop)) or stop <= start:
        raise InputError(f"{where} start and stop must be whole years with stop > start, not {start!r}, {stop!r}",
                         file=path, hint="e.g. start = 2016, stop = 2025 (to the end of 2024)")
    constants, stocks, flows = model.spec.constants, set(model.stock_names), set(model.flow_names)
    replaceable = set(constants) | set(model.aux_names) | set(model.spec.exogenous)
    free = table.get("free", [])
    if not isinstance(free, list) or not free:
        raise InputError(f"{where} free must list the constants the history match samples", file=path)
    for name in free:
        c = constants.get(name)
        if c is None or c.min is None or c.max is None or not c.max > c.min:
            raise InputError(f"{where} free: '{name}' is not a constant with a range (min < max)", file=path)
    links = {}
    for key, allowed, what in (("inputs", replaceable, "a constant, auxiliary or exogenous input"),
                               ("initial", stocks, "a stock"),
                               ("compare", stocks | flows | set(model.aux_names), "a stock, flow or auxiliary")):
        links[key] = {}
        for name, body in table.get(key, {}).items():
            here = f"[history.{key}.{name}]"
            if name not in allowed:
                raise InputError(f"{here}: '{name}' is not {what} of the model", file=path)
            stated = key == "inputs" and isinstance(body, dict) and "value" in body
            if stated:
                value, source = body.get("value"), body.get("source")
                if set(body) - {"value", "source", "doc"} or not isinstance(source, str) or not source \
                        or isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InputError(f"{here} with a stated value needs value (a number) and source (and may "
                                     "have doc)", file=path)
                links[key][name] = SeriesLink(value=float(value), source=source, doc=str(body.get("doc", "")))
                continue
            if key == "initial" and isinstance(body, dict) and "equation" in body:
                if set(body) - {"equation", "doc"} or not isinstance(body["equation"], str) or not body["equation"]:
                    raise InputError(f"{here} with an equation needs only equation (an expression of the model's "
                                     "constants) and may have doc", file=path)
                links[key][name] = SeriesLink(equation=body["equation"], doc=str(body.get("doc", "")))
                continue
            if not isinstance(body, dict) or not isinstance(body.get("series"), str) \
                    or set(body) - {"series", "scale", "year", "doc", "per"} \
                    or not isinstance(body.get("per", ""), str):
                raise InputError(f"{here} needs series (a series of observations.csv), and may have scale, per"
                                 + (", year" if key == "initial" else "") + " and doc"
                                 + ("; or a stated value and source" if key == "inputs" else "")
                                 + ("; or an equation of constants" if key == "initial" else ""), file=path)
            scale, year = body.get("scale", 1.0), body.get("year")
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
                raise InputError(f"{here} scale must be a positive number, not {scale!r}", file=path)
            if (key == "initial") != (year is not None) or (year is not None and year != start - 1):
                raise InputError(f"{here} year: " + (f"the initial stock is the year-end value of {start - 1}, so "
                                 f"year = {start - 1}" if key == "initial" else "only initial stocks take a year"),
                                 file=path)
            links[key][name] = SeriesLink(series=body["series"], scale=float(scale), year=year,
                                          doc=str(body.get("doc", "")), per=body.get("per"))
    if not links["compare"]:
        raise InputError(f"{where} compares nothing: add [history.compare.STOCK] series = ...", file=path)
    for name in set(links["inputs"]) & set(free):
        raise InputError(f"[history.inputs.{name}]: '{name}' is also free; an observed input is not sampled",
                         file=path)
    for name, link in links["initial"].items():
        if link.equation is not None:
            _check_initial_equation(link.equation, f"history.initial.{name}", model, set(links["inputs"]), path)
    return History(start=start, stop=stop, free=list(free), inputs=links["inputs"], initial=links["initial"],
                   compare=links["compare"], doc=str(table.get("doc", "")))


def _check_initial_equation(text: str, where: str, model: SDModel, inputs: set[str], path: Path) -> None:
    """An initial stock's equation reads only the model's constants (not those the history replaces by
    observed inputs) and its lookups."""
    node = eq.parse_equation(text, where=where, file=path)
    constants = set(model.spec.constants) - inputs
    unknown = sorted(eq.names_in(node) - constants) + sorted(eq.lookups_in(node) - set(model.spec.lookups))
    if unknown:
        raise InputError(f"[{where}] equation reads {', '.join(repr(n) for n in unknown)}: an initial stock may "
                         "read only the model's constants (not those the history observes) and its lookups",
                         file=path)


def _counterfactual(table, model: SDModel, path: Path) -> Counterfactual | None:
    """``[outcomes.counterfactual]``: a ``label``, a ``doc``, and one ``[outcomes.counterfactual.LEVER]``
    table per lever it sets (``value``, ``source``, ``doc``); each value within the lever's range."""
    if table is None:
        return None
    where = "[outcomes.counterfactual]"
    if not isinstance(table, dict) or not isinstance(table.get("label"), str):
        raise InputError(f"{where} needs a label and one table per lever it sets", file=path,
                         hint='label = "balancing as before", then [outcomes.counterfactual.LEVER] value = ...')
    levers, sources, docs = {}, {}, {}
    for name, body in table.items():
        if name in ("label", "doc"):
            continue
        const = model.spec.constants.get(name)
        if const is None:
            raise InputError(f"{where} sets '{name}', which is not a constant", file=path)
        if not isinstance(body, dict) or set(body) - {"value", "source", "doc"} or "value" not in body \
                or "source" not in body:
            raise InputError(f"[outcomes.counterfactual.{name}] needs value and source (and may have doc)", file=path)
        value = body["value"]
        lo, hi = const.bounds
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
            raise InputError(f"[outcomes.counterfactual.{name}] value {value!r} must be a number in "
                             f"[{lo:g}, {hi:g}] (the constant's range)", file=path)
        levers[name], sources[name], docs[name] = float(value), str(body["source"]), str(body.get("doc", ""))
    if not levers:
        raise InputError(f"{where} sets no lever", file=path)
    return Counterfactual(label=table["label"], levers=levers, sources=sources, docs=docs,
                          doc=str(table.get("doc", "")))


def _disruption(table: dict, exogenous: set, known: set, path: Path) -> Disruption | None:
    """``[coupling.disruption]``: ``input``, an optional ``event`` name, and either one cause given
    directly (``hazard``, ``severity``, ``duration``) or ``[coupling.disruption.causes.NAME]`` tables."""
    if not table:
        return None
    where = "[coupling.disruption]"
    if table.get("input") not in exogenous:
        raise InputError(f"{where} input '{table.get('input')}' is not an [exogenous] input", file=path)
    fields = ("hazard", "severity", "duration")
    raw = table.get("causes") or {"all": {k: table[k] for k in fields if k in table}}
    causes = {}
    for name, body in raw.items():
        if not isinstance(body, dict) or set(body) != set(fields):
            raise InputError(f"{where} cause '{name}' needs exactly hazard, severity and duration", file=path,
                             hint="each names an SD variable or constant")
        for key in fields:
            if body[key] not in known:
                raise InputError(f"{where} cause '{name}': {key} '{body[key]}' is not a variable or constant",
                                 file=path)
        causes[name] = Cause(**{k: body[k] for k in fields})
    extra = set(table) - {"input", "event", "causes", *fields}
    if extra:
        raise InputError(f"{where} has unknown key(s) {', '.join(sorted(extra))}", file=path)
    return Disruption(input=table["input"], causes=causes, event=str(table.get("event", "")))
