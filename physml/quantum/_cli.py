"""`physml ground-state`: command-line VMC for spin chains and square lattices, and the quick
`demo`.

physml ground-state --model tfim --sites 20 --h 1.0 --steps 300 --samples 1024 --out runs/
physml ground-state --model heisenberg --lattice square --L 4 --pbc --sz0 --symmetry d4+spin-flip
physml ground-state --model heisenberg --lattice square --L 6 --sz0 --steps 3000 --final-lr 5e-3 \
    --time-limit 3600 --resume          # repeat until all steps are done
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from matplotlib.figure import Figure

from ..cli import bounded, finite_float, positive, seed, write_outputs
from ..kernels import OutputWriteError, check_writable, write_atomic, write_text_atomic
from ._arconv import ARConv1D
from ._arconv2d import ARConv2D
from ._constraints import FixedMagnetization
from ._exact import exact_energy
from ._ground_state import ground_state
from ._hamiltonians import heisenberg, tfim
from ._lattice2d import heisenberg_2d, tfim_2d
from ._result import Result
from ._sr import SR
from ._symmetry import Symmetrized, lattice_group
from ._vmc import check_compatible

_SYMMETRY_PARTS = ("none", "translations", "d4", "spin-flip")


def _symmetry(text: str) -> tuple[str, ...]:
    """Parse `--symmetry`: "none" or "+"-joined parts of translations, d4, spin-flip."""
    parts = tuple(text.split("+"))
    bad = [q for q in parts if q not in _SYMMETRY_PARTS]
    if (
        bad
        or ("none" in parts and len(parts) > 1)
        or ("translations" in parts and "d4" not in parts)
    ):
        raise argparse.ArgumentTypeError(
            f"invalid symmetry {text!r}: use none, d4, translations+d4, spin-flip, or a "
            "'+'-joined combination such as d4+spin-flip (translations need d4)"
        )
    return () if parts == ("none",) else parts


__all__ = ["add_parser", "demo", "plot_convergence", "prepare_ground_state", "run_ground_state"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `ground-state` subcommand to an argparse `subparsers` object."""
    p = subparsers.add_parser(
        "ground-state",
        help="VMC ground state of a spin chain or square lattice with an autoregressive conv "
        "wave function",
        description="Variational ground state of the TFIM (−J Σ σᶻσᶻ − h Σ σˣ) or Heisenberg "
        "(J Σ σ·σ, Pauli units, Marshall sign rule) on a chain (ARConv1D) or an L×L square "
        "lattice (ARConv2D) with exact sampling. Writes <stem>.json, .eqx, .png, "
        "<stem>_args.json and the training state <stem>_state.eqx into --out.",
    )
    p.add_argument("--model", choices=["tfim", "heisenberg"], default="tfim", help="Hamiltonian")
    p.add_argument("--lattice", choices=["chain", "square"], default="chain", help="lattice")
    p.add_argument(
        "--sites", type=bounded(int, 2), default=20, help="chain length N [sites] (chain)"
    )
    p.add_argument(
        "--L", type=bounded(int, 2), default=4, help="side of the L×L square lattice (square)"
    )
    p.add_argument(
        "--boundary", choices=["periodic", "open"], default="periodic", help="boundary conditions"
    )
    p.add_argument(
        "--pbc",
        dest="boundary",
        action="store_const",
        const="periodic",
        help="same as --boundary periodic",
    )
    p.add_argument(
        "--obc", dest="boundary", action="store_const", const="open", help="same as --boundary open"
    )
    p.add_argument(
        "--symmetry",
        type=_symmetry,
        default="none",
        help="none | d4 | translations+d4 | spin-flip, or e.g. d4+spin-flip (square lattice; "
        "spin-flip also on chains): average |ψ|² over the group, sampling stays exact "
        "(default: none)",
    )
    p.add_argument(
        "--sz0",
        action="store_true",
        help="restrict to total Sᶻ = 0 (Heisenberg; even number of sites)",
    )
    p.add_argument(
        "--h", type=finite_float, default=1.0, help="transverse field h (TFIM) [Pauli units]"
    )
    p.add_argument("--J", type=finite_float, default=1.0, help="coupling J [Pauli units]")
    p.add_argument("--steps", type=positive(int), default=300, help="optimisation steps")
    p.add_argument("--samples", type=bounded(int, 2), default=1024, help="samples per step")
    p.add_argument(
        "--seed", type=seed, default=0, help="PRNG seed (initial parameters; seed + 1 sampling)"
    )
    p.add_argument(
        "--layers",
        type=positive(int),
        default=None,
        help="masked conv layers (default: 3 on a chain, the covering depth on a square)",
    )
    p.add_argument("--features", type=positive(int), default=10, help="channels per layer")
    p.add_argument(
        "--kernel", type=positive(int), default=5, help="kernel size per convolution [sites]"
    )
    p.add_argument(
        "--dilations",
        type=positive(int),
        nargs="*",
        default=[1, 2, 4],
        help="one dilation per layer, chain only (default: 1 2 4, a receptive field of 29 sites "
        "with kernel 5)",
    )
    p.add_argument(
        "--optimizer",
        choices=["sr", "adam"],
        default="sr",
        help="sr: stochastic reconfiguration (diagonal shift 1e-3) with SGD; adam: Adam",
    )
    p.add_argument(
        "--lr",
        type=positive(float),
        default=None,
        help="learning rate > 0 (default: 0.05 with sr, 1e-3 with adam)",
    )
    p.add_argument(
        "--final-lr",
        type=positive(float),
        default=None,
        help="hold --lr for --hold-fraction of --steps, then cosine-decay it to this by the last "
        "step (a step-indexed schedule; default: constant --lr)",
    )
    p.add_argument(
        "--hold-fraction",
        type=bounded(float, 0, 1),
        default=0.5,
        help="fraction of --steps at --lr before the decay to --final-lr",
    )
    p.add_argument(
        "--time-limit",
        type=positive(float),
        default=None,
        metavar="SECONDS",
        help="training budget [s]: stop after the last step that fits (the final estimate comes "
        "on top); the state is checkpointed, --resume continues the same schedule",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <stem>_state.eqx in --out (written every --checkpoint-every steps "
        "and at the end), with the same arguments",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive(int),
        default=50,
        help="steps between checkpoints of the training state",
    )
    p.add_argument(
        "--eval-samples",
        type=bounded(int, 2),
        default=None,
        help="samples of the final energy estimate (default: 4 × --samples)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/ground_state"),
        metavar="DIR",
        help="output folder, checked writable before training",
    )
    p.set_defaults(prepare=prepare_ground_state)
    return p


def _build(args: argparse.Namespace):
    """The Hamiltonian (NetKet JAX operator, Pauli units) the arguments describe."""
    pbc = args.boundary == "periodic"
    if args.lattice == "square":
        if args.model == "tfim":
            if args.sz0:
                raise ValueError("--sz0 applies to the Heisenberg model (the TFIM mixes Sᶻ).")
            return tfim_2d(args.L, args.h, J=args.J, pbc=pbc)
        return heisenberg_2d(args.L, J=args.J, pbc=pbc, total_sz=0 if args.sz0 else None)
    if args.model == "tfim":
        if args.sz0:
            raise ValueError("--sz0 applies to the Heisenberg model (the TFIM mixes Sᶻ).")
        return tfim(args.sites, args.h, J=args.J, pbc=pbc)
    return heisenberg(args.sites, J=args.J, pbc=pbc, total_sz=0 if args.sz0 else None)


def _wave_function(args: argparse.Namespace):
    """ARConv1D / ARConv2D (positive), optionally restricted to Sᶻ = 0 and symmetrised."""
    key = jax.random.key(args.seed)
    if args.lattice == "square":
        model = ARConv2D(
            args.L,
            layers=args.layers,
            features=args.features,
            kernel_size=args.kernel,
            positive=True,
            key=key,
        )
    else:
        if args.symmetry and set(args.symmetry) != {"spin-flip"}:
            raise ValueError(
                f"--symmetry {'+'.join(args.symmetry)} needs --lattice square; chains support "
                "spin-flip only."
            )
        model = ARConv1D(
            args.sites,
            layers=3 if args.layers is None else args.layers,
            features=args.features,
            kernel_size=args.kernel,
            dilations=args.dilations if args.dilations else 1,
            positive=True,
            key=key,
        )
    if args.sz0:
        model = FixedMagnetization(model)
    if args.symmetry:
        if "d4" in args.symmetry:
            perms = lattice_group(args.L, pbc=args.boundary == "periodic")
            if "translations" not in args.symmetry:
                perms = lattice_group(args.L, pbc=False)  # the point group only
        else:
            perms = [list(range(model.n_sites))]  # identity: spin flip alone
        model = Symmetrized(model, perms, spin_flip="spin-flip" in args.symmetry)
    return model


def _exact_or_none(H) -> float | None:
    try:
        return exact_energy(H, max_lanczos_sites=16)
    except ValueError:
        return None


def plot_convergence(result: Result, path: Path, title: str = "") -> None:
    """Energy vs step (with its error band and the exact value if known) to a PNG, written
    atomically (`write_atomic`: an earlier file survives a failed write)."""
    steps = np.array([r["step"] for r in result.history])
    e = np.array([r["loss"] for r in result.history])
    err = np.array([r["loss_error"] for r in result.history])
    exact = result.info.get("exact")
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2 if exact is not None else 1, squeeze=False)
    ax = axes[0, 0]
    ax.plot(steps, e, lw=1, label="VMC energy")
    ax.fill_between(steps, e - err, e + err, alpha=0.3)
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1, label="exact")
        rel = np.abs((e - exact) / exact) if exact != 0 else np.abs(e - exact)
        axes[0, 1].semilogy(steps, np.maximum(rel, 1e-12))
        axes[0, 1].set_xlabel("step")
        axes[0, 1].set_ylabel("|E − E₀| / |E₀|" if exact != 0 else "|E − E₀|")
    ax.set_xlabel("step")
    ax.set_ylabel("energy (Pauli units)")
    ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))


def prepare_ground_state(args: argparse.Namespace) -> Callable[[], int]:
    """Check the arguments and the output folder and build the Hamiltonian and the wave
    function, before any work (raises `ValueError`, `TypeError` or `OutputWriteError`); return
    the work: train, print the energy, write the files; its exit status is 1 if a file could
    not be written (the energy is printed first)."""
    built = _prepare(args)
    return lambda: _work(args, *built)[0]


def run_ground_state(args: argparse.Namespace) -> dict:
    """Run the `ground-state` subcommand: print, write the files, return the summary dict.
    Raises `OutputWriteError` (its `result` the summary) if a file could not be written."""
    status, summary = _work(args, *_prepare(args))
    if status != 0:
        err = OutputWriteError(args.out, "some output files could not be written (see stderr)")
        err.result = summary
        raise err
    return summary


def _prepare(args: argparse.Namespace) -> tuple:
    check_writable(args.out, kind="dir", name="--out")
    jax.config.update("jax_enable_x64", True)
    H = _build(args)
    model = _wave_function(args)
    check_compatible(H, model)
    pre = SR(1e-3) if args.optimizer == "sr" else None
    return H, model, pre


def _stem(args: argparse.Namespace) -> str:
    size = f"L{args.L}" if args.lattice == "square" else f"N{args.sites}"
    return f"{args.model}_{size}_{args.boundary}" + (
        f"_h{args.h:g}" if args.model == "tfim" else ""
    )


def _work(args: argparse.Namespace, H, model, pre) -> tuple[int, dict]:
    exact = _exact_or_none(H)
    base = args.out / _stem(args)
    unwritten = None  # the training state or log, if `fit` could not write it at the end
    try:
        res = ground_state(
            H,
            model,
            n_samples=args.samples,
            steps=args.steps,
            key=jax.random.key(args.seed + 1),
            preconditioner=pre,
            learning_rate=args.lr,  # None: 0.05 with SR, 1e-3 with Adam
            final_learning_rate=args.final_lr,
            hold_fraction=args.hold_fraction,
            time_limit_s=args.time_limit,
            checkpoint_path=Path(f"{base}_state.eqx"),
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            n_eval_samples=args.eval_samples,
            exact=exact,
        )
    except OutputWriteError as err:
        if err.result is None:
            raise
        res, unwritten = err.result, err
    e = res.energy.to_dict()
    line = f"E = {e['mean']:.8f} ± {e['error_of_mean']:.2g}  (variance {res.variance:.3g})"
    if exact is not None:
        line += f"  exact {exact:.8f}"
        if res.info.get("relative_error") is not None:
            line += f"  relative error {res.info['relative_error']:.2e}"
    if res.v_score is not None:
        line += f"  V-score {res.v_score:.2e}"
    print(line, flush=True)
    if res.stop_reason:
        print(f"stopped early ({res.n_steps} of {args.steps} steps): {res.stop_reason}")
    saved = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    saved = json.dumps({k: v for k, v in saved.items() if not callable(v)}, indent=1)
    status = write_outputs(
        "ground-state",
        {
            f"{base}.json, .eqx": lambda: res.save(base),
            f"{base}_args.json": lambda: write_text_atomic(f"{base}_args.json", saved),
            f"{base}.png": lambda: plot_convergence(res, Path(f"{base}.png"), title=_stem(args)),
        },
    )
    if unwritten is not None:
        print(
            f"physml ground-state: could not write {unwritten.path}: {unwritten.reason}",
            file=sys.stderr,
        )
        status = 1
    if status == 0:
        print(f"wrote {base}.json, .eqx, .png")
    else:
        print(f"summary (not all files were written): {json.dumps(res.summary(), default=str)}")
    return status, res.summary()


def demo(steps: int = 60, seed: int = 0, *, quick: bool = False) -> dict:
    """A small ground-state estimate (TFIM N = 12, h = 1, periodic; well under a minute on CPU).

    Args:
        steps: SR steps (`quick=True` caps them at 5, for smoke tests).
        seed: PRNG seed.

    Returns:
        dict with "energy", "error", "exact", "relative_error".
    """
    if quick:
        steps = min(steps, 5)
    H = tfim(12, 1.0)
    exact = exact_energy(H)
    model = ARConv1D(
        12,
        layers=2,
        features=8,
        kernel_size=5,
        dilations=(1, 2),
        positive=True,
        key=jax.random.key(seed),
    )
    res = ground_state(
        H,
        model,
        n_samples=512,
        steps=steps,
        key=jax.random.key(seed + 1),
        preconditioner=SR(1e-3),
        learning_rate=0.05,
        exact=exact,
        progress=False,
    )
    return {
        "energy": float(res.energy.mean.real),
        "error": float(res.energy.error_of_mean),
        "exact": exact,
        "relative_error": res.info["relative_error"],
    }
