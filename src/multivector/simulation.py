"""``simulate``: one code path from a scenario and a batch of parameter sets to labelled results.

A single run is a batch of one. Parameters are an ``[N]`` column per name; every year the network's
costs are built for all runs at once and the logit equilibrium is solved for all runs at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from multivector import __version__
from multivector.assign.sue import solve_logit_sue
from multivector.errors import ConvergenceWarning, InputError
from multivector.network import Network, compile_network
from multivector.scenario import Scenario
from multivector.vdf import bpr_delay, queue_delay

def network_of(scenario: Scenario) -> Network:
    """The compiled network of a scenario (compiled once per scenario object)."""
    if getattr(scenario, "_network", None) is None:
        scenario._network = compile_network(scenario)
    return scenario._network


def parameter_table(scenario: Scenario, n: int = 1, overrides: Mapping | None = None,
                    samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """An ``[N, P]`` table of parameter values: defaults, then sampled columns, then overrides."""
    if samples is not None:
        n = len(samples)
        scenario.check_names(samples.columns)
    table = pd.DataFrame({k: np.full(n, v, dtype=float) for k, v in scenario.defaults().items()})
    if samples is not None:
        for col in samples.columns:
            table[col] = samples[col].to_numpy(dtype=float)
    for name, value in (overrides or {}).items():
        scenario.check_names([name])
        arr = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        if not np.all(np.isfinite(arr)):
            raise InputError(f"parameter '{name}' must be a finite number")
        table[name] = arr
    for name in set(overrides or {}) | set(samples.columns if samples is not None else ()):
        p = scenario.parameters[name]
        arr = table[name].to_numpy()
        outside = ~((arr >= p.min) & (arr <= p.max))
        if outside.any():
            i = int(np.argmax(outside))
            raise InputError(f"{name} = {arr[i]:g} is outside its range [{p.min:g}, {p.max:g}] {p.unit}"
                             + (f" (run {i})" if n > 1 else ""),
                             hint="the range is the dataset's plausible range; to go beyond it, widen min/max "
                                  "in a copy of the dataset ('multivector data copy') and say why")
    return table


Values = dict  # parameter name -> [N] array: one year's parameter values for a batch of runs


def table_values(table: pd.DataFrame) -> Values:
    """The parameter table as a dict of ``[N]`` arrays (the form every year's arithmetic uses)."""
    return {c: table[c].to_numpy() for c in table.columns}


def _timeline(scenario: Scenario) -> dict[int, list[tuple[str, float]]]:
    if getattr(scenario, "_timeline_by_year", None) is None:
        by_year: dict[int, list] = {}
        for y, name, v in zip(scenario.timeline["year"], scenario.timeline["parameter"], scenario.timeline["value"]):
            by_year.setdefault(int(y), []).append((name, float(v)))
        scenario._timeline_by_year = by_year
    return scenario._timeline_by_year


def _year_values(scenario: Scenario, values: Values, year: int, fixed: set[str]) -> Values:
    """Parameter values in one year: observed conditions from timeline.csv unless set by the user."""
    rows = [(k, v) for k, v in _timeline(scenario).get(int(year), []) if k not in fixed]
    if not rows:
        return values
    n = len(next(iter(values.values())))
    out = dict(values)
    out.update({k: np.full(n, v) for k, v in rows})
    return out


def _per_layer(p: Values, prefix: str, names: Sequence[str], default: float, n: int) -> np.ndarray:
    """``[len(names), N]`` of parameter ``prefix+name`` (default where the parameter is absent)."""
    return np.stack([p[f"{prefix}{x}"] if f"{prefix}{x}" in p else np.full(n, default) for x in names]) \
        if names else np.zeros((0, n))


class _Costs:
    """Per-year cost arrays of the network for a batch of runs."""

    def __init__(self, net: Network, p: Values, n: int):
        layers = sorted(set(net.edge_layer))
        li = np.searchsorted(layers, net.edge_layer)
        free_layers = np.isin(np.array(layers), ["transfer", "connector"])
        speed = _per_layer(p, "speed_", layers, np.inf, n)
        speed[free_layers] = np.inf
        tariff = _per_layer(p, "tariff_", layers, 0.0, n)
        tariff[free_layers] = 0.0
        risks = sorted(set(net.edge_risk) - {""})
        ri = np.array([risks.index(r) + 1 if r else 0 for r in net.edge_risk])
        risk = np.vstack([np.zeros((1, n)), _per_layer(p, "risk_", risks, 0.0, n)])
        get = lambda name, default: p[name] if name in p else np.full(n, default)
        length = net.edge_length[:, None]
        is_transfer = (net.edge_layer == "transfer")[:, None]
        dwell = np.where(is_transfer, get("transfer_time_factor", 1.0), 1.0)
        tariff_factor = np.where(net.edge_kz[:, None], get("kz_tariff_factor", 1.0), 1.0)
        self.edge_time = length / speed[li] + net.edge_extra_time[:, None] * dwell      # [E, N]
        self.edge_tariff = length * tariff[li] * tariff_factor                           # [E, N]
        self.edge_money = self.edge_tariff + net.edge_extra_cost[:, None] + risk[ri]     # [E, N]
        # resources
        # each resource's capacity factor: its layer's (or transfers') times its group's
        ones = np.ones(n)
        keys = ["capacity_factor_transfer" if k == "transfer" else f"capacity_factor_{l}"
                for k, l in zip(net.resource_kind, net.resource_layer)]
        names = sorted(set(keys) | {f"capacity_factor_{g}" for g in net.resource_group if g})
        factors = np.stack([p.get(k, ones) for k in names] + [ones])              # [F + 1, N]
        index = {k: i for i, k in enumerate(names)}
        layer_i = np.array([index[k] for k in keys], dtype=int)
        group_i = np.array([index[f"capacity_factor_{g}"] if g else len(names) for g in net.resource_group],
                           dtype=int)
        cap_factor = factors[layer_i] * factors[group_i] if net.n_resources else np.zeros((0, n))
        # a facility scaled to zero capacity is closed: a tiny capacity keeps its delay huge but finite
        self.capacity = np.maximum(net.resource_capacity[:, None] * cap_factor, 1e-6)  # [R, N] (NaN kept)
        edge_of_res = np.full(net.n_resources, -1)
        has = net.edge_resource >= 0
        edge_of_res[net.edge_resource[has]] = np.flatnonzero(has)
        self.resource_free_time = self.edge_time[edge_of_res]                       # [R, N]
        self.alpha, self.beta = p["vdf_alpha"], p["vdf_beta"]       # required at load (scenario.validate)
        self.queue_scale, self.rho_max = p["queue_scale_h"], p["queue_max_ratio"]
        capacitated = ~np.isnan(net.resource_capacity)
        self.bpr_rows = np.flatnonzero(capacitated & ~net.resource_queue)
        self.queue_rows = np.flatnonzero(capacitated & net.resource_queue)

    def delay(self, load, cols=None):
        """Congestion delay [R, n] of runs ``cols``: BPR on capacitated line-haul links, queueing at
        ferries and transfers."""
        cols = slice(None) if cols is None else cols
        out = np.zeros_like(load)
        b, q = self.bpr_rows, self.queue_rows
        if len(b):
            out[b] = bpr_delay(load[b], self.capacity[b][:, cols], self.resource_free_time[b][:, cols],
                               self.alpha[cols], self.beta[cols])
        if len(q):
            out[q] = queue_delay(load[q], self.capacity[q][:, cols], self.queue_scale[cols], self.rho_max[cols])
        return out


class FreightModel:
    """The physical register compiled for simulation: static arrays, and one year solved at a time.

    ``solve_year`` takes that year's ``[N, P]`` parameter table and returns that year's results as
    plain arrays; :func:`simulate` and the coupled model both loop over years with it.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.net = net = network_of(scenario)
        self.commodities = net.commodities
        comm_index = {c: i for i, c in enumerate(self.commodities)}
        self.od_group = np.array([comm_index[c] for c in net.od_commodity], dtype=int)
        self.route_comm = self.od_group[net.route_od]
        tpu = np.array([scenario.commodities[c].tonnes_per_unit for c in self.commodities])
        self.cpu = np.array([scenario.commodities[c].cost_units_per_unit for c in self.commodities])
        self.load_per_unit = tpu[self.route_comm] / 1e6
        self.incidence = net.route_resources().T.tocsr()                    # [R, K]
        self.corridor_names = net.corridors + ["other"]
        self.corr_matrix = sparse.csr_matrix(
            (np.ones(net.n_routes), (net.route_corridor, np.arange(net.n_routes))),
            shape=(len(self.corridor_names), net.n_routes))
        country = dict(zip(scenario.nodes["id"], scenario.nodes["country"]))
        self.od_transit = np.array([("KZ" not in country[o]) and ("KZ" not in country[d])
                                    for o, d in zip(net.od_origin, net.od_destination)])
        self.kz_edges = sparse.diags(net.edge_kz.astype(float))
        overland = [net.corridors.index(c) for c in scenario.overland_corridors if c in net.corridors]
        teu = [comm_index[c] for c, m in scenario.commodities.items() if m.unit.upper() == "TEU"]
        self.overland_teu = np.isin(net.route_corridor, overland) & np.isin(self.route_comm, teu)
        # demand by commodity and given year, as [D] vectors
        od_index = {k: i for i, k in enumerate(zip(net.od_origin, net.od_destination, net.od_commodity))}
        d = scenario.demand
        self.demand_years = sorted(set(d["year"].astype(int)))
        self._demand = {}
        for commodity, group in d.groupby("commodity"):
            vectors = {}
            for y, rows in group.groupby(group["year"].astype(int)):
                v = np.zeros(len(net.od_origin))
                np.add.at(v, [od_index[(o, t, commodity)] for o, t in zip(rows["origin"], rows["destination"])],
                          rows["volume"].to_numpy())
                vectors[int(y)] = v
            self._demand[commodity] = vectors

    def demand(self, year: int, p: Values, n: int) -> np.ndarray:
        """``[D, N]`` demand: the latest year given at or before ``year``, grown by
        ``demand_growth_<commodity>`` per year after it."""
        if year < self.demand_years[0]:
            raise InputError(f"no demand for {year}: demand.csv starts in {self.demand_years[0]}",
                             hint=f"choose years from {self.demand_years[0]}")
        out = np.zeros((len(self.net.od_origin), n))
        for commodity, vectors in self._demand.items():
            given = sorted(vectors)
            ref = max((y for y in given if y <= year), default=given[0])
            growth = p.get(f"demand_growth_{commodity}", np.zeros(n))
            out += vectors[ref][:, None] * ((1.0 + growth) ** (year - ref))[None, :]
        return out

    def solve_year(self, yt: Values, year: int, tol=1e-4, max_iter=1000, start=None) -> dict:
        """Solve one year for every run; ``yt`` holds that year's parameter values ([N] arrays);
        ``start`` warm-starts from earlier route flows ([K, N])."""
        net, route_comm, route_edges = self.net, self.route_comm, self.net.route_edges
        n = len(next(iter(yt.values())))
        costs = _Costs(net, yt, n)
        demand = self.demand(year, yt, n)
        vot = np.stack([yt[f"vot_{c}"] for c in self.commodities])[route_comm]                 # [K, N]
        theta = np.stack([yt[f"logit_scale_{c}"] for c in self.commodities])[route_comm]
        route_time = route_edges @ costs.edge_time                                             # [K, N]
        route_money = route_edges @ costs.edge_money
        base = route_money + vot * route_time
        opens = net.edge_opens > year
        available = np.asarray(route_edges[:, opens].sum(axis=1)).ravel() == 0
        _check_available(net, available, demand, year)
        res = solve_logit_sue(self.incidence, self.load_per_unit, base, vot, theta,
                              np.broadcast_to(available[:, None], base.shape), net.route_od, demand,
                              costs.delay, tol=tol, max_iter=max_iter, od_group=self.od_group,
                              start=start)
        if not res.converged.all():
            warnings.warn(f"{year}: logit equilibrium did not reach gap {tol:g} in {max_iter} "
                          f"iterations for {int((~res.converged).sum())} of {n} runs "
                          f"(worst gap {res.gap.max():.2e})", ConvergenceWarning, stacklevel=3)
        h = res.flow                                                                           # [K, N]
        cm = self.corr_matrix
        t_route = route_time + self.incidence.T @ res.delay
        w = h * self.cpu[route_comm][:, None]          # weights in cost units for means
        wsum = cm @ w
        with np.errstate(invalid="ignore", divide="ignore"):
            time_h = np.where(wsum > 0, (cm @ (w * t_route)) / wsum, np.nan)
            cost_usd = np.where(wsum > 0, (cm @ (w * route_money)) / wsum, np.nan)
            utilisation = res.load / costs.capacity
            total = h[self.overland_teu].sum(axis=0)
            kz_share = np.where(total > 0, h[self.overland_teu & net.route_via_kz].sum(axis=0) / total, np.nan)
        kz_tariff = route_edges @ (self.kz_edges @ costs.edge_tariff)                          # [K, N]
        paying = (w * kz_tariff)[self.od_transit[net.route_od]]
        out = {
            "volume": np.stack([cm @ (h * (route_comm == ci)[:, None])
                                for ci in range(len(self.commodities))]),                      # [C, nc, N]
            "time_h": time_h, "cost_usd": cost_usd, "flow_mt": res.load, "delay_h": res.delay,
            "utilisation": utilisation, "gap": res.gap, "converged": res.converged,
            "kz_share": kz_share, "revenue": paying.sum(axis=0) / 1e9, "iterations": res.iterations,
            "kz_transit_teu": h[self.overland_teu & net.route_via_kz].sum(axis=0), "flow": h,
        }
        return out


def freight_model(scenario: Scenario) -> FreightModel:
    """The compiled freight model of a scenario (built once per scenario object)."""
    if getattr(scenario, "_freight_model", None) is None:
        scenario._freight_model = FreightModel(scenario)
    return scenario._freight_model


def simulate(scenario: Scenario, n: int = 1, *, years: Sequence[int] | None = None,
             overrides: Mapping | None = None, samples: pd.DataFrame | None = None, seed: int = 0,
             tol: float | None = None, max_iter: int = 1000, keep_routes: bool = False,
             coupled: bool | None = None, run_ids=None) -> xr.Dataset:
    """Simulate a batch of runs over years and return labelled results.

    ``samples`` (a DataFrame, one row per run) sets sampled parameters; ``overrides`` sets names to
    scalars or ``[N]`` arrays for every run. With a political register (``politics.toml``) the two
    registers are coupled year by year over its horizon (2024–2040 for Kazakhstan) unless
    ``coupled=False``; without one, the network alone is solved for ``years`` (default: the base
    year). ``seed`` and ``run_ids`` fix each run's random stream. ``tol`` is the route-choice gap to
    reach (default 1e-4 for the network alone, 1e-3 coupled). Results: ``xarray.Dataset`` with
    dimensions ``run``, ``year``, ``resource``, ``corridor``, ``commodity`` (and ``variable`` for the
    political trajectory).
    """
    if coupled is None:  # couple when there is a political register and the years lie in its horizon
        coupled = scenario.politics is not None and (
            years is None or min(years) >= scenario.politics.sd.spec.sim.start)
    if coupled:
        if scenario.politics is None:
            raise InputError(f"scenario '{scenario.name}' has no political register (politics.toml)")
        from multivector.coupled import simulate_coupled

        return simulate_coupled(scenario, n, years=years, overrides=overrides, samples=samples, seed=seed,
                                run_ids=run_ids, tol=tol, max_iter=max_iter, keep_routes=keep_routes)
    tol = 1e-4 if tol is None else tol
    model = freight_model(scenario)
    table = parameter_table(scenario, n, overrides, samples)
    fixed = set(overrides or {}) | (set(samples.columns) if samples is not None else set())
    years = list(years) if years is not None else [scenario.base_year]
    values = table_values(table)
    per_year = [model.solve_year(_year_values(scenario, values, y, fixed), y, tol, max_iter) for y in years]
    return results_dataset(scenario, model, table, years, per_year, seed, keep_routes)


def _check_available(net: Network, available, demand, year):
    has_route = np.zeros(len(net.od_origin), dtype=bool)
    np.logical_or.at(has_route, net.route_od, available)
    missing = np.flatnonzero(~has_route & (demand.max(axis=1) > 0))
    if len(missing):
        d = missing[0]
        raise InputError(f"in {year} no open route carries {net.od_commodity[d]} from {net.od_origin[d]} "
                         f"to {net.od_destination[d]}", hint="check the 'opens' years in links.csv")


def results_dataset(scenario, model: FreightModel, table, years, per_year: list[dict], seed,
                    keep_routes=False) -> xr.Dataset:
    """Stack per-year result arrays into the labelled Dataset."""
    net = model.net
    n = len(table)
    stack = lambda key: np.stack([y[key] for y in per_year])
    by_run = lambda key: np.moveaxis(stack(key), -1, 0)                 # runs first
    res_dims = ("run", "year", "resource")
    ds = xr.Dataset(
        {
            "flow_mt": (res_dims, by_run("flow_mt")),
            "delay_h": (res_dims, by_run("delay_h")),
            "utilisation": (res_dims, by_run("utilisation")),
            "volume": (("run", "year", "commodity", "corridor"), by_run("volume")),
            "transit_time_h": (("run", "year", "corridor"), by_run("time_h")),
            "cost_usd": (("run", "year", "corridor"), by_run("cost_usd")),
            "gap": (("run", "year"), by_run("gap")),
            "converged": (("run", "year"), by_run("converged")),
            "kazakhstan_overland_share": (("run", "year"), by_run("kz_share")),
            "kz_transit_revenue": (("run", "year"), by_run("revenue")),
            "iterations": (("year",), np.array([y["iterations"] for y in per_year])),
            "parameter_value": (("run", "parameter"), table.to_numpy()),
        },
        coords={
            "run": np.arange(n), "year": np.array(years), "resource": net.resource_id,
            "resource_label": ("resource", net.resource_label),
            "resource_kind": ("resource", net.resource_kind),
            "resource_layer": ("resource", net.resource_layer),
            "resource_link": ("resource", net.resource_link),
            "capacity_mt": ("resource", net.resource_capacity),
            "corridor": model.corridor_names, "commodity": net.commodities,
            "parameter": list(table.columns),
        },
        attrs={"scenario": scenario.name, "scenario_hash": scenario.fingerprint(),
               "code_version": __version__, "seed": seed},
    )
    tonnes = np.array([scenario.commodities[c].tonnes_per_unit for c in net.commodities])
    is_teu = np.array([scenario.commodities[c].unit.upper() == "TEU" for c in net.commodities])
    ds["tonnes"] = (ds["volume"] * xr.DataArray(tonnes, dims="commodity")).sum("commodity")
    ds["teu"] = (ds["volume"] * xr.DataArray(is_teu.astype(float), dims="commodity")).sum("commodity")
    total_teu = ds["teu"].sum("corridor")
    ds["share"] = (ds["teu"] / total_teu.where(total_teu > 0)).fillna(0.0)
    for name, unit in (("tonnes", "t"), ("teu", "TEU"), ("flow_mt", "Mt/yr"), ("delay_h", "h"),
                       ("transit_time_h", "h"), ("cost_usd", "USD per cost unit"),
                       ("kz_transit_revenue", "USD bn/yr")):
        ds[name].attrs["units"] = unit
    if keep_routes:
        ds["route_flow"] = (("run", "year", "route"), by_run("flow"))
        ds = ds.assign_coords(route_corridor=("route", [model.corridor_names[i] for i in net.route_corridor]),
                              route_path=("route", [" > ".join(p) for p in net.route_nodes]))
    return ds
