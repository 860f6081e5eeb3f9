"""multivector: a systems model of a middle power's statecraft and the Eurasian freight corridors."""

from multivector.errors import InputError, MultivectorError

__version__ = "0.1.0"

__all__ = ["InputError", "MultivectorError", "__version__"]
