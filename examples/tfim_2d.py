"""4×4 periodic transverse-field Ising model near its critical field (h_c ≈ 3.044 J), compared
with NetKet's Lanczos. H = −J Σ σᶻσᶻ − h Σ σˣ (Pauli units)."""

import jax
import optax

from physml.quantum import (
    SR,
    ARConv2D,
    Symmetrized,
    exact_energy,
    ground_state,
    lattice_group,
    tfim_2d,
)


def main(seed: int = 0, steps: int = 150, L: int = 4, h: float = 3.0):
    H = tfim_2d(L, h)
    net = ARConv2D(L, features=8, positive=True, key=jax.random.key(seed))  # ψ > 0 (Perron)
    model = Symmetrized(net, lattice_group(L, pbc=False), spin_flip=True)  # D4 × Z2
    opt = dict(optimizer=optax.sgd(0.05), preconditioner=SR(1e-3))
    res = ground_state(
        H,
        model,
        n_samples=512,
        steps=steps,
        key=jax.random.key(seed + 1),
        exact=exact_energy(H),
        **opt,
    )
    print(
        f"E/N = {float(res.energy.mean.real) / L**2:.6f}, exact {res.info['exact'] / L**2:.6f},"
        f" relative error {res.info['relative_error']:.1e}"
    )
    return res


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
