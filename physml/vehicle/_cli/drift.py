"""`physml drift`: collect → identify → the drift MPC on the plant along a donut or a
figure-eight (`_drift_run.py`), optionally comparing the chosen tyre with an identified Fiala and
the un-identified nominal model; `--log` / `--model` reuse what `physml sysid --out` saved.

Every argument, input file and output folder is checked before any work (`prepare_drift`); see
`physml.cli` for the exit statuses.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax

from ...cli import bounded, positive, seed, write_outputs
from ...kernels import check_writable, write_atomic, write_text_atomic
from .._drift_run import NOMINAL, PATHS, format_drift_table, make_path, run_drift
from .._plant.dynamics import DriftPlant
from .._saved import load_model, read_log
from .._tires.registry import TIRES
from ..plot import plot_comparison, plot_drift
from .sysid import MIN_MINUTES


class _Given(argparse.Action):
    """Store the value and record that the option was given (`args.given`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


def prepare_drift(args: argparse.Namespace) -> Callable[[], int]:
    """`physml drift`: check the arguments, the output folder and `--log` / `--model` and read
    them, before any work; return the work (exit status 1 if the chosen model's run stopped
    early or a file could not be written)."""
    # The plant, the identification and the MPC's predictor are checked in float64 (the
    # wheel-speed mode is stiff); as `physml ground-state`, the command runs in it.
    jax.config.update("jax_enable_x64", True)
    path = make_path(args.path, radius_m=args.radius, sideslip_deg=args.sideslip)
    if args.out is not None:
        check_writable(args.out, kind="dir", name="--out")
    given = getattr(args, "given", frozenset())
    plant = DriftPlant()
    model = meta = None
    if args.model is not None:
        model, meta = load_model(args.model, plant)
        if "tire" in given and args.tire != meta["tire"]:
            raise ValueError(
                f"--tire {args.tire} disagrees with --model {str(args.model)!r}, a "
                f"{meta['tire']} model; drop --tire."
            )
        args.tire = meta["tire"]
        # The model's own data, as `physml sysid --out` saved it (named in model.json):
        # without it the MPC does not know where the data ends (the front-slip envelope).
        beside = Path(args.model).with_name(meta.get("train_log") or "train_log.npz")
        if args.log is None and beside.is_file():
            args.log = beside
            print(f"[drift] --log {str(beside)!r}: the model's log, saved beside it")
        elif args.log is None:
            print(
                f"[drift] no {beside.name} beside --model and no --log: the MPC runs without "
                "the data's front-slip envelope"
            )
    log = None if args.log is None else read_log(args.log)
    tires = [NOMINAL, "fiala", args.tire] if args.compare else [args.tire]
    tires = list(dict.fromkeys(tires))  # --tire fiala --compare: run Fiala once
    needs_log = any(t != NOMINAL and not (model is not None and t == args.tire) for t in tires)
    if needs_log and log is None and args.minutes < MIN_MINUTES:
        raise ValueError(
            f"--minutes must be >= {MIN_MINUTES} min to identify a model, got {args.minutes}."
        )
    mpc_options = {"bridge_m": args.bridge} | (
        {} if args.max_iterations is None else {"max_iterations": args.max_iterations}
    )
    options = dict(
        key=jax.random.key(args.seed),
        tires=tires,
        minutes=args.minutes,
        duration_s=args.duration,
        steps=args.steps,
        progress=not args.quiet,
        time_solves=not args.no_timing,
        mpc_options=mpc_options,
    )

    def work() -> int:
        tic = time.perf_counter()
        results = run_drift(
            path,
            **options,
            plant=plant,
            **({} if log is None else {"log": log}),
            **({} if model is None else {"models": {args.tire: model}}),
        )
        if model is not None:
            report = {"tire": args.tire, **meta.get("identify", {}), "loaded": True}
            results[args.tire].identification = report
        return _report_drift(args, path, results, log, tic)

    return work


def _report_drift(args, path, results, log, tic) -> int:
    main = results[args.tire]
    print(format_drift_table(results))
    for label, run in results.items():
        if run.closed_loop is None:
            print(f"[drift] {label}: no closed loop: {run.error}")
        elif not run.ok:
            stop, x = run.closed_loop.stop, run.metrics["stop_state"]
            print(
                f"[drift] {label}: stopped at {stop['time_s']:.2f} s: {stop['reason']} "
                f"(V = {x['speed_mps']:.1f} m/s, β = {x['sideslip_deg']:.0f}°)"
            )
    summary = {
        "path": {
            "name": args.path,
            "radius_m": args.radius,
            "sideslip_deg": args.sideslip,
            "length_m": float(path.length_m),
        },
        "tire": args.tire,
        "seed": args.seed,
        "minutes": args.minutes if log is None else round(log.duration_s / 60.0, 4),
        "duration_s": args.duration,
        "steps": args.steps,
        "bridge_m": args.bridge,
        "max_iterations": args.max_iterations,
        "ok": main.ok,
        "runs": {label: run.summary() for label, run in results.items()},
        "wall_time_s": round(time.perf_counter() - tic, 2),
        "load_average": list(os.getloadavg()),
        "backend": jax.default_backend(),
    }
    if args.log is not None:
        summary["log_file"] = str(args.log)
    if args.model is not None:
        summary["model_file"] = str(args.model)
    # Non-zero when the chosen model did not hold the drift for the whole run; the baselines'
    # stops are part of the comparison and reported above.
    status = 0 if main.ok else 1
    if args.out is None:
        return status
    out = Path(args.out)
    writers = {}
    figures = {
        f"drift_{args.path}_{label}.png": (plot_drift, run) for label, run in results.items()
    }
    if len(results) > 1:
        figures[f"drift_{args.path}_comparison.png"] = (plot_comparison, results)
    for name, (plot, data) in figures.items():
        writers[str(out / name)] = lambda name=name, plot=plot, data=data: _save_figure(
            plot(data), out / name
        )
    text = json.dumps(summary, indent=2)
    writers[str(out / "drift_summary.json")] = lambda: write_text_atomic(
        out / "drift_summary.json", text
    )
    if write_outputs("drift", writers) == 0:
        print(f"[drift] plots and drift_summary.json written to {out}/")
        return status
    print(text)
    return 1


def _save_figure(fig, file: Path) -> None:
    write_atomic(file, lambda f: fig.savefig(f, format="png", dpi=120))


def add_parser(sub) -> None:
    """Add `physml drift` to the subcommands `sub`."""
    p = sub.add_parser(
        "drift",
        help="collect, identify, then hold a drift on a donut or figure-eight with the MPC",
        description="Collect MINUTES of driving on the plant, identify a tyre model, and hold a "
        "drift along the path with the drift MPC for DURATION seconds (Djeumou et al., ICRA "
        "2023). --log and --model reuse what physml sysid --out saved. Exit status 1 if the "
        "chosen model's run stops early (spin-out, stall, off path) or a file could not be "
        "written; 2 for bad arguments, before any work.",
    )
    p.add_argument("--path", choices=PATHS, default="donut", help="the path to drift along")
    p.add_argument(
        "--tire",
        choices=TIRES,
        default="neural_exptanh",
        action=_Given,
        help="tyre to identify (with --model: the model's own)",
    )
    p.add_argument(
        "--minutes",
        type=positive(float),
        default=3.0,
        help=f"identification log length [min], >= {MIN_MINUTES} (ignored with --log)",
    )
    p.add_argument("--duration", type=positive(float), default=60.0, help="closed-loop time [s]")
    p.add_argument("--steps", type=positive(int), default=3000, help="maximum identification steps")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed (log, models, closed loop)")
    p.add_argument("--radius", type=positive(float, unit="m"), default=11.0, help="path radius [m]")
    p.add_argument(
        "--sideslip",
        type=bounded(float, 0, 90, closed="()", unit="deg"),
        default=30.0,
        help="sideslip magnitude to hold |β| [deg]",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help=f"also run an identified Fiala and the un-identified {NOMINAL} model",
    )
    p.add_argument(
        "--max-iterations",
        type=positive(int),
        default=None,
        help="MPC Gauss-Newton iterations per solve (default: DriftMPC's)",
    )
    p.add_argument(
        "--bridge",
        type=bounded(float, 0, unit="m"),
        default=0.0,
        metavar="METRES",
        help="where the model has no drift equilibrium (a figure-eight's sideslip reversal) or "
        "one whose speed the car cannot reach at 3 m/s², interpolate the reference between the "
        "solved points around the gap if they are at most this far apart [m]; default 0: refuse",
    )
    p.add_argument(
        "--log",
        type=Path,
        default=None,
        metavar="FILE",
        help="identify from this log (train_log.npz of physml sysid --out) instead of "
        "collecting one (default: collect)",
    )
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="FILE",
        help="drive this identified model (model.eqx of physml sysid --out, with its "
        "model.json beside it) instead of identifying one (default: identify); without --log, the "
        "train_log.npz beside it, if there is one, is its log",
    )
    p.add_argument("--no-timing", action="store_true", help="skip the solve-time replay")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the plots and drift_summary.json, checked writable before any work "
        "(default: nothing written)",
    )
    p.set_defaults(prepare=prepare_drift)
