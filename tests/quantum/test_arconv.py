"""ARConv1D: normalisation, the autoregressive property, cached == plain, exact sampling."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings, strategies as st
from quantum_testing import all_spins, assert_sampler_paths_agree, perturbed

from physml.kernels import sample
from physml.quantum import ARConv1D
from physml.quantum._arconv import _causal_conv


def _model(n, layers, features, kernel, dilations, positive, seed, scale=1.0):
    """A model with O(1) random parameters everywhere (not near the uniform initial state)."""
    m = ARConv1D(
        n,
        layers=layers,
        features=features,
        kernel_size=kernel,
        dilations=dilations,
        positive=positive,
        key=jax.random.key(seed),
    )
    return perturbed(m, seed + 1, scale)


architectures = st.tuples(
    st.integers(1, 9),  # n_sites
    st.integers(1, 3),  # layers
    st.integers(1, 4),  # features
    st.integers(1, 4),  # kernel size
    st.integers(1, 3),  # dilation of each layer (schedule 1, d, d², …)
    st.booleans(),  # positive
    st.integers(0, 2**16),  # seed
)


def _build(arch):
    n, layers, features, kernel, d, positive, seed = arch
    return _model(n, layers, features, kernel, tuple(d**i for i in range(layers)), positive, seed)


@given(arch=architectures, data=st.data())
@settings(max_examples=12)
def test_normalisation_autoregressive_and_cache(arch, data):
    """For any architecture and parameters (one compiled model per example, three properties):

    - Σ_σ |ψ(σ)|² = 1 by enumeration, to 1e-12 (float64 sum of ≤ 512 terms);
    - flipping site j leaves the conditionals at sites ≤ j unchanged (to 1e-14), and each row
      of conditionals is normalised;
    - the cached incremental pass gives the batched pass's conditionals (to 1e-12).
    """
    m = _build(arch)
    n = m.n_sites
    log_psi = eqx.filter_jit(m.log_psi)(all_spins(n))
    assert float(jnp.sum(jnp.exp(2 * jnp.real(log_psi)))) == pytest.approx(1.0, abs=1e-12)
    assert jnp.isrealobj(log_psi) == m.positive

    x = jnp.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), jnp.int32)
    j = data.draw(st.integers(0, n - 1))
    conditionals = eqx.filter_jit(m.conditionals)
    c = conditionals(x)
    c_flip = conditionals(x.at[j].set(1 - x[j]))
    np.testing.assert_allclose(c_flip[: j + 1], c[: j + 1], atol=1e-14)
    np.testing.assert_allclose(jax.nn.logsumexp(c, axis=-1), 0.0, atol=1e-13)

    def incremental(x):
        def body(carry, i):
            cache, x_prev = carry
            row, cache = m.conditional_step(cache, i, x_prev)
            return (cache, x[i]), row

        init = (m.init_cache(), jnp.zeros((), jnp.int32))
        return jax.lax.scan(body, init, jnp.arange(n, dtype=jnp.int32))[1]

    np.testing.assert_allclose(jax.jit(incremental)(x), c, atol=1e-12)


def test_autoregressive_property_can_fail():
    """The conditionals do depend on earlier sites (so the test above is not vacuous)."""
    m = _model(6, 2, 4, 3, (1, 1), False, 3)
    x = jnp.zeros(6, jnp.int32)
    assert jnp.max(jnp.abs(m.conditionals(x.at[1].set(1))[2:] - m.conditionals(x)[2:])) > 1e-3


@given(arch=architectures)
@settings(max_examples=6)
def test_cached_and_plain_samples_identical(arch):
    assert_sampler_paths_agree(_build(arch), jax.random.key(arch[-1]))


@pytest.mark.parametrize("positive", [True, False])
def test_sample_frequencies_chi_square(positive):
    """Frequencies of 40 000 samples vs |ψ|² by Pearson's chi-square test.

    N = 5 (32 bins) with parameters scaled so that every bin expects > 5 counts (the chi-square
    approximation holds); a correct sampler fails with probability 1e-4 (seeded here).
    """
    m = _model(5, 2, 3, 3, (1, 2), positive, 11, scale=0.25)
    n = 40_000
    probs = np.exp(2 * np.real(np.asarray(m.log_psi(all_spins(5)))))
    assert np.min(probs) * n > 5
    x, _ = sample(m, n, key=jax.random.key(5))
    idx = np.asarray(x) @ (2 ** np.arange(4, -1, -1))  # index 0 ↔ +1, matches the enumeration
    counts = np.bincount(idx, minlength=32)
    _, p_value = scipy.stats.chisquare(counts, probs * n)
    assert p_value > 1e-4
    # Power check: the same test rejects a distribution that is slightly off.
    skew = probs * (1 + 0.1 * np.sign(np.arange(32) % 2 - 0.5))
    _, p_wrong = scipy.stats.chisquare(counts, skew / skew.sum() * n)
    assert p_wrong < 1e-4


def test_log_psi_matches_indices_and_netket_spins():
    """Index 0 ↔ σᶻ = +1 (NetKet's Spin(1/2) order); log ψ works for any batch shape."""
    m = _model(4, 2, 3, 2, 1, False, 1)
    s = all_spins(4)
    np.testing.assert_array_equal(m.to_spins(m.to_indices(s)), s)
    np.testing.assert_array_equal(m.to_indices(jnp.ones(4)), jnp.zeros(4, jnp.int32))
    assert m.log_psi(s.reshape(2, 8, 4)).shape == (2, 8)
    np.testing.assert_allclose(m.log_psi(s.reshape(2, 8, 4)).reshape(-1), m.log_psi(s))


def test_log_amplitudes_agree_with_conditionals_and_log_psi():
    """`log_amplitudes` (what FixedMagnetization reads: one pass for all sites) gives the
    conditionals, 2 log|ψ_i|, and log ψ by picking (log_psi takes the two-state softplus form of
    the normalisation, a different formula for the same value)."""
    m = _model(6, 3, 3, 3, (1, 2, 4), False, 5)
    x = m.to_indices(all_spins(6))
    log_mod, phase = m.log_amplitudes(x)
    log_mod_ps, phase_ps = m.log_amplitudes(x, per_sample=True)
    np.testing.assert_array_equal(log_mod_ps, log_mod)
    np.testing.assert_array_equal(phase_ps, phase)
    np.testing.assert_allclose(2 * log_mod, jax.vmap(m.conditionals)(x), atol=1e-12)
    pick = lambda t: jnp.take_along_axis(t, x[..., None], axis=-1)[..., 0].sum(-1)
    np.testing.assert_allclose(pick(log_mod) + 1j * pick(phase), m.log_psi(m.to_spins(x)))


@given(
    n=st.integers(1, 9),
    f_in=st.integers(1, 3),
    f_out=st.integers(1, 3),
    k=st.integers(1, 4),
    d=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=20, deadline=None)
def test_causal_conv_matmul_equals_lax_convolution(n, f_in, f_out, k, d, seed):
    """The im2col matmul equals XLA's dilated convolution with left (causal) padding."""
    kh, kw = jax.random.split(jax.random.key(seed))
    h = jax.random.normal(kh, (3, n, f_in))
    w = jax.random.normal(kw, (k * f_in, f_out))
    reference = jax.lax.conv_general_dilated(
        h,
        w.reshape(k, f_in, f_out),
        window_strides=(1,),
        padding=[((k - 1) * d, 0)],
        rhs_dilation=(d,),
        dimension_numbers=("NWC", "WIO", "NWC"),
    )
    np.testing.assert_allclose(_causal_conv(h, w, k, d), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layers": 0}, "layers"),
        ({"features": -1}, "features"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"dilations": (1, 2)}, "dilations"),
        ({"dilations": 0}, "dilations"),
        ({"local_states": (1.0, 1.0)}, "local_states"),
    ],
)
def test_invalid_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ARConv1D(6, **kwargs, key=jax.random.key(0))
