"""Exact autoregressive sampling: frequencies, log-probabilities, plain == cached, sharding."""

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, strategies as st
from toy_ar import PlainOnlyAR, TableAR, exact_log_probs

from physml.kernels import AbstractAutoregressiveModel, log_prob, sample
from physml.kernels._sampler import _draw


def _index(configs, local_size):
    n_sites = configs.shape[1]
    return configs @ (local_size ** np.arange(n_sites - 1, -1, -1))


@pytest.mark.parametrize("cached", [False, True])
def test_frequencies_pass_chi_square(cached):
    model = TableAR(4, 3, key=jax.random.key(0), scale=1.0)
    _configs, logp = exact_log_probs(model)
    p = np.exp(logp)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
    n = 40_000
    x, _ = sample(model, n, key=jax.random.key(1), cached=cached)
    counts = np.bincount(_index(np.asarray(x), 3), minlength=len(p))
    # Pool rare cells so each expected count is >= 5 (the chi-square approximation's rule).
    order = np.argsort(p)
    exp_sorted, obs_sorted = n * p[order], counts[order]
    cut = np.searchsorted(np.cumsum(exp_sorted), 5.0) + 1
    expected = np.concatenate([[exp_sorted[:cut].sum()], exp_sorted[cut:]])
    observed = np.concatenate([[obs_sorted[:cut].sum()], obs_sorted[cut:]])
    pvalue = scipy.stats.chisquare(observed, expected).pvalue
    assert pvalue > 1e-3, pvalue


def test_chi_square_detects_a_wrong_distribution():
    """The frequency test above can fail: samples of one model against another's table."""
    model = TableAR(4, 3, key=jax.random.key(0), scale=1.0)
    other = TableAR(4, 3, key=jax.random.key(5), scale=1.0)
    _, logp = exact_log_probs(other)
    x, _ = sample(model, 40_000, key=jax.random.key(1))
    counts = np.bincount(_index(np.asarray(x), 3), minlength=len(logp))
    expected = 40_000 * np.exp(logp)
    keep = expected > 5
    stat = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert scipy.stats.chi2.sf(stat, keep.sum() - 1) < 1e-6


@given(st.integers(2, 6), st.integers(2, 4), st.integers(0, 2**16))
def test_plain_and_cached_give_identical_samples(n_sites, local_size, seed):
    model = TableAR(n_sites, local_size, key=jax.random.key(seed))
    key = jax.random.key(seed + 1)
    x_c, lp_c = sample(model, 64, key=key, cached=True)
    x_p, lp_p = sample(model, 64, key=key, cached=False)
    np.testing.assert_array_equal(x_c, x_p)
    np.testing.assert_allclose(lp_c, lp_p, rtol=1e-12, atol=1e-12)


@given(st.floats(-30.0, 30.0), st.floats(0.0, 1.0, exclude_max=True))
def test_two_state_draw_is_the_inverse_cdf_rule(logit, u):
    """`_draw`'s two-state branch (no cumulative sum) picks what the general rule picks: the
    first s with u < Σ_{t≤s} p_t, clipped to the last state."""
    log_p = np.array([-np.logaddexp(0.0, logit), -np.logaddexp(0.0, -logit)])
    general = min(int(np.sum(np.cumsum(np.exp(log_p))[:-1] <= u)), 1)
    assert int(_draw(jnp.asarray(log_p), jnp.asarray(u))) == general


def test_log_probs_are_exact():
    model = TableAR(5, 2, key=jax.random.key(3))
    configs, logp = exact_log_probs(model)
    x, lp = sample(model, 256, key=jax.random.key(4))
    idx = _index(np.asarray(x), 2)
    np.testing.assert_allclose(lp, logp[idx], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_prob(model, configs), logp, rtol=1e-12, atol=1e-12)


def test_same_key_same_samples_and_different_keys_differ():
    model = TableAR(6, 2, key=jax.random.key(0))
    a, _ = sample(model, 32, key=jax.random.key(7))
    b, _ = sample(model, 32, key=jax.random.key(7))
    c, _ = sample(model, 32, key=jax.random.key(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_plain_only_model_uses_plain_path_and_refuses_cached():
    model = PlainOnlyAR(TableAR(4, 2, key=jax.random.key(0)))
    x, _ = sample(model, 16, key=jax.random.key(1))
    assert x.shape == (16, 4) and x.dtype == np.int32
    with pytest.raises(ValueError, match="cached=True"):
        sample(model, 16, key=jax.random.key(1), cached=True)


def test_bad_input_is_reported():
    model = TableAR(3, 2, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key"):
        sample(model, 8, key=0)
    with pytest.raises(TypeError, match="key"):
        sample(model, 8, key=np.zeros(3, np.uint32))
    with pytest.raises(ValueError, match="n_samples"):
        sample(model, 0, key=jax.random.key(0))
    with pytest.raises(TypeError, match="AbstractAutoregressiveModel"):
        sample(object(), 8, key=jax.random.key(0))
    # A legacy uint32[2] key is accepted.
    sample(model, 8, key=jax.random.PRNGKey(0))


SHARDED = textwrap.dedent(
    """
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from toy_ar import TableAR
    from physml.kernels import sample
    assert jax.local_device_count() == 4, jax.devices()
    model = TableAR(6, 3, key=jax.random.key(0))
    key = jax.random.key(11)
    for cached in (True, False):
        xs, lps = sample(model, 64, key=key, cached=cached, shard=True)
        x1, lp1 = sample(model, 64, key=key, cached=cached, shard=False)
        assert len(xs.sharding.device_set) == 4, xs.sharding
        assert len(x1.sharding.device_set) == 1, x1.sharding
        np.testing.assert_array_equal(np.asarray(xs), np.asarray(x1))
        np.testing.assert_allclose(np.asarray(lps), np.asarray(lp1), rtol=1e-13)
        np.save(f"samples_{int(cached)}.npy", np.asarray(xs))
    print("OK")
    """
)


def test_sharded_sampling_on_four_cpu_devices_matches_one_device(tmp_path):
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    here = Path(__file__).parent
    env["PYTHONPATH"] = os.pathsep.join([str(here), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", SHARDED],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout
    # And the 4-device samples equal those drawn here, on one device, with the same key.
    model = TableAR(6, 3, key=jax.random.key(0))
    for cached in (True, False):
        x_here, _ = sample(model, 64, key=jax.random.key(11), cached=cached)
        np.testing.assert_array_equal(np.load(tmp_path / f"samples_{int(cached)}.npy"), x_here)


def test_a_subclass_missing_an_abstract_attribute_cannot_be_instantiated():
    """`n_sites` and `local_size` are `AbstractVar`s (equinox sees them only in evaluated
    annotations): a concrete model that forgets one is refused, and the base adds no fields."""

    class NoLocalSize(AbstractAutoregressiveModel):
        n_sites: int = eqx.field(static=True, default=3)

        def conditionals(self, x):
            return jnp.full((*x.shape, 2), -jnp.log(2.0))

    assert dataclasses.fields(AbstractAutoregressiveModel) == ()
    with pytest.raises(TypeError, match=r"abstract attributes.*local_size"):
        NoLocalSize()
