"""A declarative, batched system-dynamics engine (the "political register" of the model).

A model is a TOML file of constants, stocks, flows, auxiliaries, lookups and exogenous inputs
(see :mod:`multivector.sd.spec` for the format). It is checked when loaded (names, syntax,
algebraic loops, units, ranges) and integrated for ``N`` parameter sets at once::

    from multivector import sd

    model = sd.compile_model("model.toml")
    ds = model.run({"growth_rate": np.linspace(0, 1, 1000)})   # Dataset (run, time)

    sd.to_xmile(model, {"growth_rate": 0.3}, None, "model.xmile")  # for Stella / PySD
"""

from .engine import Recorder, SDModel, SimulationError, State, compile_model
from .spec import SDSpec, UnusedFlowWarning, load_spec, parse_spec
from .units import Unit, UnitSyntaxError, parse_unit
from .xmile import XMILE_NS, to_xmile

__all__ = [
    "compile_model",
    "load_spec",
    "parse_spec",
    "SDSpec",
    "SDModel",
    "State",
    "Recorder",
    "SimulationError",
    "UnusedFlowWarning",
    "to_xmile",
    "XMILE_NS",
    "Unit",
    "UnitSyntaxError",
    "parse_unit",
]
