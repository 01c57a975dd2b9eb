"""Autoregressive neural quantum state on a 2D lattice: masked convolutions with a vertical and
a horizontal stack (no blind spot).

Sites of an L₁×L₂ lattice are in raster order, i = r·L₂ + c (NetKet's `Grid`/`Square`
numbering); ψ is a product of l2-normalised conditionals in that order with the two-state head
of `AbstractTwoStateNetwork`, as `ARConv1D` (Sharir et al., PRL 124, 020503 (2020), eq. 2). The
features come from the two stacks of the gated PixelCNN (van den Oord et al., NeurIPS 2016,
fig. 2), with a plain activation instead of the gate and p = kernel_size // 2:

- vertical stack v (rows strictly above): input σ shifted down one row; layer l convolves rows
  r−p…r, columns c−p…c+p of layer l−1 ((p+1)×(2p+1) kernel), residually;
- horizontal stack h (the current row to the left, and through v the rows above): input the row
  shifted right one site; layer l convolves columns c−p…c (1×(p+1)) plus a 1×1 projection of v_l.

After D layers every earlier site is seen once D·p ≥ max(L₂ − 1, L₁ − 2) (`covers_lattice`,
`receptive_field`). Cached sampling keeps per layer the last p+1 rows of v's input, v's current
row and the last p+1 inputs of h; a row's vertical features are computed once at its first site
(a `lax.cond` on the unbatched site index), so a site costs O(D·k²·F²) amortised, independent of
the lattice size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jaxtyping import Array, Bool, Complex, Float, Inexact, Int, Real

from ..kernels._validate import check_key
from ._flips2d import Transform, check_connected, log_psi_connected_2d
from ._wavefunction import AbstractTwoStateNetwork

__all__ = ["ARConv2D", "lattice_shape"]

_DN = ("NHWC", "HWIO", "NHWC")


def lattice_shape(lattice: Any) -> tuple[int, int]:
    """(L₁, L₂) of an int L (square), a pair (L₁, L₂), or a NetKet square-lattice graph
    (`nk.graph.Square`, `nk.graph.Grid` in 2D), whose site i = r·L₂ + c sits at (r, c)."""
    if isinstance(lattice, nk.graph.Lattice):
        ok = (
            lattice.ndim == 2
            and lattice.n_nodes == int(np.prod(lattice.extent))
            and np.allclose(lattice.basis_vectors, np.eye(2))
            and np.allclose(lattice.positions, np.argwhere(np.ones(tuple(lattice.extent))))
        )
        if not ok:
            raise ValueError(
                "`lattice` must be a 2D square lattice with one site per unit cell in raster "
                f"order (`nk.graph.Square` or a 2D `nk.graph.Grid`), got {lattice!r}."
            )
        return int(lattice.extent[0]), int(lattice.extent[1])
    if isinstance(lattice, (int, np.integer)) and not isinstance(lattice, bool):
        lattice = (lattice, lattice)
    if (
        not isinstance(lattice, (tuple, list))
        or len(lattice) != 2
        or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in lattice
        )
    ):
        raise ValueError(
            "`shape` must be an int L >= 1, a pair (L1, L2) of ints >= 1, or a 2D NetKet square "
            f"lattice, got {lattice!r}."
        )
    return int(lattice[0]), int(lattice[1])


def _conv(x: Array, w: Array) -> Array:
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)


def _conv_matmul(x: Array, w: Array) -> Array:
    """The same "VALID" convolution as a sum of shifted matmuls, one per kernel tap. Under
    `vmap` of a per-sample gradient (SR's log-derivatives) XLA keeps this a batched matmul,
    where the batched `conv_general_dilated` weight-gradient can take far more memory."""
    kh, kw = w.shape[:2]
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return sum(x[:, a : a + ho, b : b + wo, :] @ w[a, b] for a in range(kh) for b in range(kw))


class ARConv2D(AbstractTwoStateNetwork):
    """Autoregressive 2D masked-convolution wave function for spin-1/2 on an L₁×L₂ lattice.

    Attributes:
        v_weights: per layer, the vertical kernel, shape (p+1, 2p+1, F_in, F) (rows above first).
        v_biases: per layer, (F,).
        h_weights: per layer, the horizontal kernel, shape (1, p+1, F_in, F) (leftmost first).
        h_biases: per layer, (F,).
        vh_weights: per layer, the 1×1 vertical→horizontal projection, shape (F, F).
        head_w, head_b: 1×1 head to 2 log-moduli (+ 2 phases unless `positive`).
        shape: (L₁, L₂); n_sites = L₁·L₂; site i = r·L₂ + c.
        kernel_size: k (odd); p = k // 2. layers, features: depth D and width F.
        positive, local_states, activation: as in `ARConv1D`.
    """

    v_weights: tuple[Array, ...]
    v_biases: tuple[Array, ...]
    h_weights: tuple[Array, ...]
    h_biases: tuple[Array, ...]
    vh_weights: tuple[Array, ...]
    head_w: Array
    head_b: Array
    shape: tuple[int, int] = eqx.field(static=True)
    n_sites: int = eqx.field(static=True)
    local_size: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    layers: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    positive: bool = eqx.field(static=True)
    local_states: tuple[float, ...] = eqx.field(static=True)
    activation: Callable = eqx.field(static=True)

    def __init__(
        self,
        shape: Any,
        *,
        layers: int | None = None,
        features: int = 10,
        kernel_size: int = 3,
        positive: bool = False,
        activation: Callable = jax.nn.gelu,
        local_states: Sequence[float] = (1.0, -1.0),
        dtype: Any = None,
        key: Any,
    ):
        """Args:
        shape: L (square), (L₁, L₂), or a 2D NetKet `Square`/`Grid` graph.
        layers: depth D (>= 1); default: the smallest D >= 3 with which every site sees all
            earlier sites (D·p >= max(L₂ − 1, L₁ − 2)). An explicit D that leaves earlier sites
            outside a conditional's receptive field warns (`covers_lattice` is False).
        features: width F (>= 1).
        kernel_size: odd k >= 3 (vertical kernel (k//2+1)×k, horizontal 1×(k//2+1)).
        positive: real positive wave function (no phase head).
        activation: nonlinearity of each layer.
        local_states: spin value of each local index; (+1, −1) as NetKet's `Spin(1/2)`.
        dtype: parameter dtype (default: JAX's default float).
        key: PRNG key for the initial parameters.
        """
        key = check_key(key)
        self.shape = lattice_shape(shape)
        explicit_layers = layers is not None
        if layers is None and not (
            isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer))
        ):
            need = max(self.shape[1] - 1, self.shape[0] - 2, 0)
            layers = max(3, -(-need // max(int(kernel_size) // 2, 1)))
        for name, v in (("layers", layers), ("features", features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {v!r}.")
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, (int, np.integer))
            or kernel_size < 3
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"`kernel_size` must be an odd integer >= 3, got {kernel_size!r}.")
        local_states = tuple(float(s) for s in local_states)
        if len(local_states) != 2 or len(set(local_states)) != 2:
            raise ValueError(
                f"`local_states` must hold 2 distinct spin values (spin 1/2), got {local_states}."
            )
        dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
        self.n_sites, self.local_size = self.shape[0] * self.shape[1], 2
        self.kernel_size, self.layers, self.features = int(kernel_size), int(layers), int(features)
        self.positive, self.local_states, self.activation = bool(positive), local_states, activation

        p, f = self.kernel_size // 2, self.features
        keys = jax.random.split(key, 3 * layers + 1)
        vw, vb, hw, hb, vhw = [], [], [], [], []
        for layer in range(layers):
            kv, kh, kvh = keys[3 * layer : 3 * layer + 3]
            f_in = 1 if layer == 0 else f
            fan_v = (p + 1) * (2 * p + 1) * f_in
            fan_h = (p + 1) * f_in + f  # horizontal taps and the projection of v
            vw.append(jax.random.normal(kv, (p + 1, 2 * p + 1, f_in, f), dtype) / math.sqrt(fan_v))
            hw.append(jax.random.normal(kh, (1, p + 1, f_in, f), dtype) / math.sqrt(fan_h))
            vhw.append(jax.random.normal(kvh, (f, f), dtype) / math.sqrt(fan_h))
            vb.append(jnp.zeros((f,), dtype))
            hb.append(jnp.zeros((f,), dtype))
        if explicit_layers and not self.covers_lattice:
            warnings.warn(
                f"ARConv2D with layers={layers}, kernel_size={kernel_size} on a "
                f"{self.shape[0]}×{self.shape[1]} lattice: some conditionals do not see every "
                "earlier site (D·p < max(L₂ − 1, L₁ − 2)), so ψ cannot represent all "
                "correlations. Use layers >= "
                f"{-(-max(self.shape[1] - 1, self.shape[0] - 2) // (kernel_size // 2))} "
                "or the default `layers=None`.",
                stacklevel=2,
            )
        n_out = 2 if positive else 4
        # A small head starts the optimisation near the uniform state, as in ARConv1D.
        self.head_w = 0.1 * jax.random.normal(keys[-1], (f, n_out), dtype) / math.sqrt(f)
        self.head_b = jnp.zeros((n_out,), dtype)
        self.v_weights, self.v_biases = tuple(vw), tuple(vb)
        self.h_weights, self.h_biases, self.vh_weights = tuple(hw), tuple(hb), tuple(vhw)

    # ----- receptive field ---------------------------------------------------------------------

    @property
    def covers_lattice(self) -> bool:
        """Whether every site depends on all earlier sites: D·p >= max(L₂ − 1, L₁ − 2)."""
        reach = self.layers * (self.kernel_size // 2)
        return reach >= max(self.shape[1] - 1, self.shape[0] - 2)

    def receptive_field(self) -> Bool[np.ndarray, "sites sites"]:
        """depends[i, j]: whether the conditional at site i depends on σ_j (by construction)."""
        reach = self.layers * (self.kernel_size // 2)
        r, c = np.divmod(np.arange(self.n_sites), self.shape[1])
        dr = r[:, None] - r[None, :]
        dc = c[:, None] - c[None, :]
        row = (dr == 0) & (dc >= 1) & (dc <= reach + 1)
        above = (dr >= 1) & (dr <= reach + 1) & (np.abs(dc) <= reach)
        return row | above

    def _check_sites(self, n: int, name: str) -> None:
        if n != self.n_sites:
            raise ValueError(
                f"`{name}` has {n} sites on its last axis, but the model is on a "
                f"{self.shape[0]}×{self.shape[1]} lattice ({self.n_sites} sites)."
            )

    # ----- batched pass ------------------------------------------------------------------------

    def _v_layer(self, layer: int, u: Array, conv: Callable = _conv) -> Array:
        """Vertical stack, layer `layer`: rows t of its output from rows t−p … t of its input
        u (shape (b, rows + p, L₂, F_in), the p rows above first); shape (b, rows, L₂, F).
        `conv`: a "VALID" convolution (x, w) → y, e.g. `_conv` or `_conv_matmul`."""
        p = self.kernel_size // 2
        u_pad = jnp.pad(u, ((0, 0), (0, 0), (p, p), (0, 0)))
        dv = self.activation(conv(u_pad, self.v_weights[layer]) + self.v_biases[layer])
        return dv if layer == 0 else u[:, p:] + dv

    def _h_layer(self, layer: int, h: Array, v: Array, conv: Callable = _conv) -> Array:
        """Horizontal stack, layer `layer`, on whole rows: input h (b, rows, L₂, F_in) and the
        same rows of this layer's vertical output v (b, rows, L₂, F)."""
        p = self.kernel_size // 2
        h_pad = jnp.pad(h, ((0, 0), (0, 0), (p, 0), (0, 0)))
        pre = conv(h_pad, self.h_weights[layer]) + self.h_biases[layer]
        dh = self.activation(pre + v @ self.vh_weights[layer])
        return dh if layer == 0 else h + dh

    def _stacks(
        self, spins: Float[Array, "batch sites"], matmul: bool = False
    ) -> tuple[Float[Array, "batch sites f"], tuple[Array, ...]]:
        """Last-layer features and every layer's vertical output, shape (batch, L₁, L₂, F)."""
        p = self.kernel_size // 2
        conv = _conv_matmul if matmul else _conv
        s = spins.reshape(-1, *self.shape, 1)
        v = jnp.pad(s, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]  # row r sees rows < r
        h = jnp.pad(s, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]  # site c sees c' < c
        vs = []
        for layer in range(self.layers):
            v = self._v_layer(layer, jnp.pad(v, ((0, 0), (p, 0), (0, 0), (0, 0))), conv)
            h = self._h_layer(layer, h, v, conv)
            vs.append(v)
        return h.reshape(spins.shape[0], self.n_sites, self.features), tuple(vs)

    def _hidden(
        self, spins: Float[Array, "batch sites"], matmul: bool = False
    ) -> Float[Array, "batch sites f"]:
        return self._stacks(spins, matmul)[0]

    def log_amplitudes(
        self, x: Int[Array, "batch sites"], *, per_sample: bool = False
    ) -> tuple[Float[Array, "batch sites 2"], Float[Array, "batch sites 2"] | None]:
        """Per site and local state: log |ψ_i(s | x_<i)| and the phase φ_i(s) (None if positive).

        `per_sample=True`: matmul convolutions (same values), for vmapped per-sample gradients.
        """
        return self._head(self._hidden(self.to_spins(x), per_sample))

    def log_psi(
        self, sigma: Float[Array, "*batch sites"], *, per_sample: bool = False
    ) -> Float[Array, "*batch"] | Complex[Array, "*batch"]:
        """log ψ(σ) for spin configurations σ (values in `local_states`, raster order).

        Real if `positive`, complex otherwise. Any leading batch shape. `per_sample=True` (what
        `SR` passes when it vmaps per-sample gradients) computes the convolutions as matmuls:
        the same values, with bounded memory under `vmap` of a gradient.
        """
        self._check_sites(sigma.shape[-1], "sigma")
        batch = sigma.shape[:-1]
        x = self.to_indices(sigma.reshape(-1, sigma.shape[-1]))
        log_mod, phase = self.log_amplitudes(x, per_sample=per_sample)
        pick = lambda t: jnp.take_along_axis(t, x[..., None], axis=-1)[..., 0].sum(-1)
        out = pick(log_mod) if phase is None else jax.lax.complex(pick(log_mod), pick(phase))
        return out.reshape(batch)

    def conditionals(self, x: Int[Array, " sites"]) -> Float[Array, "sites local"]:
        """log p(x_i = s | x_<i) = 2 log|ψ_i(s | x_<i)| for all sites, from one pass."""
        self._check_sites(x.shape[-1], "x")
        return 2 * self.log_amplitudes(x[None])[0][0]

    # ----- connected configurations (local energies) ------------------------------------------

    @property
    def has_connected_path(self) -> bool:
        """`log_psi_connected` recomputes only the rows a change reaches."""
        return True

    def log_psi_connected(
        self,
        sigma: Real[Array, "batch sites"],
        sigma_p: Real[Array, "batch conn sites"],
        *,
        active: Bool[Array, "batch conn"] | None = None,
        transform: Transform | None = None,
        max_configurations: int | None = None,
    ) -> tuple[Inexact[Array, " batch"], Inexact[Array, "batch conn"]]:
        """log ψ(σ) and log ψ(σ'_k) for configurations σ'_k that differ from σ in a few sites
        (what a Hamiltonian connects σ to), recomputing only the rows at and below each σ'_k's
        first changed row (`log_psi_connected_2d`); `log_psi` is the reference.

        Args:
            sigma: spin configurations, shape (batch, sites).
            sigma_p: per configuration, `conn` others (`get_conn_padded`).
            active: which σ'_k are needed (default all); an inactive one gets log ψ(σ).
            transform: a rewrite of the per-site log-moduli in which site i depends on x_≤i
                (what `FixedMagnetization` passes).
            max_configurations: configurations per `lax.map` step (`None`: cache-sized); the
                values do not depend on it.
        """
        check_connected(self.n_sites, sigma, sigma_p, active)
        return log_psi_connected_2d(
            self, sigma, sigma_p, active=active, transform=transform, chunk_size=max_configurations
        )

    # ----- cached incremental pass (sampling) --------------------------------------------------

    def init_cache(self) -> dict:
        """Zeros: the current row's spins, per layer the last p+1 rows of the vertical input
        (columns zero-padded by p), the current row of vertical features and the last p+1
        horizontal inputs."""
        p, f, (_, l2) = self.kernel_size // 2, self.features, self.shape
        dt = self.head_w.dtype
        f_in = [1] + [f] * (self.layers - 1)
        return {
            "row": jnp.zeros((l2,), dt),
            "v_in": tuple(jnp.zeros((p + 1, l2 + 2 * p, fi), dt) for fi in f_in),
            "v_row": jnp.zeros((self.layers, l2, f), dt),
            "h_in": tuple(jnp.zeros((p + 1, fi), dt) for fi in f_in),
        }

    def _vertical_row(self, v_in: tuple, row: Float[Array, " l2"]) -> tuple[tuple, Array]:
        """Push the completed row above into the vertical stack and compute its current row."""
        p = self.kernel_size // 2
        new_in, v_rows, u = [], [], row[:, None]
        for layer in range(self.layers):
            buf = jnp.concatenate([v_in[layer][1:], jnp.pad(u, ((p, p), (0, 0)))[None]], axis=0)
            dv = self.activation(
                _conv(buf[None], self.v_weights[layer])[0, 0] + self.v_biases[layer]
            )
            u = dv if layer == 0 else u + dv
            new_in.append(buf)
            v_rows.append(u)
        return tuple(new_in), jnp.stack(v_rows)

    def conditional_step(
        self, cache: dict, i: Int[Array, ""], x_prev: Int[Array, ""]
    ) -> tuple[Float[Array, " local"], dict]:
        """log p(x_i = · | x_<i) from the cache (sites < i−1) and x_{i−1} = `x_prev`."""
        l2 = self.shape[1]
        c = i % l2
        s_prev = jnp.where(i > 0, self.to_spins(x_prev), 0).astype(self.head_w.dtype)
        row = cache["row"].at[(i - 1) % l2].set(s_prev)
        # At a row start the row above is complete: compute this row's vertical features once.
        v_in, v_row = jax.lax.cond(
            c == 0,
            lambda: self._vertical_row(cache["v_in"], row),
            lambda: (cache["v_in"], cache["v_row"]),
        )
        h = jnp.where(c > 0, s_prev, 0)[None]
        h_in = []
        for layer in range(self.layers):
            buf = jnp.where(c == 0, 0, cache["h_in"][layer])
            buf = jnp.concatenate([buf[1:], h[None]], axis=0)
            pre = jnp.tensordot(buf, self.h_weights[layer][0], axes=2) + self.h_biases[layer]
            dh = self.activation(pre + v_row[layer, c] @ self.vh_weights[layer])
            h = dh if layer == 0 else h + dh
            h_in.append(buf)
        log_mod, _ = self._head(h)
        new = {"row": row, "v_in": v_in, "v_row": v_row, "h_in": tuple(h_in)}
        return 2 * log_mod, new
