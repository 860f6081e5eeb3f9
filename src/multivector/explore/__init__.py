"""Exploration over ensembles: designs, executors, the DuckDB store and the analyses that read it.

Importing this subpackage binds ``multivector.explore`` to it, over the top-level ``explore``
function of the public API; so that ``multivector.explore(...)`` keeps working after any
``import multivector.explore.<module>``, the subpackage is callable and forwards to that function.
"""

import sys
import types


class _Callable(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from multivector.explore.ensemble import explore_default

        return explore_default(*args, **kwargs)


sys.modules[__name__].__class__ = _Callable
