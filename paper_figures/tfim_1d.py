"""TFIM chain figures: energy per site and magnetisation vs h (VMC with exact curves), and the
convergence of the VMC energy.

    python paper_figures/tfim_1d.py [out_dir] [--sites 16] [--steps 200] [--samples 1024]

Writes `tfim_energy_magnetization.png` and `tfim_convergence.png` to `out_dir`
(default `paper_figures/out/`, not committed). Exact energies: free-fermion closed form (any N);
exact ⟨|m|⟩: Lanczos ground state (N ≤ 16).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import netket as nk  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from physml.quantum import (  # noqa: E402
    SR,
    ARConv1D,
    ground_state,
    magnetization,
    sample_spins,
    tfim,
    tfim_chain_energy,
)


def exact_abs_magnetization(n: int, h: float) -> float:
    """⟨|m|⟩ = Σ_σ |ψ₀(σ)|² |Σ_i σ_i| / N from the Lanczos ground state."""
    H = tfim(n, h)
    _, vecs = nk.exact.lanczos_ed(H, k=1, compute_eigenvectors=True)
    p = np.abs(vecs[:, 0]) ** 2
    states = np.asarray(H.hilbert.all_states())
    return float(p @ np.abs(states.mean(-1)))


def main(
    out_dir="paper_figures/out",
    sites=16,
    steps=200,
    samples=1024,
    seed=0,
    fields=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, histories = [], {}
    for h in fields:
        H = tfim(sites, h)
        exact = tfim_chain_energy(sites, h)
        model = ARConv1D(
            sites,
            layers=3,
            features=10,
            kernel_size=5,
            dilations=(1, 2, 4),  # receptive field 29 sites: sees the whole chain for N ≤ 29
            positive=True,
            key=jax.random.key(seed),
        )
        res = ground_state(
            H,
            model,
            n_samples=samples,
            steps=steps,
            key=jax.random.key(seed + 1),
            optimizer=optax.sgd(0.05),
            preconditioner=SR(1e-3),
            exact=exact,
            progress=False,
        )
        mag = magnetization(sample_spins(res.model, 8 * samples, key=jax.random.key(seed + 2)))
        rows.append(
            (
                h,
                float(res.energy.mean) / sites,
                float(res.energy.error_of_mean) / sites,
                exact / sites,
                float(mag.mean),
                float(mag.error_of_mean),
                exact_abs_magnetization(sites, h) if sites <= 16 else np.nan,
            )
        )
        histories[h] = (res.history, exact)
        print(
            f"h={h:5.2f}  E/N={rows[-1][1]:.6f}  exact {rows[-1][3]:.6f}  "
            f"rel.err {res.info['relative_error']:.1e}  |m|={rows[-1][4]:.4f} "
            f"(exact {rows[-1][6]:.4f})",
            flush=True,
        )
    r = np.array(rows)
    h_fine = np.linspace(min(fields), max(fields), 200)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(h_fine, [tfim_chain_energy(sites, h) / sites for h in h_fine], "k-", label="exact")
    a1.errorbar(r[:, 0], r[:, 1], r[:, 2], fmt="o", label="VMC (ARConv1D)")
    a1.set(xlabel="h / J", ylabel="E₀ / N (Pauli units)", title=f"TFIM chain, N = {sites}, PBC")
    a1.legend()
    a2.plot(r[:, 0], r[:, 6], "k-", label="exact (Lanczos)")
    a2.errorbar(r[:, 0], r[:, 4], r[:, 5], fmt="o", label="VMC")
    a2.set(xlabel="h / J", ylabel="⟨|m|⟩ (per site)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(out / "tfim_energy_magnetization.png", dpi=130)

    fig, ax = plt.subplots(figsize=(6, 4))
    for h, (hist, exact) in histories.items():
        e = np.array([rec["loss"] for rec in hist])
        ax.semilogy(np.maximum(np.abs((e - exact) / exact), 1e-10), lw=1, label=f"h = {h:g}")
    ax.set(xlabel="step", ylabel="|E − E₀| / |E₀|", title=f"VMC convergence, N = {sites}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "tfim_convergence.png", dpi=130)
    plt.close("all")
    return r


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", nargs="?", default="paper_figures/out")
    p.add_argument("--sites", type=int, default=16)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    main(a.out_dir, a.sites, a.steps, a.samples, a.seed)
