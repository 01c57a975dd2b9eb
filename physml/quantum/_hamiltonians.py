"""Spin-chain Hamiltonians on NetKet's graphs, Hilbert spaces and JAX operators.

Conventions (written once, used everywhere in `physml.quantum`):

- Energies are in **Pauli units**: operators are built from Pauli matrices σ, as NetKet does.
- Transverse-field Ising model (TFIM):

      H = −J Σ_⟨ij⟩ σᶻᵢ σᶻⱼ − h Σᵢ σˣᵢ,

  J > 0 ferromagnetic. NetKet's `nk.operator.Ising(hilbert, graph, h, J)` means
  H = +J_nk Σ σᶻσᶻ − h Σ σˣ (J_nk = +1 by default, antiferromagnetic), so `tfim` passes
  J_nk = −J explicitly. On bipartite lattices both signs have the same spectrum.
- Heisenberg model:

      H = J Σ_⟨ij⟩ Sᵢ·Sⱼ   (spin-1/2 units, S = σ/2)   =   (J/4) Σ_⟨ij⟩ σᵢ·σⱼ,

  J > 0 antiferromagnetic. `heisenberg` returns the operator J Σ σᵢ·σⱼ, i.e. in Pauli units,
  which is **4×** the spin-1/2-unit Hamiltonian; `pauli_to_spin_half` converts energies.
  With `sign_rule=True` (the default on bipartite graphs, as in NetKet) the Marshall sign rule is
  applied: the off-diagonal (flip-flop) terms change sign, which maps the antiferromagnet's
  ground state to one with a positive wave function (same spectrum).
- Local states: NetKet's `Spin(1/2)` has local states (+1, −1); a configuration index 0 is
  σᶻ = +1 and index 1 is σᶻ = −1 (`physml.quantum.ARConv1D.local_states`).

References: REFERENCES.md; Sharir et al., PRL 124, 020503 (2020).
"""

from __future__ import annotations

import math
from typing import Any

import netket as nk
import numpy as np

__all__ = ["chain", "heisenberg", "pauli_to_spin_half", "spin_half_to_pauli", "tfim"]


def _check_sites(n_sites: Any) -> int:
    if isinstance(n_sites, bool) or not isinstance(n_sites, (int, np.integer)) or n_sites < 2:
        raise ValueError(f"`n_sites` must be an integer >= 2, got {n_sites!r}.")
    return int(n_sites)


def _check_real(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}.") from None
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    return out


def chain(n_sites: int, *, pbc: bool = True) -> nk.graph.Graph:
    """A 1D chain of `n_sites` sites, periodic (`pbc=True`) or open."""
    n_sites = _check_sites(n_sites)
    if pbc and n_sites < 3:
        raise ValueError(f"A periodic chain needs `n_sites` >= 3, got {n_sites}.")
    return nk.graph.Chain(n_sites, pbc=bool(pbc))


def tfim(n_sites: int, h: float, *, J: float = 1.0, pbc: bool = True) -> nk.operator.IsingJax:
    """Transverse-field Ising chain H = −J Σ σᶻᵢσᶻᵢ₊₁ − h Σ σˣᵢ (Pauli units), as a NetKet JAX
    operator on `Spin(1/2, n_sites)`.

    Args:
        n_sites: number of spins N.
        h: transverse field (Pauli units).
        J: coupling; J > 0 is ferromagnetic (the opposite of NetKet's default sign).
        pbc: periodic (True) or open (False) boundary.
    """
    graph = chain(n_sites, pbc=pbc)
    h = _check_real(h, "h")
    J = _check_real(J, "J")
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes)
    # NetKet: H = J_nk Σ σᶻσᶻ − h Σ σˣ, so J_nk = −J gives our ferromagnetic sign.
    return nk.operator.IsingJax(hilbert, graph, h=h, J=-J)


def heisenberg(
    n_sites: int,
    *,
    J: float = 1.0,
    pbc: bool = True,
    sign_rule: bool | None = None,
    total_sz: float | int | None = None,
) -> nk.operator.DiscreteJaxOperator:
    """Heisenberg chain J Σ σᵢ·σᵢ₊₁ in Pauli units (= 4 × J Σ Sᵢ·Sᵢ₊₁ in spin-1/2 units), as a
    NetKet JAX operator on `Spin(1/2, n_sites)`, or on its sector
    `Spin(1/2, n_sites, total_sz=total_sz)`; sample that sector with
    `FixedMagnetization(model, magnetization=2 * total_sz)`.

    Args:
        n_sites: number of spins N.
        J: coupling; J > 0 is antiferromagnetic.
        pbc: periodic (True) or open (False) boundary.
        sign_rule: apply the Marshall sign rule (flip the sign of the flip-flop terms) so that
            the ground state has a positive wave function. `None` applies it when the chain is
            bipartite (open, or periodic with even N), as NetKet does; `True` on a non-bipartite
            chain raises.
        total_sz: None (the full space), or Σᵢ Sᶻᵢ in spin-1/2 units (NetKet's convention:
            0 is the Sᶻ = 0 sector, Σᵢσᶻᵢ = 2·total_sz), as `heisenberg_2d`. The ground state
            of the antiferromagnet on an even number of sites is in the Sᶻ = 0 sector.
    """
    graph = chain(n_sites, pbc=pbc)
    J = _check_real(J, "J")
    bipartite = graph.is_bipartite()
    if sign_rule is None:
        sign_rule = bipartite
    elif sign_rule and not bipartite:
        raise ValueError(
            f"`sign_rule=True` needs a bipartite lattice, but a periodic chain of {n_sites} "
            "sites (odd) is not; use an even `n_sites`, `pbc=False` or `sign_rule=False`."
        )
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=total_sz)
    return nk.operator.Heisenberg(hilbert, graph, J=J, sign_rule=bool(sign_rule)).to_jax_operator()


def pauli_to_spin_half(energy: Any) -> Any:
    """Convert a Heisenberg energy from Pauli units (σ·σ) to spin-1/2 units (S·S): divide by 4."""
    return energy / 4


def spin_half_to_pauli(energy: Any) -> Any:
    """Convert a Heisenberg energy from spin-1/2 units (S·S) to Pauli units (σ·σ): multiply by 4."""
    return energy * 4
