"""Volume-delay functions: extra hours a facility adds as it fills, vectorised over runs.

Two forms: the BPR curve for line-haul links (a rail line slows gradually as trains queue for
paths), and a queueing form for ferries, ports and border crossings, whose waiting time grows as
``rho / (1 - rho)`` (the mean wait of a single-server queue) and becomes unbounded at capacity. So that
an overfull facility still gives a finite, monotone cost — route choice then moves volume away —
the queueing curve continues linearly beyond ``rho_max``.
"""

from __future__ import annotations

import numpy as np


def bpr_delay(load, capacity, free_time, alpha, beta):
    """BPR delay ``t0 * alpha * (v / c) ** beta`` (hours); no delay where capacity is NaN."""
    ratio = np.where(np.isnan(capacity), 0.0, load / np.where(np.isnan(capacity), 1.0, capacity))
    return free_time * alpha * np.power(np.maximum(ratio, 0.0), beta)


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


def bpr_delay_derivative(load, capacity, free_time, alpha, beta):
    """d(delay)/d(load) of :func:`bpr_delay`."""
    ok = ~np.isnan(capacity)
    c = np.where(ok, capacity, 1.0)
    ratio = np.maximum(load / c, 0.0)
    return np.where(ok, free_time * alpha * beta * np.power(ratio, beta - 1.0) / c, 0.0)

