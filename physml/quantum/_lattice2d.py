"""Square-lattice Hamiltonians and the Marshall sign rule.

Conventions are those of `physml.quantum._hamiltonians` (Pauli units; σᶻ = +1 is local index 0):

- TFIM:        H = −J Σ_⟨ij⟩ σᶻᵢσᶻⱼ − h Σᵢ σˣᵢ,        J > 0 ferromagnetic;
- Heisenberg:  H = J Σ_⟨ij⟩ σᵢ·σⱼ  (= 4 J Σ Sᵢ·Sⱼ),   J > 0 antiferromagnetic.

Sites of an L₁×L₂ lattice are in raster order i = r·L₂ + c (NetKet's `Grid`), as `ARConv2D`.

Marshall sign rule (W. Marshall, Proc. R. Soc. A 232, 48 (1955)): on a bipartite lattice with
sublattices A ∋ site 0 and B, the unitary U = Π_{i∈B} σᶻᵢ maps the antiferromagnet to one whose
flip-flop terms −2J(σ⁺ᵢσ⁻ⱼ + h.c.) are non-positive, so its ground state is positive
(Perron–Frobenius) and a `positive=True` model can represent it. In the σᶻ basis
U|σ⟩ = (−1)^{n↑(B)}|σ⟩ with n↑(B) the number of up spins on B: `marshall_sign`. NetKet's
`Heisenberg(..., sign_rule=True)` is exactly U H U (tested).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import netket as nk
import numpy as np
from jaxtyping import Array, Real

from ._arconv2d import lattice_shape
from ._hamiltonians import _check_real

__all__ = ["heisenberg_2d", "marshall_sign", "square_lattice", "tfim_2d"]


def square_lattice(shape: Any, *, pbc: bool = True) -> nk.graph.Lattice:
    """The L₁×L₂ square lattice (`shape`: L or (L₁, L₂)) with open or periodic boundaries.

    Periodic boundaries need L >= 3 along each side (for L = 2 the wrap-around bond would
    double the nearest-neighbour bond)."""
    l1, l2 = lattice_shape(shape)
    if pbc and min(l1, l2) < 3:
        raise ValueError(
            f"A periodic square lattice needs at least 3 sites per side, got {l1}×{l2}; use "
            "`pbc=False` or a larger lattice."
        )
    return nk.graph.Grid([l1, l2], pbc=bool(pbc))


def _sublattice_b(graph: nk.graph.AbstractGraph) -> np.ndarray:
    """Boolean mask of sublattice B (site 0 is on A); raises if `graph` is not bipartite."""
    if not graph.is_bipartite():
        raise ValueError(
            f"The Marshall sign rule needs a bipartite lattice, got {graph!r} (e.g. a periodic "
            "side of odd length); use even periodic sides, open boundaries or sign_rule=False."
        )
    colour = -np.ones(graph.n_nodes, int)
    neighbours = [[] for _ in range(graph.n_nodes)]
    for a, b in graph.edges():
        neighbours[a].append(b)
        neighbours[b].append(a)
    for start in range(graph.n_nodes):  # breadth-first 2-colouring of each component
        if colour[start] >= 0:
            continue
        colour[start], queue = 0, [start]
        while queue:
            a = queue.pop()
            for b in neighbours[a]:
                if colour[b] < 0:
                    colour[b] = 1 - colour[a]
                    queue.append(b)
    return colour == 1


def marshall_sign(
    graph: nk.graph.AbstractGraph, sigma: Real[Array, "*batch sites"]
) -> Real[Array, "*batch"]:
    """(−1)^{n↑(B)}: the Marshall sign of spin configurations σ (σᶻ = ±1) on a bipartite graph.

    ψ_Heisenberg(σ) = marshall_sign(σ) · ψ_sign_rule(σ) relates the eigenstates of H and U H U.
    """
    b = _sublattice_b(graph)
    if sigma.shape[-1] != graph.n_nodes:
        raise ValueError(
            f"`sigma` has {sigma.shape[-1]} sites on its last axis, the graph {graph.n_nodes}."
        )
    n_up_b = jnp.sum((sigma[..., b] > 0).astype(jnp.int32), axis=-1)
    return (1 - 2 * (n_up_b % 2)).astype(sigma.dtype)


def tfim_2d(
    shape: Any, h: float, *, J: float = 1.0, pbc: bool = True
) -> nk.operator.DiscreteJaxOperator:
    """Square-lattice TFIM H = −J Σ_⟨ij⟩ σᶻᵢσᶻⱼ − h Σᵢ σˣᵢ (Pauli units) on `Spin(1/2, L₁L₂)`.

    Critical field h_c ≈ 3.044 J (REFERENCES.md)."""
    graph = square_lattice(shape, pbc=pbc)
    h, J = _check_real(h, "h"), _check_real(J, "J")
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes)
    # NetKet: H = J_nk Σ σᶻσᶻ − h Σ σˣ, so J_nk = −J gives our ferromagnetic sign.
    return nk.operator.IsingJax(hilbert, graph, h=h, J=-J)


def heisenberg_2d(
    shape: Any,
    *,
    J: float = 1.0,
    pbc: bool = True,
    sign_rule: bool | None = None,
    total_sz: float | int | None = None,
) -> nk.operator.DiscreteJaxOperator:
    """Square-lattice Heisenberg J Σ_⟨ij⟩ σᵢ·σⱼ in Pauli units (4× the spin-1/2 units), on
    `Spin(1/2, L₁L₂)`, or on its sector `Spin(1/2, L₁L₂, total_sz=total_sz)`; sample that sector
    with `FixedMagnetization(model, magnetization=2 * total_sz)`.

    Args:
        shape: L or (L₁, L₂).
        J: coupling, J > 0 antiferromagnetic.
        pbc: periodic (True) or open boundaries.
        sign_rule: apply the Marshall rotation U H U (ground state positive). `None` applies it
            when the lattice is bipartite; `True` on a non-bipartite lattice raises.
        total_sz: None (the full space), or Σᵢ Sᶻᵢ in spin-1/2 units (NetKet's convention:
            0 is the Sᶻ = 0 sector, Σᵢσᶻᵢ = 2·total_sz). The ground state of the
            antiferromagnet on an even number of sites is in the Sᶻ = 0 sector (Marshall).
    """
    graph = square_lattice(shape, pbc=pbc)
    J = _check_real(J, "J")
    if sign_rule is None:
        sign_rule = graph.is_bipartite()
    elif sign_rule:
        _sublattice_b(graph)  # raises with a clear message when not bipartite
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=total_sz)
    return nk.operator.Heisenberg(hilbert, graph, J=J, sign_rule=bool(sign_rule)).to_jax_operator()
