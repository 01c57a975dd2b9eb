"""Fixed total magnetisation by conditional masking, for any autoregressive spin-1/2 model.

With N sites and a fixed Σᵢ σᶻᵢ = M (Pauli units; M = 0 is Sᶻ = 0), n↑ = (N + M)/2 spins are
up and n↓ = N − n↑ down. Walking the sites in order, once n↑ ups (or n↓ downs) have been placed
every remaining conditional is forced to the other value:

    p̃(σᵢ | σ_<i) = p(σᵢ | σ_<i)  while both values are still possible,
                 = 1 for the only possible value, 0 for the other, otherwise.

p̃ is again a product of normalised conditionals, now supported on the fixed-M sector only, so
Σ_{σ: Σσ = M} |ψ̃(σ)|² = 1 and ancestral sampling stays exact (Sharir et al., PRL 124, 020503
(2020), used this for the Heisenberg model). The phase of ψ is unchanged.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Complex, Float, Int, PyTree

from ..kernels import AbstractAutoregressiveModel

__all__ = ["FixedMagnetization"]


class FixedMagnetization(AbstractAutoregressiveModel):
    """An autoregressive spin-1/2 model restricted to Σᵢ σᶻᵢ = `magnetization`.

    Attributes:
        model: the wrapped model (an `AbstractAutoregressiveModel` with `log_psi`, `to_spins`,
            `to_indices`, `local_states`, e.g. `ARConv1D` or `ARConv2D`).
        magnetization: M = Σᵢ σᵢᶻ in Pauli units (σᶻ = ±1); 0 is the Sᶻ = 0 sector.
        n_up: number of +1 spins, (N + M) / 2.
        up_index: local index of σᶻ = +1.
    """

    model: AbstractAutoregressiveModel
    n_sites: int = eqx.field(static=True)
    local_size: int = eqx.field(static=True)
    magnetization: int = eqx.field(static=True)
    n_up: int = eqx.field(static=True)
    up_index: int = eqx.field(static=True)

    def __init__(self, model: Any, *, magnetization: Any = 0):
        if not isinstance(model, AbstractAutoregressiveModel):
            raise TypeError(
                "`model` must be an `AbstractAutoregressiveModel` (e.g. ARConv1D, ARConv2D), got "
                f"{type(model).__name__}."
            )
        if model.local_size != 2:
            raise ValueError(
                "A fixed magnetisation needs spin-1/2 sites (local_size 2), got "
                f"{model.local_size}."
            )
        states = tuple(getattr(model, "local_states", (1.0, -1.0)))
        if sorted(states) != [-1.0, 1.0]:
            raise ValueError(f"The model's local states must be ±1 (Pauli units), got {states}.")
        if isinstance(magnetization, bool) or not isinstance(magnetization, (int, np.integer)):
            raise TypeError(
                f"`magnetization` must be an int (Σσᶻ = ±1 each), got {magnetization!r}."
            )
        n = model.n_sites
        if (n + magnetization) % 2 or abs(magnetization) > n:
            raise ValueError(
                f"Σσᶻ = {magnetization} is impossible on {n} sites of σᶻ = ±1: it needs "
                f"|M| <= N and N + M even"
                + (" (Sᶻ = 0 needs an even number of sites)." if magnetization == 0 else ".")
            )
        self.model, self.n_sites, self.local_size = model, n, 2
        self.magnetization = int(magnetization)
        self.n_up = (n + self.magnetization) // 2
        self.up_index = states.index(1.0)

    # Delegated conventions (spin values <-> indices, real or complex ψ).
    @property
    def local_states(self) -> tuple[float, ...]:
        return self.model.local_states

    @property
    def positive(self) -> bool:
        return self.model.positive

    def to_indices(self, sigma: Float[Array, "*shape"]) -> Int[Array, "*shape"]:
        return self.model.to_indices(sigma)

    def to_spins(self, x: Int[Array, "*shape"]) -> Float[Array, "*shape"]:
        return self.model.to_spins(x)

    # ----- masking -----------------------------------------------------------------------------

    def _allowed(self, n_up_before: Int[Array, "*b"], i: Int[Array, "*b"]) -> Bool[Array, "*b 2"]:
        n_up_before, i = n_up_before.astype(jnp.int32), jnp.asarray(i).astype(jnp.int32)
        can_up = n_up_before < self.n_up
        can_down = (i - n_up_before) < (self.n_sites - self.n_up)
        return jnp.stack([can_up, can_down] if self.up_index == 0 else [can_down, can_up], -1)

    @staticmethod
    def _mask(logp: Float[Array, "*b 2"], allowed: Bool[Array, "*b 2"]) -> Float[Array, "*b 2"]:
        # Both allowed: unchanged. One allowed: forced, log 1 = 0 and log 0 = −inf.
        forced = jnp.where(allowed, jnp.zeros_like(logp), -jnp.inf)
        return jnp.where(jnp.all(allowed, -1, keepdims=True), logp, forced)

    def _masked(self, x: Int[Array, " sites"], logp: Float[Array, "sites 2"]) -> Array:
        is_up = (x == self.up_index).astype(jnp.int32)
        n_up_before = jnp.cumsum(is_up) - is_up
        return self._mask(logp, self._allowed(n_up_before, jnp.arange(self.n_sites)))

    def conditionals(self, x: Int[Array, " sites"]) -> Float[Array, "sites local"]:
        """The wrapped model's conditionals, forced once n↑ ups or n↓ downs are placed."""
        return self._masked(x, self.model.conditionals(x))

    def log_psi(
        self, sigma: Float[Array, "*batch sites"], *, per_sample: bool = False
    ) -> Float[Array, "*batch"] | Complex[Array, "*batch"]:
        """log ψ̃(σ): the wrapped log ψ with forced conditionals replaced (−inf off the sector).

        `per_sample` is accepted for `SR`'s interface; the values do not depend on it."""
        if sigma.shape[-1] != self.n_sites:
            raise ValueError(
                f"`sigma` has {sigma.shape[-1]} sites on its last axis, the model {self.n_sites}."
            )
        batch = sigma.shape[:-1]
        flat = sigma.reshape(-1, self.n_sites)
        x = self.to_indices(flat)
        pick = lambda t: jnp.take_along_axis(t, x[..., None], axis=-1)[..., 0].sum(-1)
        if hasattr(self.model, "log_amplitudes"):  # one pass: moduli and phases per site
            log_mod, phase = self.model.log_amplitudes(x, per_sample=per_sample)
            out = 0.5 * pick(jax.vmap(self._masked)(x, 2 * log_mod))
            if phase is not None:
                out = jax.lax.complex(out, pick(phase))
        else:  # any model with `log_psi`: correct it by the forced conditionals
            raw = jax.vmap(self.model.conditionals)(x)
            masked = jax.vmap(self._masked)(x, raw)
            # masked − raw is 0 where nothing was forced, −inf only off the sector.
            delta = jnp.where(jnp.isneginf(masked), -jnp.inf, masked - raw)
            out = self.model.log_psi(flat) + 0.5 * pick(delta)
        return out.reshape(batch)

    # ----- cached path -------------------------------------------------------------------------

    def init_cache(self) -> PyTree:
        """The wrapped model's cache and the number of ups placed so far."""
        return (self.model.init_cache(), jnp.zeros((), jnp.int32))

    def conditional_step(
        self, cache: PyTree, i: Int[Array, ""], x_prev: Int[Array, ""]
    ) -> tuple[Float[Array, " local"], PyTree]:
        inner, n_up = cache
        logp, inner = self.model.conditional_step(inner, i, x_prev)
        n_up = n_up + ((i > 0) & (x_prev == self.up_index)).astype(jnp.int32)
        return self._mask(logp, self._allowed(n_up, i)), (inner, n_up)
