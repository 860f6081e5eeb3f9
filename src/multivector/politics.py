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


NETWORK_NODE = "freight network"


def causal_links(scenario, ds, years: tuple[int, ...] = (2024, 2030, 2036), rel: float = 0.01):
    """The causal links between stocks, and to and from the freight network, with their polarity.

    Structure comes from the equations (a stock reaches another's flows through auxiliaries);
    polarity from the model itself: each stock (and each input the network returns) is raised by
    ``rel`` in turn, in one batch, at the default run's state in each of ``years``, and the sign
    of the change in the other stocks' net rates is read. A sign that differs between years is
    '±'; a link the equations contain that does not move anything in those states is '0'
    (inactive there, like a funding limit that does not bind). Returns a DataFrame with columns source, target, polarity, via.
    """
    import numpy as np
    import pandas as pd

    from multivector.sd.equations import names_in
    from multivector.simulation import parameter_table, table_values

    pol = scenario.politics
    sd = pol.sd
    stocks = list(sd.stock_names)
    inputs = list(pol.from_network)
    deps = {name: names_in(node) for name, node in sd.equations.items()}
    reach_cache: dict[str, set] = {}

    def reach(name):                       # the stocks and inputs a variable depends on
        if name not in reach_cache:
            reach_cache[name] = set()
            out = set()
            for d in deps.get(name, ()):
                if d in stocks or d in inputs:
                    out.add(d)
                elif d in deps:
                    out |= reach(d)
            reach_cache[name] = out
        return reach_cache[name]

    flows_of = {s: list(sd.spec.stocks[s].inflows) + list(sd.spec.stocks[s].outflows) for s in stocks}
    sources = stocks + inputs
    n = 1 + len(sources)
    values = table_values(parameter_table(scenario, n))
    constants = {c: values[c] for c in sd.spec.constants if c in values}
    state = sd.initial_state(constants, n)
    available = [int(y) for y in years if int(y) in set(ds["year"].values.tolist())]
    signs: dict[tuple[str, str], set] = {}
    structural: set[tuple[str, str]] = set()
    via: dict[tuple[str, str], set] = {}
    political = ds["political"].isel(run=0)
    for year in available:
        at = political.sel(year=year)
        cur = {v: np.full(n, float(at.sel(variable=v))) for v in stocks + inputs}
        for i, src in enumerate(sources, start=1):
            bump = rel * abs(cur[src][0]) or rel
            cur[src][i] += bump
        env, rate = sd.rates(state, {s: cur[s] for s in stocks}, {x: cur[x] for x in inputs}, float(year))
        for i, src in enumerate(sources, start=1):
            a = NETWORK_NODE if src in inputs else src
            for tgt in stocks:
                if tgt == src or not any(src in reach(f) for f in flows_of[tgt]):
                    continue
                structural.add((a, tgt))
                d = float(rate[tgt][i] - rate[tgt][0])
                if abs(d) > 1e-12 * (1 + abs(float(rate[tgt][0]))):
                    signs.setdefault((a, tgt), set()).add(np.sign(d))
                    via.setdefault((a, tgt), set()).update(
                        [src] if src in inputs else [f for f in flows_of[tgt] if src in reach(f)])
            if src in stocks:
                for param, var in pol.to_network.items():
                    if src in reach(var) or var == src:
                        structural.add((src, NETWORK_NODE))
                        d = float(np.asarray(env[var])[i] - np.asarray(env[var])[0]) if var in env else 0.0
                        if abs(d) > 1e-12:
                            signs.setdefault((src, NETWORK_NODE), set()).add(np.sign(d))
                            via.setdefault((src, NETWORK_NODE), set()).add(param)
    rows = []
    for (a, b), s in signs.items():
        polarity = "±" if len(s) > 1 else ("+" if s.pop() > 0 else "−")
        rows.append({"source": a, "target": b, "polarity": polarity, "via": ", ".join(sorted(via[(a, b)]))})
    for a, b in sorted(structural - set(signs)):
        rows.append({"source": a, "target": b, "polarity": "0",
                     "via": "inactive at the default run's state in " + ", ".join(map(str, available))})
    return pd.DataFrame(rows, columns=["source", "target", "polarity", "via"])
