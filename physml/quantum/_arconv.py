"""Autoregressive neural quantum state with masked (causal) 1D convolutions.

The wave function is a product of normalised conditional amplitudes (Sharir et al., PRL 124,
020503 (2020), eq. 2):

    ψ(σ) = Π_i ψ_i(σ_i | σ_<i),   Σ_s |ψ_i(s | σ_<i)|² = 1,

so Σ_σ |ψ(σ)|² = 1 by construction and |ψ|² is sampled exactly, site by site. The conditionals
come from a WaveNet/PixelCNN stack of causal convolutions (van den Oord et al., 2016): the input
is shifted right by one site, so that layer 1 at site i sees σ_<i only; later layers are causal
convolutions (kernel `kernel_size`, dilation per layer) that include the current site, with
residual connections. A 1×1 head gives per site and local state a log-modulus a_i(s), normalised
in log space, and a phase φ_i(s):

    log |ψ_i(s)| = a_i(s) − ½ logsumexp_t 2 a_i(t),    arg ψ_i(s) = φ_i(s).

The batched pass is one causal dilated convolution per layer. The cached pass
(`init_cache`/`conditional_step`) keeps, per layer, the history of that layer's inputs, so one
new site costs one (k·F_in)×F_out product per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int, Real

from ..kernels._validate import check_key
from ._wavefunction import AbstractTwoStateNetwork

__all__ = ["ARConv1D"]


def _causal_conv(
    h: Float[Array, "batch sites fin"], w: Float[Array, "kfin fout"], k: int, d: int
) -> Float[Array, "batch sites fout"]:
    """Causal dilated conv: out_i = Σ_j h_{i−(k−1−j)·d} W_j (taps oldest first, zero before 0),
    as one im2col matmul.

    A matmul rather than `lax.conv_general_dilated`: under `vmap` (per-sample gradients for SR)
    it stays a batched matmul where a vmapped convolution becomes a slow grouped one, and its
    gradient is the faster one on CPU (timings in docs/notes/).
    """
    n = h.shape[1]
    hp = jnp.pad(h, ((0, 0), ((k - 1) * d, 0), (0, 0)))
    return jnp.concatenate([hp[:, j * d : j * d + n] for j in range(k)], axis=-1) @ w


class ARConv1D(AbstractTwoStateNetwork):
    """Autoregressive 1D masked-convolution wave function for spin-1/2 chains.

    Attributes:
        weights: per layer, a (kernel_size · F_in, F_out) matrix (taps oldest first).
        biases: per layer, an (F_out,) vector.
        head_w, head_b: 1×1 output head to `local_size` log-moduli (+ `local_size` phases).
        n_sites, local_size, kernel_size, features, dilations: sizes (static).
        positive: if True the wave function is real and positive (no phase head); use for
            stoquastic Hamiltonians (TFIM, Heisenberg with the Marshall sign rule).
        local_states: spin value of each local index; (+1, −1) as NetKet's `Spin(1/2)`.
        activation: elementwise nonlinearity.
    """

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    head_w: Array
    head_b: Array
    n_sites: int = eqx.field(static=True)
    local_size: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    dilations: tuple[int, ...] = eqx.field(static=True)
    positive: bool = eqx.field(static=True)
    local_states: tuple[float, ...] = eqx.field(static=True)
    activation: Callable = eqx.field(static=True)

    def __init__(
        self,
        n_sites: int,
        *,
        layers: int = 3,
        features: int = 10,
        kernel_size: int = 5,
        dilations: int | Sequence[int] = 1,
        positive: bool = False,
        activation: Callable = jax.nn.gelu,
        local_states: Sequence[float] = (1.0, -1.0),
        dtype: Any = None,
        key: Any,
    ):
        """Args:
        n_sites: number of sites N (>= 1).
        layers: number of masked convolution layers (>= 1).
        features: channels per layer (>= 1).
        kernel_size: taps per convolution (>= 1).
        dilations: one dilation for all layers, or one per layer (e.g. (1, 2, 4)).
        positive: real positive wave function (no phase).
        activation: nonlinearity after each convolution.
        local_states: spin value of each local index (2 entries for spin 1/2).
        dtype: parameter dtype (default: JAX's default float, float64 with x64 enabled).
        key: PRNG key for the initial parameters.
        """
        key = check_key(key)
        for name, v, lo in (
            ("n_sites", n_sites, 1),
            ("layers", layers, 1),
            ("features", features, 1),
            ("kernel_size", kernel_size, 1),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"`{name}` must be an integer >= {lo}, got {v!r}.")
        if isinstance(dilations, (int, np.integer)):
            dilations = (int(dilations),) * layers
        dilations = tuple(int(d) for d in dilations)
        if len(dilations) != layers or any(d < 1 for d in dilations):
            raise ValueError(
                f"`dilations` must be a positive integer or {layers} positive integers (one per "
                f"layer), got {dilations!r}."
            )
        local_states = tuple(float(s) for s in local_states)
        if len(local_states) != 2 or len(set(local_states)) != 2:
            raise ValueError(
                f"`local_states` must hold 2 distinct spin values (spin 1/2), got {local_states}."
            )
        dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
        self.n_sites, self.local_size = int(n_sites), 2
        self.kernel_size, self.features = int(kernel_size), int(features)
        self.dilations, self.positive = dilations, bool(positive)
        self.local_states, self.activation = local_states, activation

        keys = jax.random.split(key, layers + 1)
        ws, bs = [], []
        for layer, k_layer in enumerate(keys[:-1]):
            f_in = 1 if layer == 0 else features
            fan_in = kernel_size * f_in
            ws.append(jax.random.normal(k_layer, (fan_in, features), dtype) / np.sqrt(fan_in))
            bs.append(jnp.zeros((features,), dtype))
        n_out = 2 if positive else 4
        # A small head starts the optimisation near the uniform state, with a random direction.
        self.head_w = (
            0.1 * jax.random.normal(keys[-1], (features, n_out), dtype) / np.sqrt(features)
        )
        self.head_b = jnp.zeros((n_out,), dtype)
        self.weights, self.biases = tuple(ws), tuple(bs)

    # ----- batched pass ------------------------------------------------------------------------

    def _hidden(self, spins: Float[Array, "batch sites"]) -> Float[Array, "batch sites f"]:
        # Shift right by one site: the first layer at site i sees σ_<i only.
        h = jnp.pad(spins[:, :-1], ((0, 0), (1, 0)))[..., None]
        for layer, (w, b, d) in enumerate(
            zip(self.weights, self.biases, self.dilations, strict=False)
        ):
            out = self.activation(_causal_conv(h, w, self.kernel_size, d) + b)
            h = out if layer == 0 else h + out
        return h

    def log_amplitudes(
        self, x: Int[Array, "batch sites"], *, per_sample: bool = False
    ) -> tuple[Float[Array, "batch sites local"], Float[Array, "batch sites local"] | None]:
        """Per site and local state: log |ψ_i(s | x_<i)| and the phase φ_i(s) (None if positive),
        from one pass. `per_sample` is accepted for the interface `FixedMagnetization` and `SR`
        use; the convolutions are matmuls either way."""
        return self._head(self._hidden(self.to_spins(x)))

    def log_psi(
        self, sigma: Real[Array, "*batch sites"], *, per_sample: bool = False
    ) -> Float[Array, "*batch"] | Complex[Array, "*batch"]:
        """log ψ(σ) for spin configurations σ (values in `local_states`, e.g. NetKet samples).

        Real if `positive`, complex otherwise. Any leading batch shape. `per_sample` is accepted
        for `SR`'s interface (vmapped single samples); the convolutions are matmuls either way.
        """
        batch = sigma.shape[:-1]
        x = self.to_indices(sigma.reshape(-1, sigma.shape[-1]))
        h = self._hidden(self.to_spins(x))
        return self._site_terms(h, x).sum(-1).reshape(batch)

    def conditionals(self, x: Int[Array, " sites"]) -> Float[Array, "sites local"]:
        """log p(x_i = s | x_<i) = 2 log|ψ_i(s | x_<i)| for all sites, from one pass."""
        log_mod, _ = self._head(self._hidden(self.to_spins(x)[None]))
        return 2 * log_mod[0]

    # ----- cached incremental pass (sampling) --------------------------------------------------

    def init_cache(self) -> tuple[Array, ...]:
        """Per layer, the history of that layer's inputs, (k−1)·d leading zeros (the causal
        padding) followed by one row per site, filled as sampling proceeds.

        A whole history rather than a ring buffer of the last (k−1)·d+1 rows: site i writes row
        i + (k−1)·d and reads the contiguous block from row i, both at the scan's (unbatched)
        site index, so nothing is shifted per sample. Memory: (N + (k−1)·d) · F numbers per
        layer and sample.
        """
        dtype = self.head_w.dtype
        k = self.kernel_size
        return tuple(
            jnp.zeros((self.n_sites + (k - 1) * d, 1 if layer == 0 else self.features), dtype)
            for layer, d in enumerate(self.dilations)
        )

    def conditional_step(
        self, cache: tuple[Array, ...], i: Int[Array, ""], x_prev: Int[Array, ""]
    ) -> tuple[Float[Array, " local"], tuple[Array, ...]]:
        """log p(x_i = · | x_<i) from the histories (sites < i−1) and x_{i−1} = `x_prev`."""
        spin_prev = jnp.where(i > 0, self.to_spins(x_prev), 0).astype(self.head_w.dtype)
        h = spin_prev[None]
        new_cache = []
        for layer, (hist, w, b, d) in enumerate(
            zip(cache, self.weights, self.biases, self.dilations, strict=False)
        ):
            pad = (self.kernel_size - 1) * d
            hist = jax.lax.dynamic_update_index_in_dim(hist, h, i + pad, axis=0)
            window = jax.lax.dynamic_slice_in_dim(hist, i, pad + 1, axis=0)[::d]
            out = self.activation(window.reshape(-1) @ w + b)
            h = out if layer == 0 else h + out
            new_cache.append(hist)
        # Two local states: log p(s) = 2 log|ψ_i(s)| = −softplus(±2 (a_1 − a_0)), so the head
        # needs only the gap of its two log-modulus outputs (as in `_site_terms`).
        gap = self._gap(h)
        log_p = -jax.nn.softplus(jnp.stack([2 * gap, -2 * gap]))
        return log_p, tuple(new_cache)
