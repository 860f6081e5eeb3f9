"""The coupled model: one object that owns a scenario's compiled forms and exposes ``simulate``.

A :class:`Model` is built once per scenario (``compiled(scenario)``) and keeps what is costly to make:
the layered network and its route sets, the freight model's static arrays, the timeline by year.
Every interface reaches the model through :func:`simulate`; a single run is a batch of one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import xarray as xr

from multivector.dataset import Scenario, check_sources_table, run_values, table_values, timeline_by_year, year_values
from multivector.errors import InputError
from multivector.freight.model import FreightModel, results_dataset
from multivector.freight.network import Network, cached_network
from multivector.freight.sue import EQUILIBRIUM_TOL, MAX_NEWTON_STEPS
from multivector.model.coupled import simulate_coupled



class Model:
    """A scenario compiled for simulation. The constructor only stores; parts are built on first use."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._network: Network | None = None
        self._freight: FreightModel | None = None
        self._timeline: dict | None = None
        self._lock = threading.Lock()

    @property
    def network(self) -> Network:
        """The layered graph and its route sets (route enumeration is the costly step)."""
        with self._lock:
            if self._network is None:
                self._network = cached_network(self.scenario)
        return self._network

    @property
    def freight(self) -> FreightModel:
        net = self.network
        with self._lock:
            if self._freight is None:
                self._freight = FreightModel(self.scenario, net)
        return self._freight

    @property
    def timeline(self) -> dict:
        if self._timeline is None:
            self._timeline = timeline_by_year(self.scenario)
        return self._timeline

    def simulate(self, n: int = 1, *, years: Sequence[int] | None = None, overrides: Mapping | None = None,
                 samples: pd.DataFrame | None = None, fitted: pd.DataFrame | None = None, seed: int = 0,
                 tol: float | None = None, max_iter: int = MAX_NEWTON_STEPS, keep_routes: bool = False,
                 coupled: bool | None = None, run_ids=None, events: Mapping | None = None,
                 progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
        """Simulate a batch of runs over years and return labelled results.

        ``samples`` (a DataFrame, one row per run) sets sampled parameters; ``overrides`` sets names to
        scalars or ``[N]`` arrays for every run. Both hold in every year. ``fitted`` (one row per run)
        sets coefficients under estimation or drawn from their posterior: like the dataset's own values,
        they give way to ``timeline.csv`` in the years it covers (:func:`~multivector.dataset.run_values`).
        With a political register (``politics.toml``) the two registers are coupled year by year over
        its horizon unless ``coupled=False``; without one, the network alone is solved for ``years``
        (default: the base year). ``seed`` and ``run_ids`` fix
        each run's random stream; ``events`` places outages (``{(name, year): share}``, coupled runs only).
        ``tol`` is the route-choice gap to reach (default ``EQUILIBRIUM_TOL``, 1e-6). Results:
        ``xarray.Dataset`` with dimensions ``run``, ``year``, ``resource``, ``corridor``, ``commodity``
        (and ``variable`` for the political trajectory).
        ``progress(done, total)`` is called after each solved year (years solved, years to solve).
        """
        s = self.scenario
        if coupled is None:  # couple when there is a political register and the years lie in its horizon
            coupled = s.politics is not None and (years is None or min(years) >= s.politics.sd.spec.sim.start)
        if coupled:
            if s.politics is None:
                raise InputError(f"scenario '{s.name}' has no political register (politics.toml)")
            return simulate_coupled(self, n, years=years, overrides=overrides, samples=samples, fitted=fitted,
                                    seed=seed, run_ids=run_ids, tol=tol, max_iter=max_iter,
                                    keep_routes=keep_routes, events=events, progress=progress)
        if events:
            raise InputError("--event needs the coupled model (a political register and its years)")
        tol = EQUILIBRIUM_TOL if tol is None else tol
        freight = self.freight
        table, fixed = run_values(s, n, overrides, samples, fitted)
        years = list(years) if years is not None else [s.base_year]
        values = table_values(table)
        per_year = []
        for y in years:
            per_year.append(freight.solve_year(year_values(self.timeline, values, y, fixed), y, tol, max_iter))
            if progress:
                progress(len(per_year), len(years))
        return results_dataset(s, freight, table, years, per_year, seed, keep_routes)


_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def compiled(scenario: Scenario) -> Model:
    """The scenario's :class:`Model`, built once per scenario object and kept while the scenario lives."""
    with _GUARD:
        model = _MODELS.get(scenario)
        if model is None:
            model = _MODELS[scenario] = Model(scenario)
    return model


def check(scenario: Scenario) -> list[str]:
    """Everything ``data check`` verifies beyond loading: the sources table, and a route for every OD
    (compiling the network raises an InputError naming the OD otherwise). Returns the sources' problems."""
    problems = check_sources_table(scenario)
    compiled(scenario).network
    return problems


def simulate(scenario: Scenario, n: int = 1, **kwargs) -> xr.Dataset:
    """``compiled(scenario).simulate(n, ...)``: the one entry every interface calls."""
    return compiled(scenario).simulate(n, **kwargs)
