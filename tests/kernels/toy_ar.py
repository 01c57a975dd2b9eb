"""A hand-written autoregressive distribution with known probabilities, for sampler tests.

log p(x_i = s | x_<i) = log_softmax_s( W[i, s] + Σ_{j<i} A[i, j, x_j, s] ).
The cache holds the accumulated logits of all sites; step i adds the contribution of x_{i-1}.
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from physml.kernels import AbstractAutoregressiveModel


class TableAR(AbstractAutoregressiveModel):
    W: jax.Array  # (N, L)
    A: jax.Array  # (N, N, L, L): A[i, j, x_j, s], used only for j < i
    n_sites: int = eqx.field(static=True)
    local_size: int = eqx.field(static=True)

    def __init__(self, n_sites, local_size, *, key, scale=1.5):
        k1, k2 = jax.random.split(key)
        self.n_sites, self.local_size = n_sites, local_size
        self.W = scale * jax.random.normal(k1, (n_sites, local_size))
        mask = np.tril(np.ones((n_sites, n_sites)), k=-1)[:, :, None, None]
        self.A = scale * mask * jax.random.normal(k2, (n_sites, n_sites, local_size, local_size))

    def conditionals(self, x):
        onehot = jax.nn.one_hot(x, self.local_size, dtype=self.W.dtype)  # (N, L)
        logits = self.W + jnp.einsum("ijks,jk->is", self.A, onehot)
        return jax.nn.log_softmax(logits, axis=-1)

    def init_cache(self):
        return jnp.zeros((self.n_sites, self.local_size), self.W.dtype)

    def conditional_step(self, cache, i, x_prev):
        contrib = self.A[:, jnp.maximum(i - 1, 0), x_prev, :]
        cache = jnp.where(i > 0, cache + contrib, cache)
        return jax.nn.log_softmax(self.W[i] + cache[i]), cache


class PlainOnlyAR(AbstractAutoregressiveModel):
    """Same distribution without a cache (the plain path only)."""

    inner: TableAR
    n_sites: int = eqx.field(static=True)
    local_size: int = eqx.field(static=True)

    def __init__(self, inner):
        self.inner, self.n_sites, self.local_size = inner, inner.n_sites, inner.local_size

    def conditionals(self, x):
        return self.inner.conditionals(x)


def exact_log_probs(model):
    """All configurations (lexicographic) and their exact joint log-probabilities, by brute
    force from the conditional table (independent of the sampler)."""
    configs = np.array(list(itertools.product(range(model.local_size), repeat=model.n_sites)))
    W, A = np.asarray(model.W), np.asarray(model.A)
    out = []
    for x in configs:
        total = 0.0
        for i in range(model.n_sites):
            logits = W[i] + sum(A[i, j, x[j]] for j in range(i))
            logits = logits - logits.max()
            total += logits[x[i]] - np.log(np.exp(logits).sum())
        out.append(total)
    return configs, np.array(out)
