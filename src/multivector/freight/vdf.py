"""Volume-delay functions: extra hours a facility adds as it fills, for every run of a batch.

Two forms: the BPR curve for line-haul links (a rail line slows gradually as trains queue for
paths), and a queueing form for ferries, ports and border crossings, whose waiting time grows as
``rho / (1 - rho)`` (the mean wait of a single-server queue) and becomes unbounded at capacity. So that
an overfull facility still gives a finite, monotone cost — route choice then moves volume away —
the queueing curve continues linearly beyond ``rho_max``.
"""

from __future__ import annotations

import numba
import numpy as np


class Bpr:
    """The BPR curve ``t = t0 * (1 + alpha * (v / c) ** beta)`` for fixed link parameters.

    The one BPR of the package: the logit SUE uses its delay, the deterministic UE (Frank–Wolfe) its
    cost, derivative and Beckmann integral. Arguments broadcast (links × runs). A link whose
    capacity is NaN or not positive is not binding: no delay.
    """

    def __init__(self, free_time, capacity, alpha, beta, extra=0.0):
        self.free_time = free_time
        self.alpha = alpha
        self.beta = beta
        self.extra = extra          # a flow-independent add-on (generalised cost: toll and distance terms)
        self.binding = np.isfinite(capacity) & (capacity > 0)
        self.capacity = np.where(self.binding, capacity, 1.0)

    def ratio(self, load):
        """``v / c`` (0 on links that are not binding, and for negative loads)."""
        return np.where(self.binding, np.maximum(load / self.capacity, 0.0), 0.0)

    def delay(self, load):
        """Hours added by congestion: ``t0 * alpha * (v / c) ** beta``."""
        return self.free_time * self.alpha * np.power(self.ratio(load), self.beta)

    def cost(self, load):
        """``t0 + extra + delay``: the travel time, plus any flow-independent add-on."""
        return self.free_time + self.extra + self.delay(load)

    def derivative(self, load):
        """``dt / dv``; at zero load it is ``t0 * alpha / c`` when beta is 1 and 0 above."""
        r = self.ratio(load)
        with np.errstate(divide="ignore", invalid="ignore"):
            rpm1 = np.where(r > 0, np.power(r, self.beta - 1.0), np.where(self.beta == 1.0, 1.0, 0.0))
        return np.where(self.binding, self.free_time * self.alpha * self.beta * rpm1 / self.capacity, 0.0)

    def cost_and_derivative(self, load):
        return self.cost(load), self.derivative(load)

    def integral(self, load):
        """``∫_0^v t(s) ds`` (the Beckmann objective's term)."""
        return (self.free_time + self.extra) * load \
            + self.free_time * self.alpha * load * np.power(self.ratio(load), self.beta) / (self.beta + 1.0)


#: The kinds of :class:`DelayCurves`: no delay, the BPR curve, the queueing curve.
NO_DELAY, BPR, QUEUE = 0, 1, 2


class DelayCurves:
    """Each resource's delay curve declared rather than passed as a function, so that the compiled
    equilibrium evaluates it inside its loops: ``kind`` ``[R]`` (:data:`NO_DELAY`, :data:`BPR`,
    :data:`QUEUE`), ``capacity`` ``[R, N]`` (NaN: no delay), the BPR free time ``[R, N]`` with ``alpha``
    and ``beta`` ``[N]``, the queues' ``scale`` ``[R, N]`` (hours at half load) and ``rho_max`` ``[N]``.
    The BPR delay is :class:`Bpr`'s, ``t0 · alpha · (v / c) ** beta``; the queue's is
    ``scale · rho / (1 − rho)``, linear beyond ``rho_max`` (:func:`curve_delay`). An array given in its
    shape, C-contiguous and of floats, is kept rather than copied (the year's capacities, built for it)."""

    def __init__(self, kind, capacity, free_time=0.0, alpha=0.0, beta=1.0, scale=0.0, rho_max=0.8):
        self.kind = np.ascontiguousarray(kind, dtype=np.int64)
        shape = np.shape(capacity)
        full = lambda x: _contiguous(x, shape)
        per_run = lambda x: _contiguous(x, shape[1:])
        self.capacity, self.free_time, self.scale = full(capacity), full(free_time), full(scale)
        self.alpha, self.beta, self.rho_max = per_run(alpha), per_run(beta), per_run(rho_max)

    @classmethod
    def linear(cls, slope):
        """``delay = slope · load`` (``slope`` ``[R, N]``): the BPR curve with capacity 1, alpha and beta 1."""
        slope = np.asarray(slope, dtype=float)
        return cls(np.full(slope.shape[0], BPR), np.ones(slope.shape), free_time=slope, alpha=1.0, beta=1.0)

    @classmethod
    def none(cls, n_resources: int, n_runs: int = 1):
        """No resource has a delay."""
        return cls(np.zeros(n_resources), np.full((n_resources, n_runs), np.nan))

    def rows(self, rows):
        """The curves of resources ``rows`` only."""
        return DelayCurves(self.kind[rows], self.capacity[rows], self.free_time[rows], self.alpha,
                           self.beta, self.scale[rows], self.rho_max)

    def delay(self, load, cols=None):
        """Delays ``[R, n]`` at ``load`` ``[R, n]`` of the runs ``cols`` (default: every run)."""
        cols = np.arange(self.capacity.shape[1]) if cols is None else np.asarray(cols, dtype=np.int64)
        return _delays(self.kind, np.ascontiguousarray(load, dtype=float), cols, self.capacity,
                       self.free_time, self.alpha, self.beta, self.scale, self.rho_max)


def _contiguous(x, shape) -> np.ndarray:
    """``x`` broadcast to ``shape`` as a C-contiguous float array (``x`` itself where it already is one)."""
    if isinstance(x, np.ndarray) and x.shape == shape and x.dtype == np.float64 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(np.broadcast_to(x, shape), dtype=float)


@numba.njit(cache=True)
def curve_delay(kind, load, capacity, free_time, alpha, beta, scale, rho_max):
    """One resource's delay at ``load`` (hours), by its curve's ``kind``."""
    if kind == BPR:
        if not (np.isfinite(capacity) and capacity > 0):
            return 0.0
        return free_time * alpha * max(load / capacity, 0.0) ** beta
    if kind == QUEUE:
        if np.isnan(capacity):
            return 0.0
        rho = max(load / capacity, 0.0)
        r = min(rho, rho_max)
        return scale * (r / (1.0 - r) + max(rho - rho_max, 0.0) * (1.0 / (1.0 - rho_max) ** 2))
    return 0.0


@numba.njit(cache=True)
def _delays(kind, load, cols, capacity, free_time, alpha, beta, scale, rho_max):
    out = np.zeros(load.shape)
    for r in range(load.shape[0]):
        if kind[r] == NO_DELAY:
            continue
        for j in range(load.shape[1]):
            c = cols[j]
            out[r, j] = curve_delay(kind[r], load[r, j], capacity[r, c], free_time[r, c], alpha[c], beta[c],
                                    scale[r, c], rho_max[c])
    return out
