"""Symmetrised states: lattice groups (vs NetKet), group checks, normalisation, invariance and
exact sampling of |ψ_G|²."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from quantum_testing import all_spins, perturbed
from test_arconv2d import chi_square_pvalue

from physml.quantum import ARConv2D, FixedMagnetization, Symmetrized, check_group, lattice_group


def _model(shape, positive, seed, scale=1.0):
    m = ARConv2D(shape, layers=2, features=3, positive=positive, key=jax.random.key(seed))
    return perturbed(m, seed + 1, scale)


@pytest.mark.parametrize(
    "shape, pbc, size",
    [
        ((3, 3), False, 8),
        ((4, 4), False, 8),
        ((2, 3), False, 4),
        ((3, 4), True, 48),
        ((4, 4), True, 128),
        ((3, 3), True, 72),
    ],
)
def test_lattice_group_is_a_group_and_equals_netket_space_group(shape, pbc, size):
    g = lattice_group(shape, pbc=pbc)
    assert g.shape == (size, shape[0] * shape[1])
    np.testing.assert_array_equal(g[0], np.arange(g.shape[1]))  # identity first
    check_group(g, g.shape[1])
    netket = np.asarray(nk.graph.Grid(list(shape), pbc=pbc).space_group())
    assert {tuple(r) for r in g} == {tuple(r) for r in netket}


def test_lattice_group_maps_bonds_to_bonds():
    """Every element is a graph automorphism of the lattice (so a Hamiltonian symmetry)."""
    for shape, pbc in [((3, 3), False), ((3, 4), True)]:
        graph = nk.graph.Grid(list(shape), pbc=pbc)
        edges = {frozenset(e) for e in graph.edges()}
        for perm in lattice_group(shape, pbc=pbc):
            assert {frozenset((perm[a], perm[b])) for a, b in edges} == edges


def test_check_group_rejects_non_groups_with_clear_errors():
    ident, swap = np.arange(4), np.array([1, 0, 2, 3])
    cycle = np.array([1, 2, 0, 3])
    check_group(np.stack([ident, swap]), 4)
    check_group(np.stack([ident, cycle, cycle[cycle]]), 4)
    with pytest.raises(ValueError, match="not closed"):
        check_group(np.stack([ident, cycle]), 4)  # the 3-cycle's square is missing
    with pytest.raises(ValueError, match="not closed"):
        check_group(np.stack([swap]), 4)  # swap∘swap = identity is missing
    with pytest.raises(ValueError, match="not a permutation"):
        check_group(np.stack([ident, np.array([0, 0, 2, 3])]), 4)
    with pytest.raises(ValueError, match=r"shape \(group size, 4\)"):
        check_group(np.stack([np.arange(5)]), 4)
    with pytest.raises(ValueError, match=r"shape \(group size, 4\)"):
        check_group(np.arange(4), 4)
    with pytest.raises(ValueError, match="repeated"):
        check_group(np.stack([ident, swap, swap]), 4)
    with pytest.raises(TypeError, match="integers"):
        check_group(np.stack([ident, swap]).astype(float), 4)
    m = _model((2, 2), False, 0)
    with pytest.raises(ValueError, match=r"shape \(group size, 4\)"):
        Symmetrized(m, lattice_group((3, 3), pbc=False))  # a group of the wrong lattice
    with pytest.raises(TypeError, match="autoregressive"):
        Symmetrized(object(), lattice_group((2, 2), pbc=False))


groups = st.sampled_from(
    [
        ((2, 2), False),
        ((2, 2), True),
        ((2, 3), False),
        ((3, 3), False),
        ((3, 3), True),
        ((2, 4), True),
    ]
)


@pytest.mark.filterwarnings("ignore:ARConv2D with layers=2:UserWarning")  # small on purpose
@given(group=groups, positive=st.booleans(), flip=st.booleans(), seed=st.integers(0, 2**16))
@settings(max_examples=6)
def test_symmetrized_is_normalised_and_invariant(group, positive, flip, seed):
    """Σ_σ |ψ_G(σ)|² = 1 (1e-12, by enumeration) and log ψ_G(gσ) = log ψ_G(σ) (1e-12) for every
    g in G (and the spin flip); and ψ_G differs from ψ (the test is not vacuous)."""
    shape, pbc = group
    n = shape[0] * shape[1]
    m = _model(shape, positive, seed)
    perms = lattice_group(shape, pbc=pbc)
    sym = Symmetrized(m, perms, spin_flip=flip)
    s = all_spins(n)
    # Invariance on 32 configurations: all their group images, and every configuration, in one
    # batch (one compiled program per example).
    idx = np.random.default_rng(seed).choice(len(s), size=min(32, len(s)), replace=False)
    images = jnp.stack([s[idx][:, g] for g in perms] + ([-s[idx]] if flip else []))
    batch = jnp.concatenate([s, images.reshape(-1, n)])
    lp_all, lp_plain = eqx.filter_jit(lambda x: (sym.log_psi(x), m.log_psi(x[: len(s)])))(batch)
    lp, lpi = lp_all[: len(s)], lp_all[len(s) :].reshape(images.shape[:2])  # lpi: (|G|, 32)
    assert float(jnp.sum(jnp.exp(2 * jnp.real(lp)))) == pytest.approx(1.0, abs=1e-12)
    assert jnp.isrealobj(lp) == positive
    np.testing.assert_allclose(
        jnp.real(lpi), jnp.broadcast_to(jnp.real(lp[idx]), lpi.shape), atol=1e-12
    )
    if not positive:  # phases agree modulo 2π
        np.testing.assert_allclose(
            jnp.exp(1j * jnp.imag(lpi)),
            jnp.broadcast_to(jnp.exp(1j * jnp.imag(lp[idx])), lpi.shape),
            atol=1e-10,
        )
    assert float(jnp.max(jnp.abs(jnp.real(lp - lp_plain)))) > 1e-3


@pytest.mark.parametrize("flip, positive", [(False, True), (True, False)])
def test_symmetrized_sampler_frequencies_chi_square(flip, positive):
    """2×3, D2 (× spin flip): 40 000 samples vs |ψ_G|² (rare bins pooled), p > 1e-4; the same
    counts reject the unsymmetrised |ψ|²."""
    m = _model((2, 3), positive, 7, scale=0.3)
    sym = Symmetrized(m, lattice_group((2, 3), pbc=False), spin_flip=flip)
    s = all_spins(6)
    probs = np.exp(2 * np.real(np.asarray(sym.log_psi(s))))
    x = sym.sample(40_000, key=jax.random.key(2))
    assert x.shape == (40_000, 6) and x.dtype == jnp.int32
    counts = np.bincount(np.asarray(x) @ (2 ** np.arange(5, -1, -1)), minlength=64)
    assert chi_square_pvalue(counts, probs) > 1e-4
    plain = np.exp(2 * np.real(np.asarray(m.log_psi(s))))
    assert chi_square_pvalue(counts, plain) < 1e-4


def test_symmetrized_fixed_magnetization_stays_on_the_sector():
    """D4 × flip over an Sᶻ = 0 model: normalised on the sector, samples on the sector."""
    fm = FixedMagnetization(_model((2, 2), False, 3))
    sym = Symmetrized(fm, lattice_group((2, 2), pbc=False), spin_flip=True)
    s = all_spins(4)
    p = np.exp(2 * np.real(np.asarray(sym.log_psi(s))))
    sector = np.asarray(s.sum(-1)) == 0
    assert p[sector].sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(p[~sector], 0.0)
    x = sym.sample(256, key=jax.random.key(0))
    np.testing.assert_array_equal(sym.to_spins(x).sum(-1), 0.0)
    with pytest.raises(ValueError, match="sites"):
        sym.log_psi(jnp.ones((2, 5)))
