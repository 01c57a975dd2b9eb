"""log ψ of the configurations a Hamiltonian connects σ to, for `ARConv2D`, recomputing only the
rows a change reaches.

In `ARConv2D` (p = kernel_size // 2) the vertical stack at row t reads the spins of rows < t
only, and the horizontal stack at row t reads row t itself and the vertical stack at row t. So
if σ' first differs from σ in row r (raster order), every activation in the rows above r, and
the vertical activations of row r, are those of σ, and

    log ψ(σ') = Σ_{i < r·L₂} log ψ_i(σ) + Σ_{i ≥ r·L₂} log ψ_i(σ'),

where the second sum needs the vertical stack on rows r+1 … L₁−1 only (each layer's p rows
of context above, rows r+1−p … r, taken from σ's pass) and the horizontal stack on rows
r … L₁−1. A move that flips one or two sites costs (L₁ − r)/L₁ of a full pass; averaged over
the rows, about half. Nothing is skipped below row r: with the default depth (every site sees
all earlier ones) a change reaches every later row.

Batching: one pass over the references σ keeps every layer's vertical output. The (reference,
connection) pairs that need work are sorted by r and cut into chunks that each hold one r (the
last chunk of each r padded), one `lax.map` step per chunk, with a `lax.switch` over r to a
branch of static row counts. Pairs with σ' = σ, and pairs marked inactive (a zero matrix
element), cost nothing. Same values as `ARConv2D.log_psi` to round-off.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Inexact, Int, Real

from ._wavefunction import AbstractTwoStateNetwork

__all__ = ["Transform", "check_connected", "log_psi_connected_2d"]

# Values per (chunk, L₁·L₂, F) array of a `lax.map` step when no chunk size is given: about
# 0.5 MB in float64, a size that stays in cache (timed with benchmarks/quantum_local_energy.py
# on 6×6 and 10×10).
_CHUNK_ELEMENTS = 65_536

_DN = ("NHWC", "HWIO", "NHWC")

# (b, N) local-state indices and (b, N, 2) log-moduli → rewritten log-moduli; site i may depend
# on x_≤i only (e.g. the masks of `FixedMagnetization`).
Transform = Callable[[Array, Array], Array]


def check_connected(n_sites: int, sigma: Array, sigma_p: Array, active: Array | None) -> None:
    """Raise a ValueError that names the shapes unless sigma is (batch, N), sigma_p
    (batch, conn, N) and active None or (batch, conn)."""
    ok = (
        sigma.ndim == 2
        and sigma.shape[1] == n_sites
        and sigma_p.ndim == 3
        and sigma_p.shape[0] == sigma.shape[0]
        and sigma_p.shape[2] == n_sites
    )
    if ok and active is not None:
        ok = active.shape == sigma_p.shape[:2] and active.dtype == jnp.bool_
    if not ok:
        got = f"sigma {sigma.shape}, sigma_p {sigma_p.shape}"
        got += "" if active is None else f", active {active.shape} {active.dtype}"
        raise ValueError(
            f"Expected sigma of shape (batch, {n_sites}), sigma_p of shape (batch, conn, "
            f"{n_sites}) and active None or a bool array (batch, conn); got {got}."
        )


def _conv(x: Array, w: Array) -> Array:
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)


def _conv_im2col(x: Array, w: Array) -> Array:
    """The "VALID" convolution of `_conv` as one matmul: the kernel's taps of x stacked on
    the feature axis (faster than XLA's convolution for a few features on a CPU)."""
    kh, kw, f_in, f_out = w.shape
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    taps = [x[:, a : a + ho, b : b + wo, :] for a in range(kh) for b in range(kw)]
    return jnp.concatenate(taps, axis=-1) @ w.reshape(kh * kw * f_in, f_out)


def _site_terms(model, h: Array, x: Array, transform: Transform | None) -> Array:
    """log ψ_i(x_i | x_<i) per site from last-layer features h (b, n, F), with `transform`
    applied to the log-moduli of the full configurations x (b, N); n ≤ N are the last sites."""
    log_mod, phase = model._head(h)
    start = x.shape[1] - h.shape[1]
    if transform is not None:
        full = jnp.pad(log_mod, ((0, 0), (start, 0), (0, 0)))  # rows above: any finite value
        log_mod = transform(x, full)[:, start:]
    xi = x[:, start:, None]
    pick = lambda t: jnp.take_along_axis(t, xi, axis=-1)[..., 0]
    return pick(log_mod) if phase is None else jax.lax.complex(pick(log_mod), pick(phase))


def _rows_below(
    model,
    r: int,
    x: Array,
    ref: Array,
    cached: tuple[Array, ...],
    prefix: Array,
    transform: Transform | None,
    conv: Callable,
) -> Array:
    """log ψ(σ') for a chunk whose first changed row is (at least) r: x (c, N) the indices of
    σ', `ref` (c,) their references, `cached` every layer's vertical output of all references
    (b, L₁, L₂, F) and `prefix` (b, L₁ + 1) the references' Σ_{i < t·L₂} log ψ_i(σ)."""
    l1, l2 = model.shape
    p = model.kernel_size // 2
    c = x.shape[0]
    lo = r + 1 - p  # first input row of the vertical layers (rows r+1 … L₁−1 recomputed)
    above = ((0, 0), (max(-lo, 0), 0), (0, 0), (0, 0))  # zero rows above the lattice
    s = model.to_spins(x).reshape(c, l1, l2, 1)
    # The vertical input, row t = spins of row t−1 (row 0 and the rows above the lattice zero).
    v_in = jnp.pad(s[:, max(lo - 1, 0) : l1 - 1], ((0, 0), (max(1 - lo, 0), 0), (0, 0), (0, 0)))
    h = jnp.pad(s[:, r:], ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]
    for layer in range(model.layers):
        if r + 1 < l1:
            v_new = model._v_layer(layer, v_in, conv)
            context = cached[layer][ref, max(lo, 0) : r + 1]  # rows lo … r, those of σ
            v_rows = jnp.concatenate([context[:, -1:], v_new], axis=1)
            v_in = jnp.concatenate([jnp.pad(context, above), v_new], axis=1)
        else:
            v_rows = cached[layer][ref, r:]
        h = model._h_layer(layer, h, v_rows, conv)
    terms = _site_terms(model, h.reshape(c, -1, model.features), x, transform)
    return prefix[ref, r] + terms.sum(-1)


def log_psi_connected_2d(
    model: AbstractTwoStateNetwork,
    sigma: Real[Array, "batch sites"],
    sigma_p: Real[Array, "batch conn sites"],
    *,
    active: Bool[Array, "batch conn"] | None = None,
    transform: Transform | None = None,
    chunk_size: int | None = None,
    im2col: bool = True,
) -> tuple[Inexact[Array, " batch"], Inexact[Array, "batch conn"]]:
    """log ψ(σ) and log ψ(σ'_k) for an `ARConv2D`, recomputing rows ≥ the first changed row.

    Args:
        model: an `ARConv2D` (its `shape`, layers and `_v_layer`/`_h_layer` steps are used).
        sigma: reference configurations (spin values).
        sigma_p: for each reference, `conn` configurations (e.g. `get_conn_padded`).
        active: which σ'_k are needed; an inactive one (a zero matrix element) gets log ψ(σ)
            and costs nothing. Default: all.
        transform: a rewrite of the per-site log-moduli, (x (b, N), log|ψ_i(s)| (b, N, 2)) →
            (b, N, 2), in which site i depends on x_≤i only (`FixedMagnetization`'s masks).
        chunk_size: configurations per `lax.map` step; `None`: a cache-sized chunk (about
            `_CHUNK_ELEMENTS` values per (chunk, sites, features) array, 8 to 256
            configurations). The values do not depend on it.
        im2col: convolutions as one matmul of the stacked kernel taps (`_conv_im2col`), else
            XLA's convolution; the same values.

    Returns:
        `(log_psi, log_psi_p)`, shapes (batch,) and (batch, conn), as `model.log_psi` would give
        them (to round-off), with `transform` applied.
    """
    b, k, n = sigma_p.shape
    l1, l2 = model.shape
    x = model.to_indices(sigma)
    xp = model.to_indices(sigma_p).reshape(b * k, n)
    h, cached = model._stacks(model.to_spins(x), matmul=True)  # faster than XLA conv on CPU
    terms = _site_terms(model, h, x, transform)
    log_psi = terms.sum(-1)
    row_sums = terms.reshape(b, l1, l2).sum(-1)
    prefix = jnp.concatenate([jnp.zeros((b, 1), terms.dtype), jnp.cumsum(row_sums, 1)], 1)

    changed = xp.reshape(b, k, n) != x[:, None, :]
    todo = jnp.any(changed, -1) if active is None else jnp.any(changed, -1) & active
    first_row = jnp.where(todo, jnp.argmax(changed, -1) // l2, l1).reshape(-1)

    # Chunks of one first row each: group r (< L₁) fills ceil(count_r / c) chunks in turn; at
    # most ceil(m / c) + L₁ of them, the rest (group L₁) are empty.
    if chunk_size is None:
        chunk_size = min(max(_CHUNK_ELEMENTS // (n * model.features), 8), 256)
    m, c = b * k, min(chunk_size, b * k)
    order = jnp.argsort(first_row, stable=True)
    counts = jnp.bincount(first_row, length=l1 + 1)[:l1]
    n_chunks = -(-counts // c)
    chunk_end = jnp.cumsum(n_chunks)
    group_start = jnp.cumsum(counts) - counts
    t = jnp.arange(-(-m // c) + l1)
    row_t = jnp.searchsorted(chunk_end, t, side="right")  # L₁ past the last used chunk
    g = jnp.minimum(row_t, l1 - 1)
    within = (t - (chunk_end[g] - n_chunks[g]))[:, None] * c + jnp.arange(c)
    valid = (row_t < l1)[:, None] & (within < counts[g][:, None])
    pair = jnp.where(valid, order[jnp.clip(group_start[g][:, None] + within, 0, m - 1)], m)

    def branch(r: int):
        def run(pair_c: Int[Array, " c"]) -> Array:
            idx = jnp.minimum(pair_c, m - 1)
            conv = _conv_im2col if im2col else _conv
            return _rows_below(model, r, xp[idx], idx // k, cached, prefix, transform, conv)

        return run

    def skip(pair_c: Int[Array, " c"]) -> Array:
        return jnp.zeros(pair_c.shape, log_psi.dtype)

    branches = [branch(r) for r in range(l1)] + [skip]
    values = jax.lax.map(lambda a: jax.lax.switch(a[0], branches, a[1]), (row_t, pair))
    out = jnp.repeat(log_psi, k).at[pair.reshape(-1)].set(values.reshape(-1), mode="drop")
    return log_psi, out.reshape(b, k)
