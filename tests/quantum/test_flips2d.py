"""The incremental 2D path (`ARConv2D.log_psi_connected`, through `FixedMagnetization` and
`Symmetrized`): recomputing only the rows at and below the first changed row gives the full
network pass's log ψ and local energies, to float64 round-off."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from quantum_testing import perturbed

import physml.quantum._vmc as vmc
from physml.quantum import (
    ARConv1D,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    heisenberg_2d,
    lattice_group,
    local_energies,
    tfim_2d,
)

# Round-off of a sum of ~N·D·F² products of O(1) numbers in float64 is ~1e-14 relative; 1e-10
# leaves room for the exponentials of log-ratios and still fails on any wrong activation.
RTOL = 1e-10


def _base(shape, *, layers, kernel, positive, seed):
    m = ARConv2D(
        shape,
        layers=layers,
        features=3,
        kernel_size=kernel,
        positive=positive,
        key=jax.random.key(seed),
    )
    return perturbed(m, seed + 1, 0.5)  # O(1) parameters: every conditional matters


@settings(max_examples=2)
@given(
    l1=st.integers(2, 4),
    l2=st.integers(2, 4),
    layers=st.integers(1, 2),
    kernel=st.sampled_from([3, 5]),
    positive=st.booleans(),
    n_flips=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_connected_log_psi_equals_full_pass(l1, l2, layers, kernel, positive, n_flips, seed):
    """log ψ(σ') for σ' = σ with 0–3 random sites flipped (anywhere: first changed row and the
    rows below vary), against `log_psi`; inactive connections get log ψ(σ)."""
    with warnings.catch_warnings():  # a shallow network on a wide lattice warns; still exact
        warnings.simplefilter("ignore", UserWarning)
        m = _base((l1, l2), layers=layers, kernel=kernel, positive=positive, seed=seed)
    b, k, n = 3, 5, l1 * l2
    keys = jax.random.split(jax.random.key(seed + 2), 3)
    sigma = jnp.where(jax.random.bernoulli(keys[0], 0.5, (b, n)), 1.0, -1.0)
    flip = jnp.zeros((b, k, n), bool)
    for j in range(n_flips):
        site = jax.random.randint(jax.random.fold_in(keys[1], j), (b, k), 0, n)
        flip = flip | jax.nn.one_hot(site, n, dtype=bool)
    sigma_p = jnp.where(flip, -sigma[:, None], sigma[:, None])
    active = jax.random.bernoulli(keys[2], 0.7, (b, k))

    @eqx.filter_jit
    def both(m, s, sp, a):
        full = jnp.where(a, m.log_psi(sp), m.log_psi(s)[:, None])
        return m.log_psi_connected(s, sp, active=a), (m.log_psi(s), full)

    (log_psi, log_psi_p), (reference, expected) = both(m, sigma, sigma_p, active)
    np.testing.assert_allclose(log_psi, reference, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(log_psi_p, expected, rtol=RTOL, atol=RTOL)


# (shape, pbc, Hamiltonian, wrapper, positive): every wrapper, both Hamiltonians, open and
# periodic, odd and even sides, the Marshall rotation on and off, real and complex ψ.
# The plain network is also covered by the first test; three cases run with `-m slow` only.
slow = pytest.mark.slow
CASES = [
    pytest.param((4, 4), True, "heisenberg", "fixed+sym", True),
    pytest.param((5, 4), False, "tfim", "sym", False),
    pytest.param((3, 3), True, "tfim", "none", False, marks=slow),
    pytest.param((3, 4), True, "heisenberg-nosign", "sym", False, marks=slow),
    pytest.param((5, 3), False, "heisenberg", "fixed", True, marks=slow),
]


def _system(shape, pbc, kind, wrapper, positive, seed):
    n = shape[0] * shape[1]
    base = _base(shape, layers=2, kernel=3, positive=positive, seed=seed)
    if kind == "tfim":
        H = tfim_2d(shape, 0.8, pbc=pbc)
    else:  # total Sᶻ: 0 on an even number of sites, ½ on an odd one
        sz = None if "fixed" not in wrapper else (n % 2) / 2
        H = heisenberg_2d(shape, pbc=pbc, sign_rule=kind == "heisenberg", total_sz=sz)
    m = FixedMagnetization(base, magnetization=n % 2) if "fixed" in wrapper else base
    if "sym" in wrapper:
        # Flip and the point group only where the flip keeps the sector (Σσᶻ = 0).
        point = 8 if shape[0] == shape[1] else 4  # the point group: the first rows
        group = lattice_group(shape, pbc=pbc)[:point]
        m = Symmetrized(m, group, spin_flip=m.magnetization in (None, 0))
    return m, H


def _configurations(m, n_samples: int, seed: int):
    """Random configurations in the model's sector (all of them if it has none)."""
    key = jax.random.key(seed)
    if m.magnetization is None:
        return jnp.where(jax.random.bernoulli(key, 0.5, (n_samples, m.n_sites)), 1.0, -1.0)
    n_up = (m.n_sites + m.magnetization) // 2
    ordered = jnp.where(jnp.arange(m.n_sites) < n_up, 1.0, -1.0)
    keys = jax.random.split(key, n_samples)
    return jax.vmap(lambda k: jax.random.permutation(k, ordered))(keys)


@pytest.mark.parametrize(("shape", "pbc", "kind", "wrapper", "positive"), CASES)
def test_incremental_local_energies_equal_full_path(shape, pbc, kind, wrapper, positive):
    """`local_energies(incremental=True)` equals the full pass on every connected
    configuration, for plain, fixed-Sᶻ and symmetrised ARConv2D."""
    seed = shape[0] + 2 * shape[1]
    m, H = _system(shape, pbc, kind, wrapper, positive, seed=seed)
    assert m.has_connected_path
    sigma = _configurations(m, 8, seed)

    @eqx.filter_jit
    def paths(m, s):
        return (
            local_energies(m, H, s, incremental=True, max_configurations=5),  # uneven chunks
            local_energies(m, H, s, incremental=False),
        )

    fast, full = paths(m, sigma)
    scale = float(jnp.max(jnp.abs(full)))
    np.testing.assert_allclose(fast, full, rtol=RTOL, atol=RTOL * scale)


def test_incremental_is_the_default_where_available():
    """The default path for these models is the incremental one: its program branches on the
    first changed row (`lax.switch`, a `cond` in the jaxpr); the full path does not."""
    m, H = _system((3, 3), True, "tfim", "sym", True, seed=0)
    sigma = jnp.ones((2, 9))
    jaxpr = lambda **kw: str(jax.make_jaxpr(lambda s: local_energies(m, H, s, **kw))(sigma))
    assert "cond[" in jaxpr()
    assert "cond[" not in jaxpr(incremental=False)


def test_sample_chunks_do_not_change_local_energies(monkeypatch):
    """Over `_INCREMENTAL_PASSES` network passes the samples are split into `lax.map` chunks
    (padded with inactive copies of the first sample): the same local energies."""
    m, H = _system((2, 3), False, "heisenberg", "fixed", True, seed=3)
    sigma = _configurations(m, 7, seed=0)
    run = lambda m, s: local_energies(m, H, s, incremental=True)
    one = eqx.filter_jit(run)(m, sigma)
    monkeypatch.setattr(vmc, "_INCREMENTAL_PASSES", 20)  # 7 samples × 8 conn → 3 chunks of 3
    chunked = eqx.filter_jit(run)(m, sigma)
    np.testing.assert_allclose(chunked, one, rtol=1e-12, atol=1e-12 * float(jnp.max(abs(one))))


def test_incremental_refused_without_a_connected_path():
    m1 = ARConv1D(6, layers=2, features=3, key=jax.random.key(0))
    assert not FixedMagnetization(m1).has_connected_path
    H = heisenberg_2d((2, 3), pbc=False)
    sigma = jnp.ones((2, 6))
    with pytest.raises(ValueError, match="incremental=True"):
        local_energies(m1, H, sigma, incremental=True)
    with pytest.raises(TypeError, match="no incremental"):
        FixedMagnetization(m1).log_psi_connected(sigma, sigma[:, None])


def test_connected_shapes_are_checked():
    m = ARConv2D((2, 3), layers=2, features=2, key=jax.random.key(0))
    sigma = jnp.ones((4, 5))
    with pytest.raises(ValueError, match=r"sigma of shape \(batch, 6\)"):
        m.log_psi_connected(sigma, sigma[:, None])
