"""The political register of a dataset: its system-dynamics model and how it couples to the network.

``politics.toml`` holds an SD model (see :mod:`multivector.sd`) plus tables that are not SD:
``[coupling]`` (which SD outputs set which network parameters, which network outputs feed which SD
inputs, and which input carries the stochastic disruptions), ``[loops]`` (the documented feedback
loops) and ``[outcomes]`` (the headline index, the consolidation test, and the auxiliaries an
exploration records each year). Every name is the dataset's own; this module checks that they exist.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from multivector.errors import InputError
from multivector.sd import SDModel, compile_model, parse_spec

COUPLING_MODES = ("relative", "additive", "absolute")


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
    disruption: dict[str, str] = field(default_factory=dict)  # input, hazard, severity, duration


def load_politics(path: Path) -> PoliticalModel:
    """Read ``politics.toml``: compile its SD part and check its coupling tables."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"is not valid TOML: {exc}", file=path) from None
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
    disruption = dict(coupling.get("disruption", {}))
    if disruption:
        keys = {"input", "hazard", "severity", "duration"}
        if set(disruption) != keys:
            raise InputError("[coupling.disruption] needs exactly " + ", ".join(sorted(keys)), file=path,
                             hint="input: the exogenous share lost; hazard, severity, duration: SD names")
        if disruption["input"] not in exogenous:
            raise InputError(f"[coupling.disruption] input '{disruption['input']}' is not an [exogenous] input",
                             file=path)
        for key in ("hazard", "severity", "duration"):
            if disruption[key] not in names and disruption[key] not in model.spec.constants:
                raise InputError(f"[coupling.disruption] {key} '{disruption[key]}' is not a variable or constant",
                                 file=path)
    from_network = dict(coupling.get("from_network", {}))
    for name in from_network:
        if name not in exogenous:
            raise InputError(f"[coupling.from_network] {name}: no [exogenous] input of that name", file=path)
    for name in exogenous - set(from_network) - {disruption.get("input")}:
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
    definitional = list(outcomes.get("definitional", []))
    for name in definitional:
        if name not in model.spec.constants:
            raise InputError(f"[outcomes] definitional names an unknown constant '{name}'", file=path)
    return PoliticalModel(sd=model, to_network=to_network, modes=modes, from_network=from_network, loops=loops, index=index,
                          consolidation=consolidation, path=path, outcomes_doc=outcomes.get("doc", ""),
                          record=record, definitional=definitional, disruption=disruption)
