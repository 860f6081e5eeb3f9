"""Volume-delay functions: extra hours a facility adds as it fills, vectorised over runs.

Two forms: the BPR curve for line-haul links (a rail line slows gradually as trains queue for
paths), and a queueing form for ferries, ports and border crossings, whose waiting time grows as
``rho / (1 - rho)`` (the mean wait of a single-server queue) and becomes unbounded at capacity. So that
an overfull facility still gives a finite, monotone cost — route choice then moves volume away —
the queueing curve continues linearly beyond ``rho_max``.
"""

from __future__ import annotations

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


def bpr_delay(load, capacity, free_time, alpha, beta):
    """BPR delay ``t0 * alpha * (v / c) ** beta`` (hours); no delay where capacity is NaN."""
    return Bpr(free_time, capacity, alpha, beta).delay(load)


def queue_delay(load, capacity, scale_h, rho_max):
    """Queueing delay ``scale * rho / (1 - rho)`` (hours), linear beyond ``rho_max``."""
    free = np.isnan(capacity)
    rho = np.where(free, 0.0, load / np.where(free, 1.0, capacity))
    rho = np.maximum(rho, 0.0)
    r = np.minimum(rho, rho_max)
    value = r / (1.0 - r)
    slope = 1.0 / (1.0 - rho_max) ** 2
    value = value + np.maximum(rho - rho_max, 0.0) * slope
    return scale_h * value
