"""`physml sysid`, `physml drift` and the vehicle half of `physml demo`.

- sysid: collect → identify → held-out report;
- drift: collect → identify → the drift MPC on the plant along a donut or a figure-eight
  (`_drift_run.py`), optionally comparing the chosen tyre with an identified Fiala and the
  un-identified nominal model;
- demo: a short sysid run, then a short donut with the model it identified.

Thin glue over `collect`, `identify`, `rollout_rmse` and `_drift_run`; no numerics of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

from ._data.collect import collect
from ._data.log import save_log
from ._drift_run import (
    NOMINAL,
    PATHS,
    drive,
    format_drift_table,
    make_path,
    run_drift,
)
from ._plant.dynamics import DriftPlant
from ._sysid.identify import identify, make_model, params_from_plant
from ._sysid.metrics import format_rmse_table, rollout_rmse
from ._tires.registry import TIRES
from .plot import plot_comparison, plot_drift


def run_sysid(
    *,
    tire: str = "neural_exptanh",
    minutes: float = 3.0,
    heldout_minutes: float = 1.0,
    steps: int = 3000,
    seed: int = 0,
    progress: bool = True,
    out_dir: str | Path | None = None,
    return_model: bool = False,
):
    """Collect `minutes` of driving on the plant, identify a single-track model with the given
    tyre, and report rollout RMSEs on a held-out log (another seed and manoeuvre mix).

    Returns the summary dict, or `(summary, plant, fitted_model)` with `return_model=True` (the
    demo's drift uses the model it just identified).
    """
    plant = DriftPlant()
    key = jax.random.key(seed)
    k_train, k_held, k_model, k_fit = jax.random.split(key, 4)
    t0 = time.perf_counter()
    log = collect(plant, minutes, key=k_train)
    held = collect(plant, heldout_minutes, key=k_held, mix="heldout")
    t_collect = time.perf_counter() - t0
    model = make_model(tire, key=k_model, params=params_from_plant(plant))
    fitted = identify(log, model, key=k_fit, steps=steps, progress=progress)
    rmse = rollout_rmse(fitted.model, held)
    beta = (log.state if log.state_true is None else log.state_true)[:, 2]
    drift_s = float(np.sum(np.abs(beta) > np.radians(15.0)) * np.median(np.diff(log.time_s)))
    summary = {
        "tire": tire,
        "minutes": minutes,
        "seconds_with_abs_beta_gt_15deg": drift_s,
        "collect_wall_time_s": round(t_collect, 2),
        "identify": {k: v for k, v in fitted.report.items() if k != "scale"},
        "heldout_rmse": {
            f"{h:g}s": dict(
                zip(
                    ("r_radps", "V_mps", "beta_deg", "omega_r_radps"),
                    [float(x) for x in np.asarray(v) * np.array([1, 1, 180 / np.pi, 1])],
                    strict=True,
                )
            )
            for h, v in rmse.items()
        },
    }
    print(format_rmse_table({tire: rmse}))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_log(out / "train_log.npz", log)
        (out / "sysid_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return (summary, plant, fitted.model) if return_model else summary


def demo(seed: int = 0, quick: bool = False) -> dict:
    """The vehicle part of `physml demo`: a short collection and identification on CPU, then
    the drift MPC holding a donut with the model just identified (10 s; 1 s with `quick`).

    Keys: those of `run_sysid`'s summary, plus "drift" (`DriftRunResult.summary()`).
    """
    summary, plant, model = run_sysid(
        return_model=True,
        tire="neural_exptanh",
        minutes=0.5 if quick else 3.0,
        heldout_minutes=0.25 if quick else 1.0,
        steps=60 if quick else 600,
        seed=seed,
        progress=not quick,
    )
    path = make_path("donut")
    key = jax.random.fold_in(jax.random.key(seed), 1)
    tic = time.perf_counter()
    run = drive(
        "neural_exptanh", model, plant, path, 1.0 if quick else 10.0, key=key, time_solves=not quick
    )
    print(format_drift_table({"neural_exptanh": run}))
    summary["drift"] = {**run.summary(), "wall_time_s": round(time.perf_counter() - tic, 2)}
    return summary


def _cmd_sysid(args: argparse.Namespace) -> int:
    summary = run_sysid(
        tire=args.tire,
        minutes=args.minutes,
        heldout_minutes=args.heldout_minutes,
        steps=args.steps,
        seed=args.seed,
        out_dir=args.out,
    )
    print(json.dumps(summary["identify"], indent=2, default=str))
    return 0


# -- physml drift ---------------------------------------------------------------------------


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {kind.__name__} > 0, got {text!r}"
            ) from None
        if not (value > 0 and np.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a float >= 0, got {text!r}") from None
    if not (value >= 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _cmd_drift(args: argparse.Namespace) -> int:
    # The plant, the identification and the MPC's predictor are checked in float64 (the
    # wheel-speed mode is stiff); as `physml ground-state`, the command runs in it.
    jax.config.update("jax_enable_x64", True)
    path = make_path(args.path, radius_m=args.radius, sideslip_deg=args.sideslip)
    tires = [NOMINAL, "fiala", args.tire] if args.compare else [args.tire]
    tires = list(dict.fromkeys(tires))  # --tire fiala --compare: run Fiala once
    tic = time.perf_counter()
    results = run_drift(
        path,
        key=jax.random.key(args.seed),
        tires=tires,
        minutes=args.minutes,
        duration_s=args.duration,
        steps=args.steps,
        progress=not args.quiet,
        time_solves=not args.no_timing,
        mpc_options={"bridge_m": args.bridge}
        | ({} if args.max_iterations is None else {"max_iterations": args.max_iterations}),
    )
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
        "minutes": args.minutes,
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
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for label, run in results.items():
            plot_drift(run, out / f"drift_{args.path}_{label}.png")
        if len(results) > 1:
            plot_comparison(results, out / f"drift_{args.path}_comparison.png")
        (out / "drift_summary.json").write_text(json.dumps(summary, indent=2))
        print(f"[drift] plots and drift_summary.json written to {out}/")
    # Non-zero when the chosen model did not hold the drift for the whole run; the baselines'
    # stops are part of the comparison and reported above.
    return 0 if main.ok else 1


def add_parser(sub) -> None:
    p = sub.add_parser("sysid", help="collect driving data on the plant and identify a tire model")
    p.add_argument("--tire", choices=TIRES, default="neural_exptanh")
    p.add_argument("--minutes", type=float, default=3.0, help="training log length [min]")
    p.add_argument("--heldout-minutes", type=float, default=1.0, help="held-out log [min]")
    p.add_argument("--steps", type=int, default=3000, help="maximum optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the log and a JSON summary")
    p.set_defaults(func=_cmd_sysid)

    p = sub.add_parser(
        "drift",
        help="collect, identify, then hold a drift on a donut or figure-eight with the MPC",
        description="Collect MINUTES of driving on the plant, identify a tyre model, and hold a "
        "drift along the path with the drift MPC for DURATION seconds (Djeumou et al., ICRA "
        "2023). Exit code 1 if the chosen model's run stops early (spin-out, stall, off path).",
    )
    p.add_argument("--path", choices=PATHS, default="donut", help="the path to drift along")
    p.add_argument("--tire", choices=TIRES, default="neural_exptanh", help="tyre to identify")
    p.add_argument(
        "--minutes", type=_positive(float), default=3.0, help="identification log length [min]"
    )
    p.add_argument("--duration", type=_positive(float), default=60.0, help="closed-loop time [s]")
    p.add_argument(
        "--steps", type=_positive(int), default=3000, help="maximum identification steps"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--radius", type=_positive(float), default=11.0, help="path radius [m]")
    p.add_argument(
        "--sideslip", type=_positive(float), default=30.0, help="sideslip to hold |β| [deg]"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help=f"also run an identified Fiala and the un-identified {NOMINAL} model",
    )
    p.add_argument(
        "--max-iterations", type=_positive(int), default=None, help="MPC Gauss-Newton budget"
    )
    p.add_argument(
        "--bridge",
        type=_nonnegative_float,
        default=0.0,
        metavar="METRES",
        help="where the model has no drift equilibrium (a figure-eight's sideslip reversal), "
        "interpolate the reference between the solved points around the gap if they are at most "
        "this far apart [m]; default 0: refuse",
    )
    p.add_argument("--no-timing", action="store_true", help="skip the solve-time replay")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--out", default=None, help="folder for the plots and drift_summary.json")
    p.set_defaults(func=_cmd_drift)
