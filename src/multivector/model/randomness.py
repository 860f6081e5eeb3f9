"""Counter-based random numbers: each run draws the same numbers in any batch, chunk, order or executor.

A run's uniform number for a year is a hash (SplitMix64) of (seed, run id, year, stream), so no
generator state is carried between runs. Its draws come from ``scipy.special`` and NumPy: the two
distributions a run needs are written here as ``scipy.stats`` computes them (tested against it), since
importing ``scipy.stats`` would cost every command a second before it starts.
"""

from __future__ import annotations

import numpy as np
from scipy.special import pdtr, pdtrik

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a well-mixed 64-bit hash of each element (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def _splitmix_int(x: int) -> int:
    """:func:`_splitmix` of one Python integer (the same bits; a scalar hashed without NumPy's overhead)."""
    m = 0xFFFFFFFFFFFFFFFF
    x = (x + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def uniform_stream(seed: int, run_ids: np.ndarray, year: int, stream=0) -> np.ndarray:
    """A uniform number in (0, 1) per run, a pure function of (seed, run id, year, stream): ``[N]``, or
    ``[S, N]`` for ``S`` streams at once.

    Counter-based, so a run draws the same numbers whatever its batch, chunk or order.
    """
    m = 0xFFFFFFFFFFFFFFFF
    key = _splitmix_int(_splitmix_int((seed & m) ^ 0x5DEECE66D) ^ (year & m))
    keys = np.array([_splitmix_int(key ^ (int(s) & m)) for s in np.ravel(stream)], dtype=np.uint64)
    keys = keys.reshape(np.shape(stream) + (1,))
    x = _splitmix(keys ^ np.asarray(run_ids, dtype=np.uint64))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def draw_disruption(seed, run_ids, year, hazard, severity, duration, stream=1) -> np.ndarray:
    """Share of a facility's capacity lost in ``year``: Poisson(hazard) events, each losing severity × duration
    (each cause of outages draws from its own ``stream``; given ``S`` streams, ``hazard``, ``severity``
    and ``duration`` are ``[S, N]`` and so is the answer, each cause drawn as on its own)."""
    u = uniform_stream(seed, run_ids, year, stream=stream)
    events = poisson_quantile(u, np.maximum(hazard, 0.0))
    return np.clip(events * severity * duration, 0.0, 1.0)


def poisson_quantile(u, mean) -> np.ndarray:
    """``scipy.stats.poisson.ppf(u, mean)``, the smallest count whose CDF reaches ``u``, from the same
    special functions it uses (importing ``scipy.stats`` costs a second of every command's start)."""
    u, mean = np.broadcast_arrays(np.asarray(u, dtype=float), np.asarray(mean, dtype=float))
    above = np.ceil(pdtrik(u, mean))
    below = np.maximum(above - 1.0, 0.0)
    return np.where(u >= 1.0, np.inf, np.where(pdtr(below, mean) >= u, below, above))


def latin_hypercube(d: int, n: int, seed: int) -> np.ndarray:
    """``scipy.stats.qmc.LatinHypercube(d=d, seed=seed).random(n)`` (scrambled, unoptimised): one point
    in each of ``n`` strata per dimension, the strata shuffled dimension by dimension, drawn in the same
    order from the same generator, so the points are the same (tested)."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(size=(n, d))
    strata = np.tile(np.arange(1, n + 1), (d, 1))
    for row in strata:
        rng.shuffle(row)
    return (strata.T - jitter) / n
