"""Helpers shared by the quantum tests."""

import itertools

import jax
import jax.numpy as jnp


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
