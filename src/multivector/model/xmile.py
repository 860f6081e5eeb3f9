"""The political register as XMILE (Stella, Vensim, PySD), with the network's side of one coupled run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import xarray as xr

from multivector.dataset import Scenario
from multivector.errors import InputError
from multivector.io import atomic_file
from multivector.model.compiled import simulate
from multivector.sd import to_xmile


def export_xmile(scenario: Scenario, path: str | Path, *, seed: int = 0,
                 overrides: Mapping | None = None) -> xr.Dataset:
    """Write the political register as XMILE (atomically), with the network's contributions from one
    coupled run (seeded) as exogenous series; return that run's results for comparison."""
    pol = scenario.politics
    if pol is None:
        raise InputError(f"scenario '{scenario.name}' has no political register (politics.toml)")
    ds = simulate(scenario, 1, overrides=overrides, seed=seed, coupled=True)
    years = ds["year"].values.astype(float)
    kinds = dict(zip(ds["variable"].values, ds["variable_kind"].values))
    series = {str(v): (years, ds["political"].sel(variable=v).values[0]) for v in ds["variable"].values
              if kinds[v] == "exogenous"}
    table = ds["parameter_value"].isel(run=0).to_series()
    constants = {c: float(table[c]) for c in pol.sd.spec.constants if c in table.index}
    atomic_file(path, lambda name: to_xmile(pol.sd, constants, series, name))
    return ds
