"""4×4 periodic Heisenberg antiferromagnet: Marshall sign rule, Sᶻ = 0 sector, D4 × spin flip.

Exact: −0.701780 per site in spin-1/2 units (E/(4N) of H = J Σ σ·σ in Pauli units).
"""

import jax
import optax

from physml.quantum import (
    SR,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    ground_state,
    heisenberg_2d,
    lattice_group,
)

EXACT_PER_SITE = -0.701780  # spin-1/2 units


def main(seed: int = 0, steps: int = 200, L: int = 4):
    H = heisenberg_2d(L, total_sz=0)  # Pauli units, sign rule on, operator on the Sᶻ = 0 sector
    net = ARConv2D(L, features=8, positive=True, key=jax.random.key(seed))
    model = Symmetrized(FixedMagnetization(net), lattice_group(L, pbc=False), spin_flip=True)
    opt = dict(optimizer=optax.sgd(0.05), preconditioner=SR(1e-2))
    res = ground_state(H, model, n_samples=512, steps=steps, key=jax.random.key(seed + 1), **opt)
    e = float(res.energy.mean.real) / (4 * L * L)
    print(
        f"E/(4N) = {e:.6f} ± {float(res.energy.error_of_mean) / (4 * L * L):.1e}"
        f"  (exact 4×4: {EXACT_PER_SITE})"
    )
    return res


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
