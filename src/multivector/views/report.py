"""One self-contained HTML report of a run or an exploration (plotly inlined: works offline).

``collect_run`` and ``collect_exploration`` gather the numbers into a :class:`ReportData`;
``render`` turns it into HTML; ``write_pngs`` draws the main figures with matplotlib. The
dashboard and the HTTP API reuse the same collectors and figure builders.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from multivector import __version__
from multivector.dataset import Scenario
from multivector.errors import InputError
from multivector.explore.analysis import discover, sensitivity, strategy_table
from multivector.explore.ensemble import cached_scenario, chunk_outcomes
from multivector.io import atomic_folder, require
from multivector.model import simulate
from multivector.model.structure import causal_links, reliance
from multivector.views import figures
from multivector.views.document import bottlenecks, verdict_by_definition_half
from multivector.views.tables import (PERCENTILES, calibration_tables, corridor_colours, definition_turns, flow_table,
                                      gateway_table, history_tables, index_change, index_gain, percentiles)
from multivector.views.validation import observed_points


@dataclass
class ReportData:
    """Everything a report shows, as plain tables."""

    title: str
    kind: str                                   # "run" or "exploration"
    provenance: dict
    corridors: list[str]
    colours: dict[str, str]                     # corridor -> colour
    focus_name: str                             # the country the dataset is about
    index: str | None                           # the headline index (None without a political register)
    index_label: str                            # how to name it in text
    bands: dict[str, pd.DataFrame]              # outcome -> percentiles per year
    many: bool                                  # several runs (bands) or one (lines)
    map_flows: pd.DataFrame                     # year, corridor, link, mt
    map_note: str
    bottlenecks: pd.DataFrame
    links: pd.DataFrame                         # causal links between stocks
    loops: pd.DataFrame
    assumptions: pd.DataFrame                   # assumption-backed parameters in use
    reliance: pd.DataFrame                      # per output: sourced vs assumed inputs
    nodes: pd.DataFrame = field(repr=False, default=None)
    network_links: pd.DataFrame = field(repr=False, default=None)
    headline: dict = field(default_factory=dict)
    sensitivity: pd.DataFrame | None = None
    sensitivity_note: str = ""
    prim: object | None = None                  # analysis.PrimResult
    prim_note: str = ""
    strategies: pd.DataFrame | None = None
    index_change: pd.DataFrame | None = None    # the index's change by component (the default run)
    index_gain: pd.DataFrame | None = None      # its gain over the counterfactual in the verdict's year
    gateways: pd.DataFrame | None = None        # year, node, name, kind, direction, tonnes, teu (the map's run)
    calibration: tuple | None = None            # (coefficients: prior, fit, posterior; targets against the fit)
    history: tuple | None = None                # (political constants: prior, posterior; observed against draws)
    observed: dict = field(default_factory=dict)  # (output path, year) -> observed value, drawn beside the model


# ------------------------------------------------------------------------------------------------
# collecting

def _seconds(value) -> str:
    """A run's wall time, or a dash while it is unfinished (NULL in the store, NaN in pandas)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{value:,.1f}" if np.isfinite(value) else "—"


def _loops(scenario: Scenario) -> pd.DataFrame:
    pol = scenario.politics
    if pol is None:
        return pd.DataFrame(columns=["loop", "label", "polarity", "stocks", "claim"])
    return pd.DataFrame([{"loop": k, "label": lp.label, "polarity": lp.polarity, "stocks": ", ".join(lp.stocks),
                          "claim": lp.claim} for k, lp in pol.loops.items()])


def collect_run(scenario: Scenario, *, seed: int = 0, overrides: dict | None = None, ds=None) -> ReportData:
    """Simulate one run (or use ``ds`` from ``simulate(..., keep_routes=True)``) and gather its report."""
    if ds is None:
        ds = simulate(scenario, seed=seed, overrides=overrides or {}, keep_routes=True)
    corridors = [str(c) for c in ds["corridor"].values if c != "other"]
    index = ds.attrs.get("index")
    bands, links = {}, pd.DataFrame(columns=["source", "target", "polarity", "via"])
    headline = {}
    if index:
        yearly, per_run = chunk_outcomes(ds)
        for o in [index, "focus_overland_share", *[f"{c}_mt" for c in corridors]]:
            bands[o] = percentiles(yearly, o)
        links = causal_links(scenario, ds)
        headline = {scenario.index_label + ", " + str(int(ds["year"].values[-1])): f"{float(ds[index].values[0, -1]):.3f}",
                    "consolidated": "yes" if bool(ds["consolidated"].values[0]) else "no"}
        if "counterfactual_index" in ds:
            gain = float(ds[index].values[0, -1] - ds["counterfactual_index"].values[0, -1])
            headline[f"gain over '{ds.attrs.get('counterfactual', '')}'"] = f"{gain:+.3f}"
        if "consolidated_over_definitions" in ds:
            headline["consolidated over the test's own definition"] = \
                f"{float(ds['consolidated_over_definitions'].values[0]):.0%}"
        for name, lo, hi, low, high in definition_turns(scenario, verdict_by_definition_half(ds)):
            headline[f"consolidated with {name} in the lower / upper half of {lo:g}–{hi:g}"] = \
                    f"{low:.0%} / {high:.0%}"
    else:
        tonnes = ds["tonnes"].isel(run=0) / 1e6
        for c in corridors:
            bands[f"{c}_mt"] = pd.DataFrame({f"p{p}": tonnes.sel(corridor=c).values for p in PERCENTILES},
                                            index=ds["year"].values)
    per_output, assumptions = reliance(scenario)
    prov = {"scenario": scenario.name, "scenario hash": scenario.fingerprint(), "code version": __version__,
            "seed": int(ds.attrs.get("seed", seed)), "overrides": ", ".join(f"{k}={v}" for k, v in (overrides or {}).items()) or "none",
            "years": f"{int(ds['year'].values[0])}–{int(ds['year'].values[-1])}",
            "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    return ReportData(title=f"multivector — {scenario.name}, one run (seed {prov['seed']})", kind="run",
                      provenance=prov, corridors=corridors, colours=corridor_colours(scenario),
                      focus_name=scenario.focus.name, index=index, index_label=scenario.index_label,
                      bands=bands, many=False,
                      map_flows=flow_table(scenario, ds), map_note="this run's link flows",
                      bottlenecks=pd.DataFrame(bottlenecks(ds)), links=links, loops=_loops(scenario), assumptions=assumptions,
                      reliance=per_output, nodes=scenario.nodes, network_links=scenario.links, headline=headline,
                      index_change=index_change(ds), index_gain=index_gain(scenario, ds),
                      gateways=gateway_table(ds), calibration=calibration_tables(scenario),
                      history=history_tables(scenario), observed=observed_points(scenario),
                      sensitivity_note="Sensitivity needs an ensemble: run 'multivector explore' and report its run id.",
                      prim_note="Scenario discovery needs an ensemble: run 'multivector explore' and report its run id.")


def collect_exploration(store, run_id: str, progress: Callable[[int, int], None] | None = None) -> ReportData:
    """Gather the report of an exploration in the store; the map and bottlenecks come from the
    scenario's default run, its link flows scaled to the ensemble's median corridor volumes.

    ``progress(done, total)`` counts steps: the default run, each outcome's percentiles (a pass over
    the store each), the run outcomes, the sensitivity indices, PRIM and the loop diagram."""
    meta = store.get_run(run_id)
    scenario = cached_scenario(meta["scenario"])
    if scenario.fingerprint() != meta["scenario_hash"]:
        raise InputError(f"the scenario '{meta['scenario']}' changed since run {run_id}",
                         hint="report it with the dataset it was run with")
    done = store.finished_runs(run_id)
    if done == 0:
        raise InputError(f"run {run_id} has no finished runs yet", hint=f"multivector explore --resume {run_id}")
    corridors = [str(c) for c in scenario.corridors]
    index = scenario.politics.index
    final_index = f"{index}_final"
    banded = [index, "focus_overland_share", *[f"{c}_mt" for c in corridors]]
    steps = [0, 1 + len(banded) + 4]

    def step():
        steps[0] += 1
        if progress:
            progress(*steps)

    ds = simulate(scenario, seed=int(meta["seed"]), keep_routes=True)
    step()
    bands = {}
    for outcome in banded:
        bands.update(store.yearly_percentiles(run_id, [outcome]))
        step()
    flows = flow_table(scenario, ds)
    default_mt = {(int(y), str(c)): float(v) for y in ds["year"].values for c, v in
                  zip(ds["corridor"].values, (ds["tonnes"].sel(year=y).isel(run=0).values / 1e6))}
    scale = []
    for y, c in zip(flows["year"], flows["corridor"]):
        med = bands.get(f"{c}_mt")
        base = default_mt.get((int(y), c), 0.0)
        scale.append(float(med.at[int(y), "p50"]) / base if med is not None and base > 0 and int(y) in med.index else 1.0)
    flows["mt"] = flows["mt"] * np.asarray(scale)
    res = store.run_outcomes(run_id)
    step()
    design = meta["design"]
    sens, sens_note, prim_res, prim_note, strat = None, "", None, "", None
    if design.get("policies"):
        strat = strategy_table(store, run_id)
        sens_note = "This exploration fixes policies (strategies): see the strategy table instead."
    elif done < int(meta["n"]):
        sens_note = f"The exploration is unfinished ({done:,} of {int(meta['n']):,} runs): sensitivity needs all of them."
    else:
        try:
            sens = sensitivity(store, run_id, final_index)
            sens_note = (f"{sens.attrs['method']} indices of the final-year {scenario.index_label} over "
                         f"{done:,} runs.")
        except InputError as exc:
            sens_note = f"No sensitivity indices: {exc}"
    step()
    y = res["consolidated"].astype(float)
    if y.min() == y.max():
        prim_note = "Every run ends the same way (consolidated: " + ("all" if y.iloc[0] else "none") + "): nothing to discover."
    else:
        units = {k: p.unit for k, p in scenario.parameters.items()}
        prim_res = discover(store, run_id, "consolidated", units=units)
        st = prim_res.stats
        prim_note = (f"Runs where the shift consolidates: {y.mean():.1%} of {len(y):,}. The chosen box covers "
                     f"{st['coverage']:.0%} of them at density {st['density']:.0%} (mass {st['mass']:.0%}).")
    step()
    links = causal_links(scenario, ds)
    step()
    per_output, assumptions = reliance(scenario, sens)
    final = res[final_index]
    headline = {"runs": f"{len(res):,} of {int(meta['n']):,}", "consolidated": f"{res['consolidated'].mean():.1%}",
                **({"consolidated over the test's own definition": f"{res['consolidated_over_definitions'].mean():.1%}"}
                   if "consolidated_over_definitions" in res else {}),
                "final index, median [5–95%]": f"{final.median():.3f} [{final.quantile(.05):.3f}–{final.quantile(.95):.3f}]",
                "runs whose route choice did not converge": f"{int((~res['converged'].astype(bool)).sum()):,} "
                                                            f"({(~res['converged'].astype(bool)).mean():.1%})"}
    prov = {"run id": run_id, "scenario": meta["scenario"], "scenario hash": meta["scenario_hash"],
            "code version": meta["code_version"], "seed": int(meta["seed"]), "sampler": meta["sampler"],
            "runs": f"{done:,} of {int(meta['n']):,}", "status": meta["status"],
            "sampled": f"{len(design['names'])} parameters" + (f", {len(design['policies'])} policies" if design.get("policies") else ""),
            "started": _dt.datetime.fromtimestamp(float(meta["created"])).strftime("%Y-%m-%d %H:%M"),
            "seconds": _seconds(meta.get("seconds")),
            "report code version": __version__, "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    return ReportData(title=f"multivector — exploration {run_id}", kind="exploration", provenance=prov,
                      corridors=corridors, colours=corridor_colours(scenario), focus_name=scenario.focus.name,
                      index=index, index_label=scenario.index_label, bands=bands, many=True,
                      map_flows=flows,
                      map_note="default run's link pattern scaled to the ensemble's median corridor volumes",
                      bottlenecks=pd.DataFrame(bottlenecks(ds)), links=links, loops=_loops(scenario),
                      assumptions=assumptions, reliance=per_output, nodes=scenario.nodes,
                      network_links=scenario.links, headline=headline, sensitivity=sens, sensitivity_note=sens_note,
                      prim=prim_res, prim_note=prim_note, strategies=strat, index_change=index_change(ds),
                      index_gain=index_gain(scenario, ds), gateways=gateway_table(ds),
                      calibration=calibration_tables(scenario),
                      history=history_tables(scenario), observed=observed_points(scenario))


# ------------------------------------------------------------------------------------------------
# rendering

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1c2833;background:#fbfcfc}
header{background:#1a5276;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}nav{padding:8px 28px;background:#eaf2f8;font-size:14px}
nav a{margin-right:14px;color:#1a5276}main{padding:10px 28px 40px;max-width:1400px}
section{margin:22px 0}h2{font-size:18px;border-bottom:1px solid #d5d8dc;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #d5d8dc;padding:3px 8px;text-align:left}
th{background:#f2f4f4}td.num{text-align:right}.note{color:#566573;font-size:13px}
.cards{display:flex;gap:14px;flex-wrap:wrap}.card{background:#fff;border:1px solid #d5d8dc;border-radius:6px;padding:10px 16px}
.card b{display:block;font-size:20px}
"""


def _table(frame: pd.DataFrame | None, floatfmt: str = "{:,.4g}", index: bool = False) -> str:
    if frame is None or len(frame) == 0:
        return '<p class="note">(none)</p>'
    f = frame.copy()
    if index:
        f = f.reset_index()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in f.columns)
    body = []
    for row in f.itertuples(index=False, name=None):          # keeps each column's type
        cells = []
        for col, v in zip(f.columns, row):
            if col in ("year", "step") and isinstance(v, (int, np.integer)):
                cells.append(f'<td class="num">{v}</td>')
            elif isinstance(v, (float, np.floating)):
                cells.append(f'<td class="num">{"" if v != v else floatfmt.format(v)}</td>')
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                cells.append(f'<td class="num">{v:,}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def build_figures(data: ReportData) -> dict[str, object]:
    """The report's plotly figures by section name."""
    figs = {"map": figures.corridor_map(data.nodes, data.network_links, data.map_flows, data.colours,
                                        title=f"Freight flows by corridor ({data.map_note}; width ∝ Mt)",
                                        gateways=data.gateways),
            "series": figures.time_series(data.bands, data.corridors, data.many, data.colours, data.focus_name,
                                          data.index, index_label=data.index_label, observed=data.observed)}
    if data.sensitivity is not None:
        figs["sensitivity"] = figures.sensitivity_bars(
            data.sensitivity, f"Sensitivity of the final {data.index_label} ({data.sensitivity.attrs.get('method', '')})")
    if data.prim is not None:
        figs["prim_tradeoff"] = figures.prim_tradeoff(data.prim.trajectory, data.prim.chosen)
        if len(data.prim.box):
            figs["prim_box"] = figures.prim_box(data.prim.box)
    if data.calibration is not None and len(data.calibration[1]):
        figs["calibration"] = figures.calibration_targets(data.calibration[1])
    if data.history is not None:
        figs["history"] = figures.history_series(data.history[1])
    if len(data.links):
        stocks = list(dict.fromkeys([*data.links["source"], *data.links["target"]]))
        figs["loops"] = figures.loop_diagram(stocks, data.links)
    return figs


def _calibration_html(data: ReportData, div: dict) -> str:
    coefficients, targets = data.calibration
    p = coefficients.attrs
    if "walkers" in p:
        post = (f"The posterior: {_sampler_text(p)}, about {p['effective_samples']:.0f} independent samples; "
                f"targets up to {p['targets_until']} (hash {html.escape(p['targets_hash'])}).")
    else:
        post = "No posterior is stored: multivector calibrate DATASET --posterior --write samples one."
    return ('<p class="note">Each free coefficient’s prior (its stated range), the least-squares fit the model '
            f"runs with, and the posterior where one is stored. {post}</p>" + _table(coefficients)
            + div.get("calibration", "") + '<p class="note">Each target: the observation with its stated error '
            "band, the stored fit’s value, and whether it lies in the band.</p>" + _table(targets))


def _sampler_text(p: dict) -> str:
    """How a stored posterior was sampled, from its provenance, in one clause."""
    return (f"{html.escape(str(p.get('method', '')))}; {p['walkers']} walkers × {p['steps']} steps ({p['burn_in']} "
            f"burn-in), acceptance {p['acceptance_fraction']:.2f}, autocorrelation up to "
            f"{max(p['autocorrelation_steps'].values()):.0f} steps")


def _history_html(data: ReportData, div: dict) -> str:
    constants, fitted = data.history
    p = constants.attrs
    return ('<p class="note">The political register run over observed years '
            f"({html.escape(str(p.get('history', '')))}, <code>[history]</code> in politics.toml): the inputs of "
            f"those years observed ({html.escape(', '.join(f'{k}: {v}' for k, v in p.get('inputs', {}).items()))}), "
            "and the constants below sampled by how well the register then reproduces the observed stocks, flows and counts. "
            f"{_sampler_text(p)}. <i>band / prior</i> is the posterior's 5–95% band "
            "over the prior's: near 1, the history says little about that constant.</p>" + _table(constants)
            + div.get("history", "") + f'<p class="note">Each observation against 200 posterior draws (model '
            f"discrepancy included): {int(fitted['within'].sum())} of {len(fitted)} inside the band widened by "
            "the observation's own error.</p>" + _table(fitted))


def render(data: ReportData) -> str:
    """The report as one HTML string, plotly.js inlined once."""
    get_plotlyjs = require("plotly.offline", "report", "the report").get_plotlyjs
    figs = build_figures(data)
    div = {k: f.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{k}",
                        config={"displaylogo": False, "responsive": True}) for k, f in figs.items()}
    cards = "".join(f'<div class="card">{html.escape(k)}<b>{html.escape(str(v))}</b></div>'
                    for k, v in data.headline.items())
    prov = pd.DataFrame({"what": list(data.provenance), "value": [str(v) for v in data.provenance.values()]})
    sections = [("overview", "Overview", f'<div class="cards">{cards}</div>'),
                ("map", "Corridor map", div["map"] + '<p class="note">Use the slider to change the year.</p>'),
                ("series", "Time series", div["series"])]
    bott = data.bottlenecks
    sections.append(("bottlenecks", "Bottlenecks (the default run's most utilised facilities)" if data.kind == "exploration"
                     else "Bottlenecks (most utilised facilities)", _table(bott)))
    if data.strategies is not None:
        sections.append(("strategies", "Strategies over shared futures", _table(data.strategies, index=True)))
    sens = div.get("sensitivity", "") + f'<p class="note">{html.escape(data.sensitivity_note)}</p>'
    sections.append(("sensitivity", "Which parameters matter", sens))
    prim = f'<p class="note">{html.escape(data.prim_note)}</p>'
    if data.prim is not None:
        prim += div.get("prim_tradeoff", "") + div.get("prim_box", "") + _table(data.prim.box, index=True)
    sections.append(("prim", "Where the shift consolidates (PRIM)", prim))
    loops_html = div.get("loops", '<p class="note">This scenario has no political register.</p>')
    loops_html += ('<p class="note">Links are read from the equations; polarity is measured by nudging each stock '
                   "(and each input the network returns) by 1% at the default run's state in 2024, 2030 and 2036. "
                   "± marks a sign that changes, 0 a link that is inactive in those states.</p>")
    loops_html += _table(data.loops) + _table(data.links)
    if data.index_change is not None:
        first, last = data.index_change.attrs["years"]
        note = (f'<p class="note">Each component\'s weighted contribution to the {html.escape(data.index_label)} in '
                f"{first} and {last} ({'the default run' if data.kind == 'exploration' else 'this run'}); "
                f"the index moved by {data.index_change.attrs['total']:+.3f}.</p>")
        body = note + _table(data.index_change)
        if data.index_gain is not None:
            g = data.index_gain
            body += (f'<p class="note">Against \'{html.escape(g.attrs["counterfactual"])}\' in the same future, '
                     f"{g.attrs['year']}: the gain is {g.attrs['total']:+.3f}, by component:</p>" + _table(g))
        sections.append(("index", f"What moves the {data.index_label}", body))
    sections.append(("loops", "Feedback loops", loops_html))
    share = data.reliance.attrs.get("sensitivity_share")
    text = ""
    if share is not None and share == share:
        free = data.reliance.attrs.get("unconstrained_share", float("nan"))
        text = (f"<p>Assumption-backed parameters account for <b>{share:.0%}</b> of the summed sensitivity "
                f"({data.reliance.attrs['sensitivity_measure']}) of the final {data.index_label}; "
                f"those that no stored posterior constrains (its 5–95% band wider than half the prior's, or "
                f"never sampled against observations) for <b>{free:.0%}</b>.</p>")
    assumptions = (text + "<p>How many of the parameters upstream of each output (through the equations and stocks, "
                   "over the horizon) "
                   "rest on a sourced figure and how many on a stated assumption:</p>" + _table(data.reliance)
                   + "<p>The stated assumptions in use, with their ranges" +
                   (", most influential first" if share is not None else "") + ":</p>" + _table(data.assumptions))
    sections.append(("assumptions", "What rests on assumptions", assumptions))
    if data.calibration is not None:
        sections.append(("calibration", "Calibration: what the observations say", _calibration_html(data, div)))
    if data.history is not None:
        sections.append(("history", "The political register's history: what the past supports", _history_html(data, div)))
    sections.append(("provenance", "Provenance", _table(prov)))
    nav = "".join(f'<a href="#{k}">{html.escape(t.split(" (")[0])}</a>' for k, t, _ in sections)
    body = "".join(f'<section id="{k}"><h2>{html.escape(t)}</h2>{c}</section>' for k, t, c in sections)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(data.title)}</title>"
            f"<style>{CSS}</style><script>{get_plotlyjs()}</script></head><body>"
            f"<header><h1>{html.escape(data.title)}</h1><p>multivector {__version__} · scenario "
            f"{html.escape(str(data.provenance.get('scenario')))} · hash {html.escape(str(data.provenance.get('scenario hash')))}"
            f"</p></header><nav>{nav}</nav><main>{body}</main></body></html>")


def write_pngs(data: ReportData, folder: Path) -> list[Path]:
    """The main figures as PNG (matplotlib) in ``folder``: map, time series, sensitivity when there is
    one; all of them appear together or none does."""
    from multivector.views.plotting import bands_png, map_png, sensitivity_png

    def fill(tmp: Path):
        year = int(data.map_flows["year"].max()) if len(data.map_flows) else None
        map_png(data.nodes, data.network_links, data.map_flows, tmp / "map.png", year, data.colours,
                title=f"Link flows by corridor, {year} ({data.map_note})")
        bands_png(data.bands, data.corridors, data.many, tmp / "series.png", data.colours, data.focus_name,
                  data.index, data.index_label, observed=data.observed)
        if data.sensitivity is not None:
            sensitivity_png(data.sensitivity, tmp / "sensitivity.png")

    return atomic_folder(folder, fill)
