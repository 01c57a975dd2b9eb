"""2D ground-state energies of ARConv2D + SR vs references (CPU).

Systems (default: all; Pauli units internally, H = J Σ σ·σ and H = −J Σ σᶻσᶻ − h Σ σˣ; reported
per site, Heisenberg in spin-1/2 units E/(4N)): heisenberg:4 (4×4 periodic, −0.701780 exact,
checked by Lanczos on Sᶻ = 0), tfim:4:H (4×4 periodic at h = H, Lanczos), heisenberg:6 (6×6
periodic, −0.678873(4) QMC, Sandvik PRB 56, 11678 (1997); too long for one sitting on CPU:
quantum_2d_gpu.py --system heisenberg6 runs it in resumable pieces). Targets (issue 4): ≤ 1e-4
relative error on 4×4 within 10 min on 2 cores; ≤ 5e-4 on 6×6.

State: positive ARConv2D, Heisenberg in Sᶻ = 0 (`FixedMagnetization`), symmetrised over the point
group (× spin flip) by default; `--eval-symmetry` symmetrises over a larger group for the final
estimate only (the NAQS recipe). The recipe is `ground_state`'s: SR + SGD, the step held for
`--hold-fraction` of `--steps` and cosine-decayed to `--final-lr` (step-indexed); `--time-limit`
is the training budget (the final estimate comes on top), and with `--dir` a run it stops is
continued by the same command on the same schedule. 4×4 states are also summed over the whole
Hilbert space (`full_sum_energy`). Rows carry the relative error and the V-score N·Var(E)/E²
(Wu et al., Science 386, 296 (2024)).

    python benchmarks/quantum_2d.py                                # everything
    python benchmarks/quantum_2d.py --runs tfim:4:3 --steps 50 --samples 256   # quick look
    python benchmarks/quantum_2d.py --runs heisenberg:4 --symmetry none --eval-symmetry d4
    python benchmarks/quantum_2d.py --runs heisenberg:4 --samples 256 --steps 3000 \
        --time-limit 570 --eval-samples 2048 --dir benchmarks/out/quantum_2d   # repeat until done
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from physml.kernels import write_text_atomic  # noqa: E402
from physml.quantum import (  # noqa: E402
    SR,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    evaluate_energy,
    exact_energy,
    full_sum_energy,
    ground_state,
    heisenberg_2d,
    lattice_group,
    tfim_2d,
    v_score,
)

#: Heisenberg energies per site in spin-1/2 units (E/N of J Σ S·S), with their sources.
HEISENBERG_REFERENCE = {
    4: (-0.701780, "exact diagonalisation (verified by Lanczos here)"),
    6: (-0.678873, "QMC, Sandvik PRB 56, 11678 (1997), ±4e-6"),
}
#: Largest Hilbert space whose energy is also summed exactly (`full_sum_energy`): the 4×4
#: systems (12870 Sᶻ = 0 states for Heisenberg, 2^16 for the TFIM), not 6×6.
FULL_SUM_MAX_STATES = 1 << 16
DEFAULT_RUNS = ["heisenberg:4", "tfim:4:2", "tfim:4:3", "tfim:4:4", "heisenberg:6"]


def build_system(spec: str, *, symmetry: str, spin_flip: bool, features: int, layers, seed: int):
    """(name, hamiltonian, model, reference energy [Pauli units, total], reference note)."""
    parts = spec.split(":")
    kind, L = parts[0], int(parts[1])
    n = L * L
    base = ARConv2D(L, layers=layers, features=features, positive=True, key=jax.random.key(seed))
    if kind == "heisenberg":
        H = heisenberg_2d(L, pbc=True, total_sz=0)  # Marshall sign rule on (bipartite)
        model = FixedMagnetization(base)
        if L in HEISENBERG_REFERENCE:
            per_site, note = HEISENBERG_REFERENCE[L]
            ref = 4 * n * per_site
        else:
            ref, note = exact_energy(H), "Lanczos"
        name = f"Heisenberg {L}×{L} PBC"
    elif kind == "tfim":
        h = float(parts[2])
        H = tfim_2d(L, h, pbc=True)
        model = base
        ref, note = exact_energy(H), "Lanczos (NetKet)"
        name = f"TFIM {L}×{L} PBC h={h:g}"
    else:
        raise ValueError(f"Unknown system {spec!r}; use heisenberg:L or tfim:L:h.")
    return name, H, symmetrize(model, L, symmetry, spin_flip), ref, note


def symmetrize(model, L: int, symmetry: str, spin_flip: bool):
    """`model` averaged over the chosen lattice group of the periodic L×L square (× spin flip);
    `model` itself for no symmetry and no flip."""
    perms = lattice_group(L, pbc=True)
    if symmetry == "d4":
        perms = perms[:8]  # the point group: the first 8 rows (zero translation)
    elif symmetry == "none":
        perms = perms[:1]
        if not spin_flip:
            return model
    return Symmetrized(model, perms, spin_flip=spin_flip)


def run_one(spec: str, args: argparse.Namespace) -> dict:
    name, H, model, ref, note = build_system(
        spec,
        symmetry=args.symmetry,
        spin_flip=not args.no_spin_flip,
        features=args.features,
        layers=args.layers,
        seed=args.seed,
    )
    n = H.hilbert.size
    unit = 4 * n if spec.startswith("heisenberg") else n  # per site (spin-1/2 for Heisenberg)
    if spec == "heisenberg:4" and args.verify_reference:
        lanczos = exact_energy(H)
        assert abs(lanczos / unit - ref / unit) < 5e-7, (lanczos / unit, ref / unit)
        note += f"; Lanczos {lanczos / unit:.7f}"
    ckpt = None
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        ckpt = args.dir / f"{spec.replace(':', '_')}_state.eqx"
    t0 = time.perf_counter()
    res = ground_state(
        H,
        model,
        n_samples=args.samples,
        steps=args.steps,
        key=jax.random.key(args.seed + 1),
        preconditioner=SR(args.diag_shift),
        learning_rate=args.lr,
        final_learning_rate=args.final_lr,
        hold_fraction=args.hold_fraction,
        time_limit_s=args.time_limit or None,
        checkpoint_path=ckpt,
        resume=ckpt is not None,
        # With --eval-symmetry the estimate that counts is the symmetrised one below.
        n_eval_samples=args.samples if args.eval_symmetry else args.eval_samples,
        exact=ref,
        progress=args.progress,
    )
    energy, eval_model = res.energy, res.model
    if args.eval_symmetry:
        # The NAQS recipe (Sharir et al. 2020; FlowKet's experiments): train the cheaper state,
        # average the trained network over the larger group only for the final estimate.
        inner = res.model.model if isinstance(res.model, Symmetrized) else res.model
        L = int(spec.split(":")[1])
        eval_model = symmetrize(inner, L, args.eval_symmetry, not args.no_spin_flip)
        energy = evaluate_energy(
            H, eval_model, args.eval_samples, key=jax.random.key(args.seed + 2), chunk=1024
        )
    wall = time.perf_counter() - t0
    e, err = float(energy.mean.real), float(energy.error_of_mean)
    full = {}
    if not args.no_full_sum and H.hilbert.n_states <= FULL_SUM_MAX_STATES:
        # The exact variational energy of the evaluated state: no error bar to argue about.
        t1 = time.perf_counter()
        e_full = full_sum_energy(H, eval_model, max_states=FULL_SUM_MAX_STATES)
        full = {
            "full_sum_energy_per_site": e_full / unit,
            "full_sum_relative_error": abs((e_full - ref) / ref),
            "full_sum_s": time.perf_counter() - t1,
        }
    return {
        "system": name,
        "spec": spec,
        "reference_per_site": ref / unit,
        "reference_note": note,
        "energy_per_site": e / unit,
        "error_per_site": err / unit,
        "relative_error": abs((e - ref) / ref),
        "variance": float(energy.variance),
        "v_score": v_score(e, float(energy.variance), n),
        "wall_time_s": wall,
        "steps": res.n_steps,
        "samples_per_step": args.samples,
        "eval_samples": args.eval_samples,
        "eval_symmetry": args.eval_symmetry or args.symmetry,
        "stop_reason": res.stop_reason,
        "config": {k: v for k, v in vars(args).items() if k not in ("runs", "out", "progress")},
        "load_average": os.getloadavg(),
        **full,
    }


def _v(v: float | None) -> str:
    return "–" if v is None else f"{v:.2e}"


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", nargs="*", default=DEFAULT_RUNS)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--eval-samples", type=int, default=16384)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--final-lr", type=float, default=0.005)
    p.add_argument("--hold-fraction", type=float, default=0.5, help="of --steps at --lr")
    p.add_argument("--diag-shift", type=float, default=1e-3)
    p.add_argument("--features", type=int, default=12)
    p.add_argument("--layers", type=int, default=None, help="default: covers the lattice")
    p.add_argument("--symmetry", choices=["none", "d4", "translations+d4"], default="d4")
    p.add_argument("--no-spin-flip", action="store_true")
    p.add_argument(
        "--eval-symmetry",
        choices=["none", "d4", "translations+d4"],
        default=None,
        help="symmetrise the trained network over this group for the final estimate only "
        "(default: the training state's own group)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=540.0, help="training per run [s]; 0: none")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="checkpoint each run's training state here; the same command then resumes it",
    )
    p.add_argument(
        "--no-full-sum",
        action="store_true",
        help="skip the exact (enumerated) variational energy of the 4×4 states",
    )
    p.add_argument("--verify-reference", action="store_true", help="Lanczos check of 4×4")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "quantum_2d.json")
    args = p.parse_args(argv)
    rows = []
    for spec in args.runs:
        rows.append(run_one(spec, args))
        r = rows[-1]
        print(
            f"{r['system']:<26} ref {r['reference_per_site']:+.6f}  "
            f"E {r['energy_per_site']:+.6f} ± {r['error_per_site']:.1e}  "
            f"rel {r['relative_error']:.1e}  V {_v(r['v_score'])}  "
            + (
                f"full sum {r['full_sum_energy_per_site']:+.7f} "
                f"rel {r['full_sum_relative_error']:.2e}  "
                if "full_sum_relative_error" in r
                else ""
            )
            + f"{r['wall_time_s']:.0f} s  {r['steps']}/{args.steps} steps  "
            f"{r['samples_per_step']} samples  load {r['load_average'][0]:.1f}",
            flush=True,
        )
        if r["stop_reason"]:
            again = " (run the same command to continue)" if args.dir else ""
            print(f"{spec}: stopped early: {r['stop_reason']}{again}", flush=True)
    print()
    print(
        "| system | reference (per site) | energy ± error (per site) | rel. error | V-score "
        "| full sum: rel. error | wall [s] | steps | samples |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        full = f"{r['full_sum_relative_error']:.2e}" if "full_sum_relative_error" in r else "–"
        print(
            f"| {r['system']} | {r['reference_per_site']:.6f} | {r['energy_per_site']:.6f} ± "
            f"{r['error_per_site']:.1e} | {r['relative_error']:.1e} | {_v(r['v_score'])} | "
            f"{full} | {r['wall_time_s']:.0f} | {r['steps']} | {r['samples_per_step']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    old.update({r["spec"]: r for r in rows})
    write_text_atomic(args.out, json.dumps(old, indent=1, default=float))
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=6)
    main()
