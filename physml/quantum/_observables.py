"""Observables estimated from exact samples σ ~ |ψ|² (diagonal in the σᶻ basis).

Spin values are σᶻ = ±1 (Pauli units), as NetKet's `Spin(1/2)`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..kernels import Stats, estimate
from ..kernels._validate import check_key, check_positive_int
from ._wavefunction import AbstractSpinState, check_spin_state

__all__ = ["correlations", "magnetization", "sample_spins"]


def sample_spins(
    model: AbstractSpinState, n_samples: int, *, key: Any
) -> Float[Array, "batch sites"]:
    """`n_samples` exact samples of |ψ|² as spin values (e.g. ±1), by `model.sample`."""
    check_spin_state(model)
    x = model.sample(check_positive_int(n_samples, "n_samples"), key=check_key(key))
    return model.to_spins(x)


def magnetization(sigma: Float[Array, "batch sites"], *, absolute: bool = True) -> Stats:
    """Magnetisation per site m = (1/N) Σ_i σᶻ_i, estimated over samples.

    With `absolute=True` (default) the estimate is of ⟨|m|⟩, the order parameter of a finite
    system whose ⟨m⟩ vanishes by the Z₂ symmetry.
    """
    m = jnp.mean(sigma, axis=-1)
    return estimate(jnp.abs(m) if absolute else m)


def correlations(sigma: Float[Array, "batch sites"]) -> tuple[Array, Array]:
    """Translation-averaged σᶻσᶻ correlation C(r) = (1/N) Σ_i ⟨σᶻ_i σᶻ_{i+r}⟩ (periodic index).

    Returns:
        `(C, error)`, each of shape (N,), for distances r = 0 … N−1 (C(0) = 1).
    """
    n = sigma.shape[-1]

    def at(r):
        return jnp.mean(sigma * jnp.roll(sigma, -r, axis=-1), axis=-1)

    per_sample = jax.vmap(at, out_axes=1)(jnp.arange(n))  # (batch, N)
    stats = jax.vmap(estimate, in_axes=1)(per_sample)
    return stats.mean, stats.error_of_mean
