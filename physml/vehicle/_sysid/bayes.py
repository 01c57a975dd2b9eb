"""Bayesian identification with numpyro (NUTS): a posterior over physical parameters and an
ExpTanh tyre on each axle, for robust (sampled-model) MPC.

Likelihood: the CoRL 2024 multi-step rollout, as a Gaussian: for fixed training windows k,
y_{k+j} ~ N(ŷ_{k+j}, σ²), j = 1..H, with ŷ rolled out from the measured y_k and σ (per state)
fixed: `noise_std`, default 5% of each state's standard deviation in the log, standing for
sensor noise plus model error (fixed, not learned: see docs/notes/2026-12-01-vehicle-
identification-findings.md). Priors: ExpTanh raw coefficients Normal around the initial model
(a MAP fit from `identify` is the natural centre) with width `prior_scale`; each chosen
vehicle parameter LogNormal around its initial value, 10% spread.
Windows overlap in noise (consecutive states share the measurement of y_k), which makes the
posterior somewhat too narrow; use few, spaced windows (the default takes them ≥ 1 s apart).
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from numpyro.infer import MCMC, NUTS, init_to_median

from ...kernels._validate import check_key
from .._data.log import DriveLog
from .._model.params import VehicleParams
from .._model.single_track import SingleTrackModel, rollout_substeps
from .._tires.exptanh import ExpTanh
from .identify import window_starts


def _apply(model: SingleTrackModel, sample: dict, params: tuple[str, ...]) -> SingleTrackModel:
    model = eqx.tree_at(
        lambda m: (m.front.raw, m.rear.raw, m.rear.raw_c0, m.rear.raw_d),
        model,
        (sample["front_raw"], sample["rear_raw"], sample["rear_raw_c0"], sample["rear_raw_d"]),
    )
    if params:
        model = eqx.tree_at(
            lambda m: [getattr(m.params, p) for p in params], model, [sample[p] for p in params]
        )
    return model


@dataclasses.dataclass
class BayesResult:
    """Posterior samples of `identify_bayes`.

    Attributes:
        samples: dict of arrays with a leading sample axis (front_raw, rear_raw, rear_raw_c0,
            rear_raw_d, each learned vehicle parameter).
        model: the initial model the samples are applied to.
        params: names of the learned vehicle parameters.
        report: wall time, sample counts, divergences.
    """

    samples: dict
    model: SingleTrackModel
    params: tuple[str, ...]
    report: dict

    @property
    def n_samples(self) -> int:
        return int(self.samples["front_raw"].shape[0])

    def sample_model(self, i: int) -> SingleTrackModel:
        """The model of posterior sample i."""
        return _apply(self.model, {k: v[i] for k, v in self.samples.items()}, self.params)

    def predict(
        self,
        y0: Float[ArrayLike, "4"],
        controls: Float[ArrayLike, "steps 2"],
        dt: float,
        *,
        quantiles=(0.05, 0.5, 0.95),
        substeps: int = 2,
    ) -> Array:
        """Posterior-predictive bands of a rollout: (len(quantiles), steps + 1, 4)."""
        y0, controls = jnp.asarray(y0, float), jnp.asarray(controls, float)

        def one(sample):
            m = _apply(self.model, sample, self.params)
            return rollout_substeps(m, y0[None], controls[None], jnp.asarray(dt), "rk4", substeps)[
                0
            ]

        ys = jax.lax.map(one, self.samples)
        return jnp.quantile(ys, jnp.asarray(quantiles), axis=0)


def identify_bayes(
    data: DriveLog,
    model: SingleTrackModel | None = None,
    *,
    key: PRNGKeyArray,
    params: tuple[str, ...] = ("torque_gain",),
    num_warmup: int = 150,
    num_samples: int = 150,
    n_windows: int = 32,
    horizon: int = 10,
    prior_scale: float = 0.3,
    noise_std: ArrayLike | None = None,
    max_tree_depth: int = 8,
    substeps: int = 2,
    progress: bool = True,
) -> BayesResult:
    """Sample the posterior of an ExpTanh single-track model with NUTS (numpyro).

    Args:
        data: a `DriveLog` at a uniform rate.
        model: initial model with `ExpTanh` tyres on both axles (default: defaults); the prior
            is centred on it.
        key: PRNG key.
        params: `VehicleParams` fields to sample (the rest are fixed).
        num_warmup, num_samples: NUTS warm-up and kept samples (defaults sized for a CPU).
        n_windows, horizon: evenly spaced rollout windows and their length [steps].
        prior_scale: std of the Normal prior on the ExpTanh raw coefficients.
        noise_std: (4,) likelihood std of (r, V, β, ω_r) [rad/s, m/s, rad, rad/s]; default 5% of
            each state's standard deviation in `data`.
        max_tree_depth: NUTS tree depth limit (2^depth leapfrog steps per sample at most).
            The chain starts at the prior median (the initial model), not numpyro's default
            uniform draw in unconstrained space, which lands far from any sensible tyre.
        substeps, progress: RK4 substeps per sample step; numpyro progress bar.

    Returns:
        A `BayesResult`.
    """
    if not isinstance(data, DriveLog):
        raise TypeError(f"`data` must be a DriveLog, got {type(data).__name__}.")
    check_key(key)
    model = SingleTrackModel(VehicleParams(), ExpTanh(), ExpTanh()) if model is None else model
    if not (isinstance(model.front, ExpTanh) and isinstance(model.rear, ExpTanh)):
        raise TypeError(
            "`model` must have ExpTanh tyres on both axles, got "
            f"{type(model.front).__name__} and {type(model.rear).__name__}."
        )
    unknown = set(params) - {f.name for f in dataclasses.fields(VehicleParams)}
    if unknown:
        raise ValueError(f"unknown vehicle parameters {sorted(unknown)}.")
    dt = float(np.median(np.diff(data.time_s)))
    starts = window_starts(data.flags, 0, data.n_samples, horizon)
    if starts.size < n_windows:
        raise ValueError(
            f"only {starts.size} unflagged windows of {horizon} steps, "
            f"need n_windows = {n_windows}."
        )
    starts = starts[np.linspace(0, starts.size - 1, n_windows).astype(int)]
    idx = starts[:, None] + np.arange(horizon + 1)[None, :]
    y = jnp.asarray(np.asarray(data.state)[idx])
    u = jnp.asarray(np.asarray(data.control)[idx[:, :-1]])
    if noise_std is None:
        sigma = jnp.asarray(0.05 * np.std(np.asarray(data.state)[data.good], axis=0) + 1e-9)
    else:
        sigma = jnp.broadcast_to(jnp.asarray(noise_std, float), (4,))
        if not bool(jnp.all(sigma > 0)):
            raise ValueError(f"`noise_std` must be > 0, got {noise_std!r}.")

    def numpyro_model():
        sample = {
            "front_raw": numpyro.sample("front_raw", dist.Normal(model.front.raw, prior_scale)),
            "rear_raw": numpyro.sample("rear_raw", dist.Normal(model.rear.raw, prior_scale)),
            "rear_raw_c0": numpyro.sample(
                "rear_raw_c0", dist.Normal(model.rear.raw_c0, prior_scale)
            ),
            "rear_raw_d": numpyro.sample("rear_raw_d", dist.Normal(model.rear.raw_d, prior_scale)),
        }
        for p in params:
            sample[p] = numpyro.sample(p, dist.LogNormal(jnp.log(getattr(model.params, p)), 0.1))
        m = _apply(model, sample, params)
        y_hat = rollout_substeps(m, y[:, 0], u, jnp.asarray(dt), "rk4", substeps)
        numpyro.sample("y", dist.Normal(y_hat[:, 1:], sigma), obs=y[:, 1:])

    start = time.perf_counter()
    mcmc = MCMC(
        NUTS(numpyro_model, max_tree_depth=max_tree_depth, init_strategy=init_to_median),
        num_warmup=num_warmup,
        num_samples=num_samples,
        progress_bar=progress,
    )
    mcmc.run(key)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    extra = mcmc.get_extra_fields()
    report = {
        "wall_time_s": time.perf_counter() - start,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "n_windows": n_windows,
        "horizon": horizon,
        "divergences": int(np.sum(np.asarray(extra.get("diverging", 0)))),
        "noise_std": np.asarray(sigma).tolist(),
    }
    return BayesResult(samples, model, tuple(params), report)
