"""A posterior for the network's free coefficients: the calibration targets as a likelihood, sampled
with emcee's affine-invariant ensemble (``multivector calibrate DATASET --posterior``).

Likelihood: each target's log miss ``log(modelled / observed)`` follows a Student t with
``STUDENT_DF`` degrees of freedom and scale ``sqrt(error² + δ²)`` (a ceiling's miss counts only above it,
as in the fit): ``error`` the observation's stated relative error (``targets.csv``, default 10%),
``δ`` the model's discrepancy — how far, on the log scale, even the best coefficients leave the model
from the world (one network with one constant premium cannot follow a sanctions year; a route with no
demand in the model cannot match a published throughput). ``δ`` is shared by every target and sampled
with the coefficients (as in Kennedy and O'Hagan's calibration, with the discrepancy independent across
targets). Without it every structural miss would be read as evidence about the coefficients, and their
bands, and every band drawn from them, would be far too narrow (the 2024 back-test's bands held 0 of 9
observations). The t's heavy tails keep a few gross misses (a sanctions year, a route bounded only by
"test trains ran") from setting ``δ`` for every target: under a normal, three such bounds, missed by
factors of 20 to 80, put ``δ`` near 1 and left a pipeline's and a port's sharp observations saying nothing.
With ``δ``, the least-squares fit is no longer the mode: a shared ``δ`` evens the weights of sharp and
loose observations.
Prior: uniform over each coefficient's stated range, on a log scale for coefficients whose range is
positive (logit scales and factors span decades; the least-squares fit works on the same scale);
log-uniform for ``δ`` on ``DISCREPANCY_RANGE``.
The walkers start in a small ball around the stored fit (or, without one, a least-squares fit made first). Every step's walkers are
one batched ``simulate`` call (``vectorize``); the route set is the stored fit's. The first half of
the chain is discarded as burn-in. Targets after ``LAST_OBSERVED_YEAR`` are never read.

Predictions drawn from the posterior (``predictive``) carry the discrepancy: each draw's model value
times ``exp(δ·z)``, ``z`` a Student t with ``STUDENT_DF`` degrees of freedom — the band a new observation of the same kind should fall in
(before its own observation error).

Stored beside the dataset as ``posterior.csv`` (one row per sample: the coefficients, ``discrepancy``
and the sample's log-probability) and ``posterior.toml`` (how it was made: method, prior, walkers, steps, burn-in,
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
from multivector.dataset.scenario import UPPER_BOUND
from multivector.errors import InputError
from multivector.io import atomic_write, require
from multivector.model.calibrate import _targets, bounded, calibrate, evaluate, fit_scale

#: The samples' column for the model discrepancy δ (the log-scale standard deviation shared by the targets).
DISCREPANCY = "discrepancy"
#: δ's prior range (log-uniform). From 1%, below the sharpest observation's own error, so the data can
#: say "no discrepancy", to 2, a factor e² ≈ 7 either way: a model that misses by more has nothing to
#: say about its coefficients.
DISCREPANCY_RANGE = (0.01, 2.0)
#: The likelihood's degrees of freedom: 4 is the usual robust choice (finite variance, tails heavy enough
#: that a miss of ten scales costs about as much as one of five under a normal; Lange, Little and Taylor,
#: 1989, "Robust statistical modeling using the t distribution", JASA 84:881).
STUDENT_DF = 4.0


@dataclass
class Posterior:
    samples: pd.DataFrame           # one row per sample: the free coefficients and log_prob
    provenance: dict = field(default_factory=dict)

    def _rows(self, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, len(self.samples), n)

    def draw(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` coefficient sets drawn from the samples (with replacement), for an ensemble."""
        return (self.samples.drop(columns=["log_prob", DISCREPANCY], errors="ignore")
                .iloc[self._rows(n, seed)].reset_index(drop=True))

    def predictive(self, model: np.ndarray, seed: int = 0) -> np.ndarray:
        """Model values ``[..., n]`` of the ``n`` runs that ``draw(n, seed)`` set up, each times
        ``exp(δ·z)``: the same draw's discrepancy, ``z`` a Student t with ``STUDENT_DF`` degrees of freedom,
        the likelihood's own (one per value, seeded)."""
        model = np.asarray(model, dtype=float)
        delta = self.samples[DISCREPANCY].to_numpy(float)[self._rows(model.shape[-1], seed)]
        z = np.random.default_rng([seed, 1]).standard_t(STUDENT_DF, model.shape)
        return model * np.exp(delta * z)


def targets_hash(scenario: Scenario, until: int | None = None) -> str:
    """A short hash of the observations the posterior saw (targets up to ``until``)."""
    t = _targets(scenario, until)[["id", "year", "metric", "observed", "error", "upper"]]
    return hashlib.sha256(pd.util.hash_pandas_object(t, index=False).values.tobytes()).hexdigest()[:16]


def sample_posterior(scenario: Scenario, walkers: int | None = None, steps: int = 300, seed: int = 0,
                     until: int | None = None, progress: Callable[[int, int], None] | None = None) -> Posterior:
    """Sample the free coefficients' posterior given the targets up to ``until`` (module docstring)."""
    free = list(scenario.model.get("calibration", {}).get("free", []))
    if not free:
        raise InputError("no free coefficients to sample",
                         hint="list them in model.toml: [model.calibration] free = [...]")
    t = _targets(scenario, until)
    defaults = scenario.defaults()
    if not scenario.calibration.get("values"):     # no stored fit: start from the least-squares one
        check_sampler(len(free), walkers, steps)
        defaults.update(calibrate(scenario, until=until).values)
    model = lambda values: bounded(evaluate(scenario, values, until), t)      # a ceiling met costs nothing
    post = sample_with_discrepancy(
        scenario, free, model, t["observed"].to_numpy(float), t["error"].to_numpy(float), defaults, walkers,
        steps, seed, progress, what="calibrate --posterior")
    post.provenance.update({
        "start": "a ball of 0.1% of each range around the stored least-squares fit (or one made first)",
        "targets_until": int(t["year"].max()), "targets": len(t), "targets_hash": targets_hash(scenario, until)})
    return post


def check_sampler(d: int, walkers: int | None, steps: int) -> int:
    """The number of walkers for ``d`` coefficients and the discrepancy (``walkers`` or a default), or an
    InputError for walkers or steps emcee cannot use."""
    if steps < 2:
        raise InputError("--steps must be at least 2")
    walkers = walkers or max(16, 2 * d + 4)
    if walkers < 2 * (d + 1) or walkers % 2:
        raise InputError(f"--walkers must be even and at least twice the {d + 1} sampled values "
                         f"({d} free coefficients and the model discrepancy)", hint=f"e.g. --walkers {max(16, 2 * d + 4)}")
    return walkers


def sample_with_discrepancy(scenario: Scenario, free: list[str], model: Callable[[pd.DataFrame], np.ndarray],
                            observed: np.ndarray, error: np.ndarray, start_values: dict, walkers: int | None,
                            steps: int, seed: int, progress: Callable[[int, int], None] | None,
                            what: str, absolute: np.ndarray | None = None) -> Posterior:
    """emcee over the ``free`` parameters (on :func:`fit_scale`'s scale, uniform there) and the model
    discrepancy δ (log-uniform on ``DISCREPANCY_RANGE``), with the Student-t likelihood of the log misses
    of ``model(values) -> [N, targets]`` against ``observed`` at relative ``error`` (absolute where
    ``absolute``: :func:`log_likelihood`). The walkers start in
    a ball of 0.1% of each range around ``start_values`` (δ at those values' robust spread of misses);
    each step's walkers are one call of ``model``; the first half of the chain is burn-in, and the rest is
    thinned to every (τ/2)-th step, τ the longest autocorrelation time."""
    emcee = require("emcee", extra="inference", what=what)
    d = len(free)                                  # the parameters; δ is dimension d + 1
    walkers = check_sampler(d, walkers, steps)
    xlo, xhi, to_x, from_x, positive = fit_scale(scenario, free)
    xlo, xhi = np.append(xlo, np.log(DISCREPANCY_RANGE[0])), np.append(xhi, np.log(DISCREPANCY_RANGE[1]))
    fit = np.array([start_values[p] for p in free], dtype=float)
    # δ starts where the fit's misses put it: their robust spread (1.48 × the median absolute miss)
    relative = np.ones(len(observed), bool) if absolute is None else ~np.asarray(absolute, bool)
    miss = log_miss(model(pd.DataFrame([fit], columns=free))[0][relative], observed[relative])
    delta0 = 1.4826 * np.median(np.abs(miss)) if len(miss) else 0.1
    centre = np.append(to_x(fit), np.log(np.clip(delta0, *DISCREPANCY_RANGE)))
    rng = np.random.default_rng(seed)
    width = xhi - xlo
    start = np.clip(centre + 1e-3 * width * rng.standard_normal((walkers, d + 1)), xlo + 1e-9 * width,
                    xhi - 1e-9 * width)

    def log_prob(x):                                   # [walkers, d + 1] -> [walkers]
        x = np.atleast_2d(x)
        inside = np.all((x >= xlo) & (x <= xhi), axis=1)
        out = np.full(len(x), -np.inf)
        if inside.any():
            values = pd.DataFrame(from_x(x[inside, :d]), columns=free)
            out[inside] = log_likelihood(model(values), observed, error, np.exp(x[inside, d]), absolute)
        return out

    sampler = emcee.EnsembleSampler(walkers, d + 1, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()     # emcee's own stream, seeded
    for i, _ in enumerate(sampler.sample(start, iterations=steps), start=1):
        if progress:
            progress(i, steps)
    burn = steps // 2
    tau = sampler.get_autocorr_time(discard=burn, quiet=True, tol=0)
    # keep every (τ/2)-th step: neighbours within half an autocorrelation time add little but file size
    thin = max(1, int(np.nanmax(tau) // 2)) if np.isfinite(tau).any() else 1
    chain = sampler.get_chain(discard=burn, thin=thin, flat=True)
    lp = sampler.get_log_prob(discard=burn, thin=thin, flat=True)
    samples = pd.DataFrame(from_x(chain[:, :d]), columns=free)
    samples[DISCREPANCY] = np.exp(chain[:, d])
    samples["log_prob"] = lp
    provenance = {
        "method": f"emcee {emcee.__version__} affine-invariant ensemble sampler (vectorised: one batched "
                  "simulate per step)",
        "likelihood": f"log(modelled/observed) ~ Student-t(df={STUDENT_DF:g}, scale=sqrt(error^2 + discrepancy^2)) "
                      "per observation (its stated relative error; discrepancy shared by every one, sampled)"
                      + ("; observations with absolute errors: modelled - observed ~ Student-t(scale="
                         "sqrt(error^2 + (discrepancy * modelled)^2))" if absolute is not None and np.any(absolute)
                         else ""),
        "prior": {**{p: {"min": float(scenario.parameters[p].min), "max": float(scenario.parameters[p].max),
                         "scale": "log-uniform" if pos else "uniform"} for p, pos in zip(free, positive)},
                  DISCREPANCY: {"min": DISCREPANCY_RANGE[0], "max": DISCREPANCY_RANGE[1], "scale": "log-uniform"}},
        "walkers": int(walkers), "steps": int(steps), "burn_in": int(burn), "thin": int(thin), "seed": int(seed),
        "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
        "autocorrelation_steps": {p: float(v) for p, v in zip([*free, DISCREPANCY], tau)},
        "effective_samples": float(walkers * (steps - burn) / max(float(np.nanmax(tau)), 1.0)),
        "made_on": _dt.date.today().isoformat(),
    }
    return Posterior(samples=samples, provenance=provenance)


#: A parameter the observations constrain: its posterior's 5–95% band is at most this share of its
#: prior's (on the scale it is sampled on) — the data have at least halved what its range left open.
CONSTRAINED_BAND = 0.5


def band_ratio(scenario: Scenario, name: str, values) -> float:
    """A sampled parameter's posterior 5–95% band over its prior's, on the scale it is sampled on
    (:func:`fit_scale`: log where its range is positive), from posterior ``values``."""
    lo, hi, to_x, _, _ = fit_scale(scenario, [name])
    x = to_x(np.asarray(values, dtype=float)[:, None])[:, 0]
    return float((np.quantile(x, 0.95) - np.quantile(x, 0.05)) / (0.9 * (hi[0] - lo[0])))


def band_ratios(scenario: Scenario) -> dict[str, float]:
    """:func:`band_ratio` of every parameter a stored posterior samples: the network's free coefficients
    (``posterior.csv``) and the political constants its history match samples (``history_posterior.csv``)."""
    out = {}
    for samples in (scenario.posterior_samples, scenario.history_posterior_samples):
        if samples is not None:
            for name in samples.columns:
                if name in scenario.parameters:
                    out[name] = band_ratio(scenario, name, samples[name])
    return out


def log_miss(model: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``log(modelled / observed)``, a modelled zero read as 1e-12 (a finite, very large miss)."""
    return np.log(np.maximum(model, 1e-12) / observed)


def log_likelihood(model: np.ndarray, observed: np.ndarray, error: np.ndarray, discrepancy,
                   absolute: np.ndarray | None = None) -> np.ndarray:
    """Σ over targets of the Student-t log-density (``STUDENT_DF``) of each miss (``model``:
    ``[..., targets]``): the log miss with scale ``sqrt(error² + discrepancy²)`` for a relative ``error``;
    where ``absolute``, the plain miss ``model - observed`` with scale ``sqrt(error² + (discrepancy ·
    model)²)`` (a count, which may be zero, has no logarithm). ``discrepancy`` is one value per row."""
    from scipy.special import gammaln

    nu = STUDENT_DF
    delta = np.asarray(discrepancy, dtype=float)[..., None]
    absolute = np.zeros(np.shape(observed), bool) if absolute is None else np.asarray(absolute, bool)
    miss = np.where(absolute, model - observed, log_miss(model, np.where(absolute, 1.0, observed)))
    scale = np.sqrt(error ** 2 + np.where(absolute, delta * model, delta) ** 2)
    norm = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    return np.sum(norm - np.log(scale) - (nu + 1) / 2 * np.log1p((miss / scale) ** 2 / nu), axis=-1)


def predictive_targets(scenario: Scenario, posterior: Posterior, n: int = 100, seed: int = 0,
                       until: int | None = None) -> pd.DataFrame:
    """The targets against ``n`` posterior draws, the model discrepancy included: ``target, metric, year,
    observed, error, bound, median, p5, p95, within`` (``within``: the observation inside the draws' 5–95%
    band widened by its own error; a ceiling, ``bound`` upper, the band reaching below it)."""
    t = _targets(scenario, until)
    observed, error = t["observed"].to_numpy(float), t["error"].to_numpy(float)
    band = predictive_band(posterior, evaluate(scenario, posterior.draw(n, seed), until), observed, error, seed)
    ceiling = t["upper"].to_numpy(bool)
    band["within"] = np.where(ceiling, band["p5"] <= observed * np.exp(Z90 * error), band["within"])
    return pd.DataFrame({"target": t["id"].to_numpy(), "metric": t["metric"].to_numpy(),
                         "year": t["year"].to_numpy(), "observed": observed, "error": error,
                         "bound": np.where(ceiling, UPPER_BOUND, ""), **band})


def predictive_band(posterior: Posterior, model: np.ndarray, observed: np.ndarray, error: np.ndarray,
                    seed: int = 0, absolute: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Model values ``[n, observations]`` of ``posterior.draw(n, seed)``'s runs with the discrepancy
    added: their ``median``, ``p5`` and ``p95``, and ``within``, each observation inside that 5–95% band
    widened by its own error (relative, or absolute where ``absolute``)."""
    model = posterior.predictive(model.T, seed).T
    p5, median, p95 = np.percentile(model, [5, 50, 95], axis=0)
    return {"median": median, "p5": p5, "p95": p95, "within": within_band(observed, p5, p95, error, absolute)}


#: The standard normal's 95th percentile: an observation's own 90% interval is ±1.645 of its error.
Z90 = 1.645


def within_band(observed, p5, p95, error, absolute=None) -> np.ndarray:
    """Each observation inside the 5–95% band widened by its own 90% interval: a relative ``error`` as a
    factor ``exp(±1.645·error)``, an absolute one (where ``absolute``) as ``±1.645·error``."""
    relative = (observed >= p5 * np.exp(-Z90 * error)) & (observed <= p95 * np.exp(Z90 * error))
    if absolute is None:
        return relative
    return np.where(absolute, (observed >= p5 - Z90 * error) & (observed <= p95 + Z90 * error), relative)


def write_posterior(posterior: Posterior, folder: Path, stem: str = "posterior") -> list[Path]:
    """Store the samples (``STEM.csv``) and their provenance (``STEM.toml``) beside the dataset, each
    written atomically."""
    import tomli_w

    folder = Path(folder)
    return [atomic_write(folder / f"{stem}.csv", posterior.samples.to_csv(index=False, float_format="%.10g")),
            atomic_write(folder / f"{stem}.toml", tomli_w.dumps(posterior.provenance))]


def has_stored_posterior(scenario: Scenario) -> bool:
    """Whether the dataset stores a posterior (the network's or its history match's): explorations then
    draw from it unless told ``--from prior``."""
    return scenario.posterior_samples is not None or scenario.history_posterior_samples is not None


def stored_posteriors(scenario: Scenario) -> list[Posterior]:
    """Every posterior the dataset stores — the network's free coefficients given the calibration targets,
    the political register's constants given its history — or an InputError saying how to make one."""
    found = [posterior_of(scenario, stem) for stem, samples in
             (("posterior", scenario.posterior_samples), ("history_posterior", scenario.history_posterior_samples))
             if samples is not None]
    return found or [posterior_of(scenario)]


def posterior_of(scenario: Scenario, stem: str = "posterior") -> Posterior:
    """The dataset's stored posterior (checked at load) — the network's (``posterior``) or the political
    register's history match (``history_posterior``) — or an InputError saying how to make one."""
    samples, provenance, flag = ((scenario.posterior_samples, scenario.posterior_provenance, "--posterior")
                                 if stem == "posterior" else
                                 (scenario.history_posterior_samples, scenario.history_posterior_provenance, "--politics"))
    if samples is None:
        where = scenario.path or scenario.name
        raise InputError(f"'{scenario.name}' has no {stem.replace('_', ' ')} ({stem}.csv)",
                         hint=f"make one: multivector calibrate {where} {flag} --write")
    return Posterior(samples=samples, provenance=provenance)
