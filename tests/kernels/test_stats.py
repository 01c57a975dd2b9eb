"""Monte Carlo statistics: iid and correlated estimates, complex values, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physml.kernels import Stats, estimate


def test_iid_estimate():
    x = jax.random.normal(jax.random.key(0), (10_000,)) * 2.0 + 1.0
    s = estimate(x)
    np.testing.assert_allclose(s.mean, np.mean(np.asarray(x)), rtol=1e-12)
    np.testing.assert_allclose(s.variance, np.var(np.asarray(x), ddof=1), rtol=1e-12)
    np.testing.assert_allclose(s.error_of_mean, np.sqrt(s.variance / 10_000), rtol=1e-12)
    assert float(s.tau_corr) == 1.0 and int(s.n_samples) == 10_000
    # the error bar is honest: |mean - 1| is within 4σ for this seed's draw
    assert abs(float(s.mean) - 1.0) < 4 * float(s.error_of_mean)


def test_complex_values_keep_imaginary_mean_and_use_modulus_variance():
    re = jax.random.normal(jax.random.key(1), (4000,))
    im = jax.random.normal(jax.random.key(2), (4000,))
    z = re + 1j * (0.5 + im)
    s = estimate(z)
    assert jnp.iscomplexobj(s.mean)
    np.testing.assert_allclose(s.mean.imag, np.mean(np.asarray(z).imag), rtol=1e-12)
    zc = np.asarray(z) - np.mean(np.asarray(z))
    np.testing.assert_allclose(s.variance, np.sum(np.abs(zc) ** 2) / 3999, rtol=1e-12)
    assert s.variance.dtype == jnp.float64
    assert "mean_imag" in s.to_dict()


def _ar1(phi, n_chains, n_steps, key):
    """AR(1) chains x_t = φ x_{t-1} + ε: τ_int = (1 + φ) / (1 − φ) exactly."""
    eps = jax.random.normal(key, (n_steps, n_chains))

    def body(x, e):
        x = phi * x + e
        return x, x

    x0 = eps[0] / np.sqrt(1 - phi**2)  # stationary start
    _, xs = jax.lax.scan(body, x0, eps[1:])
    return xs.T


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_integrated_autocorrelation_time_of_ar1(phi):
    x = _ar1(phi, 16, 20_000, jax.random.key(3))
    s = estimate(x, chains=True)
    tau_exact = (1 + phi) / (1 - phi)
    # Sokal's window estimator has a relative statistical error ~ sqrt(2(2W+1)/n) with
    # W ≈ 5τ and n = 3.2e5 samples: < 5% here; allow 10%.
    np.testing.assert_allclose(float(s.tau_corr), tau_exact, rtol=0.1)
    np.testing.assert_allclose(
        float(s.error_of_mean), np.sqrt(float(s.variance) * tau_exact / x.size), rtol=0.1
    )


def test_stats_is_a_pytree_through_jit():
    s = jax.jit(estimate)(jnp.arange(10.0))
    assert isinstance(s, Stats)
    np.testing.assert_allclose(s.mean, 4.5)
    assert "±" in str(s)


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        estimate(jnp.ones(1))
    with pytest.raises(ValueError, match="n_chains"):
        estimate(jnp.ones(10), chains=True)
