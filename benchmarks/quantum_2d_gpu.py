"""Large 2D ground states, resumable in pieces of under 10 minutes (on one GPU, or on CPU), and
warm-started down a chain of lattice sizes.

Systems (Pauli units: H = J Σ σ·σ = 4 J Σ S·S, H = −J Σ σᶻσᶻ − h Σ σˣ; Heisenberg with the
Marshall sign rule in Sᶻ = 0), by name or as `heisenberg:L:open|periodic` and
`tfim:L:open|periodic:h`:

- heisenberg10 = heisenberg:10:open, reference −251.46248 (QMC; Sharir et al., PRL 124, 020503
  (2020), table I, in Pauli units);
- tfim12 = tfim:12:open:3, reference −457.04173 (DMRG; same table);
- heisenberg6 = heisenberg:6:periodic, reference 4 · 36 · (−0.678873) (QMC, Sandvik, PRB 56,
  11678 (1997), per site in spin-1/2 units, ±4e-6);
- heisenberg8 = heisenberg:8:periodic, reference 4 · 64 · (−0.673487) (QMC, same, ±4e-6);
- any other size: Lanczos up to 4×4, else no reference (no relative error).

The state is a positive ARConv2D (kernel 3, the covering depth) averaged over the lattice's
point group (periodic: its 8 rows of zero translation) × spin flip. The recipe is the library's:
SR + SGD with `hold_cosine_schedule` (`--lr` held for `--hold-fraction` of `--steps`, then
cosine-decayed to `--final-lr`; step-indexed), `TimeLimit(--budget)`. Each call trains for at
most `--budget` seconds, writes the `TrainState` atomically (a resumed run is bit-identical to
an uninterrupted one) and exits; call it again with the same arguments to continue. When all
`--steps` are done it evaluates the energy with `--eval-samples` samples, with its V-score
N·Var(E)/E² (Wu et al., Science 386, 296 (2024)), and writes the result. It reports samples/s
and s/step (without compilation).

`--init-from CHECKPOINT --init-system SYSTEM` starts from another run's trained network (its
`<tag>_state.eqx`, same --features and --train-symmetry) on SYSTEM's lattice, `transfer`red to
this one (layers added, with zero weights, until the receptive field covers it), with this
run's fresh schedule.

    python benchmarks/quantum_2d_gpu.py --system heisenberg10 --budget 540   # repeat until done
    python benchmarks/quantum_2d_gpu.py --system heisenberg8 --init-system heisenberg6 \
        --init-from benchmarks/out/quantum_2d_gpu/heisenberg_6_periodic_state.eqx
    python benchmarks/quantum_2d_gpu.py --smoke                              # tiny, on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import equinox as eqx
import jax
import optax
from _common import StepClock  # benchmarks/ is on sys.path

from physml.kernels import TimeLimit, fit, hold_cosine_schedule, load_params, write_text_atomic
from physml.quantum import (
    SR,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    VMCObjective,
    draw_samples,
    evaluate_energy,
    exact_energy,
    heisenberg_2d,
    lattice_group,
    tfim_2d,
    transfer,
    v_score,
)

NAMES = {
    "heisenberg10": "heisenberg:10:open",
    "tfim12": "tfim:12:open:3",
    "heisenberg6": "heisenberg:6:periodic",
    "heisenberg8": "heisenberg:8:periodic",
    "smoke": "heisenberg:4:open",
}
REFERENCES = {  # [Pauli units, total], source
    "heisenberg:10:open": (-251.46248, "QMC (Sharir et al. 2020, table I)"),
    "tfim:12:open:3": (-457.04173, "DMRG (Sharir et al. 2020, table I)"),
    "heisenberg:6:periodic": (4 * 36 * -0.678873, "QMC (Sandvik 1997), ±4e-6/site"),
    "heisenberg:8:periodic": (4 * 64 * -0.673487, "QMC (Sandvik 1997), ±4e-6/site"),
}


def system_spec(text: str) -> str:
    """The canonical spec of a system name or spec: kind:L:open|periodic[:h]."""
    spec = NAMES.get(text, text)
    parts = spec.split(":")
    ok = (
        len(parts) == (4 if parts[0] == "tfim" else 3)
        and parts[0] in ("heisenberg", "tfim")
        and parts[1].isdigit()
        and parts[2] in ("open", "periodic")
    )
    if not ok:
        raise argparse.ArgumentTypeError(
            f"unknown system {text!r}: use {', '.join(NAMES)} or heisenberg:L:open|periodic, "
            "tfim:L:open|periodic:h"
        )
    if parts[0] == "tfim":
        parts[3] = f"{float(parts[3]):g}"
    return ":".join(parts)


def build(spec: str, *, features: int, seed: int, dtype, train_symmetry: str = "full"):
    """(H, the model to train, its group for evaluation, reference or None, note). With
    `train_symmetry="flip"` the model trained is averaged over the spin flip only, and the
    trained network is symmetrised over the whole group for the final estimate (the NAQS recipe,
    Sharir et al. 2020: each step then costs 2 network passes per configuration, not 2 |G|)."""
    kind, L, boundary, *h = spec.split(":")
    L, pbc = int(L), boundary == "periodic"
    base = ARConv2D(L, features=features, positive=True, dtype=dtype, key=jax.random.key(seed))
    if kind == "heisenberg":
        H = heisenberg_2d(L, pbc=pbc, total_sz=0)  # Marshall sign rule (bipartite)
        model = FixedMagnetization(base)
    else:
        H = tfim_2d(L, float(h[0]), pbc=pbc)
        model = base
    # Open squares: D4. Periodic: its point group, the first 8 rows (zero translation); the
    # L² translations more would multiply each step's cost by L².
    perms = lattice_group(L, pbc=pbc)
    perms = perms[:8] if pbc else perms
    train_perms = perms if train_symmetry == "full" else perms[:1]  # row 0: the identity
    ref, note = REFERENCES.get(spec, (None, "none"))
    if ref is None and L <= 4:
        ref, note = exact_energy(H), "Lanczos"
    return H, Symmetrized(model, train_perms, spin_flip=True), perms, ref, note


def _network(model):
    """The ARConv2D inside the wrappers."""
    while not isinstance(model, ARConv2D):
        model = model.model
    return model


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--system",
        type=system_spec,
        default="heisenberg10",
        help=f"{', '.join(NAMES)}, or heisenberg:L:open|periodic, tfim:L:open|periodic:h",
    )
    p.add_argument("--smoke", action="store_true", help="tiny 4×4 run (CPU check of the path)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--eval-samples", type=int, default=65536)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument(
        "--final-lr",
        type=float,
        default=None,
        help="hold --lr for --hold-fraction of --steps, then cosine-decay to this\n"
        "(default: constant)",
    )
    p.add_argument("--hold-fraction", type=float, default=0.5)
    p.add_argument("--diag-shift", type=float, default=1e-3)
    p.add_argument("--budget", type=float, default=540.0, help="training seconds per call")
    p.add_argument(
        "--train-symmetry",
        choices=["full", "flip"],
        default="full",
        help="train over the whole group, or the spin flip only (evaluated over the whole group)",
    )
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from the parameters of another run's checkpoint (same --features and\n"
        "--train-symmetry) on --init-system's lattice, transferred to this one, with this\n"
        "run's fresh schedule",
    )
    p.add_argument(
        "--init-system",
        type=system_spec,
        default=None,
        help="the system of --init-from's run (default: --system; then --name is needed)",
    )
    p.add_argument("--name", default=None, help="file prefix (default: the system's tag)")
    p.add_argument("--x64", action="store_true", help="float64 (default float32 on GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, default=Path(__file__).parent / "out" / "quantum_2d_gpu")
    args = p.parse_args(argv)
    system = NAMES["smoke"] if args.smoke else args.system
    init_system = args.init_system or system
    if args.init_from is not None and init_system == system and args.name is None:
        p.error("--init-from on the same system needs --name (its checkpoint is not continued)")
    if args.smoke:
        args.steps, args.samples, args.eval_samples, args.features = 6, 64, 256, 4
        args.checkpoint_every = 2
    jax.config.update("jax_enable_x64", bool(args.x64 or jax.default_backend() == "cpu"))
    dtype = jax.numpy.zeros(()).dtype
    kw = {"features": args.features, "seed": args.seed, "dtype": dtype}
    H, model, perms, ref, note = build(system, train_symmetry=args.train_symmetry, **kw)
    args.dir.mkdir(parents=True, exist_ok=True)
    tag = args.name or system.replace(":", "_") + ("_flip" if args.train_symmetry == "flip" else "")
    ckpt = args.dir / f"{tag}_state.eqx"
    schedule = hold_cosine_schedule(
        args.lr, args.steps, final_learning_rate=args.final_lr, hold_fraction=args.hold_fraction
    )
    if args.init_from is not None and not ckpt.is_file():
        # Its optimiser state and step are dropped; its network is moved to this lattice.
        like = build(init_system, train_symmetry=args.train_symmetry, **kw)[1]
        trained = load_params(args.init_from, like)
        side = int(system.split(":")[1])
        model = transfer(trained, side, add_layers=None, permutations=model.permutations)
        model = jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model)
    budget, clock = TimeLimit(args.budget), StepClock()
    run = fit(
        VMCObjective(H, args.samples, gradient=False),  # SR forms its own gradient
        model,
        optimizer=optax.sgd(schedule),
        steps=args.steps,
        key=jax.random.key(args.seed + 1),
        preconditioner=SR(args.diag_shift),
        callbacks=(clock, budget),
        log_path=args.dir / f"{tag}_log.jsonl",
        checkpoint_path=ckpt,
        checkpoint_every=args.checkpoint_every,
        resume=True,
        progress=False,
        desc=system,
    )
    # Sampling throughput alone (compiled, second call timed).
    draw = eqx.filter_jit(lambda m, k: draw_samples(m, args.samples, key=k))
    jax.block_until_ready(draw(run.model, jax.random.key(0)))
    t0 = time.perf_counter()
    jax.block_until_ready(draw(run.model, jax.random.key(1)))
    samples_per_s = args.samples / (time.perf_counter() - t0)
    out = {
        "system": system,
        "init_from": None if args.init_from is None else str(args.init_from),
        "init_system": None if args.init_from is None else init_system,
        "train_symmetry": args.train_symmetry,
        "layers": _network(run.model).layers,
        "steps_done": run.n_steps,
        "steps_total": args.steps,
        "stop_reason": run.stop_reason,
        # Median after the first (compiling) step; None when this call ran under 2 steps.
        "s_per_step": clock.seconds_per_step() if len(clock.times) > 2 else None,
        "samples_per_s": samples_per_s,
        "recipe": {
            "samples": args.samples,
            "lr": args.lr,
            "final_lr": args.final_lr,
            "hold_fraction": args.hold_fraction,
            "diag_shift": args.diag_shift,
            "features": args.features,
        },
        "device": str(jax.devices()[0]),
        "dtype": str(dtype),
        "reference": ref,
        "reference_note": note,
        "load_average": os.getloadavg(),
    }
    if run.n_steps >= args.steps:
        # The trained network averaged over the whole group (already so unless --train-symmetry).
        evaluated = Symmetrized(run.model.model, perms, spin_flip=True)
        e = evaluate_energy(
            H, evaluated, args.eval_samples, key=jax.random.key(args.seed + 2), chunk=1024
        )
        energy, n = float(e.mean.real), H.hilbert.size
        out.update(
            energy=energy,
            energy_error=float(e.error_of_mean),
            relative_error=None if ref is None else abs((energy - ref) / ref),
            v_score=v_score(energy, float(e.variance), n),
            energy_per_site=energy / n,
        )
        write_text_atomic(args.dir / f"{tag}_result.json", json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
