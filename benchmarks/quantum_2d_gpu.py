"""Large 2D ground states on one GPU, resumable in pieces of under 10 minutes.

Systems (Pauli units: H = J Σ σ·σ = 4 J Σ S·S, H = −J Σ σᶻσᶻ − h Σ σˣ):

- heisenberg10: 10×10 open Heisenberg, reference −251.46248 (QMC; Sharir et al., PRL 124,
  020503 (2020), table I, quoted in Pauli units), Marshall sign rule, Sᶻ = 0;
- tfim12: 12×12 open TFIM at h = 3, reference −457.0417 (DMRG; same table).

Each call advances the run by at most `--budget` seconds of training and writes the `TrainState`
atomically (`physml.kernels.fit` checkpoints; a resumed run is bit-identical to an
uninterrupted one), then exits; call it again with the same arguments to continue. When all
`--steps` are done it evaluates the energy with `--eval-samples` samples and writes the result.
It reports the sampling throughput (samples/s) and the time per VMC step (s/step, without
compilation).

    python benchmarks/quantum_2d_gpu.py --system heisenberg10 --budget 540   # repeat until done
    python benchmarks/quantum_2d_gpu.py --system tfim12 --budget 540
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

from physml.kernels import fit
from physml.quantum import (
    SR,
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    VMCObjective,
    evaluate_energy,
    heisenberg_2d,
    lattice_group,
    tfim_2d,
)
from physml.quantum._vmc import draw_samples

SYSTEMS = {
    # name: (kind, L, h, reference [Pauli units, total], source)
    "heisenberg10": ("heisenberg", 10, None, -251.46248, "QMC (Sharir et al. 2020, table I)"),
    "tfim12": ("tfim", 12, 3.0, -457.0417, "DMRG (Sharir et al. 2020, table I)"),
    "smoke": ("heisenberg", 4, None, None, "Lanczos"),
}


def build(system: str, *, features: int, seed: int, dtype):
    kind, L, h, ref, note = SYSTEMS[system]
    base = ARConv2D(L, features=features, positive=True, dtype=dtype, key=jax.random.key(seed))
    if kind == "heisenberg":
        H = heisenberg_2d(L, pbc=False, total_sz=0)  # Marshall sign rule (bipartite)
        model = FixedMagnetization(base)
    else:
        H = tfim_2d(L, h, pbc=False)
        model = base
    model = Symmetrized(model, lattice_group(L, pbc=False), spin_flip=True)
    if ref is None:
        from physml.quantum import exact_energy

        ref = exact_energy(H)
    return H, model, ref, note


class Clock:
    """`fit` callback: time the steps after the first (compilation) and stop at the budget."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.times: list[float] = []

    def __call__(self, step, record, model):
        self.times.append(time.perf_counter())
        return self.times[-1] - self.start > self.budget_s

    def seconds_per_step(self) -> float | None:
        if len(self.times) < 3:
            return None
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--system", choices=["heisenberg10", "tfim12"], default="heisenberg10")
    p.add_argument("--smoke", action="store_true", help="tiny 4×4 run (CPU check of the path)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--eval-samples", type=int, default=65536)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--diag-shift", type=float, default=1e-3)
    p.add_argument("--budget", type=float, default=540.0, help="training seconds per call")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--x64", action="store_true", help="float64 (default float32 on GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, default=Path(__file__).parent / "out" / "quantum_2d_gpu")
    args = p.parse_args(argv)
    system = "smoke" if args.smoke else args.system
    if args.smoke:
        args.steps, args.samples, args.eval_samples, args.features = 6, 64, 256, 4
        args.checkpoint_every = 2
    jax.config.update("jax_enable_x64", bool(args.x64 or jax.default_backend() == "cpu"))
    dtype = jax.numpy.zeros(()).dtype
    H, model, ref, note = build(system, features=args.features, seed=args.seed, dtype=dtype)
    args.dir.mkdir(parents=True, exist_ok=True)
    ckpt = args.dir / f"{system}_state.eqx"
    clock = Clock(args.budget)
    run = fit(
        VMCObjective(H, args.samples),
        model,
        optimizer=optax.sgd(args.lr),
        steps=args.steps,
        key=jax.random.key(args.seed + 1),
        preconditioner=SR(args.diag_shift),
        callbacks=(clock,),
        log_path=args.dir / f"{system}_log.jsonl",
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
        "steps_done": run.n_steps,
        "steps_total": args.steps,
        "stop_reason": run.stop_reason,
        "s_per_step": clock.seconds_per_step(),
        "samples_per_s": samples_per_s,
        "device": str(jax.devices()[0]),
        "dtype": str(dtype),
        "reference": ref,
        "reference_note": note,
        "load_average": os.getloadavg(),
    }
    if run.n_steps >= args.steps:
        e = evaluate_energy(H, run.model, args.eval_samples, key=jax.random.key(args.seed + 2))
        energy = float(e.mean.real)
        out.update(
            energy=energy,
            energy_error=float(e.error_of_mean),
            relative_error=abs((energy - ref) / ref),
            energy_per_site=energy / H.hilbert.size,
        )
        (args.dir / f"{system}_result.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
