"""Symmetrised autoregressive states that keep exact sampling.

For a group G of site permutations (optionally times the global spin flip F), define

    |ψ_G(σ)|² = (1/|G|) Σ_{g∈G} |ψ(gσ)|²,     arg ψ_G(σ) = arg Σ_{g∈G} e^{i arg ψ(gσ)},

(gσ)ᵢ = σ_{g(i)}. |ψ_G|² is normalised whenever ψ is, and it is the law of gσ with σ ~ |ψ|² and
g uniform on G: P(σ') = (1/|G|) Σ_g |ψ(g⁻¹σ')|², and g ↦ g⁻¹ is a bijection of a group. So a
sample is an exact model sample with a uniformly random g applied (Sharir et al., PRL 124,
020503 (2020), who symmetrise over D4 × spin flip at evaluation). ψ_G is invariant under G.

`lattice_group` builds the square-lattice groups directly: the point group (D4 for L×L, D2 for
L₁×L₂ rectangles) and, on a torus, its product with the L₁·L₂ translations. It equals NetKet's
`Lattice.space_group()` as a set (tested).
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Complex, Float, Inexact, Int, Real

from ..kernels._validate import check_key, check_positive_int
from ._arconv2d import lattice_shape
from ._flips2d import check_connected
from ._wavefunction import AbstractAutoregressiveSpinState, AbstractSpinState

__all__ = ["Symmetrized", "check_group", "lattice_group"]


def lattice_group(shape: Any, *, pbc: bool) -> Int[np.ndarray, "group sites"]:
    """Site permutations of the square lattice `shape` (L, (L₁, L₂) or a NetKet Square/Grid).

    Open boundaries: the point group (8 elements for L×L, 4 for L₁ ≠ L₂). Periodic: point group
    × translations (8·L² or 4·L₁·L₂). Row g is a permutation with (gσ)ᵢ = σ_{g[i]}; sites in
    raster order i = r·L₂ + c. The identity is row 0.
    """
    l1, l2 = lattice_shape(shape)
    r, c = np.divmod(np.arange(l1 * l2), l2)
    maps = [(r, c), (r, l2 - 1 - c), (l1 - 1 - r, c), (l1 - 1 - r, l2 - 1 - c)]
    if l1 == l2:  # the transpose and the two rotations by ±90°
        maps += [(c, r), (c, l1 - 1 - r), (l1 - 1 - c, r), (l1 - 1 - c, l1 - 1 - r)]
    shifts = [(a, b) for a in range(l1) for b in range(l2)] if pbc else [(0, 0)]
    perms = [((rr + a) % l1) * l2 + (cc + b) % l2 for a, b in shifts for rr, cc in maps]
    perms = np.stack(perms)
    # Degenerate shapes (a side of length 1) repeat elements; keep the first of each.
    _, first = np.unique(perms, axis=0, return_index=True)
    return perms[np.sort(first)].astype(np.int32)


def check_group(permutations: Any, n_sites: int) -> Int[np.ndarray, "group sites"]:
    """Return `permutations` as an int array after checking it is a group of permutations of
    `n_sites` sites: each row a permutation of 0…n−1, rows distinct, closed under composition
    (a finite set of permutations closed under composition contains the identity and inverses).
    """
    try:
        g = np.asarray(permutations)
    except Exception as err:
        raise TypeError(f"`permutations` must be an integer array, got {permutations!r}.") from err
    if g.ndim != 2 or g.shape[1] != n_sites or g.shape[0] < 1:
        raise ValueError(
            f"`permutations` must have shape (group size, {n_sites}) (one permutation of the "
            f"model's {n_sites} sites per row), got shape {g.shape}."
        )
    if not np.issubdtype(g.dtype, np.integer):
        raise TypeError(f"`permutations` must hold integers, got dtype {g.dtype}.")
    bad = np.flatnonzero(np.any(np.sort(g, axis=1) != np.arange(n_sites), axis=1))
    if bad.size:
        raise ValueError(
            f"Row {bad[0]} of `permutations` is not a permutation of 0…{n_sites - 1}: "
            f"{g[bad[0]].tolist()}."
        )
    # Exact closure: hash the rows, look each composition up, then compare the rows themselves.
    weights = np.random.default_rng(0).integers(1, 2**31, n_sites)
    hashes = g @ weights
    order = np.argsort(hashes)
    sorted_hashes = hashes[order]
    if np.unique(g, axis=0).shape[0] != g.shape[0]:
        raise ValueError("`permutations` has repeated rows; each group element must appear once.")
    for a in g:
        comp = a[g]  # row b: a∘b
        pos = np.clip(np.searchsorted(sorted_hashes, comp @ weights), 0, len(g) - 1)
        found = np.all(g[order[pos]] == comp, axis=1)
        if not found.all():
            b = g[np.flatnonzero(~found)[0]]
            raise ValueError(
                "`permutations` is not closed under composition (not a group): "
                f"{a.tolist()} ∘ {b.tolist()} = {a[b].tolist()} is missing."
            )
    return g.astype(np.int32)


class Symmetrized(AbstractSpinState):
    """ψ symmetrised over a permutation group G (× global spin flip): exact, normalised,
    G-invariant, and sampled exactly.

    Attributes:
        model: the autoregressive state ψ (an `AbstractAutoregressiveSpinState`).
        permutations: (|G|, N) int32; (gσ)ᵢ = σ_{g[i]}.
        spin_flip: also average over σ → −σ.
    """

    model: AbstractAutoregressiveSpinState
    permutations: Int[Array, "group sites"]
    spin_flip: bool = eqx.field(static=True)

    def __init__(self, model: Any, permutations: Any, *, spin_flip: bool = False):
        if not isinstance(model, AbstractAutoregressiveSpinState):
            raise TypeError(
                "`model` must be an autoregressive wave function (`AbstractAutoregressiveSpinState`"
                f", e.g. ARConv2D), got {type(model).__name__}."
            )
        if spin_flip and model.local_size != 2:
            raise ValueError(
                f"`spin_flip` needs spin-1/2 sites, got local_size {model.local_size}."
            )
        self.model = model
        self.permutations = jnp.asarray(check_group(permutations, model.n_sites))
        self.spin_flip = bool(spin_flip)

    @property
    def n_sites(self) -> int:
        return self.model.n_sites

    @property
    def group_size(self) -> int:
        """|G|, times 2 with the spin flip."""
        return self.permutations.shape[0] * (2 if self.spin_flip else 1)

    @property
    def positive(self) -> bool:
        return self.model.positive

    @property
    def local_states(self) -> tuple[float, ...]:
        return self.model.local_states

    @property
    def dtype(self) -> Any:
        return self.model.dtype

    @property
    def magnetization(self) -> int | None:
        """The model's Σσᶻ; None if the spin flip maps it to −Σσᶻ ≠ Σσᶻ (two sectors)."""
        m = self.model.magnetization
        return None if self.spin_flip and m else m

    @property
    def passes_per_configuration(self) -> int:
        return self.group_size * self.model.passes_per_configuration

    def _orbit(self, x: Int[Array, "*batch sites"]) -> Int[Array, "*batch group sites"]:
        images = x[..., self.permutations]
        if self.spin_flip:
            images = jnp.concatenate([images, 1 - images], axis=-2)
        return images

    def log_psi(
        self, sigma: Float[Array, "*batch sites"], *, per_sample: bool = False
    ) -> Float[Array, "*batch"] | Complex[Array, "*batch"]:
        """log ψ_G(σ) for spin configurations (any leading batch shape): |G| model passes each.

        `per_sample` is passed to the wrapped model's `log_psi` (the interface `SR` uses)."""
        if sigma.shape[-1] != self.n_sites:
            raise ValueError(
                f"`sigma` has {sigma.shape[-1]} sites on its last axis, the model {self.n_sites}."
            )
        images = self.to_spins(self._orbit(self.to_indices(sigma)))
        return self._combine(self.model.log_psi(images, per_sample=per_sample))

    def _combine(self, lp: Inexact[Array, "*batch group"]) -> Inexact[Array, "*batch"]:
        """log ψ_G from the model's log ψ(gσ) over the group (last axis)."""
        log_mod = 0.5 * (jax.nn.logsumexp(2 * jnp.real(lp), axis=-1) - math.log(self.group_size))
        if self.positive:
            return log_mod
        phi = jnp.imag(lp)
        phase = jnp.arctan2(jnp.sum(jnp.sin(phi), axis=-1), jnp.sum(jnp.cos(phi), axis=-1))
        return jax.lax.complex(log_mod, phase)

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
        max_configurations: int | None = None,
    ) -> tuple[Inexact[Array, " batch"], Inexact[Array, "batch conn"]]:
        """log ψ_G(σ) and log ψ_G(σ'_k): each image gσ'_k differs from gσ where σ'_k differs
        from σ (moved by g), so the wrapped model's incremental path evaluates it against gσ.
        Arguments as `ARConv2D.log_psi_connected` (an inactive σ'_k gets log ψ_G(σ));
        `log_psi` is the reference."""
        if not self.has_connected_path:
            raise TypeError(
                f"The wrapped {type(self.model).__name__} has no incremental `log_psi_connected`; "
                "use `log_psi` on the connected configurations (local_energies(..., "
                "incremental=False))."
            )
        check_connected(self.n_sites, sigma, sigma_p, active)
        (b, k, n), g = sigma_p.shape, self.group_size
        images = self.to_spins(self._orbit(self.to_indices(sigma))).reshape(b * g, n)
        images_p = self.to_spins(self._orbit(self.to_indices(sigma_p)))  # (b, k, g, n)
        images_p = images_p.transpose(0, 2, 1, 3).reshape(b * g, k, n)
        if active is not None:
            active = jnp.broadcast_to(active[:, None], (b, g, k)).reshape(b * g, k)
        lp, lp_p = self.model.log_psi_connected(
            images, images_p, active=active, max_configurations=max_configurations
        )
        return self._combine(lp.reshape(b, g)), self._combine(
            lp_p.reshape(b, g, k).transpose(0, 2, 1)
        )

    def sample(self, n_samples: int, *, key: Any, shard: bool = True) -> Int[Array, "batch sites"]:
        """`n_samples` exact samples of |ψ_G|² as local-state indices (int32).

        Model samples with a uniformly random group element applied to each. Their
        log-probabilities are 2 Re `log_psi(to_spins(x))`. `shard`: split the model's samples
        over the local devices (as `physml.kernels.sample`; the values do not depend on it).
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        k_model, k_group = jax.random.split(check_key(key))
        x = self.model.sample(n_samples, key=k_model, shard=shard)
        g = jax.random.randint(k_group, (n_samples,), 0, self.group_size)
        n_perm = self.permutations.shape[0]
        x = jnp.take_along_axis(x, self.permutations[g % n_perm], axis=1)
        return jnp.where((g >= n_perm)[:, None], 1 - x, x)
