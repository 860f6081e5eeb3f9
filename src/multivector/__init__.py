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


__all__ = ["InputError", "MultivectorError", "__version__", "load", "simulate"]
