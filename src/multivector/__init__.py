"""multivector: a systems model of a middle power's statecraft and the Eurasian freight corridors.

The one data path: ``load`` a scenario (validated tables) → ``simulate`` it for a batch of parameter
sets → labelled ``xarray`` results → summaries, maps, the store.
"""

from multivector.errors import InputError, MultivectorError

__version__ = "0.1.0"


def load(name_or_dir="kazakhstan"):
    """Read and validate a dataset: a built-in name (``"kazakhstan"``) or a folder."""
    from multivector.scenario import load as _load

    return _load(name_or_dir)


def simulate(scenario, n=1, **kwargs):
    """Simulate a batch of ``n`` runs; see :func:`multivector.simulation.simulate`."""
    from multivector.simulation import simulate as _simulate

    if isinstance(scenario, str):
        scenario = load(scenario)
    return _simulate(scenario, n, **kwargs)


def explore(scenario="kazakhstan", n=1000, **kwargs):
    """Run an ensemble into the store and return its run id; see :func:`multivector.ensemble.explore`."""
    from multivector.ensemble import explore as _explore

    return _explore(scenario, n, **kwargs)


def sensitivity(run_id, outcome, year=None, db="multivector.duckdb"):
    """Sobol or Morris indices of an outcome (a pandas DataFrame, one row per parameter)."""
    from multivector.analysis import sensitivity as _sensitivity
    from multivector.store import Store

    with Store(db, read_only=True) as store:
        return _sensitivity(store, run_id, outcome, year)


def discover(run_id, outcome="consolidated", db="multivector.duckdb", **kwargs):
    """PRIM scenario discovery; returns a result with ``trajectory``, ``box`` and ``stats``."""
    from multivector.analysis import discover as _discover
    from multivector.store import Store

    with Store(db, read_only=True) as store:
        return _discover(store, run_id, outcome, **kwargs)


def strategies(scenario="kazakhstan", levers=None, n=200, db="multivector.duckdb", outcome="middle_power_index_final",
               **kwargs):
    """Evaluate the policies of a levers CSV over one shared ensemble; a pandas DataFrame per policy."""
    from multivector.analysis import strategy_table
    from multivector.ensemble import explore as _explore
    from multivector.store import Store

    if levers is None:
        raise InputError("strategies need a levers file", hint="a CSV with one column per lever, one row per policy")
    run_id = _explore(scenario, n, sampler="lhs", levers=levers, db=db, **kwargs)
    with Store(db, read_only=True) as store:
        return strategy_table(store, run_id, outcome)


__all__ = ["InputError", "MultivectorError", "__version__", "load", "simulate", "explore", "sensitivity",
           "discover", "strategies"]
