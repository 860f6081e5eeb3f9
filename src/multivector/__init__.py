"""multivector: a systems model of a middle power's statecraft and the Eurasian freight corridors.

The one data path: ``load`` a dataset (validated tables) → ``simulate`` it for a batch of parameter
sets → labelled ``xarray`` results → summaries, maps, the store. The package reads top-down:
``dataset`` → ``freight`` → ``model`` → ``explore`` → ``views`` → ``interfaces`` (see docs/design.md).
"""

from multivector.errors import InputError, MissingDependency, MultivectorError

__version__ = "0.1.0"


def load(name_or_dir=None):
    """Read and validate a dataset: a built-in name (default: the first built-in) or a folder."""
    from multivector.dataset import default_dataset, load as _load

    return _load(name_or_dir or default_dataset())


def simulate(scenario, n=1, **kwargs):
    """Simulate a batch of ``n`` runs; see :meth:`multivector.model.Model.simulate`."""
    from multivector.model import simulate as _simulate

    if isinstance(scenario, str):
        scenario = load(scenario)
    return _simulate(scenario, n, **kwargs)


def explore(scenario=None, n=1000, **kwargs):
    """Run an ensemble into the store and return its run id; see :func:`multivector.explore.ensemble.explore`."""
    from multivector.explore.ensemble import explore_default

    return explore_default(scenario, n, **kwargs)


def sensitivity(run_id, outcome=None, year=None, db="multivector.duckdb"):
    """Sobol, Morris or RBD-FAST indices of an outcome (default: the final index), one row per parameter."""
    from multivector.explore.analysis import sensitivity as _sensitivity
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        return _sensitivity(store, run_id, outcome, year)


def discover(run_id, outcome="consolidated", db="multivector.duckdb", **kwargs):
    """PRIM scenario discovery; returns a result with ``trajectory``, ``box`` and ``stats``."""
    from multivector.explore.analysis import discover as _discover
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        return _discover(store, run_id, outcome, **kwargs)


def strategies(scenario=None, levers=None, n=200, db="multivector.duckdb", outcome=None, **kwargs):
    """Evaluate the policies of a levers CSV over one shared ensemble; a pandas DataFrame per policy."""
    from multivector.dataset import default_dataset
    from multivector.explore.ensemble import strategies as _strategies

    return _strategies(scenario or default_dataset(), levers, n, outcome=outcome, db=db, **kwargs)[1]


__all__ = ["InputError", "MissingDependency", "MultivectorError", "__version__", "load", "simulate", "explore",
           "sensitivity", "discover", "strategies"]
