"""Exact ground-state energies: closed form for the periodic TFIM chain, Lanczos otherwise.

Periodic TFIM chain, even N (Jordan–Wigner free fermions; the ground state lies in the
even-fermion-parity sector, whose momenta are antiperiodic, k_n = (2n+1)π/N):

    E₀(N, h) = − Σ_{n=0}^{N−1} √(J² + h² − 2Jh cos k_n)          (Pauli units)

P. Pfeuty, Ann. Phys. 57, 79 (1970); REFERENCES.md (N = 8, h = 1: −10.251661790966). On an even
periodic chain the spectrum does not depend on the signs of J and h (sublattice rotation, and
global σᶻ → −σᶻ), so |J| and |h| enter.
"""

from __future__ import annotations

import math
from typing import Any

import netket as nk
import numpy as np

__all__ = ["exact_energy", "tfim_chain_energy"]


def tfim_chain_energy(n_sites: int, h: float, J: float = 1.0) -> float:
    """Ground-state energy of the periodic TFIM chain H = −J Σ σᶻσᶻ − h Σ σˣ (Pauli units).

    Args:
        n_sites: number of spins N (even, >= 2).
        h: transverse field.
        J: coupling.

    Returns:
        E₀ as a Python float (float64 arithmetic).
    """
    if isinstance(n_sites, bool) or not isinstance(n_sites, (int, np.integer)) or n_sites < 2:
        raise ValueError(f"`n_sites` must be an integer >= 2, got {n_sites!r}.")
    if n_sites % 2:
        raise ValueError(
            f"The closed form holds for even `n_sites` (antiperiodic fermion momenta), got "
            f"{n_sites}; use `exact_energy` (Lanczos) for odd chains."
        )
    J, h = abs(float(J)), abs(float(h))
    k = (2 * np.arange(n_sites) + 1) * np.pi / n_sites
    # fsum and the factorised form (J − h)² + 4Jh sin²(k/2) keep the sum accurate near h = J.
    terms = np.sqrt((J - h) ** 2 + 4 * J * h * np.sin(k / 2) ** 2)
    return -math.fsum(terms.tolist())


def _periodic_chain_order(edges: Any, n_sites: int) -> bool:
    """Whether `edges` are exactly the nearest-neighbour bonds of a ring 0-1-…-(N−1)-0."""
    got = {tuple(sorted(map(int, e))) for e in np.asarray(edges)}
    want = {tuple(sorted((i, (i + 1) % n_sites))) for i in range(n_sites)}
    return len(np.asarray(edges)) == n_sites and got == want


def exact_energy(hamiltonian: Any, *, max_lanczos_sites: int = 20) -> float:
    """Exact ground-state energy of a NetKet spin Hamiltonian (Pauli units).

    Uses the closed form for a uniform periodic TFIM chain of even length (any N), otherwise
    NetKet's Lanczos (`nk.exact.lanczos_ed`) when the Hilbert space has at most
    `max_lanczos_sites` sites.

    Raises:
        ValueError: no closed form applies and the system is larger than `max_lanczos_sites`.
    """
    if not isinstance(hamiltonian, nk.operator.DiscreteOperator):
        raise TypeError(
            "`hamiltonian` must be a NetKet discrete operator (e.g. from `physml.quantum.tfim`), "
            f"got {type(hamiltonian).__name__}."
        )
    n = hamiltonian.hilbert.size
    if isinstance(hamiltonian, (nk.operator.Ising, nk.operator.IsingJax)):
        J = np.asarray(hamiltonian.J)
        h = np.asarray(hamiltonian.h)
        if (
            J.ndim == 0
            and h.ndim == 0
            and n % 2 == 0
            and _periodic_chain_order(hamiltonian.edges, n)
        ):
            return tfim_chain_energy(n, float(h), float(J))
    if n > max_lanczos_sites:
        raise ValueError(
            f"No closed form is known for this {type(hamiltonian).__name__} on {n} sites, and "
            f"Lanczos is limited to `max_lanczos_sites`={max_lanczos_sites} sites; raise the "
            "limit (memory grows as 2^N) or compare with a published reference."
        )
    return float(nk.exact.lanczos_ed(hamiltonian, k=1)[0])
