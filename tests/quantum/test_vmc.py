"""VMC: local energies, the energy gradient, stochastic reconfiguration."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st
from jax.flatten_util import ravel_pytree
from quantum_testing import assert_gradient_within_5_standard_errors, perturbed

from physml.kernels import StopReason, fit, train_init, train_step
from physml.quantum import (
    SR,
    ARConv1D,
    VMCObjective,
    collapsed_batch,
    heisenberg,
    local_energies,
    tfim,
)
from physml.quantum._flips import log_psi_single_flips


def _model(n, positive, seed, scale=0.5, features=3):
    m = ARConv1D(
        n, layers=2, features=features, kernel_size=3, positive=positive, key=jax.random.key(seed)
    )
    return perturbed(m, seed + 100, scale)


def _uniform(n):
    """ψ(σ) = 2^(−N/2) for all σ: zero output head."""
    m = ARConv1D(n, layers=2, features=3, kernel_size=3, positive=True, key=jax.random.key(0))
    return eqx.tree_at(
        lambda m: (m.head_w, m.head_b), m, (jnp.zeros_like(m.head_w), jnp.zeros_like(m.head_b))
    )


def _exact_energy_of(m, H):
    """⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ by enumeration, differentiable in the parameters."""
    states = jnp.asarray(H.hilbert.all_states())
    dense = jnp.asarray(H.to_dense())

    @eqx.filter_jit
    def energy(m):
        psi = jnp.exp(m.log_psi(states))
        return jnp.real(jnp.conj(psi) @ (dense @ psi)) / jnp.sum(jnp.abs(psi) ** 2)

    return energy if m is None else energy(m)


def _e_loc(m, H, sigma, **kwargs):
    """`local_energies` under jit: op-by-op dispatch of its flip scans costs seconds."""
    return eqx.filter_jit(lambda m, s: local_energies(m, H, s, **kwargs))(m, sigma)


def test_local_energy_of_eigenstates_is_constant():
    """Uniform ψ is the ground state of −h Σ σˣ (J = 0): E_loc(σ) = −hN for every σ; the fully
    polarised state is an eigenstate of the Heisenberg chain with E = J·N (Pauli units)."""
    n, h = 6, 1.3
    m = _uniform(n)
    states = jnp.asarray(nk.hilbert.Spin(0.5, n).all_states())
    np.testing.assert_allclose(_e_loc(m, tfim(n, h, J=0.0), states), -h * n, rtol=1e-13)
    # Not an eigenstate once J ≠ 0: the local energy varies (the check above can fail).
    assert np.ptp(np.asarray(_e_loc(m, tfim(n, h, J=1.0), states))) > 1.0

    polarised = eqx.tree_at(lambda m: m.head_b, m, jnp.array([30.0, -30.0]))
    up = jnp.ones((1, n))
    e = _e_loc(polarised, heisenberg(n, J=0.7), up)
    np.testing.assert_allclose(e, 0.7 * n, rtol=1e-13)


def _fresh_heisenberg(n, source):
    if source == "physml":
        return heisenberg(n)
    hilbert = nk.hilbert.Spin(0.5, n)
    return nk.operator.Heisenberg(hilbert, nk.graph.Chain(n)).to_jax_operator()


@pytest.mark.parametrize("source", ["physml", "netket"])
def test_local_energies_trace_twice_with_a_fresh_operator(source):
    """NetKet builds a JAX operator's tables on first use. Two jitted functions closing over the
    same fresh operator must both trace: the first trace must not cache tracers on it (it did:
    UnexpectedTracerError in the second), for ours and for one a user builds in NetKet."""
    n = 6
    m = _model(n, True, 2)
    sigma = jnp.asarray(nk.hilbert.Spin(0.5, n).all_states()[::7])
    H = _fresh_heisenberg(n, source)
    first = jax.jit(lambda s: local_energies(m, H, s))(sigma)
    second = jax.jit(lambda s: 2 * local_energies(m, H, s))(sigma)
    np.testing.assert_allclose(second, 2 * first, rtol=1e-14)
    eager = local_energies(m, _fresh_heisenberg(n, source), sigma)
    np.testing.assert_allclose(first, eager, rtol=1e-12)


@pytest.mark.parametrize("positive", [True, False])
def test_local_energy_average_is_rayleigh_quotient(positive):
    """Σ_σ |ψ(σ)|² E_loc(σ) = ⟨ψ|H|ψ⟩ exactly (enumeration, 1e-11)."""
    n = 6
    m = _model(n, positive, 1)
    H = heisenberg(n, sign_rule=False)  # off-diagonal signs matter for the complex case
    states = jnp.asarray(H.hilbert.all_states())
    exact = float(_exact_energy_of(m, H))
    p = jnp.exp(2 * jnp.real(m.log_psi(states)))
    e_avg = jnp.sum(p * _e_loc(m, H, states))
    assert abs(jnp.imag(e_avg)) < 1e-11
    assert float(jnp.real(e_avg)) == pytest.approx(exact, abs=1e-11)


@pytest.mark.parametrize("positive", [True, False])
def test_gradient_formula_is_exact_under_enumeration(positive):
    """2 Re ⟨(E_loc − E)* O⟩ with |ψ|²-weights over all σ equals ∂E/∂θ (autodiff), to 1e-10."""
    n = 5
    m = _model(n, positive, 2)
    H = tfim(n, 0.8)
    states = jnp.asarray(H.hilbert.all_states())
    p = jnp.exp(2 * jnp.real(m.log_psi(states)))
    e_loc = _e_loc(m, H, states)
    delta = e_loc - jnp.sum(p * e_loc)
    g_formula = eqx.filter_jit(
        eqx.filter_grad(lambda mm: 2 * jnp.sum(p * jnp.real(jnp.conj(delta) * mm.log_psi(states))))
    )(m)
    g_exact = eqx.filter_grad(_exact_energy_of(None, H))(m)
    a, _ = ravel_pytree(g_formula)
    b, _ = ravel_pytree(g_exact)
    np.testing.assert_allclose(a, b, atol=1e-10)
    assert np.max(np.abs(b)) > 1e-2  # not a vacuous comparison


@pytest.mark.parametrize("positive", [True, False])
def test_monte_carlo_gradient_matches_exact(positive):
    """The objective's sampled gradient agrees with the exact gradient within 5 standard errors
    per component (standard errors from the per-sample spread of 2 Re[(E_loc − Ē)* O])."""
    n, n_samples = 5, 4000
    m = _model(n, positive, 3)
    H = tfim(n, 0.8)
    obj = VMCObjective(H, n_samples)
    stats, grads, aux = eqx.filter_jit(obj.value_and_grad)(m, jax.random.key(7))
    g_mc, _ = ravel_pytree(grads)
    g_exact, _ = ravel_pytree(eqx.filter_grad(_exact_energy_of(None, H))(m))

    stderr = assert_gradient_within_5_standard_errors(m, aux, g_mc, g_exact)
    assert np.max(np.abs(g_exact) / (stderr + 1e-300)) > 20  # the test has power
    assert float(stats.mean.real) == pytest.approx(
        float(_exact_energy_of(m, H)), abs=5 * float(stats.error_of_mean)
    )


@pytest.mark.parametrize("positive", [True, False])
def test_sr_matches_direct_formula_in_both_spaces(positive):
    """δ = (S + λI)⁻¹ F with S = Re⟨ΔO*ΔO⟩, F = Re⟨ΔO*ΔE⟩ (numpy, complex O) equals the
    sample-space (minSR) and the parameter-space solves, to 1e-8 relative."""
    n, n_samples, lam = 4, 32, 1e-3
    m = _model(n, positive, 4, features=4)
    obj = VMCObjective(tfim(n, 1.1), n_samples)
    _, grads, aux = eqx.filter_jit(obj.value_and_grad)(m, jax.random.key(1))
    flat, unravel = ravel_pytree(eqx.filter(m, eqx.is_inexact_array))
    static = eqx.filter(m, eqx.is_inexact_array, inverse=True)

    def log_psi_flat(p, s):
        return eqx.combine(unravel(p), static).log_psi(s[None], per_sample=True)[0]

    sigma = aux["sigma"]
    O_re = jax.vmap(jax.grad(lambda p, s: jnp.real(log_psi_flat(p, s))), (None, 0))(flat, sigma)
    O_im = jax.vmap(jax.grad(lambda p, s: jnp.imag(log_psi_flat(p, s))), (None, 0))(flat, sigma)
    o = np.asarray(O_re) + 1j * np.asarray(O_im)
    dO = o - o.mean(0)
    dE = np.asarray(aux["e_loc"]) - np.mean(np.asarray(aux["e_loc"]))
    S = np.real(dO.conj().T @ dO) / n_samples
    F = np.real(dO.conj().T @ dE) / n_samples
    expected = np.linalg.solve(S + lam * np.eye(len(F)), F)
    # F is half the energy gradient.
    np.testing.assert_allclose(2 * F, ravel_pytree(grads)[0], rtol=1e-8, atol=1e-12)
    assert len(F) > (1 if positive else 2) * n_samples  # both solves are exercised below
    for mode in ("sample", "params", "auto"):
        delta, _ = SR(lam, mode=mode)(grads, None, m, aux)
        np.testing.assert_allclose(ravel_pytree(delta)[0], expected, rtol=1e-8, atol=1e-10)


def test_sr_update_does_not_need_the_objective_gradient():
    """`VMCObjective(gradient=False)` (what `ground_state` builds for SR) skips the backward
    pass; the SR-preconditioned step is the same, and the plain gradient is really skipped."""
    n = 6
    H, m = tfim(n, 0.8), _model(n, False, 3)
    optimizer = optax.sgd(0.05)
    params = []
    for gradient in (True, False):
        objective = VMCObjective(H, 64, gradient=gradient)
        state, static = train_init(m, optimizer, key=jax.random.key(4), preconditioner=SR(1e-3))
        state, info = train_step(state, static, objective, optimizer, SR(1e-3))
        assert bool(info.ok)
        params.append(ravel_pytree(state.params)[0])
    np.testing.assert_allclose(params[1], params[0], rtol=1e-12, atol=1e-14)
    _, grads, _ = VMCObjective(H, 64, gradient=False).value_and_grad(m, jax.random.key(5))
    assert not np.any(ravel_pytree(eqx.filter(grads, eqx.is_inexact_array))[0])


def test_sr_rejects_bad_shift():
    with pytest.raises(ValueError, match="diag_shift"):
        SR(0.0)
    with pytest.raises(ValueError, match="mode"):
        SR(1e-3, mode="cg")


@given(
    n=st.integers(2, 12),
    layers=st.integers(1, 3),
    kernel=st.integers(1, 4),
    d=st.integers(1, 3),
    positive=st.booleans(),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=10)
def test_single_flip_local_energies_equal_generic_path(n, layers, kernel, d, positive, seed):
    """Propagating a flip through the receptive field gives the generic local energies
    (full network pass on every connected configuration) to 1e-10 relative."""
    m = ARConv1D(
        n,
        layers=layers,
        features=3,
        kernel_size=kernel,
        dilations=tuple(d**i for i in range(layers)),
        positive=positive,
        key=jax.random.key(seed),
    )
    m = perturbed(m, seed + 1)
    H = tfim(n, 0.9, pbc=n >= 3)
    sigma = jnp.sign(jax.random.normal(jax.random.key(seed + 2), (16, n)))

    @eqx.filter_jit  # one program per example: op-by-op dispatch of the flip scan is slow
    def both_paths(m, s):
        fast = local_energies(m, H, s, single_flip=True)
        slow = local_energies(m, H, s, single_flip=False)
        # Chunked over the batch (5 rows per `lax.map` step, 16 rows: the last chunk padded).
        return fast, slow, log_psi_single_flips(m, s), log_psi_single_flips(m, s, chunk_size=5)

    fast, slow, (log_psi, flips), (log_psi_c, flips_c) = both_paths(m, sigma)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(log_psi_c, log_psi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(flips_c, flips, rtol=1e-12, atol=1e-12)


def test_single_flip_refuses_two_site_moves():
    n = 6
    m = _model(n, True, 0)
    sigma = jnp.asarray([[1.0, -1.0] * 3])
    with pytest.raises(Exception, match="single_flip"):
        jax.block_until_ready(
            eqx.filter_jit(lambda m, s: local_energies(m, heisenberg(n), s, single_flip=True))(
                m, sigma
            )
        )


def test_vmc_objective_reports_a_collapsed_batch_so_a_bare_fit_stops():
    """`aux["collapsed"]` comes from `VMCObjective` itself (issue 21): a script that calls `fit`
    with it directly, without `ground_state`, stops on a collapsed state. The flag equals
    `collapsed_batch` computed from scratch, on the 1D single-flip path and the generic one."""
    polarised = eqx.tree_at(lambda m: m.head_b, _model(6, True, 0), jnp.array([40.0, -40.0]))
    for H in (tfim(6, 1.0), heisenberg(6)):
        for model in (polarised, _model(6, True, 1)):
            step = eqx.filter_jit(VMCObjective(H, 32).value_and_grad)
            _, _, aux = step(model, jax.random.key(2))
            scratch = collapsed_batch(model, H, aux["sigma"], aux["e_loc"])
            assert bool(aux["collapsed"]) == bool(scratch)
    _, _, aux = eqx.filter_jit(VMCObjective(tfim(6, 1.0), 32).value_and_grad)(
        polarised, jax.random.key(2)
    )
    assert bool(aux["collapsed"])
    run = fit(
        VMCObjective(tfim(6, 1.0), 64),
        _model(6, True, 0),
        optimizer=optax.adam(1e4),
        steps=40,
        key=jax.random.key(0),
        progress=False,
    )
    assert run.stop == StopReason.collapsed
    assert run.stop_reason.startswith("collapsed sample batch")


def test_a_normal_vmc_run_is_never_flagged_collapsed():
    """Training the N = 8 chain with Adam for 60 steps from a random start: no step is flagged."""
    H = tfim(8, 1.0)
    run = fit(
        VMCObjective(H, 128),
        _model(8, False, 3),
        optimizer=optax.adam(1e-2),
        steps=60,
        key=jax.random.key(4),
        progress=False,
    )
    assert run.stop_reason is None and len(run.history) == 60
