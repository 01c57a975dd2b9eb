"""The interface of physml's spin wave functions, which VMC relies on.

A configuration is given either as spin values σ (σᶻ in Pauli units, what `log_psi` and NetKet
operators take) or as local-state indices x ∈ {0, 1} (what samplers draw), index 0 ↔
`local_states[0]`.

- `AbstractSpinState`: a normalised wave function ψ(σ) on `n_sites` spin-1/2 sites whose |ψ|² is
  sampled exactly, with no Markov chain (e.g. `Symmetrized`).
- `AbstractAutoregressiveSpinState`: ψ(σ) = Π_i ψ_i(σ_i | σ_<i) with Σ_s |ψ_i(s | σ_<i)|² = 1
  (Sharir et al., PRL 124, 020503 (2020), eq. 2), sampled site by site by
  `physml.kernels.sample` (e.g. `FixedMagnetization`).
- `AbstractTwoStateNetwork`: an autoregressive network whose last layer is a 1×1 head to two
  log-moduli a_i(s) per site, and two phases φ_i(s) unless `positive` (`ARConv1D`, `ARConv2D`):

      log |ψ_i(s)| = a_i(s) − ½ logsumexp_t 2 a_i(t),    arg ψ_i(s) = φ_i(s).
"""

# No `from __future__ import annotations` here: equinox recognises `AbstractVar` only in
# evaluated annotations; as strings they would silently become dataclass fields.
import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Inexact, Int, Real

from ..kernels import AbstractAutoregressiveModel, sample
from ..kernels._validate import check_key

__all__ = [
    "AbstractAutoregressiveSpinState",
    "AbstractSpinState",
    "AbstractTwoStateNetwork",
    "check_spin_state",
]


class AbstractSpinState(eqx.Module):
    """A normalised spin-1/2 wave function whose |ψ|² is sampled exactly.

    Attributes:
        n_sites: number of sites N.
        local_states: σᶻ value of each local index (two distinct values; (+1, −1) as NetKet's
            `Spin(1/2)`).
        positive: whether ψ is real and positive (`log_psi` real; complex otherwise).
        magnetization: Σᵢσᶻᵢ (Pauli units) of every configuration where ψ ≠ 0, or None when ψ
            covers all 2^N configurations.
        dtype: floating dtype of the spin values `to_spins` returns (that of the parameters).
        passes_per_configuration: network passes one configuration's `log_psi` costs (|G| for
            a state averaged over a group G); `local_energies` sizes its chunks by it.
    """

    n_sites: eqx.AbstractVar[int]
    local_states: eqx.AbstractVar[tuple[float, ...]]
    positive: eqx.AbstractVar[bool]
    magnetization: eqx.AbstractVar[int | None]
    dtype: eqx.AbstractVar[Any]
    passes_per_configuration: eqx.AbstractVar[int]

    @abc.abstractmethod
    def log_psi(
        self, sigma: Real[Array, "*batch sites"], *, per_sample: bool = False
    ) -> Inexact[Array, "*batch"]:
        """log ψ(σ) for spin configurations σ (values in `local_states`), any leading batch shape:
        real if `positive`, complex otherwise, −inf where ψ(σ) = 0.

        `per_sample=True` (what `SR` passes when it vmaps per-sample gradients) asks for the same
        values in a form whose gradient stays cheap under `vmap`.
        """

    @abc.abstractmethod
    def sample(self, n_samples: int, *, key: Any, shard: bool = True) -> Int[Array, "batch sites"]:
        """`n_samples` exact, independent samples of |ψ|² as local-state indices (int32).

        `shard`: split the batch over all devices when their number divides `n_samples`; the
        samples do not depend on it.
        """

    def to_indices(self, sigma: Real[Array, "*shape"]) -> Int[Array, "*shape"]:
        """Local-state indices of spin values (index 0 ↔ `local_states[0]`)."""
        return (sigma != self.local_states[0]).astype(jnp.int32)

    def to_spins(self, x: Int[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Spin values of local-state indices, in `dtype`."""
        return jnp.asarray(self.local_states, self.dtype)[x]


class AbstractAutoregressiveSpinState(AbstractSpinState, AbstractAutoregressiveModel):
    """An autoregressive spin-1/2 wave function: a product of normalised conditionals, so that
    |ψ|² is an `AbstractAutoregressiveModel` (`conditionals` = 2 log |ψ_i|) sampled exactly,
    site by site, by `physml.kernels.sample`. One network pass per configuration.
    """

    @abc.abstractmethod
    def log_amplitudes(
        self, x: Int[Array, "batch sites"], *, per_sample: bool = False
    ) -> tuple[Float[Array, "batch sites local"], Float[Array, "batch sites local"] | None]:
        """Per site and local state, from one pass: log |ψ_i(s | x_<i)| (−inf where a state is
        excluded) and the phase φ_i(s), or None if `positive`. `per_sample` as in `log_psi`."""

    @property
    def passes_per_configuration(self) -> int:
        return 1

    def sample(self, n_samples: int, *, key: Any, shard: bool = True) -> Int[Array, "batch sites"]:
        """`n_samples` exact samples of |ψ|² as local-state indices, by `physml.kernels.sample`
        (the model's cache when it has one)."""
        x, _ = sample(self, n_samples, key=check_key(key), shard=shard)
        return x


class AbstractTwoStateNetwork(AbstractAutoregressiveSpinState):
    """An autoregressive spin-1/2 network with the shared two-state output head.

    Attributes:
        head_w: (F, 4) weights from the F last-layer features: columns 0, 1 to the log-moduli
            a(0), a(1), columns 2, 3 to the phases φ(0), φ(1); (F, 2) if `positive`.
        head_b: the matching biases, (4,) or (2,).
    """

    head_w: eqx.AbstractVar[Array]
    head_b: eqx.AbstractVar[Array]

    @property
    def dtype(self) -> Any:
        return self.head_w.dtype

    @property
    def magnetization(self) -> None:
        return None

    def _head(self, h: Float[Array, "*b f"]) -> tuple[Array, Array | None]:
        """Normalised log-moduli and phases (None if `positive`) of last-layer features h."""
        out = h @ self.head_w + self.head_b
        a = out[..., :2]
        log_mod = a - 0.5 * jax.nn.logsumexp(2 * a, axis=-1, keepdims=True)
        return log_mod, None if self.positive else out[..., 2:]

    def _gap(self, h: Float[Array, "*b f"]) -> Float[Array, "*b"]:
        """a_1 − a_0, the gap of the head's two log-modulus outputs."""
        w, b = self.head_w, self.head_b
        return h @ (w[:, 1] - w[:, 0]) + (b[1] - b[0])

    def _site_terms(self, h: Float[Array, "*b f"], x: Int[Array, "*b"]) -> Array:
        """log ψ_i(x_i | x_<i) = log|ψ_i(x_i)| + i φ_i(x_i) for the chosen local state only: with
        two states the normalised log-modulus is −½ softplus(2(a_{1−x} − a_x)), so only the gap
        of the two head outputs is needed (the same value as `_head` and picking)."""
        gap = self._gap(h)
        terms = -0.5 * jax.nn.softplus(2 * jnp.where(x == 0, gap, -gap))
        if self.positive:
            return terms
        w, b = self.head_w, self.head_b
        return terms + 1j * jnp.where(x == 0, h @ w[:, 2] + b[2], h @ w[:, 3] + b[3])


def check_spin_state(model: Any) -> None:
    """Raise a TypeError that names the interface if `model` is not an `AbstractSpinState`."""
    if not isinstance(model, AbstractSpinState):
        raise TypeError(
            "`model` must be a spin wave function (`physml.quantum.AbstractSpinState`, e.g. "
            f"ARConv1D, ARConv2D, FixedMagnetization, Symmetrized), got {type(model).__name__}."
        )
