"""VMC on 2D lattices: symmetrised states (exact sampling through `Symmetrized.sample`), the
Sᶻ = 0 sector on NetKet's constrained Hilbert space, and SR with 2D models."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from quantum_testing import assert_gradient_within_5_standard_errors, perturbed

from physml.quantum import (
    SR,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    VMCObjective,
    check_compatible,
    evaluate_energy,
    exact_energy,
    full_sum_energy,
    ground_state,
    heisenberg_2d,
    lattice_group,
    local_energies,
    tfim_2d,
)


def _arconv(shape, positive, seed, scale=0.5):
    m = ARConv2D(shape, layers=2, features=3, positive=positive, key=jax.random.key(seed))
    return perturbed(m, seed + 100, scale)


def _exact_energy_fn(H):
    """θ ↦ ⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ by enumeration of `H.hilbert` (the sector if constrained)."""
    states = jnp.asarray(H.hilbert.all_states(), jnp.float64)
    dense = jnp.asarray(H.to_dense())

    @eqx.filter_jit
    def energy(m):
        psi = jnp.exp(m.log_psi(states))
        return jnp.real(jnp.conj(psi) @ (dense @ psi)) / jnp.sum(jnp.abs(psi) ** 2)

    return energy


def _assert_mc_gradient_matches_exact(m, H, n_samples, key):
    """The objective's sampled gradient equals the exact one within 5 standard errors per
    component (errors from the per-sample spread of 2 Re[(E_loc − Ē)* O]), the test has power
    (some component > 20 standard errors), and the energy agrees within 5 error bars."""
    obj = VMCObjective(H, n_samples)
    stats, grads, aux = eqx.filter_jit(obj.value_and_grad)(m, key)
    g_mc, _ = ravel_pytree(grads)
    energy = _exact_energy_fn(H)
    g_exact, _ = ravel_pytree(eqx.filter_grad(energy)(m))
    stderr = assert_gradient_within_5_standard_errors(m, aux, g_mc, g_exact)
    assert np.max(np.abs(g_exact) / (stderr + 1e-300)) > 20
    assert float(stats.mean.real) == pytest.approx(
        float(energy(m)), abs=5 * float(stats.error_of_mean)
    )
    return aux["sigma"]


@pytest.mark.parametrize("positive, flip", [(True, False), (False, True)])
def test_symmetrized_monte_carlo_gradient_matches_exact(positive, flip):
    """2×3 open TFIM (h = 2), ψ symmetrised over D2 (× spin flip): sampled through
    `Symmetrized.sample` (model sample + random group element, exact), the VMC gradient agrees
    with the exact gradient by enumeration of all 64 states."""
    m = Symmetrized(_arconv((2, 3), positive, 3), lattice_group((2, 3), pbc=False), spin_flip=flip)
    H = tfim_2d((2, 3), 2.0, pbc=False)
    sigma = _assert_mc_gradient_matches_exact(m, H, 4000, jax.random.key(5))
    # The samples are the symmetrised law's, not the inner model's: some are group images that
    # the inner model alone rarely draws (the two laws differ; chi-square tested elsewhere).
    assert sigma.shape == (4000, 6)


def test_sz0_sector_gradient_matches_exact_on_constrained_hilbert():
    """2×3 open Heisenberg on NetKet's `Spin(1/2, 6, total_sz=0)` (20 states), Marshall sign,
    FixedMagnetization(ARConv2D) symmetrised over D2 × spin flip (flip keeps Sᶻ = 0)."""
    H = heisenberg_2d((2, 3), pbc=False, total_sz=0)
    assert H.hilbert.constrained and H.hilbert.n_states == 20
    m = Symmetrized(
        FixedMagnetization(_arconv((2, 3), True, 4)),
        lattice_group((2, 3), pbc=False),
        spin_flip=True,
    )
    sigma = _assert_mc_gradient_matches_exact(m, H, 4000, jax.random.key(6))
    np.testing.assert_array_equal(jnp.sum(sigma, axis=-1), 0.0)


def test_constrained_and_full_space_local_energies_agree():
    """On Sᶻ = 0 configurations the operator on the constrained space and on the full space give
    the same local energies (the Heisenberg model conserves Sᶻ), to round-off."""
    m = FixedMagnetization(_arconv((2, 3), True, 7))
    sector = heisenberg_2d((2, 3), pbc=False, total_sz=0)
    full = heisenberg_2d((2, 3), pbc=False)
    s = jnp.asarray(sector.hilbert.all_states(), jnp.float64)
    np.testing.assert_allclose(
        local_energies(m, sector, s), local_energies(m, full, s), rtol=1e-13, atol=1e-13
    )


def test_check_compatible_accepts_matching_sectors_only():
    base = _arconv((2, 2), True, 0)
    fm0 = FixedMagnetization(base)
    H0 = heisenberg_2d((2, 2), pbc=False, total_sz=0)
    check_compatible(H0, fm0)
    check_compatible(H0, Symmetrized(fm0, lattice_group((2, 2), pbc=False), spin_flip=True))
    with pytest.raises(ValueError, match="FixedMagnetization"):
        check_compatible(H0, base)  # full-space model on a constrained space
    with pytest.raises(ValueError, match=r"Σσᶻ = 2"):
        check_compatible(H0, FixedMagnetization(base, magnetization=2))
    H1 = heisenberg_2d((2, 2), pbc=False, total_sz=1)  # Σσᶻ = 2 in Pauli units
    check_compatible(H1, FixedMagnetization(base, magnetization=2))
    with pytest.raises(TypeError, match="Symmetrized"):
        check_compatible(H0, object())
    with pytest.raises(ValueError, match="Size mismatch"):
        check_compatible(tfim_2d(3, 1.0), Symmetrized(base, lattice_group(2, pbc=False)))


def test_sr_step_with_2d_models_matches_the_direct_formula():
    """SR builds per-sample log-derivatives through `log_psi(..., per_sample=True)` for ARConv2D,
    FixedMagnetization and Symmetrized: its direction solves (S + λ) δ = F (params space)."""
    H = heisenberg_2d((2, 2), pbc=False, total_sz=0)
    m = Symmetrized(FixedMagnetization(_arconv((2, 2), True, 8)), lattice_group(2, pbc=False))
    obj = VMCObjective(H, 64)
    _, grads, aux = eqx.filter_jit(obj.value_and_grad)(m, jax.random.key(1))
    sr = SR(1e-2, mode="params")
    delta, _ = eqx.filter_jit(sr)(grads, None, m, aux)  # jitted: eager dispatch is slow
    params, static = eqx.partition(m, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(
        jax.vmap(
            jax.grad(lambda p, s: eqx.combine(unravel(p), static).log_psi(s[None])[0]),
            in_axes=(None, 0),
        )
    )(flat, aux["sigma"])
    dO = jac - jac.mean(0)
    de = aux["e_loc"] - aux["e_loc"].mean()
    n = len(de)
    S = dO.T @ dO / n + 1e-2 * np.eye(len(flat))
    F = dO.T @ de / n
    np.testing.assert_allclose(ravel_pytree(delta)[0], np.linalg.solve(S, F), atol=1e-9)
    assert np.max(np.abs(F)) > 1e-3


def test_ground_state_with_symmetrized_model_reports_and_evaluates():
    """`ground_state` and `evaluate_energy` accept a Symmetrized state (a few steps run)."""
    H = tfim_2d((2, 2), 1.0, pbc=False)
    m = Symmetrized(
        ARConv2D((2, 2), features=3, key=jax.random.key(0)), lattice_group(2, pbc=False)
    )
    res = ground_state(
        H,
        m,
        n_samples=32,
        steps=2,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.01),
        progress=False,
    )
    assert len(res.history) == 2 and isinstance(res.model, Symmetrized)
    e = evaluate_energy(H, res.model, 64, key=jax.random.key(2))
    assert np.isfinite(float(e.mean.real))


@pytest.mark.filterwarnings("ignore:ARConv2D with layers=2:UserWarning")  # small on purpose
def test_full_sum_energy_is_the_rayleigh_quotient_that_sampling_estimates():
    """`full_sum_energy` of a complex symmetrised state in the Sᶻ = 0 sector (2×4 Heisenberg,
    no sign rule, 70 states) equals ⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ from the dense matrix to 1e-12, and an
    exact-sampling estimate agrees with it within 5 error bars; a larger space than allowed, and
    a non-finite ψ, are refused."""
    H = heisenberg_2d((2, 4), pbc=False, sign_rule=False, total_sz=0)
    m = Symmetrized(
        FixedMagnetization(_arconv((2, 4), False, 4)),
        lattice_group((2, 4), pbc=False),
        spin_flip=True,
    )
    e = full_sum_energy(H, m)
    assert e == pytest.approx(float(_exact_energy_fn(H)(m)), abs=1e-12)
    mc = evaluate_energy(H, m, 4096, key=jax.random.key(5))
    assert abs(float(mc.mean.real) - e) < 5 * float(mc.error_of_mean)
    spread = np.ptp(np.linalg.eigvalsh(H.to_dense()))
    assert float(mc.error_of_mean) < 0.01 * spread  # not a vacuous comparison
    with pytest.raises(ValueError, match="has 70 states, more than `max_states`=69"):
        full_sum_energy(H, m, max_states=69)
    broken = eqx.tree_at(lambda m: m.model.model.head_b, m, m.model.model.head_b * np.nan)
    with pytest.raises(FloatingPointError, match="NaN or \\+inf on 70 of 70 states"):
        full_sum_energy(H, broken)


@pytest.mark.slow
@pytest.mark.parametrize("system", ["tfim", "heisenberg"])
def test_symmetrized_vmc_learns_small_2d_ground_states(system):
    """SR on 2×3 open lattices reaches the exact ground-state energy (Lanczos) to 1e-4 relative
    within 80 steps: TFIM at h = 3 with D2 × spin flip; Heisenberg (Marshall sign, Sᶻ = 0 on
    NetKet's constrained space) with D2 × spin flip. The initial state is > 10% off."""
    if system == "tfim":
        H = tfim_2d((2, 3), 3.0, pbc=False)
        inner = ARConv2D((2, 3), features=6, positive=True, key=jax.random.key(0))
    else:
        H = heisenberg_2d((2, 3), pbc=False, total_sz=0)
        inner = FixedMagnetization(
            ARConv2D((2, 3), features=6, positive=True, key=jax.random.key(0))
        )
    m = Symmetrized(inner, lattice_group((2, 3), pbc=False), spin_flip=True)
    exact = exact_energy(H)
    assert abs(_exact_energy_fn(H)(m) - exact) / abs(exact) > 0.1
    res = ground_state(
        H,
        m,
        n_samples=256,
        steps=80,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-2),
        exact=exact,
        progress=False,
    )
    assert res.stop_reason is None
    assert res.info["relative_error"] < 1e-4, res.summary()


def test_exact_energy_on_the_sector_equals_the_full_space_ground_state():
    """Sanity of the reference: the 2×3 open antiferromagnet's ground state is in Sᶻ = 0."""
    e_sector = exact_energy(heisenberg_2d((2, 3), pbc=False, total_sz=0))
    e_full = exact_energy(heisenberg_2d((2, 3), pbc=False))
    assert e_sector == pytest.approx(e_full, rel=1e-12)
    assert isinstance(heisenberg_2d((2, 3), pbc=False, total_sz=0).hilbert, nk.hilbert.Spin)


def test_symmetrized_sz0_vmc_learns_the_2x2_plaquette():
    """Fast learning check: 2×2 open Heisenberg (a 4-site ring, E₀ = −8 in Pauli units),
    Sᶻ = 0 on the constrained space, D4 × spin flip, 30 SR steps: relative error < 1e-3
    from a start > 10% off."""
    H = heisenberg_2d((2, 2), pbc=False, total_sz=0)
    net = ARConv2D((2, 2), features=4, positive=True, key=jax.random.key(0))
    m = Symmetrized(FixedMagnetization(net), lattice_group(2, pbc=False), spin_flip=True)
    assert abs(_exact_energy_fn(H)(m) + 8) / 8 > 0.1
    res = ground_state(
        H,
        m,
        n_samples=128,
        steps=30,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-2),
        exact=-8.0,
        progress=False,
    )
    assert res.info["relative_error"] < 1e-3, res.summary()


def test_chunked_local_energies_equal_one_pass():
    """`max_configurations` splits the ψ evaluations into `lax.map` chunks (uneven last chunk
    padded): the local energies are the same to round-off."""
    m = Symmetrized(_arconv((2, 3), False, 9), lattice_group((2, 3), pbc=False), spin_flip=True)
    H = heisenberg_2d((2, 3), pbc=False, sign_rule=False)
    s = jnp.asarray(H.hilbert.all_states(), jnp.float64)[:37]
    full = local_energies(m, H, s, max_configurations=10**9)
    for limit in (1, 100, 1000):
        np.testing.assert_allclose(
            local_energies(m, H, s, max_configurations=limit), full, rtol=1e-12, atol=1e-12
        )
    assert np.ptp(np.asarray(full.real)) > 0.1
