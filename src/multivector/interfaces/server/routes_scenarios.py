"""Built-in scenarios: list them, read their parameters, run one synchronously.

A run answers with the run document ``multivector run --json`` prints
(:func:`multivector.views.document.run_document`), plus :data:`RUN_EXTRAS` for the dashboard: the
overrides applied, which document key holds the headline index, the headline numbers, the figures and
the model time. Parameter names and ranges are checked by the model itself.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from multivector.errors import InputError
from multivector.interfaces.server.deps import RunQueueDep, ScenarioInPath, ScenariosDep
from multivector.interfaces.server.encode import figure_json, json_safe

#: Keys a run's answer adds to the run document.
RUN_EXTRAS = ("overrides", "index", "headline", "figures", "seconds")

router = APIRouter(prefix="/api/scenarios", tags=["scenarios"])


class RunRequest(BaseModel):
    """One run of a scenario: parameter and lever overrides, the disruption seed, the map's year."""

    model_config = ConfigDict(extra="forbid")
    overrides: dict[str, float] = Field(default_factory=dict, description="parameter or lever -> value",
                                        max_length=200)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    seeds: int = Field(1, ge=1, le=500, description="runs with their own disruption streams (the dashboard "
                                                    "uses 1; `multivector run` 200): P(consolidated) over them")
    year: int | None = Field(None, ge=1900, le=2100, description="year of the map (default: the last)")


@router.get("", summary="Built-in scenarios")
def list_scenarios(scenarios: ScenariosDep):
    out = []
    for name in scenarios.names():
        s = scenarios.get(name)
        out.append({"name": name, "title": s.model.get("title", name), "coupled": s.politics is not None,
                    "parameters": len(s.parameters), "focus": s.focus.name,
                    "index": s.politics.index if s.politics is not None else None})
    return out


@router.get("/{name}/parameters", summary="Parameters and levers: defaults, ranges, sources")
def list_parameters(scenario: ScenarioInPath):
    defaults = scenario.defaults()
    titles = dict(zip(scenario.sources["id"], scenario.sources["title"]))
    kinds = dict(zip(scenario.sources["id"], scenario.sources["kind"]))
    featured = [p for p in scenario.focus.featured_parameters if p in scenario.parameters]
    rows = [{"name": name, "kind": p.kind, "value": defaults[name], "min": p.min, "max": p.max, "unit": p.unit,
             "source": p.source, "source_kind": kinds.get(p.source, ""), "source_title": titles.get(p.source, ""),
             "description": p.description, "featured": name in featured}
            for name, p in scenario.parameters.items()]
    return json_safe({"scenario": scenario.name, "featured": featured, "parameters": rows})


@router.post("/{name}/run", summary="Simulate one run with overrides (synchronous)",
             description="The run document of `multivector run --json` plus: `overrides` (as applied), `index` "
                         "(the document key of the headline index, null without a political register), "
                         "`headline`, `figures` (plotly JSON: `series`, `map`) and `seconds` (model time).")
def run_scenario(body: RunRequest, scenario: ScenarioInPath, queue: RunQueueDep):
    from multivector.model import simulate
    from multivector.views import figures
    from multivector.views.document import RUN_BOTTLENECKS, run_document
    from multivector.views.report import collect_run

    scenario.check_names(body.overrides)
    with queue.turn(scenario.name):
        started = time.perf_counter()
        n = body.seeds if scenario.politics is not None and scenario.politics.disruption else 1
        ds = simulate(scenario, n, seed=body.seed, overrides=body.overrides, keep_routes=True)
        document = run_document(ds, top=RUN_BOTTLENECKS)
        data = collect_run(scenario, seed=body.seed, overrides=body.overrides, ds=ds)
        seconds = time.perf_counter() - started
    years = document["years"]
    year = years[-1] if body.year is None else body.year
    if year not in years:
        raise InputError(f"year {year} is outside the run ({years[0]}–{years[-1]})")
    flows = data.map_flows[data.map_flows["year"] == year]
    figs = {"map": figures.corridor_map(data.nodes, data.network_links, flows, data.colours,
                                        title=f"Freight flows by corridor, {year}"),
            "series": figures.time_series(data.bands, data.corridors, data.many, data.colours, data.focus_name,
                                          data.index)}
    extras = {"overrides": body.overrides, "index": data.index, "headline": data.headline,
              "figures": {name: figure_json(fig) for name, fig in figs.items()}, "seconds": seconds}
    return json_safe(document | extras)
