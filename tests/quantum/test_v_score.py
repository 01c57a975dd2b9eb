"""v_score: N·Var(E)/E² by hand, independent of units, 0 on an exact eigenstate, and equal to
the enumerated value of a generic state within its sampling error; in `Result` and its JSON."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from quantum_testing import all_spins, perturbed

from physml.kernels import Stats
from physml.quantum import (
    ARConv1D,
    Result,
    evaluate_energy,
    pauli_to_spin_half,
    tfim,
    v_score,
)


def test_hand_values_and_units():
    assert v_score(-2.0, 0.5, 8) == 1.0  # 8 · 0.5 / 4
    assert v_score(3.0, 0.0, 5) == 0.0
    assert v_score(0.0, 1.0, 4) is None  # E = 0: undefined
    # Heisenberg in Pauli units is 4× spin-1/2 units: E → E/4, Var → Var/16, V unchanged.
    e, var = -97.75, 0.37
    assert math.isclose(v_score(pauli_to_spin_half(e), var / 16, 36), v_score(e, var, 36))
    for bad in [(-1.0, -0.1, 4), (math.nan, 1.0, 4), (-1.0, math.inf, 4)]:
        with pytest.raises(ValueError, match="must be finite and `variance` >= 0"):
            v_score(*bad)
    with pytest.raises(ValueError, match="`n_sites` must be an integer >= 1, got 0"):
        v_score(-1.0, 1.0, 0)


N_SITES, N_SAMPLES = 8, 4096  # one compiled estimate serves both sampled tests


def _chain():
    return ARConv1D(
        N_SITES, layers=2, features=3, kernel_size=3, positive=True, key=jax.random.key(0)
    )


def _all_up():
    """Every conditional puts weight 1 − e⁻⁸⁰ on σᶻ = +1: the all-up product state, an
    eigenstate of the TFIM at h = 0."""
    m = _chain()
    return eqx.tree_at(lambda m: (m.head_w, m.head_b), m, (0 * m.head_w, jnp.array([20.0, -20.0])))


def test_exact_eigenstate_has_zero_v_score():
    H = tfim(N_SITES, 0.0)  # H = −Σ σᶻσᶻ: |↑…↑⟩ has E = −8, Var = 0
    e = evaluate_energy(H, _all_up(), N_SAMPLES, key=jax.random.key(1))
    assert float(e.mean) == -N_SITES
    assert v_score(float(e.mean), float(e.variance), N_SITES) == 0.0


def test_sampled_v_score_matches_enumeration():
    """A generic state of the 8-site TFIM at h = 1: V = N(⟨H²⟩ − ⟨H⟩²)/⟨H⟩² by enumeration
    (ψ is normalised by construction), vs the estimate from n samples. The sample variance has
    standard error √((μ₄ − σ⁴)/n) and the mean √(σ²/n); V's error is bounded by
    N/E²·δVar + 2V·δE/|E|, allowed 5 times."""
    n_sites, n = N_SITES, N_SAMPLES
    H = tfim(n_sites, 1.0)
    m = perturbed(_chain(), 1, 0.1)
    sigma = all_spins(n_sites)
    psi = np.exp(np.asarray(m.log_psi(sigma)))
    p = psi**2
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-10)
    e_loc = (H.to_sparse() @ psi) / psi  # NetKet's all_states are in the order of all_spins
    np.testing.assert_allclose(np.asarray(H.hilbert.all_states()), sigma)
    energy = float(p @ e_loc)
    var = float(p @ (e_loc - energy) ** 2)
    mu4 = float(p @ (e_loc - energy) ** 4)
    exact_v = n_sites * var / energy**2
    est = evaluate_energy(H, m, n, key=jax.random.key(3))
    sampled = v_score(float(est.mean), float(est.variance), n_sites)
    tol = 5 * (n_sites / energy**2 * math.sqrt((mu4 - var**2) / n)
               + 2 * exact_v * math.sqrt(var / n) / abs(energy))  # fmt: skip
    assert abs(sampled - exact_v) < tol, (sampled, exact_v, tol)
    assert 0.75 * exact_v > tol  # power: a unit slip of 4 in Var or 2 in E would be caught


def test_result_reports_v_score_in_summary_and_after_load(tmp_path):
    stats = Stats(
        mean=jnp.asarray(-4.0),
        error_of_mean=jnp.asarray(0.01),
        variance=jnp.asarray(0.8),
        n_samples=jnp.asarray(1000),
        tau_corr=jnp.asarray(1.0),
    )
    model = _all_up()
    res = Result(energy=stats, variance=0.8, history=[], model=model, info={"n_sites": 4})
    assert res.v_score == 4 * 0.8 / 16
    assert res.summary()["v_score"] == res.v_score
    res.save(tmp_path / "r")
    back = Result.load(tmp_path / "r", like=model)
    assert back.v_score == res.v_score and "v_score" not in back.info
    assert Result(energy=stats, variance=0.8, history=[], model=model).v_score is None
