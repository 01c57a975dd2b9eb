"""Square-lattice Hamiltonians: conventions, the Marshall sign rule, reference energies."""

import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
import scipy.sparse.linalg

from physml.quantum import heisenberg_2d, marshall_sign, square_lattice, tfim_2d


def _dense(op):
    return np.asarray(op.to_dense())


@pytest.mark.parametrize("shape, pbc", [((2, 3), False), ((3, 4), False), ((4, 4), True)])
def test_marshall_rotation_is_netkets_sign_rule(shape, pbc):
    """U H U with U = diag((−1)^{n↑(B)}) equals the sign-ruled Hamiltonian, entry by entry."""
    plain = heisenberg_2d(shape, pbc=pbc, sign_rule=False).to_sparse()
    signed = heisenberg_2d(shape, pbc=pbc, sign_rule=True).to_sparse()
    graph = square_lattice(shape, pbc=pbc)
    states = jnp.asarray(nk.hilbert.Spin(0.5, graph.n_nodes).all_states(), jnp.float64)
    u = np.asarray(marshall_sign(graph, states))
    rotated = scipy.sparse.diags(u) @ plain @ scipy.sparse.diags(u)
    assert abs(rotated - signed).max() == 0.0
    assert np.any(u == -1) and np.any(u == 1)
    # With the sign rule every off-diagonal element is <= 0 (stoquastic), without it not.
    off = signed - scipy.sparse.diags(signed.diagonal())
    assert off.max() <= 0 and (plain - scipy.sparse.diags(plain.diagonal())).max() > 0


@pytest.mark.parametrize("shape", [(2, 3), (2, 4)])
def test_sign_ruled_ground_state_is_positive_and_signs_match_marshall(shape):
    graph = square_lattice(shape, pbc=False)
    states = nk.hilbert.Spin(0.5, graph.n_nodes).all_states()
    w_plain, v_plain = np.linalg.eigh(_dense(heisenberg_2d(shape, pbc=False, sign_rule=False)))
    w, v = np.linalg.eigh(_dense(heisenberg_2d(shape, pbc=False)))
    assert w[0] == pytest.approx(w_plain[0], abs=1e-10)
    psi = v[:, 0] * np.sign(v[:, 0].sum())
    support = np.abs(psi) > 1e-10
    assert np.all(psi[support] > 0)
    # The unrotated ground state carries the Marshall signs (up to a global sign).
    sign = np.asarray(marshall_sign(graph, jnp.asarray(states)))
    ref = v_plain[:, 0] * sign
    np.testing.assert_allclose(np.abs(ref), np.abs(psi), atol=1e-8)
    assert np.all(np.sign(ref[support]) == np.sign(ref[support][0]))


def test_heisenberg_4x4_periodic_matches_reference():
    """−0.701780 per site in spin-1/2 units (Sandvik, PRB 56, 11678 (1997)) = ×4×16 Pauli."""
    op = heisenberg_2d(4, pbc=True).to_sparse()
    e0 = scipy.sparse.linalg.eigsh(op, k=1, which="SA", return_eigenvectors=False)[0]
    assert e0 / 4 / 16 == pytest.approx(-0.701780, abs=5e-7)


def test_tfim_matches_its_definition():
    """H = −J Σ σᶻσᶻ − h Σ σˣ on 2×3 open, built term by term from NetKet's local operators."""
    graph = square_lattice((2, 3), pbc=False)
    hi = nk.hilbert.Spin(0.5, 6)
    J, h = 0.7, 1.3
    ref = sum(
        -J * nk.operator.spin.sigmaz(hi, a) @ nk.operator.spin.sigmaz(hi, b)
        for a, b in graph.edges()
    )
    ref = ref + sum(-h * nk.operator.spin.sigmax(hi, i) for i in range(6))
    np.testing.assert_allclose(_dense(tfim_2d((2, 3), h, J=J, pbc=False)), _dense(ref), atol=1e-14)


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="bipartite"):
        heisenberg_2d(3, pbc=True, sign_rule=True)
    with pytest.raises(ValueError, match="at least 3 sites per side"):
        square_lattice((2, 4), pbc=True)
    with pytest.raises(ValueError, match="shape"):
        tfim_2d((0, 3), 1.0)
    with pytest.raises(ValueError, match="finite"):
        tfim_2d(3, float("nan"))
    with pytest.raises(ValueError, match="sites"):
        marshall_sign(square_lattice(3, pbc=False), jnp.ones((2, 4)))
    # Non-bipartite: automatic choice is no sign rule.
    assert heisenberg_2d(3, pbc=True).hilbert.size == 9
