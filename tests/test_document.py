"""The run document's bottleneck list: a facility once, in its earliest worst year, with its full years."""

from __future__ import annotations

import numpy as np
import xarray as xr

from multivector.views.document import bottlenecks


def _ds(util):
    util = np.asarray(util, dtype=float)[None]                       # one run
    years, res = util.shape[1], util.shape[2]
    dims = ("run", "year", "resource")
    return xr.Dataset({"utilisation": (dims, util), "delay_h": (dims, util * 10), "flow_mt": (dims, util * 2)},
                      coords={"year": 2024 + np.arange(years), "resource": [f"R{i}" for i in range(res)],
                              "resource_label": ("resource", [f"facility {i}" for i in range(res)]),
                              "resource_kind": ("resource", ["link"] * res)})


def test_a_facility_full_in_several_years_is_listed_in_the_first():
    """Full at 1.0 from 2025 on, with the last bit of a float favouring 2027: listed in 2025 with
    three full years; a facility below it comes second."""
    ds = _ds([[0.5, 0.9], [1.0, 0.95], [1.0 - 1e-16, 0.97], [1.0 + 1e-15, 0.96]])
    rows = bottlenecks(ds)
    assert [r["link"] for r in rows] == ["R0", "R1"]
    assert rows[0]["year"] == 2025 and rows[0]["years_full"] == 3
    assert rows[1]["year"] == 2026 and rows[1]["years_full"] == 0


def test_unconstrained_facilities_are_not_listed():
    ds = _ds([[0.5, np.nan], [0.6, np.nan]])
    assert [r["link"] for r in bottlenecks(ds)] == ["R0"]


def test_the_median_over_runs_is_xarrays_and_skips_a_runs_nan():
    """The documents' median is xarray's own (NaN-skipping) median, taken faster: the same numbers for
    a slice with no NaN, with some (a corridor that carried nothing in a run has no time) and all NaN."""
    import xarray as xr

    from multivector.views.document import median_over_runs

    rng = np.random.default_rng(0)
    values = rng.standard_normal((7, 4, 5))
    values[2, 1, 3] = values[5, 0, 0] = values[0, 0, 0] = np.nan
    values[:, 3, 4] = np.nan
    da = xr.DataArray(values, dims=("run", "year", "corridor"), coords={"year": np.arange(2024, 2028)})
    for dims in (("run", "year", "corridor"), ("year", "run", "corridor"), ("year", "corridor", "run")):
        got, want = median_over_runs(da.transpose(*dims)), da.transpose(*dims).median("run")
        assert got.dims == want.dims and (got["year"] == want["year"]).all()
        np.testing.assert_array_equal(got.values, want.values)
    assert np.isnan(median_over_runs(da).values[3, 4]) and np.isfinite(median_over_runs(da).values[1, 3])
    single = da.isel(run=0, drop=True)
    assert median_over_runs(single) is single
