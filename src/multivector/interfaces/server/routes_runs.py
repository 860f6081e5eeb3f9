"""Explorations in the store and their analyses: bands per year, outcomes per run, sensitivity, PRIM
and the HTML report. All reads go through :class:`multivector.explore.store.Store` and
:mod:`multivector.explore.analysis`; an outcome left unnamed is the headline index's final value
(``Store.headline``).
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from multivector.errors import InputError
from multivector.interfaces.server.deps import ScenariosDep, StoredRunDep, StoreFileDep
from multivector.interfaces.encode import figure_json, json_safe, records

router = APIRouter(prefix="/api/runs", tags=["runs"])

HEADLINE = "the headline index's final value"
OutcomeQuery = Query(None, max_length=80, description=f"a stored outcome (default: {HEADLINE})")
YearQuery = Query(None, ge=1900, le=2100, description="year of a yearly outcome (default: the last)")


@router.get("", summary="Explorations in the store")
def list_runs(store_file: StoreFileDep):
    if not store_file.exists():
        return []
    with store_file.open() as store:
        frame = store.list_runs()
    if "created" in frame:
        frame["created"] = frame["created"].astype(str)
    return records(frame)


@router.get("/{run_id}", summary="One exploration: its design and progress")
def run_metadata(run: StoredRunDep):
    return json_safe(run.meta | {"outcomes": run.store.outcome_names(), "problems": run.store.integrity(run.run_id)})


@router.get("/{run_id}/ensemble", summary="Percentile bands per year and the final-index distribution")
def ensemble(run: StoredRunDep, scenarios: ScenariosDep):
    from multivector.views import figures
    from multivector.views.tables import corridor_colours

    scenario = scenarios.of_stored_run(run.meta)
    index = scenario.politics.index
    corridors = [c for c in scenario.corridors if c != "other"]
    bands = run.store.yearly_percentiles(run.run_id, [index, "focus_overland_share", *[f"{c}_mt" for c in corridors]])
    per_run = run.store.run_outcomes(run.run_id)
    label = index.replace("_", " ")
    final = per_run[run.store.headline(run.run_id)].rename(f"final {label}")
    series = figures.time_series(bands, corridors, True, corridor_colours(scenario), scenario.focus.name, index)
    histogram = figures.histogram(final, f"Final {label} over {len(per_run):,} runs")
    return json_safe({"run_id": run.run_id, "runs": int(len(per_run)), "index": index,
                      "consolidated": float(per_run["consolidated"].mean()),
                      "bands": {k: v.reset_index().to_dict(orient="list") for k, v in bands.items()},
                      "figures": {"series": figure_json(series), "histogram": figure_json(histogram)}})


@router.get("/{run_id}/outcomes", summary="One outcome per run: sampled values and the outcome")
def outcomes(run: StoredRunDep, outcome: str | None = OutcomeQuery, year: int | None = YearQuery,
             limit: int = Query(10_000, ge=1, le=100_000), offset: int = Query(0, ge=0)):
    from multivector.explore.analysis import outcome_vector

    outcome = outcome or run.store.headline(run.run_id)
    values, year = outcome_vector(run.store, run.run_id, outcome, year)
    experiments = run.store.experiments(run.run_id).loc[values.index]
    frame = experiments.assign(**{outcome: values}).reset_index().iloc[offset:offset + limit]
    return json_safe({"run_id": run.run_id, "outcome": outcome, "year": year, "total": int(len(values)),
                      "offset": offset, "rows": records(frame)})


@router.get("/{run_id}/sensitivity", summary="Sobol, Morris or RBD-FAST indices of an outcome")
def sensitivity(run: StoredRunDep, outcome: str | None = OutcomeQuery, year: int | None = YearQuery):
    from multivector.explore.analysis import sensitivity as sensitivity_indices

    outcome = outcome or run.store.headline(run.run_id)
    frame = sensitivity_indices(run.store, run.run_id, outcome, year)
    return json_safe({"outcome": outcome, "year": frame.attrs["year"], "method": frame.attrs["method"],
                      "indices": records(frame.reset_index())})


@router.get("/{run_id}/discover", summary="PRIM: where the outcome occurs")
def discover(run: StoredRunDep, scenarios: ScenariosDep, outcome: str = Query("consolidated", max_length=80),
             threshold: float | None = Query(None), below: bool = False, year: int | None = YearQuery):
    from multivector.explore.analysis import discover as prim
    from multivector.views import figures

    if threshold is not None and not math.isfinite(threshold):
        raise InputError("threshold must be a finite number")
    scenario = scenarios.of_stored_run(run.meta)
    result = prim(run.store, run.run_id, outcome, year, threshold, below,
                  units={k: p.unit for k, p in scenario.parameters.items()})
    box = result.box.reset_index().rename(columns={"index": "parameter"})
    return json_safe({"outcome": outcome, "stats": result.stats,
                      "trajectory": result.trajectory.to_dict(orient="list"), "box": records(box),
                      "figures": {"tradeoff": figure_json(figures.prim_tradeoff(result.trajectory, result.chosen))}})


@router.get("/{run_id}/report", response_class=HTMLResponse, summary="The HTML report of an exploration")
def report(run: StoredRunDep):
    from multivector.views.report import collect_exploration, render

    return HTMLResponse(render(collect_exploration(run.store, run.run_id)))
