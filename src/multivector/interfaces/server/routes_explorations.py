"""Explorations as background jobs: start one, follow its progress.

A job runs :func:`multivector.explore.ensemble.explore` in a thread, writing to the server's store;
the design is checked (and its size held to the server's limit) before the job is accepted.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from multivector.dataset import default_dataset
from multivector.errors import InputError
from multivector.interfaces.server.deps import (UNAUTHORIZED, WRITE_ACCESS, JobsDep, LimitsDep, ScenariosDep,
                                                StoreFileDep)
from multivector.interfaces.server.state import RUN_ID_PATTERN

router = APIRouter(prefix="/api/explorations", tags=["explorations"])


class ExploreRequest(BaseModel):
    """An exploration to start in the background."""

    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(default_factory=default_dataset, max_length=80,
                          description="a scenario the server serves (default: the first built-in)")
    n: int = Field(..., ge=1, le=10**7, description="runs (Sobol: base samples, a power of two)")
    sampler: Literal["lhs", "sobol", "morris"] = "lhs"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    levers: Literal["none", "all"] = "none"
    chunk_size: int = Field(250, ge=1, le=10_000)
    run_id: str | None = Field(None, pattern=RUN_ID_PATTERN)


@router.post("", status_code=202, summary="Start an exploration as a background job", dependencies=WRITE_ACCESS,
             responses=UNAUTHORIZED)
def start_exploration(body: ExploreRequest, scenarios: ScenariosDep, limits: LimitsDep, jobs: JobsDep,
                      store_file: StoreFileDep):
    from multivector.explore.ensemble import explore, make_design, new_run_id

    scenario = scenarios.get(body.scenario)
    if scenario.politics is None:
        raise InputError(f"scenario '{body.scenario}' has no political register to explore")
    levers = None if body.levers == "none" else "all"
    total = make_design(scenario, body.n, body.sampler, body.seed, levers).total
    if total > limits.max_n:
        raise InputError(f"{total:,} runs is over this server's limit of {limits.max_n:,}",
                         hint="ask for fewer runs, or run 'multivector explore' from the command line")
    run_id = body.run_id or new_run_id(body.scenario)
    job = jobs.reserve(run_id, body.scenario, total, already_stored=store_file.holds_run)
    source = scenarios.source(body.scenario)
    jobs.start(job, lambda progress: explore(source, n=body.n, sampler=body.sampler, seed=body.seed,
                                             levers=levers, run_id=run_id, db=store_file.path,
                                             chunk_size=body.chunk_size, progress=progress))
    return job.public() | {"status_url": f"/api/explorations/{job.id}"}


@router.get("", summary="Exploration jobs started by this server")
def list_jobs(jobs: JobsDep):
    return [j.public() for j in jobs.all()]


@router.get("/{job_id}", summary="Status and progress of an exploration job")
def job_status(job_id: str, jobs: JobsDep):
    return jobs.get(job_id).public()
