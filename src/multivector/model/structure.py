"""The political register's structure, read from its equations: causal links between stocks (with
polarities measured on the model) and which outputs rest on stated assumptions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from multivector.dataset import Scenario, parameter_table, table_values
from multivector.model.posterior import CONSTRAINED_BAND, band_ratios
from multivector.sd.equations import names_in

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


def reliance(scenario: Scenario, sensitivity: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which outputs rest on stated assumptions rather than sourced figures.

    Returns (per output: how many of the parameters upstream of it in the equations, through other
    variables and stocks over the horizon, are sourced and how many are assumptions, and whether
    it also reads the freight network; the assumption-backed parameters with their ranges and rationale, ranked
    by sensitivity when an exploration supplies it). With ``sensitivity`` the first table's attrs give
    the share of the summed sensitivity on assumptions (``sensitivity_share``) and on assumptions that no
    stored posterior constrains (``unconstrained_share``: its 5–95% band over half the prior's, or never
    sampled); each assumption carries its ``posterior band / prior`` where a posterior samples it.
    """
    kinds = dict(zip(scenario.sources["id"], scenario.sources["kind"]))
    titles = dict(zip(scenario.sources["id"], scenario.sources["title"]))
    pol = scenario.politics
    params = scenario.parameters
    # each parameter names one checked source id; anything but a figure is a stated assumption
    assumed_params = {name for name, p in params.items() if kinds.get(p.source) != "figure"}
    network_params = [p for p in params if pol is None or p not in pol.sd.spec.constants]
    rows = []
    if pol is not None:
        sd = pol.sd
        deps = {name: names_in(node) for name, node in sd.equations.items()}
        for name, node in sd.initials.items():
            deps.setdefault(name, set()).update(names_in(node))
        for s in sd.stock_names:
            deps.setdefault(s, set()).update(sd.spec.stocks[s].inflows + sd.spec.stocks[s].outflows)

        def reach(v):                        # every constant and input upstream of v, over time
            seen, todo, out = {v}, [v], set()
            while todo:
                for d in deps.get(todo.pop(), ()):
                    if d in sd.spec.constants or d in sd.spec.exogenous:
                        out.add(d)
                    elif d in deps and d not in seen:
                        seen.add(d)
                        todo.append(d)
            return out

        outputs = [pol.index] + list(sd.stock_names)
        for out in outputs:
            r = reach(out)
            consts = [c for c in r if c in params]
            assumed = [c for c in consts if c in assumed_params]
            reads_network = any(x in pol.from_network for x in r)
            rows.append({"output": out, "parameters": len(consts), "sourced": len(consts) - len(assumed),
                         "assumed": len(assumed), "share_assumed": len(assumed) / max(1, len(consts)),
                         "reads_network": reads_network})
    net_assumed = [p for p in network_params if p in assumed_params]
    rows.append({"output": "corridor volumes (network)", "parameters": len(network_params),
                 "sourced": len(network_params) - len(net_assumed), "assumed": len(net_assumed),
                 "share_assumed": len(net_assumed) / max(1, len(network_params)), "reads_network": True})
    per_output = pd.DataFrame(rows)
    # what the observations pin down: a stored posterior's band at most CONSTRAINED_BAND of the prior's
    ratios = band_ratios(scenario)
    constrained = {p for p, r in ratios.items() if r <= CONSTRAINED_BAND}
    if sensitivity is not None and len(sensitivity):
        col = next(c for c in ("ST", "S1", "mu_star") if c in sensitivity)
        weight = sensitivity[col].clip(lower=0)
        total = float(weight.sum())
        assumed_w = sum(float(weight.get(p, 0)) for p in assumed_params)
        free_w = sum(float(weight.get(p, 0)) for p in assumed_params - constrained)
        per_output.attrs["sensitivity_share"] = assumed_w / total if total > 0 else float("nan")
        per_output.attrs["unconstrained_share"] = free_w / total if total > 0 else float("nan")
        per_output.attrs["sensitivity_measure"] = col
    arows = []
    defaults = scenario.defaults()
    for name, p in params.items():
        if name in assumed_params:
            arows.append({"parameter": name, "kind": p.kind, "value": defaults[name], "min": p.min, "max": p.max,
                          "unit": p.unit, "source": p.source, "rationale": str(titles.get(p.source, "")),
                          "posterior band / prior": ratios.get(name, float("nan"))})
    assumptions = pd.DataFrame(arows)
    if sensitivity is not None and len(sensitivity) and len(assumptions):
        col = per_output.attrs["sensitivity_measure"]
        assumptions[f"sensitivity_{col}"] = assumptions["parameter"].map(sensitivity[col]).astype(float)
        assumptions = assumptions.sort_values(f"sensitivity_{col}", ascending=False, na_position="last")
    return per_output, assumptions.reset_index(drop=True)
