"""ARConv2D: receptive field (raster order, no blind spot), normalisation, cached == plain,
exact sampling, conventions and input checks."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings, strategies as st
from quantum_testing import all_spins, assert_sampler_paths_agree, perturbed

from physml.kernels import log_prob, sample
from physml.quantum import (
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    lattice_group,
    lattice_shape,
)

SHAPES = [(1, 3), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 3)]


def _model(shape, layers, features, kernel, positive, seed, scale=1.0):
    """A model with O(1) random parameters everywhere (not near the uniform initial state).
    Shallow nets are built on purpose here: their "incomplete field" warning is silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = ARConv2D(
            shape,
            layers=layers,
            features=features,
            kernel_size=kernel,
            positive=positive,
            key=jax.random.key(seed),
        )
    return perturbed(m, seed + 1, scale)


architectures = st.tuples(
    st.sampled_from(SHAPES),
    st.integers(1, 3),  # layers
    st.integers(1, 4),  # features
    st.sampled_from([3, 5]),  # kernel size
    st.booleans(),  # positive
    st.integers(0, 2**16),  # seed
)


def _build(arch, scale=1.0):
    return _model(*arch, scale=scale)


def _configuration(data, n):
    return jnp.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), jnp.int32)


@given(arch=architectures)
@settings(max_examples=5)
def test_normalised_by_enumeration(arch):
    """Σ_σ |ψ(σ)|² = 1 to 1e-12 (float64 sum of ≤ 4096 terms) for any parameters."""
    m = _build(arch)
    log_psi = eqx.filter_jit(lambda s: m.log_psi(s))(all_spins(m.n_sites))
    assert float(jnp.sum(jnp.exp(2 * jnp.real(log_psi)))) == pytest.approx(1.0, abs=1e-12)
    assert jnp.isrealobj(log_psi) == m.positive


def _dependence(m, x):
    """Σ_s |d log p(x_i = s | ·) / d σ_j| for all i, j, by forward-mode autodiff on the spin
    values (both local states: one of the two can saturate to log 1 = 0 in float64)."""
    f = eqx.filter_jit(jax.jacfwd(lambda s: 2 * m._head(m._hidden(s[None]))[0][0]))
    return np.abs(np.asarray(f(m.to_spins(x)))).sum(axis=1)


@given(arch=architectures, data=st.data())
@settings(max_examples=6)
def test_receptive_field_is_raster_causal_and_as_designed(arch, data):
    """The gradient of the conditional at site i w.r.t. σ_j is exactly 0 for j >= i (current and
    later sites) and non-zero on exactly the designed field: (r, c−1−Dp … c−1) and rows
    r−1−Dp … r−1, columns c−Dp … c+Dp (structural zeros are exact in forward-mode autodiff; a
    path that exists gives a product of non-zero derivatives). A finite flip of σ_j leaves every
    conditional outside the field bitwise unchanged."""
    m = _build(arch)
    n = m.n_sites
    x = _configuration(data, n)
    field = m.receptive_field()
    assert not np.any(np.triu(field)), "the designed field must be strictly earlier sites"
    np.testing.assert_array_equal(_dependence(m, x) != 0, field)
    conditionals = eqx.filter_jit(lambda x: m.conditionals(x))
    c = conditionals(x)
    for j in range(n):
        changed = np.any(np.asarray(conditionals(x.at[j].set(1 - x[j])) != c), axis=1)
        assert not np.any(changed & ~field[:, j]), (j, changed, field[:, j])


@given(
    shape=st.sampled_from(SHAPES),
    kernel=st.sampled_from([3, 5]),
    extra=st.integers(0, 1),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
@settings(max_examples=6)
def test_no_blind_spot_deep_enough_net_sees_every_earlier_site(shape, kernel, extra, seed, data):
    """With D·p >= max(L₂ − 1, L₁ − 2) site i depends on every site j < i and on no other."""
    p = kernel // 2
    layers = max(1, -(-max(shape[1] - 1, shape[0] - 2) // p)) + extra
    m = _model(shape, layers, 3, kernel, False, seed)
    assert m.covers_lattice
    grad = _dependence(m, _configuration(data, m.n_sites))
    np.testing.assert_array_equal(grad != 0, np.tril(np.ones((m.n_sites,) * 2, bool), k=-1))


@pytest.mark.parametrize("shape", [(4, 4), (6, 6), (10, 10), (12, 12), (3, 8), (8, 3)])
def test_default_depth_covers_the_benchmark_lattices(shape):
    """The default depth (layers=None) sees every earlier site on the lattices of
    benchmarks/quantum_2d*.py; checked structurally and, up to 6×6, by the gradient itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the default never warns
        m = ARConv2D(shape, features=2, key=jax.random.key(0))
    assert m.covers_lattice
    assert m.layers == max(3, shape[1] - 1, shape[0] - 2)
    n = m.n_sites
    np.testing.assert_array_equal(m.receptive_field(), np.tril(np.ones((n, n), bool), k=-1))
    if n <= 36:
        # Scale 0.3: at O(1) weights the longest paths (5 layers on 6×6) saturate the
        # activations, and their derivative products fell to 1e-24, or to exactly 0 where the
        # compiled tanh rounds to ±1; at 0.3 the smallest dependence is ≥ 5e-7 on every shape.
        m = perturbed(m, 1, 0.3)
        x = jax.random.bernoulli(jax.random.key(2), 0.5, (n,)).astype(jnp.int32)
        np.testing.assert_array_equal(_dependence(m, x) != 0, np.tril(np.ones((n, n), bool), k=-1))


def test_explicit_shallow_depth_warns():
    """layers=2, kernel 3 on 6×6 reaches 2 columns: the constructor says which depth is needed;
    a covering explicit depth is silent."""
    with pytest.warns(UserWarning, match="layers >= 5"):
        ARConv2D((6, 6), layers=2, key=jax.random.key(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ARConv2D((6, 6), layers=5, key=jax.random.key(0))
        ARConv2D((6, 6), layers=3, kernel_size=5, key=jax.random.key(0))


def test_shallow_net_has_a_bounded_field():
    """One 3-kernel layer on 3×4: site (2, 3) sees rows 0–1 at columns 2–3 and (2, 1), (2, 2)
    only, so the field test above can fail."""
    m = _model((3, 4), 1, 3, 3, False, 0)
    assert not m.covers_lattice
    grad = _dependence(m, jnp.zeros(12, jnp.int32))
    seen = {2, 3, 6, 7, 9, 10}
    np.testing.assert_array_equal(np.flatnonzero(grad[11]), sorted(seen))


@given(arch=architectures, data=st.data())
@settings(max_examples=5)
def test_cached_step_equals_full_pass(arch, data):
    """The incremental pass gives the batched pass's conditionals (float64, 1e-12)."""
    m = _build(arch)
    x = _configuration(data, m.n_sites)
    cache, x_prev, rows = m.init_cache(), jnp.zeros((), jnp.int32), []
    step = eqx.filter_jit(lambda c, i, xp: m.conditional_step(c, i, xp))
    for i in range(m.n_sites):
        row, cache = step(cache, jnp.asarray(i, jnp.int32), x_prev)
        rows.append(row)
        x_prev = x[i]
    np.testing.assert_allclose(jnp.stack(rows), m.conditionals(x), atol=1e-12)


@given(arch=architectures)
@settings(max_examples=3)
def test_cached_and_plain_samples_identical(arch):
    assert_sampler_paths_agree(_build(arch), jax.random.key(arch[-1]))


def test_cached_sampler_keeps_the_row_update_a_branch_under_vmap():
    """The vertical row is computed in a `cond` on the (unbatched) site index, so only at row
    starts: vmapping the step over samples must not turn it into a select of both branches."""
    m = _model((3, 3), 2, 3, 3, False, 0)
    cache = jax.vmap(lambda _: m.init_cache())(jnp.arange(4))
    jaxpr = jax.make_jaxpr(
        lambda c, i, xp: jax.vmap(m.conditional_step, in_axes=(0, None, 0))(c, i, xp)
    )(cache, jnp.asarray(3, jnp.int32), jnp.zeros(4, jnp.int32))
    assert "cond[" in str(jaxpr)


def chi_square_pvalue(counts, probs):
    """Pearson's chi-square p-value of `counts` against `probs`, pooling the rarest cells
    together until every expected count is >= 5 (the approximation's rule)."""
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    n = counts.sum()
    order = np.argsort(probs)
    expected, observed = n * probs[order], counts[order]
    cut = np.searchsorted(np.cumsum(expected), 5.0) + 1
    expected = np.concatenate([[expected[:cut].sum()], expected[cut:]])
    observed = np.concatenate([[observed[:cut].sum()], observed[cut:]])
    return scipy.stats.chisquare(observed, expected * n / expected.sum()).pvalue


@pytest.mark.parametrize("positive", [True, False])
def test_sample_frequencies_chi_square(positive):
    """Frequencies of 40 000 samples on 2×3 (64 bins) vs |ψ|² by Pearson's chi-square test
    (rare bins pooled); a correct sampler fails with probability 1e-4 (seeded, so deterministic
    here). The same counts reject a 10 % skew of the distribution."""
    m = _model((2, 3), 2, 3, 3, positive, 11, scale=0.3)
    n = 40_000
    probs = np.exp(2 * np.real(np.asarray(m.log_psi(all_spins(6)))))
    x, _ = sample(m, n, key=jax.random.key(5))
    idx = np.asarray(x) @ (2 ** np.arange(5, -1, -1))  # index 0 ↔ +1, matches the enumeration
    counts = np.bincount(idx, minlength=64)
    assert chi_square_pvalue(counts, probs) > 1e-4
    skew = probs * (1 + 0.1 * np.sign(np.arange(64) % 2 - 0.5))
    assert chi_square_pvalue(counts, skew / skew.sum()) < 1e-4


def test_conventions_netket_graphs_and_batch_shapes():
    """Index 0 ↔ σᶻ = +1; raster order as NetKet's Grid; log ψ for any batch shape."""
    assert lattice_shape(nk.graph.Square(3)) == (3, 3)
    assert lattice_shape(nk.graph.Grid([2, 4], pbc=False)) == (2, 4)
    assert lattice_shape(3) == (3, 3)
    m = _model(nk.graph.Grid([2, 2], pbc=False), 2, 3, 3, False, 1)
    assert m.shape == (2, 2) and m.n_sites == 4
    s = all_spins(4)
    np.testing.assert_array_equal(m.to_spins(m.to_indices(s)), s)
    np.testing.assert_array_equal(m.to_indices(jnp.ones(4)), jnp.zeros(4, jnp.int32))
    assert m.log_psi(s.reshape(2, 8, 4)).shape == (2, 8)
    np.testing.assert_allclose(m.log_psi(s.reshape(2, 8, 4)).reshape(-1), m.log_psi(s))


def test_log_psi_is_jittable_without_retrace():
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def f(model, sigma):
        return model.log_psi(sigma)

    s = all_spins(6)
    f(_model((2, 3), 2, 3, 3, False, 2), s[:8])
    f(_model((2, 3), 2, 3, 3, False, 3), s[8:16])  # new parameters, same shapes: no retrace


def test_float32_model_under_strict_promotion(strict_promotion):
    """A float32 model runs every path (batched, cached, sampler) with no implicit promotion."""
    m = ARConv2D((2, 3), layers=2, features=3, dtype=jnp.float32, key=jax.random.key(0))
    s = all_spins(6).astype(jnp.float32)
    assert m.log_psi(s).dtype == jnp.complex64
    x, lp = sample(m, 16, key=jax.random.key(1))
    assert lp.dtype == jnp.float32
    np.testing.assert_allclose(lp, log_prob(m, x), atol=1e-5)
    sym = Symmetrized(FixedMagnetization(m), lattice_group((2, 3), pbc=False), spin_flip=True)
    assert sym.log_psi(m.to_spins(sym.sample(8, key=jax.random.key(2)))).dtype == jnp.complex64


@pytest.mark.parametrize(
    "shape, kwargs, match",
    [
        ((2, 2), {"layers": 0}, "layers"),
        ((2, 2), {"features": -1}, "features"),
        ((2, 2), {"kernel_size": 4}, "kernel_size"),
        ((2, 2), {"kernel_size": 1}, "kernel_size"),
        ((2, 2), {"local_states": (1.0, 1.0)}, "local_states"),
        ((2, 0), {}, "shape"),
        ((2, 2, 2), {}, "shape"),
        (nk.graph.Chain(4), {}, "2D square lattice"),
        (nk.graph.Triangular([3, 3]), {}, "2D square lattice"),
    ],
)
def test_invalid_arguments(shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ARConv2D(shape, **kwargs, key=jax.random.key(0))


def test_lattice_size_mismatch_is_reported():
    m = _model((2, 3), 1, 2, 3, False, 0)
    with pytest.raises(ValueError, match="2×3 lattice"):
        m.log_psi(jnp.ones((5, 7)))
    with pytest.raises(ValueError, match="2×3 lattice"):
        m.conditionals(jnp.zeros(4, jnp.int32))


@given(arch=architectures)
@settings(max_examples=4)
def test_per_sample_matmul_path_equals_conv_path(arch):
    """`log_psi(..., per_sample=True)` (matmul convolutions, used by SR under vmap) gives the
    same values as the XLA convolution path, to float64 round-off."""
    m = _build(arch)
    s = m.to_spins(jax.random.bernoulli(jax.random.key(3), 0.5, (8, m.n_sites)).astype(jnp.int32))
    np.testing.assert_allclose(m.log_psi(s, per_sample=True), m.log_psi(s), rtol=1e-12, atol=1e-12)
