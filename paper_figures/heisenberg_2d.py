"""Square-lattice Heisenberg convergence: VMC energy per site vs step with the reference line.

    python paper_figures/heisenberg_2d.py [--L 4] [--steps 300] [--samples 512] [--quick]

H = J Σ σ·σ (Pauli units) on the L×L periodic lattice, Marshall sign rule, Sᶻ = 0 sector, a
positive ARConv2D symmetrised over D4 × spin flip. Energies are plotted per site in spin-1/2
units (E/(4N)); references: L = 4 exact −0.701780, L = 6 QMC −0.678873 (Sandvik, PRB 56,
11678 (1997)). Writes `heisenberg_2d_convergence.png` to `--out` (default `paper_figures/out/`).
`--quick` (4×4, 10 steps) only checks that the script runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from physml.quantum import (  # noqa: E402
    SR,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    ground_state,
    heisenberg_2d,
    lattice_group,
)

REFERENCE = {4: (-0.701780, "exact"), 6: (-0.678873, "QMC (Sandvik 1997)")}


def main(out_dir="paper_figures/out", L=4, steps=300, samples=512, seed=0):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    H = heisenberg_2d(L, total_sz=0)
    net = ARConv2D(L, features=8, positive=True, key=jax.random.key(seed))
    model = Symmetrized(FixedMagnetization(net), lattice_group(L, pbc=False), spin_flip=True)
    res = ground_state(
        H,
        model,
        n_samples=samples,
        steps=steps,
        key=jax.random.key(seed + 1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-2),
        progress=False,
    )
    unit = 4 * L * L  # Pauli units, total -> spin-1/2 units, per site
    step = np.array([r["step"] for r in res.history])
    e = np.array([r["loss"] for r in res.history]) / unit
    err = np.array([r["loss_error"] for r in res.history]) / unit
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(step, e, lw=1, label="VMC")
    a.fill_between(step, e - err, e + err, alpha=0.3)
    ref = REFERENCE.get(L)
    if ref is not None:
        a.axhline(ref[0], color="k", ls="--", lw=1, label=f"{ref[1]} {ref[0]}")
        b.semilogy(step, np.maximum(np.abs((e - ref[0]) / ref[0]), 1e-8))
        b.set_ylabel("relative error")
    b.set_xlabel("step")
    a.set_xlabel("step")
    a.set_ylabel("E / N (spin-1/2 units)")
    a.legend()
    fig.suptitle(f"Heisenberg {L}×{L} periodic: ARConv2D + SR, Sᶻ = 0, D4 × Z2")
    fig.tight_layout()
    path = out / "heisenberg_2d_convergence.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    final = float(res.energy.mean.real) / unit
    print(f"E/N = {final:.6f} ± {float(res.energy.error_of_mean) / unit:.1e}; wrote {path}")
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="paper_figures/out")
    p.add_argument("--L", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="4×4, 10 steps, 64 samples")
    a = p.parse_args()
    if a.quick:
        main(a.out, L=4, steps=10, samples=64, seed=a.seed)
    else:
        main(a.out, L=a.L, steps=a.steps, samples=a.samples, seed=a.seed)
