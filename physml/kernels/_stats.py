"""Monte Carlo estimates as PyTrees: mean, error of the mean, variance, sample count, and the
integrated autocorrelation time.

Conventions:
- `variance` is the unbiased sample variance of the modulus, Σ|x − x̄|² / (n − 1); for complex
  values the mean keeps its imaginary part (a non-zero Im⟨E_loc⟩ signals a non-Hermitian
  estimator or too few samples).
- `tau_corr` is the integrated autocorrelation time τ = 1 + 2 Σ_{t≥1} ρ(t) (Geyer's "statistical
  inefficiency"): the effective sample size is n / τ and the error of the mean is
  √(variance · τ / n). Independent samples (exact sampling) have τ = 1.
- For correlated chains, ρ(t) is summed up to Sokal's automatic window: the smallest W with
  W ≥ c·τ(W), c = 5 (A. Sokal, "Monte Carlo methods in statistical mechanics: foundations and
  new algorithms", Cargèse lectures 1996, Sec. 3).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Shaped


class Stats(eqx.Module):
    """A Monte Carlo estimate. All fields are arrays, so a `Stats` passes through `jit`."""

    mean: Inexact[Array, ""]
    error_of_mean: Inexact[Array, ""]
    variance: Inexact[Array, ""]
    n_samples: Shaped[Array, ""]
    tau_corr: Inexact[Array, ""]

    def to_dict(self) -> dict[str, float]:
        """Plain floats (host side). A complex mean gives `mean` and `mean_imag`."""
        mean = complex(np.asarray(self.mean))
        out = {"mean": mean.real}
        if np.iscomplexobj(np.asarray(self.mean)):
            out["mean_imag"] = mean.imag
        out.update(
            error_of_mean=float(np.asarray(self.error_of_mean)),
            variance=float(np.asarray(self.variance)),
            n_samples=int(np.asarray(self.n_samples)),
            tau_corr=float(np.asarray(self.tau_corr)),
        )
        return out

    def __str__(self) -> str:
        try:
            d = self.to_dict()
        except Exception:  # traced values have no concrete numbers
            return "Stats(<traced>)"
        imag = f"{d['mean_imag']:+.1e}j" if "mean_imag" in d else ""
        return (
            f"{d['mean']:.8g}{imag} ± {d['error_of_mean']:.2g} "
            f"[σ²={d['variance']:.3g}, n={d['n_samples']}, τ={d['tau_corr']:.2g}]"
        )


def _real_dtype(x: Array):
    return jnp.finfo(x.dtype).dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32


def _autocorr(x: Array) -> Array:
    """Normalised autocorrelation ρ(t), averaged over chains; x has shape (chains, steps)."""
    n = x.shape[1]
    xc = x - jnp.mean(x, axis=1, keepdims=True)
    size = 2 * n  # zero padding: linear, not circular, correlation
    f = jnp.fft.fft(xc, n=size, axis=1)
    acov = jnp.fft.ifft(f * jnp.conj(f), axis=1)[:, :n].real / n
    acov = jnp.mean(acov, axis=0)
    return acov / jnp.where(acov[0] > 0, acov[0], 1.0)


def _tau_sokal(rho: Array, c: float = 5.0) -> Array:
    taus = 1.0 + 2.0 * jnp.cumsum(rho[1:])  # τ(W) for W = 1, 2, …
    windows = jnp.arange(1, rho.shape[0])
    ok = windows >= c * taus
    w = jnp.where(jnp.any(ok), jnp.argmax(ok), taus.shape[0] - 1)
    return jnp.maximum(taus[w], 1.0) if taus.shape[0] else jnp.ones(())


def estimate(values: ArrayLike, *, chains: bool = False) -> Stats:
    """Estimate the mean of `values` with its statistical error.

    Args:
        values: samples. With `chains=False` (independent samples, e.g. exact sampling) any
            shape; all entries are pooled. With `chains=True`, shape (n_chains, n_steps) of
            time-ordered chains, and τ is estimated from their autocorrelation.
        chains: see above.

    Returns:
        A `Stats`; NaN or inf in `values` propagate into it (callers check finiteness).
    """
    x = jnp.asarray(values)
    if chains:
        if x.ndim != 2:
            raise ValueError(
                f"With `chains=True`, `values` must have shape (n_chains, n_steps), got {x.shape}."
            )
    else:
        x = x.reshape(-1)
    n = x.size
    if n < 2:
        raise ValueError(f"`values` must hold at least 2 samples, got {n}.")
    mean = jnp.mean(x)
    var = jnp.sum(jnp.abs(x - mean) ** 2) / (n - 1)
    if chains and x.shape[1] > 1:
        rho_r = _autocorr(x.real)
        if jnp.iscomplexobj(x):
            # Autocorrelation of the modulus fluctuation: Re and Im parts weighted by variance.
            var_r, var_i = jnp.var(x.real), jnp.var(x.imag)
            rho_i = _autocorr(x.imag)
            rho_r = (var_r * rho_r + var_i * rho_i) / jnp.maximum(var_r + var_i, 1e-300)
        tau = _tau_sokal(rho_r)
    else:
        tau = jnp.ones((), _real_dtype(var))
    err = jnp.sqrt(var * tau / n)
    return Stats(
        mean=mean,
        error_of_mean=err,
        variance=var,
        n_samples=jnp.asarray(n),
        tau_corr=jnp.asarray(tau, dtype=var.dtype),
    )


def tree_all_finite(tree) -> Array:
    """A scalar bool: every inexact leaf of `tree` is finite (usable inside `jit`)."""
    leaves = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree_util.tree_leaves(tree)
        if eqx.is_inexact_array(leaf)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)
