"""Built-in scenarios: list them, read their parameters, run one synchronously.

A run answers with the run document ``multivector run --json`` prints
(:func:`multivector.views.document.run_document`), plus :data:`RUN_EXTRAS` for the dashboard: the
overrides applied, which document key holds the headline index, the headline numbers, the figures and
the model time. Parameter names are checked here, before the run is queued; ranges by the model
itself, in the worker process that runs it (:func:`multivector.interfaces.server.runner.answer_run`).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from multivector.interfaces.server.deps import UNAUTHORIZED, WRITE_ACCESS, RunPoolDep, ScenarioInPath, ScenariosDep
from multivector.interfaces.encode import json_safe
from multivector.interfaces.server.runner import RUN_EXTRAS, answer_run

__all__ = ["RUN_EXTRAS", "router"]

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
             dependencies=WRITE_ACCESS, responses=UNAUTHORIZED,
             description="The run document of `multivector run --json` (years, corridors, shares in TEU and "
                         "tonnes, `gateways` by direction and commodity, bottlenecks, ...) plus: `overrides` (as applied), `index` "
                         "(the document key of the headline index, null without a political register), "
                         "`headline`, `figures` (plotly JSON: `series`, `map`) and `seconds` (model time). "
                         "Runs in one of the server's worker processes; 429 when all are busy and the "
                         "queue is full.")
async def run_scenario(name: str, body: RunRequest, scenario: ScenarioInPath, scenarios: ScenariosDep,
                       runs: RunPoolDep):
    scenario.check_names(body.overrides)
    answer = await runs.run(answer_run, scenarios.source(name), body.overrides, body.seed, body.seeds, body.year)
    return Response(answer, media_type="application/json")
