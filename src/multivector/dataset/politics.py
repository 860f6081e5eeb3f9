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


def load_politics(path: Path) -> PoliticalModel:
    """Read ``politics.toml``: compile its SD part and check its coupling tables."""
    path = Path(path)
    data = read_toml(path)
    coupling = data.pop("coupling", {})
    loops_raw = data.pop("loops", {})
    outcomes = data.pop("outcomes", {})
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
                          components=components, counterfactual=counterfactual)


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
