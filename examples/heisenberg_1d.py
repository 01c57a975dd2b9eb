"""Periodic Heisenberg chain (N = 20), Marshall sign rule on, so a positive ψ can represent it."""

import jax
import optax

from physml.quantum import SR, ARConv1D, ground_state, heisenberg, pauli_to_spin_half

EXACT_N20 = -8.904386529876  # spin-1/2 units (REFERENCES.md)


def main(seed: int = 0, steps: int = 400, n_sites: int = 20):
    H = heisenberg(n_sites)  # J Σ σ·σ = 4 J Σ S·S (Pauli units), Marshall sign rule
    model = ARConv1D(
        n_sites, layers=3, dilations=(1, 2, 4), positive=True, key=jax.random.key(seed)
    )
    opt = dict(optimizer=optax.sgd(0.05), preconditioner=SR(1e-3))
    res = ground_state(H, model, n_samples=1024, steps=steps, key=jax.random.key(seed + 1), **opt)
    print(f"E/4 = {pauli_to_spin_half(float(res.energy.mean)):.6f} (exact N=20: {EXACT_N20})")
    return res


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
