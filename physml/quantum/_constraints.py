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
from jaxtyping import Array, Bool, Complex, Float, Inexact, Int, PyTree, Real

from ._flips2d import Transform, check_connected
from ._wavefunction import AbstractAutoregressiveSpinState

__all__ = ["FixedMagnetization"]


class FixedMagnetization(AbstractAutoregressiveSpinState):
    """An autoregressive spin-1/2 state restricted to Σᵢ σᶻᵢ = `magnetization`.

    Attributes:
        model: the wrapped state (an `AbstractAutoregressiveSpinState`, e.g. `ARConv1D` or
            `ARConv2D`).
        magnetization: M = Σᵢ σᵢᶻ in Pauli units (σᶻ = ±1); 0 is the Sᶻ = 0 sector.
        n_up: number of +1 spins, (N + M) / 2.
        up_index: local index of σᶻ = +1.
    """

    model: AbstractAutoregressiveSpinState
    n_sites: int = eqx.field(static=True)
    local_size: int = eqx.field(static=True)
    magnetization: int = eqx.field(static=True)
    n_up: int = eqx.field(static=True)
    up_index: int = eqx.field(static=True)

    def __init__(self, model: Any, *, magnetization: Any = 0):
        if not isinstance(model, AbstractAutoregressiveSpinState):
            raise TypeError(
                "`model` must be an autoregressive spin state (`AbstractAutoregressiveSpinState`, "
                f"e.g. ARConv1D, ARConv2D), got {type(model).__name__}."
            )
        if model.local_size != 2:
            raise ValueError(
                "A fixed magnetisation needs spin-1/2 sites (local_size 2), got "
                f"{model.local_size}."
            )
        states = tuple(model.local_states)
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

    # Delegated conventions (spin values, real or complex ψ, dtype).
    @property
    def local_states(self) -> tuple[float, ...]:
        return self.model.local_states

    @property
    def positive(self) -> bool:
        return self.model.positive

    @property
    def dtype(self) -> Any:
        return self.model.dtype

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

    def log_amplitudes(
        self, x: Int[Array, "batch sites"], *, per_sample: bool = False
    ) -> tuple[Float[Array, "batch sites 2"], Float[Array, "batch sites 2"] | None]:
        """The wrapped log-moduli with forced conditionals replaced (log 1 = 0, log 0 = −inf);
        the phases are the wrapped model's. `per_sample` is passed on."""
        log_mod, phase = self.model.log_amplitudes(x, per_sample=per_sample)
        return 0.5 * jax.vmap(self._masked)(x, 2 * log_mod), phase

    def log_psi(
        self, sigma: Float[Array, "*batch sites"], *, per_sample: bool = False
    ) -> Float[Array, "*batch"] | Complex[Array, "*batch"]:
        """log ψ̃(σ): the wrapped log ψ with forced conditionals replaced (−inf off the sector).

        `per_sample` is passed to the wrapped model's `log_amplitudes`."""
        if sigma.shape[-1] != self.n_sites:
            raise ValueError(
                f"`sigma` has {sigma.shape[-1]} sites on its last axis, the model {self.n_sites}."
            )
        batch = sigma.shape[:-1]
        x = self.to_indices(sigma.reshape(-1, self.n_sites))
        log_mod, phase = self.log_amplitudes(x, per_sample=per_sample)
        pick = lambda t: jnp.take_along_axis(t, x[..., None], axis=-1)[..., 0].sum(-1)
        out = pick(log_mod) if phase is None else jax.lax.complex(pick(log_mod), pick(phase))
        return out.reshape(batch)

    # ----- connected configurations (local energies) ------------------------------------------

    @property
    def has_connected_path(self) -> bool:
        """Whether the wrapped model has an incremental `log_psi_connected` (e.g. `ARConv2D`)."""
        return bool(getattr(self.model, "has_connected_path", False))

    def log_psi_connected(
        self,
        sigma: Real[Array, "batch sites"],
        sigma_p: Real[Array, "batch conn sites"],
        *,
        active: Bool[Array, "batch conn"] | None = None,
        transform: Transform | None = None,
        max_configurations: int | None = None,
    ) -> tuple[Inexact[Array, " batch"], Inexact[Array, "batch conn"]]:
        """log ψ̃(σ) and log ψ̃(σ'_k) through the wrapped model's incremental path, with the
        forced conditionals as a per-site rewrite of its log-moduli (then `transform`, if any).
        Arguments as `ARConv2D.log_psi_connected`; `log_psi` is the reference."""
        if not self.has_connected_path:
            raise TypeError(
                f"The wrapped {type(self.model).__name__} has no incremental `log_psi_connected`; "
                "use `log_psi` on the connected configurations (local_energies(..., "
                "incremental=False))."
            )
        check_connected(self.n_sites, sigma, sigma_p, active)

        def masked(x: Array, log_mod: Array) -> Array:
            log_mod = 0.5 * jax.vmap(self._masked)(x, 2 * log_mod)
            return log_mod if transform is None else transform(x, log_mod)

        return self.model.log_psi_connected(
            sigma, sigma_p, active=active, transform=masked, max_configurations=max_configurations
        )

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
