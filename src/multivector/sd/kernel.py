"""The engine's Euler steps compiled: one Numba function per model, looping over runs.

The numpy path evaluates an equation for the whole batch at once; each operation is a numpy call, so
a model of ~130 equations costs ~500 calls per evaluation whatever the batch size. For a single run or a
small batch that is all overhead (a quarter-year step of a 130-equation register: ~0.2 ms). Here the
model's equations become the body of one generated function that, for each run, keeps every value in a
local variable and integrates ``k0 .. k1``; a step costs microseconds.

The same equations, in the same order, with the same folding of constant sub-expressions: ``+ - * /``,
comparisons, ``min``/``max``/``clip`` (NaN-propagating like numpy's), ``step``, ``ramp`` and lookups
(numpy's ``interp`` rule) give the numpy path's numbers exactly; ``exp``, ``log`` and ``**`` call the
C library where numpy may use its own vectorised routines, so those can differ in the last bit.

The kernel reports, per run, the first step whose values are not all finite; the engine then repeats
the call on the numpy path, which names the variable (:class:`SimulationError`). The generated source
is written once to the cache folder under its own hash, so Numba's cache compiles it once per machine.
Compiling takes a few seconds, almost all of it Numba's own passes over the generated function; the
helpers below are called, not inlined by Numba, which halves that (4.7 s to 2.3 s for a 130-equation
register) for a fifth more time a step (a lookup is a function call).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numba
import numpy as np

from ..errors import InputError
from ..io import atomic_write, cache_folder
from . import equations as eq


@numba.njit
def _fmin(a, b):
    """numpy's ``minimum``: NaN if either is NaN."""
    if a != a or b != b:
        return a + b
    return a if a <= b else b


@numba.njit
def _fmax(a, b):
    """numpy's ``maximum``: NaN if either is NaN."""
    if a != a or b != b:
        return a + b
    return a if a >= b else b


@numba.njit
def _interp(x, xp, fp):
    """numpy's ``interp`` for one point, with the same arithmetic (constant extrapolation)."""
    n = xp.shape[0]
    if x != x:
        return x
    if x < xp[0]:
        return fp[0]
    if x > xp[n - 1]:
        return fp[n - 1]
    j = 0
    while j < n - 1 and xp[j + 1] <= x:
        j += 1
    if j == n - 1:
        return fp[n - 1]
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    r = slope * (x - xp[j]) + fp[j]
    if r != r:
        r = slope * (x - xp[j + 1]) + fp[j + 1]
        if r != r and fp[j] == fp[j + 1]:
            r = fp[j]
    return r


class Kernel:
    """The compiled Euler integration of one model (see the module docstring).

    ``base`` names the values that hold over a call (constants, static variables, exogenous inputs),
    ``stocks`` the stocks, ``values`` what a call returns per evaluation: the stocks, then the dynamic
    variables in evaluation order."""

    def __init__(self, model):
        self.fixed = list(model.constant_names) + list(model.static_names)
        self.inputs = list(model.exogenous_names)
        self.stocks = list(model.stock_names)
        self.dynamic = list(model.dynamic_names)
        self.values = self.stocks + self.dynamic
        self.source = _source(model, self.fixed + self.inputs, self.stocks, self.dynamic)
        self._fn = None
        self._packed = None      # (constants, static, array): the last run's fixed values, packed

    def __getstate__(self):
        return {**self.__dict__, "_fn": None, "_packed": None}

    def _function(self):
        if self._fn is None:
            self._fn = _load(self.source)
        return self._fn

    def _fixed(self, constants: dict, static: dict, n: int) -> np.ndarray:
        """Constants and static values as one ``[C, N]`` array, packed once per run's dictionaries."""
        p = self._packed
        if p is not None and p[0] is constants and p[1] is static and p[2].shape[1] == n:
            return p[2]
        both = {**constants, **static}
        arr = np.empty((len(self.fixed), n))
        for i, name in enumerate(self.fixed):
            arr[i] = both[name]
        self._packed = (constants, static, arr)
        return arr

    def integrate(self, constants: dict, static: dict, inputs: dict, stocks: dict, start: float, dt: float,
                  k0: int, k1: int, n: int, every: bool = False, out: np.ndarray | None = None):
        """Evaluate at grid steps ``k0 .. k1`` and step between them, for ``n`` runs.

        Returns ``(values, stocks, bad)``: ``values[run, e, v]`` the values of each evaluation kept
        (every one if ``every``, else the last; each run's block contiguous, as the kernel writes it),
        the stocks at ``k1`` (``[S, N]``), and the runs whose values were not all finite at some step
        (empty if none). ``out`` (``[N, evaluations, V]``, e.g. a slice of a whole run's array) receives
        the values in place."""
        fixed = self._fixed(constants, static, n)
        b = np.empty((len(self.inputs), n))
        for i, name in enumerate(self.inputs):
            b[i] = inputs[name]
        s = np.empty((len(self.stocks), n))
        for i, name in enumerate(self.stocks):
            s[i] = stocks[name]
        kept = (k1 - k0 + 1) if every else 1
        if out is None:
            out = np.empty((n, kept, len(self.values)))
        flag = np.full(n, -1, dtype=np.int64)
        self._function()(fixed, b, s, float(start), float(dt), int(k0), int(k1), bool(every), out, flag)
        return out, s, np.flatnonzero(flag >= 0)


def _source(model, base, stocks, dynamic) -> str:
    """The generated module: lookup tables as globals, then ``kernel(fixed, inputs, stocks, ...)``;
    ``base`` is the names of the fixed values, then of the inputs."""
    local = {}
    for i, name in enumerate(base):
        local[name] = f"b{i}"
    for i, name in enumerate(stocks):
        local[name] = f"s{i}"
    for i, name in enumerate(dynamic):
        local[name] = f"v{i}"
    tables = {name: f"L{i}" for i, name in enumerate(model.lookup_names)}
    lines = ["import math", "import numba", "import numpy as np",
             "from multivector.sd.kernel import _fmin, _fmax, _interp", ""]
    for name, glob in tables.items():
        xp, fp = model.lookup_data[name]
        lines.append(f"{glob}_x = np.array({[float(v) for v in xp]!r})")
        lines.append(f"{glob}_y = np.array({[float(v) for v in fp]!r})")
    # one signature (any layout), so that a slice of a whole run's array and a fresh array share the
    # machine code: it is compiled, or read from Numba's cache, when the module is imported
    sig = "void(f8[:, :], f8[:, :], f8[:, :], f8, f8, i8, i8, b1, f8[:, :, :], i8[:])"
    lines += ["", "", f'@numba.njit("{sig}", cache=True, nogil=True, error_model="numpy")',
              "def kernel(fixed, inputs, stocks, start, dt, k0, k1, every, out, flag):",
              "    for j in range(fixed.shape[1]):"]
    body = []
    nfix = len(model.constant_names) + len(model.static_names)
    body += [f"{local[nm]} = fixed[{i}, j]" if i < nfix else f"{local[nm]} = inputs[{i - nfix}, j]"
             for i, nm in enumerate(base)]
    body += [f"{local[nm]} = stocks[{i}, j]" for i, nm in enumerate(stocks)]
    body += ["r = 0", "for k in range(k0, k1 + 1):"]
    loop = ["time = start + k * dt"]
    for name in dynamic:
        expr = eq.source_scalar(model.equations[name], local, tables, model.lookup_data, model.dt)
        if eq.is_boolean(model.equations[name]):
            expr = f"1.0 if {expr} else 0.0"
        loop.append(f"{local[name]} = {expr}")
    checked = [local[nm] for nm in model._check_order]
    loop.append("total = 0.0")
    loop += [f"total += {v}" for v in checked]
    loop += ["if not math.isfinite(total):", "    flag[j] = k", "    break",
             "if every or k == k1:"]
    loop += [f"    out[j, r, {i}] = {local[nm]}" for i, nm in enumerate(stocks + dynamic)]
    loop += ["    r += 1", "if k == k1:", "    break"]
    nonneg = set(model._nonneg)
    for s, ins, outs in model._net:
        d = "0.0"
        for f in ins:
            d = f"({d} + {local[f]})"
        for f in outs:
            d = f"({d} - {local[f]})"
        loop.append(f"d_{local[s]} = {d}")
    for s in stocks:
        loop.append(f"{local[s]} = {local[s]} + dt * d_{local[s]}")
        if s in nonneg:
            loop.append(f"if {local[s]} < 0.0:")
            loop.append(f"    {local[s]} = 0.0")
    body += ["    " + x for x in loop]
    body += [f"stocks[{i}, j] = {local[nm]}" for i, nm in enumerate(stocks)]
    lines += ["        " + x for x in body]
    return "\n".join(lines) + "\n"


_LOADED: dict[str, object] = {}


def _load(source: str):
    """The compiled ``kernel`` of a generated source: imported from the cache folder (so that Numba
    caches its machine code there too), or built in memory if there is no folder to write."""
    # the helpers above are compiled into the kernel, so this file's text is part of the key
    key = hashlib.sha256(Path(__file__).read_bytes() + f"{numba.__version__}\n{source}".encode()).hexdigest()[:20]
    if key in _LOADED:
        return _LOADED[key]
    folder = cache_folder("kernels")
    module = None
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"sd_{key}.py"
            if not path.exists():
                atomic_write(path, source)
            spec = importlib.util.spec_from_file_location(f"multivector_sd_{key}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        except (OSError, InputError):      # a read-only or full cache folder costs time, never the answer
            module = None
    if module is None:
        namespace: dict = {}
        exec(compile(source.replace("cache=True", "cache=False"), f"<sd kernel {key}>", "exec"), namespace)
        fn = namespace["kernel"]
    else:
        fn = module.kernel
    _LOADED[key] = fn
    return fn


__all__ = ["Kernel"]
