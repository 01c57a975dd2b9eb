"""Variational Monte Carlo with exact autoregressive samples: local energies, the energy
estimate and its gradient, as an objective for `physml.kernels.fit`.

For a normalised ψ with real parameters θ and exact samples σ ~ |ψ|²:

    E_loc(σ) = Σ_σ' H_σσ' ψ(σ')/ψ(σ),     E = ⟨E_loc⟩,
    ∂E/∂θ_k  = 2 Re ⟨(E_loc − E)* O_k⟩,   O_k(σ) = ∂ log ψ(σ) / ∂θ_k

(Becca & Sorella, "Quantum Monte Carlo Approaches for Correlated Systems", CUP 2017, ch. 6).
The gradient is taken as the derivative of the surrogate 2 Re ⟨stop_grad(E_loc − E)* log ψ⟩,
which has exactly this derivative; no Markov chain means no correction term.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jaxtyping import Array, Inexact, Real

from ..kernels import AbstractAutoregressiveModel, AbstractObjective, estimate, sample
from ._arconv import ARConv1D
from ._flips import log_psi_single_flips

__all__ = ["VMCObjective", "check_compatible", "local_energies"]


def check_compatible(hamiltonian: Any, model: Any) -> None:
    """Raise a clear error if `model` cannot represent states of `hamiltonian`'s Hilbert space."""
    if not isinstance(hamiltonian, nk.operator.DiscreteJaxOperator):
        hint = ""
        if isinstance(hamiltonian, nk.operator.DiscreteOperator) and hasattr(
            hamiltonian, "to_jax_operator"
        ):
            hint = " Call `.to_jax_operator()` on it first."
        raise TypeError(
            "`hamiltonian` must be a NetKet JAX operator (`DiscreteJaxOperator`, e.g. from "
            f"`physml.quantum.tfim`), got {type(hamiltonian).__name__}.{hint}"
        )
    if not (
        isinstance(model, AbstractAutoregressiveModel)
        and hasattr(model, "log_psi")
        and hasattr(model, "to_spins")
    ):
        raise TypeError(
            "`model` must be an autoregressive wave function with `log_psi` and `to_spins` "
            f"(e.g. `physml.quantum.ARConv1D`), got {type(model).__name__}."
        )
    hilbert = hamiltonian.hilbert
    if not isinstance(hilbert, nk.hilbert.Spin) or hilbert.local_size != 2:
        raise ValueError(
            "The model represents spin-1/2 chains; `hamiltonian` acts on "
            f"{hilbert!r}. Use `nk.hilbert.Spin(0.5, N)`."
        )
    if hilbert.constrained:
        raise ValueError(
            f"`hamiltonian` acts on a constrained Hilbert space {hilbert!r} (e.g. fixed total "
            "Sᶻ); exact autoregressive sampling covers the full space. Build the operator on "
            "`nk.hilbert.Spin(0.5, N)` without `total_sz`."
        )
    if hilbert.size != model.n_sites:
        raise ValueError(
            f"Size mismatch: `hamiltonian` acts on {hilbert.size} sites but `model` has "
            f"n_sites={model.n_sites}."
        )
    states = tuple(float(s) for s in np.asarray(hilbert.local_states))
    if states != model.local_states:
        raise ValueError(
            f"The Hilbert space's local states {states} differ from the model's "
            f"`local_states`={model.local_states}; build the model with local_states={states}."
        )


def local_energies(
    model: AbstractAutoregressiveModel,
    hamiltonian: Any,
    sigma: Real[Array, "batch sites"],
    log_psi: Inexact[Array, " batch"] | None = None,
    *,
    single_flip: bool | None = None,
) -> Inexact[Array, " batch"]:
    """E_loc(σ) = Σ_σ' H_σσ' ψ(σ')/ψ(σ) for a batch of spin configurations (jit-friendly).

    Args:
        model: the wave function.
        hamiltonian: a NetKet JAX operator on the same Hilbert space.
        sigma: spin configurations (values in `model.local_states`).
        log_psi: `model.log_psi(sigma)` if already computed.
        single_flip: the operator connects σ only to σ itself and single-spin flips (TFIM):
            evaluate ψ(σ') by propagating the flip through the network's receptive field
            (`log_psi_single_flips`, same values, ~N/R times less work). `None`: on for NetKet's
            `IsingJax`. A violation is reported by `eqx.error_if` at run time.

    Returns:
        Local energies (complex for a complex ψ; real for a positive ψ and a real operator).
        Padding entries of `get_conn_padded` (zero matrix elements) contribute exactly 0.
    """
    if single_flip is None:
        # The receptive-field shortcut is specific to the 1D masked convolutions.
        single_flip = isinstance(hamiltonian, nk.operator.IsingJax) and isinstance(model, ARConv1D)
    sigma_p, mels = hamiltonian.get_conn_padded(sigma)
    if single_flip:
        log_psi, log_psi_flips = log_psi_single_flips(model, sigma)
        changed = sigma_p != sigma[:, None, :]
        n_changed = jnp.sum(changed, axis=-1)
        flipped = jnp.take_along_axis(log_psi_flips, jnp.argmax(changed, axis=-1), axis=1)
        log_psi_p = jnp.where(n_changed == 0, log_psi[:, None], flipped)
        log_psi_p = eqx.error_if(
            log_psi_p,
            jnp.any((n_changed > 1) & (mels != 0)),
            "`single_flip=True` but the Hamiltonian connects configurations that differ in "
            "more than one site; use `single_flip=False`.",
        )
    else:
        if log_psi is None:
            log_psi = model.log_psi(sigma)
        log_psi_p = model.log_psi(sigma_p)
    ratio = jnp.exp(log_psi_p - log_psi[:, None])
    # A zero matrix element times an overflowing ratio must give 0, not NaN.
    terms = jnp.where(mels != 0, mels * jnp.where(mels != 0, ratio, 0), 0)
    return jnp.sum(terms, axis=-1)


class VMCObjective(AbstractObjective):
    """The variational energy ⟨H⟩ of an `ARConv1D` estimated from `n_samples` exact samples.

    `aux` holds the samples ("sigma", spin values), their local energies ("e_loc") and the
    metrics logged each step: the imaginary part of the energy for a complex ψ, and the number
    of non-finite local energies.
    """

    hamiltonian: Any
    n_samples: int = eqx.field(static=True)

    def __check_init__(self):
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int):
            raise TypeError(f"`n_samples` must be an int, got {self.n_samples!r}.")
        if self.n_samples < 2:
            raise ValueError(f"`n_samples` must be >= 2 for an error bar, got {self.n_samples}.")

    def value_and_grad(self, model: AbstractAutoregressiveModel, key: Any):
        x, _ = sample(model, self.n_samples, key=key, shard=False)
        sigma = model.to_spins(x)
        e_loc = local_energies(model, self.hamiltonian, sigma)
        stats = estimate(e_loc)
        delta = jax.lax.stop_gradient(e_loc - stats.mean)

        def surrogate(m):
            return 2 * jnp.mean(jnp.real(jnp.conj(delta) * m.log_psi(sigma)))

        grads = eqx.filter_grad(surrogate)(model)
        metrics = {"n_nonfinite_e_loc": jnp.sum(~jnp.isfinite(e_loc))}
        return stats, grads, {"sigma": sigma, "e_loc": e_loc, "metrics": metrics}
