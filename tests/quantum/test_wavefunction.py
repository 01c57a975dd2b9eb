"""The spin wave-function interface: which classes implement which level, the attributes VMC
reads from it, and a state written against the interface alone going through VMC."""

import math

import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

from physml.kernels import AbstractAutoregressiveModel
from physml.quantum import (
    AbstractAutoregressiveSpinState,
    AbstractSpinState,
    AbstractTwoStateNetwork,
    ARConv1D,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    check_compatible,
    draw_samples,
    ground_state,
    heisenberg_2d,
    lattice_group,
    local_energies,
    tfim,
)


def test_hierarchy():
    net1 = ARConv1D(4, layers=1, features=2, key=jax.random.key(0))
    net2 = ARConv2D((2, 2), features=2, key=jax.random.key(0))
    fm = FixedMagnetization(net2)
    sym = Symmetrized(fm, lattice_group((2, 2), pbc=False), spin_flip=True)
    for m in (net1, net2):
        assert isinstance(m, AbstractTwoStateNetwork)
    for m in (net1, net2, fm):
        assert isinstance(m, AbstractAutoregressiveSpinState)
        assert isinstance(m, AbstractAutoregressiveModel)
    assert not isinstance(fm, AbstractTwoStateNetwork)
    assert isinstance(sym, AbstractSpinState)
    assert not isinstance(sym, AbstractAutoregressiveModel)
    for cls in (AbstractSpinState, AbstractAutoregressiveSpinState, AbstractTwoStateNetwork):
        with pytest.raises(TypeError):
            cls()


def test_sector_cost_and_dtype_follow_the_wrapping():
    net = ARConv2D((2, 2), features=2, dtype=jnp.float32, key=jax.random.key(0))
    perms = lattice_group((2, 2), pbc=False)
    assert (net.magnetization, net.passes_per_configuration) == (None, 1)
    fm0, fm2 = FixedMagnetization(net), FixedMagnetization(net, magnetization=2)
    assert (fm0.magnetization, fm2.magnetization, fm0.passes_per_configuration) == (0, 2, 1)
    sym0 = Symmetrized(fm0, perms, spin_flip=True)
    assert sym0.magnetization == 0
    assert sym0.passes_per_configuration == 2 * len(perms) == sym0.group_size
    # The spin flip maps Σσᶻ = 2 to −2: two sectors, no fixed magnetisation.
    assert Symmetrized(fm2, perms, spin_flip=True).magnetization is None
    assert Symmetrized(fm2, perms).magnetization == 2
    for m in (net, fm0, sym0):
        x = jnp.array([[0, 1, 1, 0]])
        assert m.to_spins(x).dtype == jnp.float32
        np.testing.assert_array_equal(m.to_spins(x), [[1.0, -1.0, -1.0, 1.0]])
        np.testing.assert_array_equal(m.to_indices(m.to_spins(x)), x)


def test_check_compatible_reads_the_sector_from_the_model():
    """NetKet's total_sz = 1 is Σσᶻ = 2: only a state whose `magnetization` is 2 matches."""
    net = ARConv2D((2, 2), features=2, key=jax.random.key(0))
    H1 = heisenberg_2d((2, 2), pbc=False, total_sz=1)
    fm2 = FixedMagnetization(net, magnetization=2)
    check_compatible(H1, fm2)
    check_compatible(H1, Symmetrized(fm2, lattice_group((2, 2), pbc=False)))
    with pytest.raises(ValueError, match="no fixed Σσᶻ"):
        check_compatible(H1, Symmetrized(fm2, lattice_group((2, 2), pbc=False), spin_flip=True))


class _UniformState(AbstractSpinState):
    """|ψ|² uniform over all 2^N configurations, ψ > 0: written against the interface only."""

    n_sites: int
    local_states: tuple[float, ...] = (1.0, -1.0)
    positive: bool = True
    magnetization: None = None
    dtype: type = jnp.float64
    passes_per_configuration: int = 1

    def log_psi(self, sigma, *, per_sample=False):
        return jnp.full(sigma.shape[:-1], -0.5 * self.n_sites * math.log(2), self.dtype)

    def sample(self, n_samples, *, key, shard=True):
        return jax.random.bernoulli(key, 0.5, (n_samples, self.n_sites)).astype(jnp.int32)


def test_an_attribute_left_out_is_reported():
    """The abstract attributes are really abstract (not silently dataclass fields)."""

    class NoCost(AbstractSpinState):  # everything but `passes_per_configuration`
        n_sites: int = 4
        local_states: tuple[float, ...] = (1.0, -1.0)
        positive: bool = True
        magnetization: None = None
        dtype: type = jnp.float64
        log_psi = _UniformState.log_psi
        sample = _UniformState.sample

    with pytest.raises(TypeError, match="passes_per_configuration"):
        NoCost()


def test_a_state_written_against_the_interface_runs_through_vmc():
    """For the uniform state all ratios ψ(σ')/ψ(σ) are 1: the TFIM local energy is
    −J Σᵢ σᵢσᵢ₊₁ − h N (periodic chain), to round-off."""
    n, h = 6, 0.7
    state, H = _UniformState(n), tfim(n, h)
    check_compatible(H, state)
    x = draw_samples(state, 32, key=jax.random.key(1))
    assert x.shape == (32, n)
    sigma = state.to_spins(x)
    e_loc = local_energies(state, H, sigma)
    expected = -jnp.sum(sigma * jnp.roll(sigma, -1, axis=-1), axis=-1) - h * n
    np.testing.assert_allclose(e_loc, expected, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="AbstractSpinState"):
        check_compatible(H, object())


@pytest.fixture
def without_runtime_typecheck():
    """Users call these without the test run's jaxtyping/beartype hook, which would reject a
    wrongly typed argument before the function's own checks: switch it off for one test."""
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


@pytest.mark.parametrize("bad", [0, "seed"], ids=["int", "str"])
@pytest.mark.parametrize(
    "call",
    [
        lambda key: ARConv1D(4, layers=1, features=2, key=key),
        lambda key: ARConv2D((2, 2), layers=1, features=2, key=key),
        lambda key: ARConv1D(4, layers=1, features=2, key=jax.random.key(0)).sample(3, key=key),
        lambda key: draw_samples(
            ARConv1D(4, layers=1, features=2, key=jax.random.key(0)), 3, key=key
        ),
        lambda key: ground_state(
            tfim(4, 1.0),
            ARConv1D(4, layers=1, features=2, key=jax.random.key(0)),
            n_samples=4,
            steps=1,
            key=key,
            progress=False,
        ),
    ],
    ids=["ARConv1D", "ARConv2D", "sample", "draw_samples", "ground_state"],
)
def test_a_bad_key_gets_the_project_key_error(call, bad, without_runtime_typecheck):
    """Issue 21 item 7: the project's `check_key` message, not JAX's key-data one."""
    with pytest.raises(TypeError, match=r"`key` must be a JAX PRNG key such as"):
        call(bad)
