"""transfer: a trained network on a larger lattice. Added layers leave the function unchanged,
rows keep their conditionals, the receptive-field check is exact, wrappers are rebuilt, and a
trained 4×4 TFIM network starts the 6×6 lattice at the same energy per site (slow)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from quantum_testing import perturbed

from physml.quantum import (
    SR,
    ARConv1D,
    ARConv2D,
    FixedMagnetization,
    ReceptiveFieldError,
    Symmetrized,
    evaluate_energy,
    exact_energy,
    ground_state,
    lattice_group,
    tfim_2d,
    transfer,
)


def _net2d(shape=4, positive=False, features=3, seed=0, **kw):
    """O(1) random parameters, with phases: a generic network, not the near-uniform start."""
    m = ARConv2D(shape, features=features, positive=positive, key=jax.random.key(seed), **kw)
    return perturbed(m, seed + 1, 0.5)


_log_psi = eqx.filter_jit(lambda model, sigma: model.log_psi(sigma))


def _spins(n_sites, n=16, seed=0):
    return jnp.asarray(np.random.default_rng(seed).choice([-1.0, 1.0], (n, n_sites)))


def test_added_layers_leave_the_function_unchanged():
    """Zero-weight residual layers add activation(0) = 0: log ψ (modulus and phase) is the same
    function, on the same lattice and, for any number of them, on a larger one."""
    m = _net2d()
    same = transfer(m, 4, add_layers=2)
    assert same.layers == m.layers + 2
    s = _spins(16)
    np.testing.assert_array_equal(_log_psi(same, s), _log_psi(m, s))
    s6 = _spins(36)
    np.testing.assert_array_equal(
        _log_psi(transfer(m, 6, add_layers=2), s6), _log_psi(transfer(m, 6, add_layers=5), s6)
    )
    chain = perturbed(ARConv1D(8, layers=2, features=3, kernel_size=3, key=jax.random.key(2)), 3)
    longer = transfer(chain, 8, add_layers=2)
    assert longer.dilations == (1, 1, 2, 4)  # doubling from the last trained dilation
    np.testing.assert_array_equal(_log_psi(longer, _spins(8)), _log_psi(chain, _spins(8)))


def test_rows_keep_their_conditionals():
    """On a lattice with more rows and the same width the raster order of the first rows is the
    same and a conditional sees only earlier sites, so the transferred network's conditionals
    there equal the trained one's: the kernels land at the same offsets."""
    m = _net2d((3, 4))
    taller = transfer(m, (5, 4), add_layers=None)
    x = np.random.default_rng(1).integers(0, 2, (6, 20))
    small = jax.vmap(m.conditionals)(jnp.asarray(x[:, :12]))
    large = jax.vmap(taller.conditionals)(jnp.asarray(x))
    np.testing.assert_allclose(large[:, :12], small, rtol=0, atol=1e-12)


def test_receptive_field_check_is_exact_and_says_how_many_layers():
    m = _net2d()  # 4×4: 3 layers of kernel 3 reach 3 sites
    with pytest.raises(ReceptiveFieldError, match=r"6×6 .* add_layers >= 2"):
        transfer(m, 6)
    with pytest.raises(ReceptiveFieldError, match="add_layers >= 2"):
        transfer(m, 6, add_layers=1)
    grown = transfer(m, 6, add_layers=None)
    assert grown.layers == 5 and grown.covers_lattice
    depends = grown.receptive_field()
    assert all(depends[i, :i].all() for i in range(36))  # every earlier site, as promised
    assert transfer(m, (5, 4), add_layers=None).layers == 3  # D·p = 3 >= max(3, 3): none added


def _depends_on_first_site(chain, n_sites):
    """Whether the last conditional of `chain` changes when site 0 flips (random states)."""
    x = np.random.default_rng(0).integers(0, 2, (8, n_sites))
    flipped = x.copy()
    flipped[:, 0] = 1 - flipped[:, 0]
    last = lambda xs: jax.vmap(chain.conditionals)(jnp.asarray(xs))[:, -1]
    return not np.allclose(last(x), last(flipped), rtol=0, atol=1e-12)


def test_chain_receptive_field_threshold_matches_the_network():
    """1 + (k − 1)·Σd = 7 earlier sites for k = 3, d = (1, 2): an 8-site chain is covered (its
    last conditional depends on site 0), a 9-site one is not (and the network agrees)."""
    chain = perturbed(
        ARConv1D(8, layers=2, features=3, kernel_size=3, dilations=(1, 2), key=jax.random.key(4)),
        5,
    )
    assert _depends_on_first_site(transfer(chain, 8), 8)
    with pytest.raises(ReceptiveFieldError, match="sees 7 earlier sites"):
        transfer(chain, 9)
    uncovered = ARConv1D(
        9, layers=2, features=3, kernel_size=3, dilations=(1, 2), key=jax.random.key(4)
    )
    assert not _depends_on_first_site(perturbed(uncovered, 5), 9)
    assert transfer(chain, 9, add_layers=None).dilations == (1, 2, 4)
    assert transfer(chain, 30, add_layers=1, dilations=(11,)).dilations == (1, 2, 11)


def test_wrappers_are_rebuilt_around_the_new_network():
    net = _net2d(positive=True)
    full = Symmetrized(FixedMagnetization(net), lattice_group(4, pbc=True), spin_flip=True)
    out = transfer(full, 6, add_layers=None)
    assert isinstance(out, Symmetrized) and out.spin_flip
    assert isinstance(out.model, FixedMagnetization) and out.model.magnetization == 0
    assert out.model.model.shape == (6, 6)
    want = lattice_group(6, pbc=True)
    assert np.array_equal(np.unique(np.asarray(out.permutations), axis=0), np.unique(want, axis=0))
    point = transfer(Symmetrized(net, lattice_group(4, pbc=False)), (6, 8), add_layers=None)
    assert np.asarray(point.permutations).shape == (4, 48)  # the point group of a 6×8 rectangle
    flip_only = transfer(Symmetrized(net, np.arange(16)[None], spin_flip=True), 6, add_layers=2)
    assert np.array_equal(np.asarray(flip_only.permutations), np.arange(36)[None])
    odd = Symmetrized(net, lattice_group(4, pbc=False)[[0, 1]])  # {identity, a reflection}
    with pytest.raises(ValueError, match="pass `permutations=`"):
        transfer(odd, 6, add_layers=2)
    given = transfer(odd, 6, add_layers=2, permutations=lattice_group(6, pbc=False)[[0, 1]])
    assert np.asarray(given.permutations).shape == (2, 36)
    with pytest.raises(ValueError, match="Sᶻ = 0 needs an even number"):
        transfer(FixedMagnetization(net), 5, add_layers=1)


def test_bad_arguments_are_refused():
    m = _net2d()
    with pytest.raises(ValueError, match="`add_layers` must be >= 0, got -1"):
        transfer(m, 6, add_layers=-1)
    with pytest.raises(TypeError, match="`add_layers` must be an int"):
        transfer(m, 6, add_layers=True)
    with pytest.raises(ValueError, match="`dilations` applies to an `ARConv1D`"):
        transfer(m, 6, add_layers=2, dilations=(1, 2))
    with pytest.raises(ValueError, match="`permutations` applies to a `Symmetrized`"):
        transfer(m, 6, add_layers=2, permutations=lattice_group(6, pbc=False))
    with pytest.raises(TypeError, match="must be an ARConv2D or ARConv1D"):
        transfer(object(), 6)
    with pytest.raises(ValueError, match="`shape` must be"):
        transfer(m, 0)
    sigmoid = ARConv2D(4, features=2, activation=jax.nn.sigmoid, key=jax.random.key(0))
    with pytest.raises(ValueError, match="activation\\(0\\) = 0"):
        transfer(sigmoid, 6, add_layers=2)


@pytest.mark.slow
def test_trained_4x4_tfim_starts_6x6_at_the_same_energy_per_site():
    """Open TFIM at h = 4 (paramagnet, gapped): train a 4×4 network briefly, transfer it to 6×6
    and compare per-site variational errors r = E/N − e_exact before any training there.

    Reference for 6×6 (2^36 states, no Lanczos): on open L₁×L₂ lattices the ground energy is
    L₁L₂·e_b + (L₁ + L₂)·a + c (bulk, edges, corners) up to corrections that decay
    exponentially with the size in a gapped phase. Fitted to the exact 3×3, 3×4 and 4×4 energies
    it predicts 3×5; its residual there, per site, bounds the (smaller) residual at 6×6: ε_ref.

    Claims: the transferred network is as accurate per site as the trained one, r₆ <= r₄, and
    variational, r₆ >= 0, each within 4 combined standard errors plus ε_ref.
    """
    h = 4.0
    exact = {s: exact_energy(tfim_2d(s, h, pbc=False)) for s in [(3, 3), (3, 4), (4, 4), (3, 5)]}
    fit = lambda s: [s[0] * s[1], s[0] + s[1], 1]
    coef = np.linalg.solve(np.array([fit(s) for s in [(3, 3), (3, 4), (4, 4)]]),
                           np.array([exact[s] for s in [(3, 3), (3, 4), (4, 4)]]))  # fmt: skip
    eps_ref = abs(np.dot(fit((3, 5)), coef) - exact[(3, 5)]) / 15
    e6_ref = np.dot(fit((6, 6)), coef) / 36

    model = ARConv2D(4, features=6, positive=True, key=jax.random.key(0))
    res = ground_state(
        tfim_2d(4, h, pbc=False),
        model,
        n_samples=128,
        steps=60,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-3),
        n_eval_samples=4096,
        progress=False,
    )
    r4, s4 = float(res.energy.mean) / 16 - exact[(4, 4)] / 16, float(res.energy.error_of_mean) / 16
    assert r4 < 0.01  # trained: the product state |→⟩ has r ≈ 0.098 per site here
    six = transfer(res.model, 6, add_layers=None)
    e6 = evaluate_energy(tfim_2d(6, h, pbc=False), six, 4096, key=jax.random.key(2))
    r6, s6 = float(e6.mean) / 36 - e6_ref, float(e6.error_of_mean) / 36
    tol = 4 * np.hypot(s4, s6) + eps_ref
    assert r6 <= r4 + tol, (r6, r4, tol)
    assert r6 >= -(4 * s6 + eps_ref), (r6, s6, eps_ref)
