"""Hamiltonian conventions (signs, Pauli vs spin-1/2 units) and exact reference energies."""

import functools

import netket as nk
import numpy as np
import pytest
from hypothesis import given, strategies as st

from physml.quantum import (
    exact_energy,
    heisenberg,
    pauli_to_spin_half,
    spin_half_to_pauli,
    tfim,
    tfim_chain_energy,
)

X = np.array([[0.0, 1.0], [1.0, 0.0]])
Y = np.array([[0.0, -1j], [1j, 0.0]])
Z = np.array([[1.0, 0.0], [0.0, -1.0]])  # basis order (+1, −1), as NetKet's Spin(1/2)


def _site_op(op, i, n):
    return functools.reduce(np.kron, [op if j == i else np.eye(2) for j in range(n)])


def _bonds(n, pbc):
    return [(i, (i + 1) % n) for i in range(n if pbc else n - 1)]


def _tfim_dense(n, h, J, pbc):
    H = sum(-J * _site_op(Z, i, n) @ _site_op(Z, j, n) for i, j in _bonds(n, pbc))
    return H + sum(-h * _site_op(X, i, n) for i in range(n))


def _heisenberg_spin_half_dense(n, J, pbc):
    """J Σ S_i·S_j with S = σ/2 (spin-1/2 units)."""
    return sum(
        J * sum(_site_op(P / 2, i, n) @ _site_op(P / 2, j, n) for P in (X, Y, Z))
        for i, j in _bonds(n, pbc)
    )


@pytest.mark.parametrize("pbc", [True, False])
@pytest.mark.parametrize("h, J", [(0.7, 1.0), (1.3, -0.5)])
def test_tfim_sign_convention(h, J, pbc):
    """tfim(...) is exactly −J Σ σᶻσᶻ − h Σ σˣ (not NetKet's +J default)."""
    n = 4
    np.testing.assert_allclose(
        tfim(n, h, J=J, pbc=pbc).to_dense(), _tfim_dense(n, h, J, pbc), atol=1e-13
    )


@pytest.mark.parametrize("pbc", [True, False])
def test_heisenberg_is_four_times_spin_half(pbc):
    """heisenberg(...) without the sign rule is 4 × J Σ S·S: Pauli units."""
    n, J = 4, 0.8
    H = heisenberg(n, J=J, pbc=pbc, sign_rule=False).to_dense()
    np.testing.assert_allclose(H, 4 * _heisenberg_spin_half_dense(n, J, pbc), atol=1e-13)
    e_spin_half = np.linalg.eigvalsh(_heisenberg_spin_half_dense(n, J, pbc))[0]
    assert pauli_to_spin_half(np.linalg.eigvalsh(H)[0]) == pytest.approx(e_spin_half, abs=1e-12)
    assert spin_half_to_pauli(e_spin_half) == pytest.approx(np.linalg.eigvalsh(H)[0], abs=1e-12)


def test_marshall_sign_rule_flips_offdiagonal_keeps_spectrum():
    n = 6
    a = heisenberg(n, sign_rule=False).to_dense()
    b = heisenberg(n, sign_rule=True).to_dense()
    off = ~np.eye(a.shape[0], dtype=bool)
    np.testing.assert_allclose(np.diag(a), np.diag(b))
    np.testing.assert_allclose(a[off], -b[off], atol=1e-13)
    np.testing.assert_allclose(np.linalg.eigvalsh(a), np.linalg.eigvalsh(b), atol=1e-10)
    # With the sign rule the ground state is positive (Perron–Frobenius): all weights one sign.
    psi = np.linalg.eigh(b)[1][:, 0]
    assert np.all(psi * np.sign(psi[np.argmax(np.abs(psi))]) > -1e-12)


@given(n=st.sampled_from([4, 6, 8, 10]), h=st.floats(0.05, 4.0), J=st.sampled_from([1.0, -1.0]))
def test_closed_form_equals_lanczos(n, h, J):
    """Closed form (free fermions, k_n = (2n+1)π/N) == NetKet Lanczos to 1e-9 relative."""
    e_lanczos = float(nk.exact.lanczos_ed(tfim(n, h, J=J), k=1)[0])
    assert tfim_chain_energy(n, h, J) == pytest.approx(e_lanczos, rel=1e-9)


@pytest.mark.parametrize(
    "n, h, expected",
    [(8, 1.0, -10.251661790966), (20, 1.0, -25.490989686365), (32, 0.5, -34.033421119168)],
)
def test_closed_form_reference_values(n, h, expected):
    """REFERENCES.md values, quoted to 12 decimals."""
    assert exact_energy(tfim(n, h)) == pytest.approx(expected, abs=2e-12)


@pytest.mark.parametrize("n", [4, 10, 50, 1000])
def test_critical_point_closed_form(n):
    """At h = J: E₀ = −2J / sin(π/(2N)); and E₀/N → −4/π."""
    assert tfim_chain_energy(n, 1.0) == pytest.approx(-2 / np.sin(np.pi / (2 * n)), rel=1e-12)
    if n == 1000:
        assert tfim_chain_energy(n, 1.0) / n == pytest.approx(-4 / np.pi, abs=1e-6)


@given(n=st.sampled_from([4, 12, 40]), h=st.floats(0.1, 10.0))
def test_self_duality(n, h):
    """E₀(N, h) = h E₀(N, 1/h) (Kramers–Wannier)."""
    assert tfim_chain_energy(n, h) == pytest.approx(h * tfim_chain_energy(n, 1 / h), rel=1e-12)


def test_periodic_momenta_would_be_wrong():
    """Guard on the convention: momenta 2πn/N give a different (wrong) value at N = 8."""
    k = 2 * np.pi * np.arange(8) / 8
    wrong = -np.sum(np.sqrt(2 - 2 * np.cos(k)))
    assert abs(wrong - tfim_chain_energy(8, 1.0)) > 1e-3


def test_exact_energy_falls_back_to_lanczos():
    H_open = tfim(8, 0.9, pbc=False)
    assert exact_energy(H_open) == pytest.approx(np.linalg.eigvalsh(H_open.to_dense())[0])
    Hh = heisenberg(8)
    assert exact_energy(Hh) == pytest.approx(np.linalg.eigvalsh(Hh.to_dense())[0])


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        tfim_chain_energy(7, 1.0)
    with pytest.raises(ValueError, match="n_sites"):
        tfim(1, 1.0)
    with pytest.raises(ValueError, match="finite"):
        tfim(4, float("nan"))
    with pytest.raises(ValueError, match="bipartite"):
        heisenberg(5, sign_rule=True)
    with pytest.raises(ValueError, match="max_lanczos_sites"):
        exact_energy(heisenberg(12), max_lanczos_sites=10)
    with pytest.raises(TypeError, match="NetKet"):
        exact_energy(np.eye(4))


def test_heisenberg_chain_sector_is_the_full_operator_restricted():
    """`total_sz` builds the same operator on the Sᶻ sector (as `heisenberg_2d`): its matrix is
    the full one's block on the sector's states, and the ground state lies in Sᶻ = 0."""
    full, sector = heisenberg(8), heisenberg(8, total_sz=0)
    states = np.asarray(sector.hilbert.all_states())
    assert len(states) == 70 and np.all(states.sum(axis=1) == 0)
    rows = full.hilbert.states_to_numbers(states)
    block = full.to_sparse()[rows][:, rows].toarray()
    np.testing.assert_array_equal(sector.to_dense(), block)
    assert exact_energy(sector) == pytest.approx(exact_energy(full), abs=1e-10)
    one_up = heisenberg(8, total_sz=1)
    assert np.all(np.asarray(one_up.hilbert.all_states()).sum(axis=1) == 2)  # Σσᶻ = 2·total_sz
    with pytest.raises(ValueError, match="must be even"):
        heisenberg(8, total_sz=0.5)
