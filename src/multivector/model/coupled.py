"""The two registers coupled year by year.

Order of exchange in each simulated year ``y`` (every step batched over runs):

1. the political state at the start of ``y`` gives the disruption hazard (``[coupling.disruption]``);
   this year's disruption is drawn from each run's own random stream (``seed``, run id, year);
2. the political auxiliaries, evaluated with last year's network outputs and this year's disruption,
   set this year's network parameters (``[coupling.to_network]``). A *relative* coupling gives the
   network its base-year value (calibrated default, timeline or user override) times the relative
   change of its political driver since the start, an *additive* one that value plus the driver's
   change, so the coupled model starts exactly on the calibrated network; an *absolute* coupling
   gives it the driver's value itself, except in a year the timeline observes it, or when the user
   fixed the network parameter;
3. the network is solved for ``y`` (warm-started from last year's route flows and capacity prices);
4. its outputs (``[coupling.from_network]``: transit, shares, revenue, utilisation, oil) become the
   political register's inputs, and the political stocks are integrated from ``y`` to ``y + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from multivector.dataset import run_values, table_values, year_values
from multivector.dataset.scenario import in_capacity_groups
from multivector.errors import InputError
from multivector.freight.model import FreightModel, results_dataset
from multivector.freight.sue import EQUILIBRIUM_TOL, MAX_NEWTON_STEPS
from multivector.model.randomness import draw_disruption
from multivector.model.verdict import (DEFINITION_DRAWS, Scores, by_definition_half, component_values, consolidated,
                                       index_components, judge_definitions)


def network_reader(model: FreightModel, wanted: Mapping[str, str]) -> Callable[[dict], dict[str, np.ndarray]]:
    """The network outputs named in ``[coupling.from_network]``, read from a year's results: a function
    of that year's ``solve_year`` output giving one ``[N]`` array per name. The metrics are parsed (and
    refused) once, before the first year."""
    s, net = model.scenario, model.net
    tpu = np.array([s.commodities[c].tonnes_per_unit for c in model.commodities])
    is_teu = np.array([s.commodities[c].unit.upper() == "TEU" for c in model.commodities])
    readers = {}
    for name, metric in wanted.items():
        kind, _, rest = metric.partition(":")
        if metric == "focus:overland_teu":
            read = lambda out: out["focus_overland_teu"]
        elif metric == "focus:transit_teu":
            read = lambda out: out["focus_transit_teu"]
        elif metric == "focus:overland_share":
            read = lambda out: np.nan_to_num(out["focus_share"])
        elif metric == "focus:transit_revenue":
            read = lambda out: out["revenue"]
        elif kind == "max_utilisation":
            sel = np.flatnonzero(in_capacity_groups(net.resource_group, rest.split(",")))
            if not len(sel):
                raise InputError(f"[coupling.from_network] {name}: no resource in group(s) {rest}")
            read = lambda out, sel=sel: np.nan_to_num(out["utilisation"][sel]).max(axis=0)
        elif kind == "unserved":
            ident, _, unit = rest.partition(":")
            if ident not in model.commodities or unit != "mt":
                raise InputError(f"[coupling.from_network] {name}: '{metric}' must be unserved:COMMODITY:mt")
            ci = model.commodities.index(ident)
            read = lambda out, ci=ci: out["unserved"][ci] * tpu[ci] / 1e6
        elif kind in ("corridor", "commodity"):
            ident, _, unit = rest.partition(":")
            if kind == "corridor":
                if ident not in model.corridor_names:
                    raise InputError(f"[coupling.from_network] {name}: unknown corridor '{ident}'")
                ci = model.corridor_names.index(ident)
                volume = lambda out, ci=ci: out["volume"][:, ci]                          # [C, N]
            else:
                if ident not in model.commodities:
                    raise InputError(f"[coupling.from_network] {name}: unknown commodity '{ident}'")
                sel = (np.array(model.commodities) == ident)[:, None]
                volume = lambda out, sel=sel: np.where(sel, out["volume"].sum(axis=1), 0.0)
            if unit == "mt":
                read = lambda out, volume=volume: (volume(out) * tpu[:, None]).sum(axis=0) / 1e6
            elif unit == "teu":
                read = lambda out, volume=volume: volume(out)[is_teu].sum(axis=0)
            else:
                raise InputError(f"[coupling.from_network] {name}: unit must be mt or teu")
        else:
            raise InputError(f"[coupling.from_network] {name}: unknown network output '{metric}'")
        readers[name] = read
    return lambda out: {name: np.asarray(read(out), dtype=float) for name, read in readers.items()}


def simulate_coupled(model, n: int = 1, *, years: Sequence[int] | None = None,
                     overrides: Mapping | None = None, samples: pd.DataFrame | None = None,
                     fitted: pd.DataFrame | None = None, seed: int = 0,
                     run_ids: np.ndarray | None = None, tol: float | None = None, max_iter: int = MAX_NEWTON_STEPS,
                     keep_routes: bool = False, events: Mapping | None = None,
                     progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Simulate the coupled model (a :class:`multivector.model.Model`); results are the network's
    Dataset plus the political trajectory.

    With a declared ``[outcomes.counterfactual]``, each run is simulated a second time in the same
    batch with the counterfactual's levers and the same random stream; its index
    (``counterfactual_index``) and components come back beside the run's, and the consolidation test
    measures the run against it.

    ``events`` places outages: ``{(name, year): share}`` adds ``share`` of capacity lost in ``year`` to
    what each run drew (the name is the dataset's ``[coupling.disruption] event``).

    ``tol`` is the route-choice gap (default ``EQUILIBRIUM_TOL``, as for the network alone).

    ``progress(done, total)`` is called after each year the loop solves (from the register's first year).
    """
    tol = EQUILIBRIUM_TOL if tol is None else tol
    scenario, freight, timeline = model.scenario, model.freight, model.timeline
    pol = scenario.politics
    sd = pol.sd
    table, fixed = run_values(scenario, n, overrides, samples, fitted)
    n = len(table)
    run_ids = np.arange(n) if run_ids is None else np.asarray(run_ids)
    own = n
    if pol.counterfactual is not None:   # the same futures under the reference policy
        table = pd.concat([table, table.assign(**pol.counterfactual.levers)], ignore_index=True)
        run_ids = np.concatenate([run_ids, run_ids])
        n = len(table)
    first, last = int(sd.spec.sim.start), int(sd.spec.sim.stop)
    years = list(range(first, last + 1)) if years is None else [int(y) for y in years]
    if min(years) < first or max(years) > last:
        raise InputError(f"the coupled model runs from {first} to {last}; --years must lie inside",
                         hint=f"e.g. --years {first}:{last}")
    values = table_values(table)
    constants = {c: values[c] for c in sd.spec.constants if c in values}
    state = sd.initial_state(constants, n)
    exo = {name: np.full(n, float(spec.default)) for name, spec in sd.spec.exogenous.items()}
    disruption = pol.disruption
    shock = disruption.input if disruption else None
    placed = check_events(pol, events, first, last)
    if shock:
        exo[shock] = np.zeros(n)
    by_cause = []
    reference = sd.evaluate(state, exo)
    base = year_values(timeline, values, first, fixed)
    ref = {p: reference[v] for p, v in pol.to_network.items()}
    recorder = sd.recorder()
    read_network = network_reader(freight, pol.from_network)
    per_year, flows, prices = [], None, None
    for year in range(first, max(years) + 1):
        if shock:
            # the hazards under last year's inputs: what ``advance`` left in the state (evaluated in the
            # first year, whose state was built under the inputs' defaults)
            now = sd.evaluate(state, exo) if year == first else state
            causes = disruption.causes.values()
            lost = draw_disruption(seed, run_ids, year, *(
                np.stack([np.broadcast_to(_value(now, constants, getattr(c, part)), (n,)) for c in causes])
                for part in ("hazard", "severity", "duration")), stream=1 + np.arange(len(causes)))   # [S, N]
            by_cause.append(lost.T)
            exo[shock] = np.clip(lost.sum(axis=0) + placed.get(year, 0.0), 0.0, 1.0)
        now = sd.evaluate(state, exo)
        yt = dict(year_values(timeline, values, year, fixed))
        observed = {k for k, _ in timeline.get(year, ())}
        for param, var in pol.to_network.items():
            mode = pol.modes[param]
            if mode == "absolute":
                if param not in observed and param not in fixed:
                    yt[param] = np.broadcast_to(now[var], (n,)).astype(float)
            elif param not in base:
                yt[param] = now[var]
            elif mode == "additive":
                yt[param] = base[param] + (now[var] - ref[param])
            else:
                r = ref[param]
                yt[param] = base[param] * np.divide(now[var], r, out=np.ones(n), where=r != 0)
        out = freight.solve_year(yt, year, tol, max_iter, start=flows, start_price=prices)
        flows, prices = out["equilibrium_flow"], out["price"]
        exo.update(read_network(out))
        for param in pol.to_network:
            out.setdefault("network_parameters", {})[param] = yt[param]
        recorder.record(state, exo)
        per_year.append(out)
        if progress:
            progress(len(per_year), max(years) - first + 1)
        if year < max(years):
            state = sd.advance(state, year, year + 1, exo)
    keep = [i for i, y in enumerate(range(first, max(years) + 1)) if y in set(years)]
    kept = [per_year[i] for i in keep]
    names, stacked = recorder.stacked()
    political = stacked[:, keep, :]                                                    # [n, Y, V]
    index = political[:, :, names.index(pol.index)]
    extra = {"political": (("run", "year", "variable"), political[:own]),
             pol.index: (("run", "year"), index[:own]),
             "run_id": ("run", run_ids[:own]),
             "coupled_parameter": (("run", "year", "coupled"),
                                   np.stack([np.stack([y["network_parameters"][p] for p in pol.to_network],
                                                      axis=-1)[:own] for y in kept], axis=1))}
    labels = {"variable": names, "variable_kind": ("variable", [_kind(sd, v) for v in names]),
              "variable_unit": ("variable", [sd.attrs(v).get("units", "") for v in names]),
              "coupled": list(pol.to_network)}
    if by_cause:
        extra["disruption_by_cause"] = (("run", "year", "cause"), np.stack([by_cause[i] for i in keep], axis=1)[:own])
        labels["cause"] = list(disruption.causes)
    components = component_values(political, names, pol) if pol.components else None          # [n, Y, K]
    parts = None if components is None else index_components(components, table, pol)
    if parts is not None:
        extra["index_component"] = (("run", "year", "component"), parts[:own])
        labels["component"] = list(pol.components)
    converged = np.stack([y["converged"] for y in kept], axis=-1)                              # [n, Y]
    own_half = lambda x: None if x is None else x[:own]
    cf_half = lambda x: None if x is None or n == own else x[own:]       # the counterfactual's, if any
    scores = Scores(np.array(years), index[:own], own_half(components), own_half(parts), cf_half(index),
                    cf_half(components))
    if n > own:      # the counterfactual half of the batch: its index and components beside each run's
        # a run's verdict rests on its counterfactual too: it has converged only if both halves have
        converged = converged[:own] & converged[own:]
        extra["counterfactual_index"] = (("run", "year"), index[own:])
        if parts is not None:
            extra["counterfactual_component"] = (("run", "year", "component"), parts[own:])
        table = table.iloc[:own]
    extra["converged"] = (("run", "year"), converged[:own])
    # the verdict, from the arrays: the Dataset is built once, with it
    extra["consolidated"] = ("run", consolidated(scores, table, pol))
    judged = judge_definitions(scores, pol, seed=seed)
    if judged is not None:
        definition, ok = judged
        extra["consolidated_over_definitions"] = xr.Variable("run", ok.mean(axis=0), attrs={"draws": DEFINITION_DRAWS})
        names, halves = by_definition_half(definition, ok, pol)
        extra["consolidated_by_definition_half"] = (("run", "definition", "half"), halves)
        labels["definition"] = names
        labels["half"] = ["lower", "upper"]
    ds = results_dataset(scenario, freight, table, years, kept, seed, keep_routes, runs=own, extra=extra,
                         coords=labels)
    ds.attrs.update(index=pol.index, record=list(pol.record))
    if n > own:
        ds.attrs["counterfactual"] = pol.counterfactual.label
    ds.attrs["coupled"] = 1
    return ds


def check_events(pol, events: Mapping | None, first: int, last: int) -> dict[int, float]:
    """``{year: share}`` of the placed outages, each checked: the dataset's event name, a year of the
    run, a share in [0, 1]."""
    placed: dict[int, float] = {}
    for (name, year), share in (events or {}).items():
        d = pol.disruption
        if d is None or not d.event or name != d.event:
            known = d.event if d is not None and d.event else "none declared"
            raise InputError(f"--event {name}: unknown event", hint=f"this dataset's event: {known}")
        if not first <= int(year) <= last:
            raise InputError(f"--event {name}:{year}: the year is outside the run ({first}–{last})")
        if not 0.0 <= float(share) <= 1.0:
            raise InputError(f"--event {name}:{year}:{share}: the share of capacity lost must lie in [0, 1]")
        placed[int(year)] = placed.get(int(year), 0.0) + float(share)
    return placed


def _value(state, constants, name):
    return constants[name] if name in constants else state[name]


def _kind(sd, name) -> str:
    kinds = {"stocks": "stock", "flows": "flow", "auxiliaries": "auxiliary", "constants": "constant",
             "exogenous": "exogenous"}
    for section, kind in kinds.items():
        if name in getattr(sd.spec, section):
            return kind
    return "other"
