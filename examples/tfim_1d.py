"""Periodic transverse-field Ising chain (N = 20, h = 1): ARConv1D, exact sampling, SR."""

import jax
import optax

from physml.quantum import SR, ARConv1D, exact_energy, ground_state, tfim


def main(seed: int = 0, steps: int = 300, n_sites: int = 20, h: float = 1.0):
    H = tfim(n_sites, h)  # −Σ σᶻσᶻ − h Σ σˣ, Pauli units
    model = ARConv1D(
        n_sites, layers=3, dilations=(1, 2, 4), positive=True, key=jax.random.key(seed)
    )
    opt = dict(optimizer=optax.sgd(0.05), preconditioner=SR(1e-3), exact=exact_energy(H))
    res = ground_state(H, model, n_samples=1024, steps=steps, key=jax.random.key(seed + 1), **opt)
    print(f"E = {res.energy}, relative error {res.info['relative_error']:.1e}")
    return res


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
