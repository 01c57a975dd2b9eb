"""Helpers shared by the quantum tests."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


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


def assert_gradient_within_5_standard_errors(m, aux, g_mc, g_exact):
    """The sampled VMC gradient `g_mc` (flat) is the mean of the per-sample terms
    2 Re[(E_loc − Ē)* O(σ)] of the samples in `aux`, and agrees with `g_exact` within 5 standard
    errors of that mean in every component. Returns the standard errors."""
    sigma, e_loc = aux["sigma"], aux["e_loc"]
    delta = e_loc - jnp.mean(e_loc)

    def per_sample(s, d):
        g = eqx.filter_grad(
            lambda mm: 2 * jnp.real(jnp.conj(d) * mm.log_psi(s[None], per_sample=True)[0])
        )(m)
        return ravel_pytree(g)[0]

    contributions = jax.jit(jax.vmap(per_sample))(sigma, delta)
    np.testing.assert_allclose(jnp.mean(contributions, axis=0), g_mc, atol=1e-12)
    stderr = jnp.std(contributions, axis=0) / np.sqrt(sigma.shape[0])
    assert np.all(np.abs(g_mc - g_exact) <= 5 * stderr + 1e-12)
    return stderr
