"""The political register of a dataset: its system-dynamics model and how it couples to the network.

``politics.toml`` holds an SD model (see :mod:`multivector.sd`) plus three tables that are not SD:
``[coupling]`` (which SD outputs set which network parameters, and which network outputs feed which
SD inputs), ``[loops]`` (the documented feedback loops) and ``[outcomes]`` (the consolidation test).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from multivector.errors import InputError
from multivector.sd import SDModel, compile_model, parse_spec

#: Network outputs the coupling can send to the political register (see ``network_outputs``).
DEFAULT_FROM_NETWORK = {
    "kz_transit_teu": "kz_transit_teu",
    "middle_corridor_mt": "corridor:middle:mt",
    "northern_teu": "corridor:northern:teu",
    "kz_overland_share": "kz_overland_share",
    "transit_revenue": "kz_transit_revenue",
    "caspian_utilisation": "max_utilisation:caspian,caspian_ports",
    "cpc_throughput": "corridor:oil_cpc:mt",
    "oil_export": "commodity:crude:mt",
}


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
    from_network: dict[str, str]               # SD exogenous input -> network output
    loops: dict[str, Loop]
    consolidation: dict[str, str]              # threshold, floor, year -> SD constant names
    path: Path | None = None
    outcomes_doc: str = ""
    disruption: dict[str, str] = field(default_factory=dict)


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
    to_network = dict(coupling.get("to_network", {}))
    for param, var in to_network.items():
        if var not in names:
            raise InputError(f"[coupling.to_network] {param} = '{var}': no stock, flow or auxiliary "
                             f"of that name", file=path)
    from_network = dict(DEFAULT_FROM_NETWORK)
    from_network.update(coupling.get("from_network", {}))
    from_network = {k: v for k, v in from_network.items() if k in exogenous}
    for name in exogenous - set(from_network) - {"cpc_disruption"}:
        raise InputError(f"[exogenous.{name}] has no network output in [coupling.from_network]", file=path,
                         hint="map it to a network output, e.g. corridor:middle:mt")
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
    consolidation = {"threshold": "consolidation_threshold", "floor": "consolidation_floor",
                     "year": "consolidation_year"}
    for key, const in consolidation.items():
        if const not in model.spec.constants:
            raise InputError(f"the consolidated test needs a constant '{const}'", file=path)
    if "middle_power_index" not in names:
        raise InputError("the political model needs an auxiliary 'middle_power_index'", file=path)
    disruption = {"hazard": "cpc_disruption_hazard", "severity": "cpc_disruption_severity",
                  "duration": "cpc_disruption_duration"}
    if "cpc_disruption" in exogenous:
        for key, var in disruption.items():
            if var not in names and var not in model.spec.constants:
                raise InputError(f"stochastic CPC disruptions need '{var}'", file=path)
    return PoliticalModel(sd=model, to_network=to_network, from_network=from_network, loops=loops,
                          consolidation=consolidation, path=path, outcomes_doc=outcomes.get("doc", ""),
                          disruption=disruption if "cpc_disruption" in exogenous else {})
