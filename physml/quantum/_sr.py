"""Stochastic reconfiguration (natural gradient for VMC) as a preconditioner for `fit`.

With real parameters θ, log-derivatives O_k(σ) = ∂ log ψ(σ)/∂θ_k and n exact samples, let X be
the real (m × P) matrix of centred, scaled log-derivatives, stacking real and imaginary parts
(m = n for a positive ψ, 2n otherwise), and ε the matching vector of centred local energies:

    X = [Re ΔO; Im ΔO] / √n,   ε = [Re ΔE_loc; Im ΔE_loc] / √n,
    S = XᵀX = Re⟨ΔO* ΔO⟩,      F = Xᵀε = Re⟨ΔO* ΔE_loc⟩ = ½ ∂E/∂θ.

The update direction is δ = (S + λI)⁻¹ F (Sorella, PRL 80, 4558 (1998); Becca & Sorella 2017,
ch. 6). By the push-through identity it equals δ = Xᵀ (XXᵀ + λI)⁻¹ ε, an m × m solve: the
"minSR" form (Chen & Heyl, Nat. Phys. 20, 1476 (2024); Rende et al., Commun. Phys. 7, 260 (2024)),
used when m < P. Both are solved by Cholesky; λ > 0 keeps them positive definite.

Use with plain gradient descent, e.g. `optax.sgd(0.05)`: θ ← θ − η δ is an imaginary-time step.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.flatten_util import ravel_pytree

from ..kernels import AbstractPreconditioner

__all__ = ["SR"]


class SR(AbstractPreconditioner):
    """Stochastic reconfiguration with a diagonal shift.

    Attributes:
        diag_shift: λ > 0 added to the diagonal of S (or of XXᵀ in sample space).
        mode: "auto" (sample space when m < P), "sample" or "params".

    Needs `aux["sigma"]` and `aux["e_loc"]` from `VMCObjective`; preconditions all inexact
    arrays of the model (train all of them when using SR).
    """

    diag_shift: float = 1e-3
    mode: str = eqx.field(static=True, default="auto")

    def __check_init__(self):
        if not float(self.diag_shift) > 0:
            raise ValueError(f"`diag_shift` must be > 0, got {self.diag_shift!r}.")
        if self.mode not in ("auto", "sample", "params"):
            raise ValueError(f"`mode` must be 'auto', 'sample' or 'params', got {self.mode!r}.")

    def init(self, params):
        return None

    def __call__(self, grads, state, model, aux):
        params, static = eqx.partition(model, eqx.is_inexact_array)
        flat, unravel = ravel_pytree(params)
        sigma, e_loc = aux["sigma"], aux["e_loc"]
        n = sigma.shape[0]

        def log_psi_one(p, s):
            return eqx.combine(unravel(p), static).log_psi(s[None], per_sample=True)[0]

        # Per-sample log-derivatives O(σ) as rows; a positive ψ has no imaginary part.
        grad_re = jax.grad(lambda p, s: jnp.real(log_psi_one(p, s)))
        jac = [jax.vmap(grad_re, in_axes=(None, 0))(flat, sigma)]
        if not model.positive:
            grad_im = jax.grad(lambda p, s: jnp.imag(log_psi_one(p, s)))
            jac.append(jax.vmap(grad_im, in_axes=(None, 0))(flat, sigma))
        jac = jnp.stack(jac, axis=1)  # (n, parts, P)
        parts = jac.shape[1]
        d_e = e_loc - jnp.mean(e_loc)
        eps = jnp.stack([jnp.real(d_e), jnp.imag(d_e)], axis=1)[:, :parts]
        X = (jac - jnp.mean(jac, axis=0)).reshape(n * parts, -1) / jnp.sqrt(n)
        eps = eps.reshape(-1).astype(X.dtype) / jnp.sqrt(n)
        m, P = X.shape
        lam = jnp.asarray(self.diag_shift, X.dtype)
        use_sample = self.mode == "sample" or (self.mode == "auto" and m < P)
        if use_sample:
            T = X @ X.T + lam * jnp.eye(m, dtype=X.dtype)
            delta = X.T @ jsl.cho_solve(jsl.cho_factor(T), eps)
        else:
            S = X.T @ X + lam * jnp.eye(P, dtype=X.dtype)
            delta = jsl.cho_solve(jsl.cho_factor(S), X.T @ eps)
        out = unravel(delta)
        return jax.tree.map(lambda g, d: d, grads, out, is_leaf=lambda x: x is None), state
