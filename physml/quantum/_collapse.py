"""Detection of a collapsed sample batch: ψ concentrated on a few configurations that are not
an eigenstate, where Var(E_loc) ≈ 0 whatever the state's true variance.

`VMCObjective` reports it every step as `aux["collapsed"]` (on which `physml.kernels.fit`
stops), `evaluate_energy` on the final estimate. The bound comes from first-order perturbation
theory around an eigenstate (Sakurai & Napolitano, "Modern Quantum Mechanics", §5.1).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

__all__ = ["collapsed_batch", "off_diagonal"]


def off_diagonal(
    hamiltonian: Any, sigma: Array, connected: tuple[Array, Array] | None = None
) -> tuple[Array, Array, Array]:
    """Per configuration σ: H_σσ, Σ_σ'≠σ |H_σ'σ| and Σ_σ'≠σ |H_σ'σ|².

    `connected`: `hamiltonian.get_conn_padded(sigma)` if already computed.
    """
    if connected is None:
        with jax.ensure_compile_time_eval():
            jax.tree_util.tree_leaves(hamiltonian)  # build NetKet's lazy tables from constants
        connected = hamiltonian.get_conn_padded(sigma)
    sigma_p, mels = connected
    off = jnp.any(sigma_p != sigma[:, None, :], axis=-1) & (mels != 0)
    size = jnp.where(off, jnp.abs(mels), 0.0)
    diagonal = jnp.sum(jnp.where(off, 0.0, mels), axis=-1)
    return diagonal, jnp.sum(size, axis=-1), jnp.sum(size**2, axis=-1)


def collapsed_batch(
    model: Any,
    hamiltonian: Any,
    sigma: Array,
    e_loc: Array,
    *,
    rtol: float = 0.1,
    connected: tuple[Array, Array, Array] | None = None,
) -> Bool[Array, ""]:
    """Whether a batch of samples has collapsed: ψ is negligible on every configuration σ' that
    H connects the samples to, far below what any state near an eigenstate would hold there.

    Near an eigenstate, first-order perturbation theory gives |ψ(σ')/ψ(σ)| ≈ |H_σ'σ| / ΔE, with
    ΔE the diagonal gap between σ and σ', so the off-diagonal part of the local energy is
    about Σ_σ'≠σ |H_σ'σ|² / ΔE. The batch has collapsed when it is below `rtol` times that for
    every sample, ΔE bounded above by G = 2|H_σσ| + Σ_σ'≠σ |H_σ'σ|:
    |E_loc(σ) − H_σσ| ≤ `rtol` Σ_σ'≠σ |H_σ'σ|² / G, and, for the first sample σ₀, summed in
    absolute value (no cancellation hides it), Σ_σ'≠σ₀ |H_σ'σ₀ ψ(σ')/ψ(σ₀)| below the same.
    An exact basis-state eigenstate (H diagonal there, e.g. the classical Ising chain) is not
    flagged.

    Args:
        model: the wave function (`log_psi` on spin configurations).
        hamiltonian: a NetKet JAX operator.
        sigma: spin configurations, shape (batch, sites).
        e_loc: their local energies, shape (batch,).
        rtol: the fraction of the smallest perturbative off-diagonal energy below which ψ
            counts as vanishing.
        connected: `(sigma_p, mels, log_ratio0)` already computed with the local energies:
            `hamiltonian.get_conn_padded(sigma)` and log ψ(σ') − log ψ(σ₀) on the first
            sample's connections, shape (conn,); then no network pass is needed here.

    Returns:
        A bool scalar array (jit-friendly).
    """
    if connected is None:
        diagonal, size, size2 = off_diagonal(hamiltonian, sigma)
        s0 = sigma[:1]
        sigma_p0, mels0 = (a[0] for a in hamiltonian.get_conn_padded(s0))
        log_ratio = model.log_psi(sigma_p0) - model.log_psi(s0)[0]
    else:
        sigma_p, mels, log_ratio = connected
        diagonal, size, size2 = off_diagonal(hamiltonian, sigma, (sigma_p, mels))
        sigma_p0, mels0 = sigma_p[0], mels[0]
    bound = rtol * size2 / (2 * jnp.abs(diagonal) + size)
    diagonal_only = jnp.all((size > 0) & (jnp.abs(e_loc - diagonal) <= bound))
    off = jnp.any(sigma_p0 != sigma[0], axis=-1) & (mels0 != 0)
    log_ratio = jnp.real(log_ratio)
    weight = jnp.where(off, jnp.abs(mels0), 0.0)
    leak = jnp.sum(weight * jnp.exp(jnp.where(off, jnp.minimum(log_ratio, 0.0), -jnp.inf)))
    return diagonal_only & (leak <= bound[0])
