"""FixedMagnetization: exact sampling and normalisation on a fixed-Σσᶻ sector, for the 2D and
1D autoregressive models, cached == plain, and input checks."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from quantum_testing import all_spins, perturbed
from test_arconv2d import chi_square_pvalue

from physml.kernels import AbstractAutoregressiveModel, log_prob, sample
from physml.quantum import ARConv1D, ARConv2D, FixedMagnetization


def _inner(kind, shape, positive, seed, scale=1.0):
    key = jax.random.key(seed)
    if kind == "2d":
        m = ARConv2D(shape, layers=2, features=3, positive=positive, key=key)
    else:
        m = ARConv1D(
            shape[0] * shape[1], layers=2, features=3, kernel_size=3, positive=positive, key=key
        )
    return perturbed(m, seed + 1, scale)


cases = st.tuples(
    st.sampled_from(["2d", "1d"]),
    st.sampled_from([(2, 2), (2, 3), (3, 2), (2, 4), (3, 3), (3, 4)]),
    st.integers(-2, 2),  # M = (N mod 2) + 2·this
    st.booleans(),
    st.integers(0, 2**16),
)


def _build(case):
    kind, shape, dm, positive, seed = case
    n = shape[0] * shape[1]
    m_total = (n % 2) + 2 * dm  # a value of N + M that is even
    return FixedMagnetization(_inner(kind, shape, positive, seed), magnetization=m_total)


@given(case=cases)
@settings(max_examples=4)
def test_normalised_on_the_sector_and_zero_off_it(case):
    """Σ_{σ: Σσ = M} |ψ̃(σ)|² = 1 (1e-12) and |ψ̃|² = 0 exactly elsewhere, by enumeration."""
    fm = _build(case)
    s = all_spins(fm.n_sites)
    lp = eqx.filter_jit(lambda s: fm.log_psi(s))(s)
    p = np.exp(2 * np.real(np.asarray(lp)))
    in_sector = np.asarray(s.sum(-1)) == fm.magnetization
    assert p[in_sector].sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(p[~in_sector], 0.0)
    assert jnp.isrealobj(lp) == fm.positive
    # The phase is the wrapped model's, unchanged by the masking.
    if not fm.positive:
        inner = np.asarray(fm.model.log_psi(s[in_sector]))
        np.testing.assert_allclose(np.imag(np.asarray(lp)[in_sector]), np.imag(inner), atol=1e-12)


@given(case=cases, data=st.data())
@settings(max_examples=5)
def test_conditionals_cached_equal_plain_and_mask_only_when_forced(case, data):
    fm = _build(case)
    n = fm.n_sites
    x = jnp.asarray(data.draw(st.permutations([0] * fm.n_up + [1] * (n - fm.n_up))), jnp.int32)
    plain = fm.conditionals(x)
    cache, x_prev, rows = fm.init_cache(), jnp.zeros((), jnp.int32), []
    step = eqx.filter_jit(lambda c, i, xp: fm.conditional_step(c, i, xp))
    for i in range(n):
        row, cache = step(cache, jnp.asarray(i, jnp.int32), x_prev)
        rows.append(row)
        x_prev = x[i]
    np.testing.assert_allclose(jnp.stack(rows), plain, atol=1e-12)
    # Rows where both values are still possible are the wrapped model's, bit for bit; the
    # others are exactly (0, −inf) or (−inf, 0).
    ups_before = np.concatenate([[0], np.cumsum(np.asarray(x) == fm.up_index)[:-1]])
    free = (ups_before < fm.n_up) & (np.arange(n) - ups_before < n - fm.n_up)
    np.testing.assert_array_equal(plain[free], fm.model.conditionals(x)[free])
    forced = np.sort(np.asarray(plain[~free]), axis=1)
    np.testing.assert_array_equal(forced, np.tile([-np.inf, 0.0], (len(forced), 1)))


@given(case=cases)
@settings(max_examples=2)
def test_samples_on_the_sector_cached_equals_plain(case):
    fm = _build(case)
    key = jax.random.key(case[-1])
    x_c, lp_c = sample(fm, 64, key=key, cached=True)
    x_p, lp_p = sample(fm, 64, key=key, cached=False)
    np.testing.assert_array_equal(x_c, x_p)
    np.testing.assert_allclose(lp_c, lp_p, atol=1e-12)
    np.testing.assert_array_equal(fm.to_spins(x_c).sum(-1), fm.magnetization)
    np.testing.assert_allclose(lp_c, 2 * jnp.real(fm.log_psi(fm.to_spins(x_c))), atol=1e-12)
    np.testing.assert_allclose(lp_c, log_prob(fm, x_c), atol=1e-12)


@pytest.mark.filterwarnings("ignore:ARConv2D with layers=2:UserWarning")  # small on purpose
@pytest.mark.parametrize("kind", ["2d", "1d"])
def test_sample_frequencies_chi_square_on_the_sz0_sector(kind):
    """2×4, Sᶻ = 0: 70 configurations; 40 000 samples vs |ψ̃|² (rare bins pooled), p > 1e-4;
    the same counts reject the unmasked model's |ψ|² restricted to the sector."""
    fm = FixedMagnetization(_inner(kind, (2, 4), False, 3, scale=0.3))
    s = all_spins(8)
    sector = np.asarray(s.sum(-1)) == 0
    probs = np.exp(2 * np.real(np.asarray(fm.log_psi(s[sector]))))
    x, _ = sample(fm, 40_000, key=jax.random.key(9))
    idx = np.asarray(x) @ (2 ** np.arange(7, -1, -1))
    counts = np.bincount(idx, minlength=256)
    assert counts[~sector].sum() == 0
    assert chi_square_pvalue(counts[sector], probs) > 1e-4
    naive = np.exp(2 * np.real(np.asarray(fm.model.log_psi(s[sector]))))
    assert chi_square_pvalue(counts[sector], naive / naive.sum()) < 1e-4


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="even number of sites"):
        FixedMagnetization(ARConv2D((3, 3), key=jax.random.key(0)))
    with pytest.raises(ValueError, match="impossible"):
        FixedMagnetization(ARConv2D((2, 2), key=jax.random.key(0)), magnetization=6)
    with pytest.raises(ValueError, match="impossible"):
        FixedMagnetization(ARConv2D((2, 2), key=jax.random.key(0)), magnetization=1)
    with pytest.raises(TypeError, match="magnetization"):
        FixedMagnetization(ARConv2D((2, 2), key=jax.random.key(0)), magnetization=0.0)
    with pytest.raises(TypeError, match="AbstractAutoregressiveSpinState"):
        FixedMagnetization(object())
    with pytest.raises(ValueError, match="local states"):
        FixedMagnetization(ARConv2D((2, 2), local_states=(0.5, -0.5), key=jax.random.key(0)))
    fm = FixedMagnetization(ARConv2D((2, 2), key=jax.random.key(0)))
    with pytest.raises(ValueError, match="sites"):
        fm.log_psi(jnp.ones((3, 6)))
    assert isinstance(fm, AbstractAutoregressiveModel)
