"""physml.quantum.netket: physml states in NetKet's MCState, drivers and `expect`, sampled by
physml's exact sampler, checked against enumeration and physml's own VMC.

Models are built once per session (`functools.cache`): they are immutable, and building and
compiling them is most of this file's time."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from quantum_testing import assert_gradient_within_5_standard_errors, perturbed
from test_arconv2d import chi_square_pvalue

from physml.quantum import (
    SR,
    ARConv1D,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    ground_state,
    lattice_group,
)
from physml.quantum.netket import (
    DirectSampler,
    HilbertMismatchError,
    mcstate,
    to_model,
    to_netket,
)

N = 6  # sites: a chain of 6, or the 2×3 lattice


@functools.cache
def _chain_model():
    """A generic (O(1) random parameters) complex ARConv1D on 6 sites."""
    m = ARConv1D(N, layers=2, features=3, kernel_size=3, key=jax.random.key(0))
    return perturbed(m, 100, 0.5)


@functools.cache
def _lattice_model():
    """Σσᶻ = 0 complex ARConv2D on 2×3, symmetrised over its point group."""
    net = perturbed(ARConv2D((2, 3), layers=2, features=3, key=jax.random.key(0)), 1, 0.5)
    return Symmetrized(FixedMagnetization(net), lattice_group((2, 3), pbc=False))


def _observables(hilbert, graph):
    """NetKet JAX operators on `hilbert`: the Heisenberg energy J Σ σᵢ·σⱼ without the sign rule
    (so a complex ψ's phase matters) and a correlator that in part leaves an Sᶻ sector (σ⁺σ⁺:
    ψ = 0 there, log ψ = −inf)."""
    sx = nk.operator.spin.sigmax
    ops = {
        "energy": nk.operator.Heisenberg(hilbert, graph, sign_rule=False).to_jax_operator(),
        "sx_0 sx_1": (sx(hilbert, 0) @ sx(hilbert, 1)).to_jax_operator(),
    }
    # NetKet builds a JAX operator's tables on first flattening: do it here, eagerly, not inside
    # the first trace that closes over the operator (it would leak tracers into the operator).
    jax.tree_util.tree_leaves(ops)
    return ops


def _all_states(n_sites, dtype):
    return jnp.asarray(nk.hilbert.Spin(0.5, n_sites).all_states(), dtype)


@eqx.filter_jit
def _rayleigh_quotient(model, op, states):
    """⟨ψ|O|ψ⟩/⟨ψ|ψ⟩ = Σ_σσ' ψ*(σ) O_σσ' ψ(σ') / Σ_σ |ψ(σ)|², enumerated over `states` (all
    those where ψ ≠ 0), with physml's own `log_psi` (no bridge) and O's matrix elements from
    `get_conn_padded`. Differentiable in the model's parameters."""
    sigma_p, mels = op.get_conn_padded(states)
    psi, psi_p = jnp.exp(model.log_psi(states)), jnp.exp(model.log_psi(sigma_p))
    return jnp.sum(jnp.conj(psi)[:, None] * mels * psi_p) / jnp.sum(jnp.abs(psi) ** 2)


def _check_state(model, hilbert, graph, n_samples, *, full_sum_state=False):
    """The properties listed in `test_exact_samples_and_expect_on_the_sz0_lattice`."""
    log_psi, variables = to_netket(model)
    assert eqx.tree_equal(log_psi.combine(variables), model)
    assert all(jnp.issubdtype(p.dtype, jnp.floating) for p in variables["params"].values())
    full_space = nk.hilbert.Spin(0.5, hilbert.size)
    all_states = _all_states(N, model.dtype)
    log_psi_all = np.asarray(eqx.filter_jit(lambda m, s: m.log_psi(s))(model, all_states))

    vs = mcstate(model, hilbert, n_samples=n_samples, key=jax.random.key(7))
    assert vs.model == log_psi and vs.sampler.is_exact
    sigma = np.asarray(vs.samples).reshape(-1, hilbert.size)
    assert sigma.shape[0] == n_samples and sigma.dtype == np.int8
    assert np.all(np.asarray(hilbert.constraint(sigma))) if hilbert.constrained else True
    probs = np.exp(2 * np.real(log_psi_all))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)  # and 0 off a fixed sector
    counts = np.bincount(np.asarray(full_space.states_to_numbers(sigma)), minlength=2**N)
    assert chi_square_pvalue(counts, probs) > 1e-4
    skew = probs * (1 + 0.1 * np.sign(np.arange(2**N) % 2 - 0.5))
    assert chi_square_pvalue(counts, skew / skew.sum()) < 1e-4

    ops, ops_full = _observables(hilbert, graph), _observables(full_space, graph)
    for name, op in ops.items():
        exact = complex(_rayleigh_quotient(model, ops_full[name], all_states))
        stats = vs.expect(op)
        assert abs(complex(stats.mean) - exact) <= 5 * float(stats.error_of_mean), name
        if name == "energy":  # resolves σᵢ·σⱼ ∈ [−3, 1] per bond to 0.02: the check has power
            assert 5 * float(stats.error_of_mean) < 0.02 * graph.n_edges
    if full_sum_state:
        full = nk.vqs.FullSumState(hilbert, apply_fun=log_psi, variables=variables)
        exact = complex(_rayleigh_quotient(model, ops_full["energy"], all_states))
        assert complex(full.expect(ops["energy"]).mean) == pytest.approx(exact, abs=1e-10)


def test_exact_samples_and_expect_on_the_sz0_lattice():
    """A `Symmetrized(FixedMagnetization(ARConv2D))` state on 2×3 in NetKet's
    `Spin(0.5, 6, total_sz=0)`, through `mcstate` (20 000 samples):

    - `combine(variables)` of `to_netket`'s pair is the model again;
    - the samples lie in the Sᶻ = 0 sector and their frequencies match |ψ|² by Pearson's
      chi-square (rare cells pooled; a correct sampler fails with probability 1e-4, seeded
      here), while the same counts reject a 10 % skew of |ψ|²;
    - NetKet's `expect` of the Heisenberg energy and of ⟨σˣ₀σˣ₁⟩ (which in part leaves the
      sector, where log ψ = −inf) agrees with ⟨ψ|O|ψ⟩ enumerated over all 2^6 states within 5
      of its own standard errors."""
    hilbert = nk.hilbert.Spin(0.5, N, total_sz=0)
    _check_state(_lattice_model(), hilbert, nk.graph.Grid([2, 3], pbc=False), 20_000)


@pytest.mark.slow
def test_exact_samples_and_expect_on_the_unconstrained_chain():
    """The same for a plain `ARConv1D` on `Spin(0.5, 6)` (40 000 samples), and NetKet's
    `FullSumState` on the same `(apply_fun, variables)` gives the enumerated energy (1e-10)."""
    hilbert = nk.hilbert.Spin(0.5, N)
    _check_state(_chain_model(), hilbert, nk.graph.Chain(N), 40_000, full_sum_state=True)


def test_direct_sampler_returns_log_probabilities():
    """`DirectSampler` through NetKet's `Sampler.sample` API: shape (n_chains, chain_length, N),
    the Hilbert space's dtype (int8) and values, a reproducible draw for a seeded state that the
    returned state advances, and log-probabilities equal to 2 Re log ψ (1e-12), as NetKet's
    samplers return them since 3.17; `to_netket`'s apply_fun on those int8 samples is physml's
    `log_psi` (1e-13)."""
    model, hilbert = _chain_model(), nk.hilbert.Spin(0.5, N)
    log_psi, variables = to_netket(model)
    sampler = DirectSampler(hilbert)
    n = 256
    state = sampler.init_state(log_psi.apply, variables, seed=jax.random.key(3))

    def draw(st):
        return sampler.sample(
            log_psi.apply, variables, state=st, chain_length=n, return_log_probabilities=True
        )

    (sigma, log_p), new_state = draw(state)
    assert sigma.shape == (sampler.n_chains, n, N) and sigma.dtype == np.int8
    assert log_p.shape == (sampler.n_chains, n)
    assert set(np.unique(np.asarray(sigma))) == {-1, 1}
    np.testing.assert_array_equal(draw(state)[0][0], sigma)
    assert not np.array_equal(draw(new_state)[0][0], sigma)
    flat = jnp.asarray(sigma.reshape(-1, N), model.dtype)
    log_psi_ref = model.log_psi(flat)
    np.testing.assert_allclose(log_p.reshape(-1), 2 * np.real(log_psi_ref), atol=1e-12)
    bridged = jax.jit(log_psi)(variables, sigma.reshape(-1, N))
    np.testing.assert_allclose(bridged, log_psi_ref, rtol=1e-13)


def _flat(model):
    return ravel_pytree(eqx.filter(model, eqx.is_inexact_array))[0]


def _sz0_chain_state(n_samples):
    """The 6-site Heisenberg chain in Sᶻ = 0 with a complex `FixedMagnetization` state in an
    `mcstate`, and NetKet's samples and local energies as physml's `aux` dict."""
    hilbert = nk.hilbert.Spin(0.5, N, total_sz=0)
    H = _observables(hilbert, nk.graph.Chain(N))["energy"]
    model = FixedMagnetization(_chain_model())
    vs = mcstate(model, hilbert, n_samples=n_samples, key=jax.random.key(2))
    aux = {
        "sigma": jnp.asarray(vs.samples.reshape(-1, N), model.dtype),
        "e_loc": vs.local_estimators(H).reshape(-1),
    }
    return H, model, vs, aux


def test_vmc_gradient_and_driver_step_match_physml():
    """On the 6-site Heisenberg chain in Sᶻ = 0 (complex `FixedMagnetization` state, 4000
    samples), with the standard errors of the sample mean of physml's per-sample gradient
    terms 2 Re[(E_loc − Ē)* O] (what `VMCObjective` averages):

    - NetKet's `expect_and_grad` equals physml's gradient formula on NetKet's samples and
      local estimators (1e-12), and is within 5 standard errors of the exact gradient (autodiff
      of the enumerated Rayleigh quotient) in every component;
    - one step of `nk.driver.VMC` with `optax.sgd(lr)` moves the parameters by −lr × a fresh
      gradient within 5 of the same standard errors of the exact one, and `to_model` returns
      the moved physml state.

    The exact gradient exceeds 20 standard errors in some component, so a wrong factor, sign
    or conjugation in either path fails. (physml's own `VMCObjective` gradient meets the same
    bound: tests/quantum/test_vmc.py.)"""
    lr = 0.05
    H, model, vs, aux = _sz0_chain_state(4000)
    states = jnp.asarray(vs.hilbert.all_states(), model.dtype)
    energy = lambda m: jnp.real(_rayleigh_quotient(m, H, states))
    g_exact = _flat(eqx.filter_jit(eqx.filter_grad(energy))(model))

    _, g_nk = vs.expect_and_grad(H)  # on the samples in `aux`
    g_nk = _flat(vs.model.combine({**vs.variables, "params": g_nk}))
    stderr = assert_gradient_within_5_standard_errors(model, aux, g_nk, g_exact)
    assert np.max(np.abs(g_exact) / (stderr + 1e-300)) > 20  # the test has power

    nk.driver.VMC(H, optax.sgd(lr), variational_state=vs).run(1, out=None, show_progress=False)
    moved = to_model(vs)
    assert isinstance(moved, FixedMagnetization)
    g_step = (_flat(model) - _flat(moved)) / lr
    assert np.all(np.abs(g_step - g_exact) <= 5 * stderr + 1e-12)


@pytest.mark.slow
def test_vmc_sr_direction_is_twice_physml_sr():
    """`nk.driver.VMC_SR`'s update direction on a physml state's samples is twice that of
    physml's `SR` with the same diagonal shift on the same samples and local energies (1e-8):
    NetKet's force is the full gradient 2 Re⟨ΔO* ΔE⟩, physml's F half of it, so NetKet's
    learning rate is physml's / 2 for the same step. Complex ψ (both Jacobian parts), 512
    samples (58 parameters: parameter-space solves on both sides)."""
    H, model, vs, aux = _sz0_chain_state(512)
    driver = nk.driver.VMC_SR(H, optax.sgd(0.05), diag_shift=1e-3, variational_state=vs)
    _, d_nk = driver.compute_loss_and_update()
    d_nk = _flat(vs.model.combine({**vs.variables, "params": d_nk}))
    d_ph, _ = eqx.filter_jit(SR(1e-3))(None, None, model, aux)
    scale = np.max(np.abs(d_nk))
    np.testing.assert_allclose(d_nk, 2 * _flat(d_ph), rtol=1e-8, atol=1e-10 * scale)


@pytest.mark.slow
def test_vmc_sr_run_reaches_physml_energy():
    """150 steps of NetKet's `VMC_SR` on a physml state and 150 of physml's `ground_state` with
    `SR` (the same dynamics: shift, samples per step, and NetKet's learning rate half of
    physml's, see `test_vmc_sr_direction_is_twice_physml_sr`) on the 6-site Heisenberg
    chain in Sᶻ = 0 (sign rule, positive state) reach the same energy: within 5 combined
    standard errors plus 1 % of |E₀| (the runs' own spread) of each other, and both within 2 %
    of E₀."""
    n_samples, steps, lr, shift = 512, 150, 0.05, 1e-2
    hilbert = nk.hilbert.Spin(0.5, N, total_sz=0)
    H = nk.operator.Heisenberg(hilbert, nk.graph.Chain(N))
    e0 = float(np.linalg.eigvalsh(H.to_dense())[0])
    H = H.to_jax_operator()
    net = ARConv1D(N, layers=2, features=4, kernel_size=3, positive=True, key=jax.random.key(0))
    model = FixedMagnetization(net)

    vs = mcstate(model, hilbert, n_samples=n_samples, key=jax.random.key(1))
    nk.driver.VMC_SR(H, optax.sgd(lr / 2), diag_shift=shift, variational_state=vs).run(
        steps, out=None, show_progress=False
    )
    vs.n_samples = 4 * n_samples
    e_nk = vs.expect(H)
    e_ph = ground_state(
        H,
        model,
        n_samples=n_samples,
        steps=steps,
        key=jax.random.key(2),
        optimizer=optax.sgd(lr),
        preconditioner=SR(shift),
        progress=False,
    ).energy
    err = float(np.hypot(e_nk.error_of_mean, e_ph.error_of_mean))
    assert abs(float(e_nk.mean.real) - float(e_ph.mean.real)) <= 5 * err + 0.01 * abs(e0)
    for e in (float(e_nk.mean.real), float(e_ph.mean.real)):
        assert abs(e - e0) <= 0.02 * abs(e0)


def test_mismatched_hilbert_spaces_are_refused():
    """A state and a Hilbert space that disagree on sites, local states or the Σσᶻ sector, or
    a space that is not spin-1/2, raise `HilbertMismatchError` saying what differs and how to
    fix it, from `mcstate` and from the sampler; other misuse raises a TypeError."""
    net = _chain_model()
    fixed = FixedMagnetization(net)
    key = jax.random.key(0)
    cases = [
        (net, nk.hilbert.Spin(0.5, 8), "has 8 sites but the model"),
        (net, nk.hilbert.Spin(0.5, N, total_sz=0), "FixedMagnetization(net, magnetization=0)"),
        (fixed, nk.hilbert.Spin(0.5, N, total_sz=1), "sector Σσᶻ = 2"),
        (net, nk.hilbert.Spin(1.0, N), "spin-1/2"),
        (net, nk.hilbert.Fock(2, N), "spin-1/2"),
    ]
    for model, hilbert, words in cases:
        with pytest.raises(HilbertMismatchError) as info:
            mcstate(model, hilbert, n_samples=16, key=key)
        assert words in str(info.value)
    # A fixed-Σσᶻ state on the full space is accepted: ψ = 0 off its sector.
    mcstate(fixed, nk.hilbert.Spin(0.5, N), n_samples=16, key=key)

    with pytest.raises(HilbertMismatchError, match="spin-1/2"):
        DirectSampler(nk.hilbert.Fock(3, N))
    sampler = DirectSampler(nk.hilbert.Spin(0.5, N, total_sz=0))
    log_psi, variables = to_netket(net)
    with pytest.raises(HilbertMismatchError, match="sector"):
        sampler.sample(log_psi, variables, chain_length=4)
    with pytest.raises(TypeError, match="physml wave functions only"):
        sampler.sample(lambda v, s: jnp.zeros(s.shape[:-1]), {}, chain_length=4)
    with pytest.raises(TypeError, match=r"pass its `\.hilbert`"):
        mcstate(fixed, nk.operator.spin.sigmaz(nk.hilbert.Spin(0.5, N), 0), n_samples=16, key=key)
    with pytest.raises(TypeError, match="variational state of a physml model"):
        to_model(log_psi)
