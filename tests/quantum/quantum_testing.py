"""Helpers shared by the quantum tests."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def perturbed(model, key_seed: int, scale: float = 1.0):
    """`model` with N(0, scale²) noise added to every array leaf: O(1) random parameters, away
    from the near-uniform initial state, so that properties are tested on generic networks."""
    leaves, treedef = jax.tree.flatten(model)
    keys = jax.random.split(jax.random.key(key_seed), len(leaves))
    noisy = [
        a + scale * jax.random.normal(k, a.shape, a.dtype)
        for a, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(treedef, noisy)


def all_spins(n: int):
    """All 2^n configurations of n spins as ±1 values (index 0 ↔ +1), lexicographic."""
    return jnp.asarray(list(itertools.product([1.0, -1.0], repeat=n)))


def assert_sampler_paths_agree(model, key, n_samples: int = 64):
    """Cached and plain exact samplers draw the same configurations for the same key, and the
    log-probabilities they return equal 2 Re log ψ and `kernels.log_prob` (float64 round-off)."""
    from physml.kernels import log_prob, sample

    x_c, lp_c = sample(model, n_samples, key=key, cached=True)
    x_p, lp_p = sample(model, n_samples, key=key, cached=False)
    np.testing.assert_array_equal(x_c, x_p)
    np.testing.assert_allclose(lp_c, lp_p, atol=1e-12)
    np.testing.assert_allclose(lp_c, 2 * jnp.real(model.log_psi(model.to_spins(x_c))), atol=1e-12)
    np.testing.assert_allclose(lp_c, log_prob(model, x_c), atol=1e-12)
