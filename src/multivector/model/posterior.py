"""A posterior for the network's free coefficients: the calibration targets as a likelihood, sampled
with emcee's affine-invariant ensemble (``multivector calibrate DATASET --posterior``).

Likelihood: each target's log miss ``log(modelled / observed)`` is normal with the observation's stated
relative error as its standard deviation (``targets.csv``'s ``error``, default 10%) — the same
residuals the least-squares fit minimises, so the fit is the posterior's mode under a flat prior.
Prior: uniform over each coefficient's stated range, on a log scale for coefficients whose range is
positive (logit scales and factors span decades; the least-squares fit works on the same scale).
The walkers start in a small ball around the stored fit (or, without one, a least-squares fit made first). Every step's walkers are
one batched ``simulate`` call (``vectorize``); the route set is the stored fit's. The first half of
the chain is discarded as burn-in. Targets after ``LAST_OBSERVED_YEAR`` are never read.

Stored beside the dataset as ``posterior.csv`` (one row per sample: the coefficients and the sample's
log-probability) and ``posterior.toml`` (how it was made: method, prior, walkers, steps, burn-in,
seed, the hash of the targets it saw, acceptance and autocorrelation diagnostics).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from multivector.dataset import Scenario
from multivector.errors import InputError
from multivector.io import atomic_write, require
from multivector.model.calibrate import _targets, calibrate, evaluate, fit_scale

#: The posterior's files in a dataset folder.
SAMPLES_FILE, PROVENANCE_FILE = "posterior.csv", "posterior.toml"


@dataclass
class Posterior:
    samples: pd.DataFrame           # one row per sample: the free coefficients and log_prob
    provenance: dict = field(default_factory=dict)

    def draw(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` coefficient sets drawn from the samples (with replacement), for an ensemble."""
        rows = np.random.default_rng(seed).integers(0, len(self.samples), n)
        return self.samples.drop(columns=["log_prob"]).iloc[rows].reset_index(drop=True)


def targets_hash(scenario: Scenario, until: int | None = None) -> str:
    """A short hash of the observations the posterior saw (targets up to ``until``)."""
    t = _targets(scenario, until)[["id", "year", "metric", "observed", "error"]]
    return hashlib.sha256(pd.util.hash_pandas_object(t, index=False).values.tobytes()).hexdigest()[:16]


def sample_posterior(scenario: Scenario, walkers: int | None = None, steps: int = 300, seed: int = 0,
                     until: int | None = None, progress: Callable[[int, int], None] | None = None) -> Posterior:
    """Sample the free coefficients' posterior given the targets up to ``until`` (module docstring)."""
    emcee = require("emcee", extra="inference", what="calibrate --posterior")
    free = list(scenario.model.get("calibration", {}).get("free", []))
    if not free:
        raise InputError("no free coefficients to sample",
                         hint="list them in model.toml: [model.calibration] free = [...]")
    if steps < 2:
        raise InputError("--steps must be at least 2")
    d = len(free)
    walkers = walkers or max(16, 2 * d + 2)
    if walkers < 2 * d or walkers % 2:
        raise InputError(f"--walkers must be even and at least twice the {d} free coefficients",
                         hint=f"e.g. --walkers {max(16, 2 * d + 2)}")
    t = _targets(scenario, until)
    observed, error = t["observed"].to_numpy(float), t["error"].to_numpy(float)
    xlo, xhi, to_x, from_x, positive = fit_scale(scenario, free)
    defaults = scenario.defaults()
    if not scenario.calibration.get("values"):     # no stored fit: start from the least-squares one
        defaults.update(calibrate(scenario, until=until).values)
    centre = to_x(np.array([defaults[p] for p in free], dtype=float))
    rng = np.random.default_rng(seed)
    width = xhi - xlo
    start = np.clip(centre + 1e-3 * width * rng.standard_normal((walkers, d)), xlo + 1e-9 * width,
                    xhi - 1e-9 * width)

    def log_prob(x):                                   # [walkers, d] -> [walkers]
        x = np.atleast_2d(x)
        inside = np.all((x >= xlo) & (x <= xhi), axis=1)
        out = np.full(len(x), -np.inf)
        if inside.any():
            values = pd.DataFrame(from_x(x[inside]), columns=free)
            model = evaluate(scenario, values, until)
            r = np.log(np.maximum(model, 1e-12) / observed) / error
            out[inside] = -0.5 * np.sum(r * r, axis=1)
        return out

    sampler = emcee.EnsembleSampler(walkers, d, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()     # emcee's own stream, seeded
    for i, _ in enumerate(sampler.sample(start, iterations=steps), start=1):
        if progress:
            progress(i, steps)
    burn = steps // 2
    chain = sampler.get_chain(discard=burn, flat=True)
    lp = sampler.get_log_prob(discard=burn, flat=True)
    samples = pd.DataFrame(from_x(chain), columns=free)
    samples["log_prob"] = lp
    tau = sampler.get_autocorr_time(discard=burn, quiet=True, tol=0)
    provenance = {
        "method": f"emcee {emcee.__version__} affine-invariant ensemble sampler (vectorised: one batched "
                  "simulate per step)",
        "likelihood": "log(modelled/observed) ~ Normal(0, error) per target (targets.csv error, default 0.1)",
        "prior": {p: {"min": float(scenario.parameters[p].min), "max": float(scenario.parameters[p].max),
                      "scale": "log-uniform" if pos else "uniform"} for p, pos in zip(free, positive)},
        "start": "a ball of 0.1% of each range around the stored least-squares fit (or one made first)",
        "walkers": int(walkers), "steps": int(steps), "burn_in": int(burn), "seed": int(seed),
        "targets_until": int(t["year"].max()), "targets": len(t), "targets_hash": targets_hash(scenario, until),
        "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
        "autocorrelation_steps": {p: float(v) for p, v in zip(free, tau)},
        "effective_samples": float(len(chain) / max(float(np.nanmax(tau)), 1.0)),
        "made_on": _dt.date.today().isoformat(),
    }
    return Posterior(samples=samples, provenance=provenance)


def predictive_targets(scenario: Scenario, posterior: Posterior, n: int = 100, seed: int = 0,
                       until: int | None = None) -> pd.DataFrame:
    """The targets against ``n`` posterior draws: ``target, metric, year, observed, error, median, p5,
    p95, within`` (``within``: the observation inside the draws' 5–95% band widened by its own error)."""
    t = _targets(scenario, until)
    model = evaluate(scenario, posterior.draw(n, seed), until)           # [n, targets]
    observed, error = t["observed"].to_numpy(float), t["error"].to_numpy(float)
    p5, median, p95 = np.percentile(model, [5, 50, 95], axis=0)
    within = (observed >= p5 * np.exp(-1.645 * error)) & (observed <= p95 * np.exp(1.645 * error))
    return pd.DataFrame({"target": t["id"].to_numpy(), "metric": t["metric"].to_numpy(),
                         "year": t["year"].to_numpy(), "observed": observed, "error": error,
                         "median": median, "p5": p5, "p95": p95, "within": within})


def write_posterior(posterior: Posterior, folder: Path) -> list[Path]:
    """Store the samples and their provenance beside the dataset, each written atomically."""
    import tomli_w

    folder = Path(folder)
    return [atomic_write(folder / SAMPLES_FILE, posterior.samples.to_csv(index=False, float_format="%.10g")),
            atomic_write(folder / PROVENANCE_FILE, tomli_w.dumps(posterior.provenance))]


def posterior_of(scenario: Scenario) -> Posterior:
    """The dataset's stored posterior (checked at load), or an InputError saying how to make one."""
    if scenario.posterior_samples is None:
        where = scenario.path or scenario.name
        raise InputError(f"'{scenario.name}' has no posterior ({SAMPLES_FILE})",
                         hint=f"make one: multivector calibrate {where} --posterior --write")
    return Posterior(samples=scenario.posterior_samples, provenance=scenario.posterior_provenance)
