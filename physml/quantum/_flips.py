"""log ψ of all single-spin flips of a configuration, by propagating the change only.

A Hamiltonian whose off-diagonal terms flip one spin (the TFIM: −h Σ σˣ) connects σ to its N
single flips σ^(j). In a causal convolution stack the flip of site j changes the input of
layer 1 at position j+1 only, hence layer l only at positions j+1 … j+1+Σ_{m≤l}(k−1)d_m: a window
of R = Σ_l (k−1)d_l + 1 sites, independent of N. Convolutions are linear, so the change of each
pre-activation is the convolution of the change of its input, restricted to the window; only the
nonlinearities need the stored pre-activations of σ. The cost per flipped configuration drops
from N to R site evaluations (e.g. R = 9 for two layers of kernel 5; N = 100 → 11× less work).

Layout: the changes are kept offset-major, one (batch, N−1−t, F) array per offset t (position
j+1+t, for the flips j whose position is still on the chain), so the stored activations of σ
enter as slices and each offset costs one (batch·(N−1−t), taps·F) × (taps·F, F) product. The
batch is processed in chunks of about `_CHUNK_ELEMENTS` values per array (cache-sized), one
`lax.map` step each. Timings of this layout against the alternatives: docs/notes/.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Inexact, Real

from ._arconv import ARConv1D, _causal_conv

__all__ = ["log_psi_single_flips", "window_size"]

# Values per (chunk, N, F) array: 128 chains × 20 sites × 10 features, about 200 kB in float64,
# a size that stays in cache; chosen by timing chunk sizes (docs/notes/).
_CHUNK_ELEMENTS = 25_600


def window_size(model: ARConv1D) -> int:
    """R: the number of sites whose conditionals can change when one earlier site flips."""
    return sum((model.kernel_size - 1) * d for d in model.dilations) + 1


def _flips_chunk(model: ARConv1D, sigma: Real[Array, "batch sites"]):
    n = sigma.shape[1]
    k = model.kernel_size
    x = model.to_indices(sigma)
    spins = model.to_spins(x)

    # Base pass, keeping every layer's pre-activation and activation.
    h = jnp.pad(spins[:, :-1], ((0, 0), (1, 0)))[..., None]
    pres, outs = [], []
    for layer, (w, bias, d) in enumerate(
        zip(model.weights, model.biases, model.dilations, strict=True)
    ):
        pre = _causal_conv(h, w, k, d) + bias
        out = model.activation(pre)
        pres.append(pre)
        outs.append(out)
        h = out if layer == 0 else h + out
    site_terms = model._site_terms(h, x)
    log_psi = site_terms.sum(-1)
    # Site j itself: the same conditional, the other local state.
    own = model._site_terms(h, 1 - x) - site_terms

    # delta[t]: change of the current layer's input at position j+1+t for every flip j whose
    # position is on the chain (j < N−1−t), shape (batch, N−1−t, F_in).
    delta = {0: (-2 * spins[:, :-1])[..., None]}
    for layer, (w, pre, out, d) in enumerate(
        zip(model.weights, pres, outs, model.dilations, strict=True)
    ):
        f_in = w.shape[0] // k
        taps = w.reshape(k, f_in, -1)
        new = {}
        for t in range(min(max(delta) + (k - 1) * d + 1, n - 1)):
            # Tap m of the causal convolution reads the input (k−1−m)·d positions back.
            ms = [m for m in range(k) if t - (k - 1 - m) * d in delta]
            if not ms:
                continue
            src = [delta[t - (k - 1 - m) * d][:, : n - 1 - t] for m in ms]
            if f_in == 1:
                d_pre = sum(s * taps[m][0] for s, m in zip(src, ms, strict=True))
            else:
                d_pre = jnp.concatenate(src, axis=-1) @ jnp.concatenate([taps[m] for m in ms])
            d_out = model.activation(pre[:, 1 + t :] + d_pre) - out[:, 1 + t :]
            new[t] = d_out if layer == 0 else delta.get(t, 0) + d_out
        if layer > 0:  # residual: input changes pass through unchanged
            for t, v in delta.items():
                new.setdefault(t, v)
        delta = new

    changes = [
        jnp.pad(
            model._site_terms(h[:, 1 + t :] + dh, x[:, 1 + t :]) - site_terms[:, 1 + t :],
            ((0, 0), (0, 1 + t)),
        )
        for t, dh in delta.items()
    ]
    downstream = jnp.sum(jnp.stack(changes), axis=0)
    return log_psi, log_psi[:, None] + own + downstream


def log_psi_single_flips(
    model: ARConv1D, sigma: Real[Array, "batch sites"], *, chunk_size: int | None = None
) -> tuple[Inexact[Array, " batch"], Inexact[Array, "batch sites"]]:
    """log ψ(σ) and log ψ(σ^(j)) for every single flip j, as `model.log_psi` would give them
    (to round-off).

    Args:
        model: the 1D masked-convolution wave function.
        sigma: spin configurations (values in `model.local_states`).
        chunk_size: configurations per `lax.map` step; `None` picks a cache-sized chunk
            (about 25 600 values per (chunk, N, features) array). The values do not depend on it.

    Returns:
        `(log_psi, log_psi_flip)` of shapes (batch,) and (batch, sites).
    """
    b, n = sigma.shape
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // (n * model.features))
    if b <= chunk_size:
        return _flips_chunk(model, sigma)
    n_chunks = -(-b // chunk_size)
    # Padding repeats the first row (a valid configuration), sliced off below.
    pad = jnp.broadcast_to(sigma[:1], (n_chunks * chunk_size - b, n))
    chunks = jnp.concatenate([sigma, pad]).reshape(n_chunks, chunk_size, n)
    log_psi, flips = jax.lax.map(lambda s: _flips_chunk(model, s), chunks)
    return log_psi.reshape(-1)[:b], flips.reshape(-1, n)[:b]
