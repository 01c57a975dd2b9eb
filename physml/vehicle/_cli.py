"""`physml sysid` and the vehicle half of `physml demo`: collect → identify → held-out report.

Thin glue over `collect`, `identify` and `rollout_rmse`; no numerics of its own.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from ._collect import collect
from ._data import save_log
from ._identify import TIRES, identify, make_model, params_from_plant
from ._metrics import format_rmse_table, rollout_rmse
from ._plant import DriftPlant


def run_sysid(
    *,
    tire: str = "neural_exptanh",
    minutes: float = 3.0,
    heldout_minutes: float = 1.0,
    steps: int = 3000,
    seed: int = 0,
    progress: bool = True,
    out_dir: str | Path | None = None,
) -> dict:
    """Collect `minutes` of driving on the plant, identify a single-track model with the given
    tyre, and report rollout RMSEs on a held-out log (another seed and manoeuvre mix)."""
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
    return summary


def demo(seed: int = 0, quick: bool = False) -> dict:
    """The vehicle part of `physml demo`: a short collection and identification on CPU."""
    return run_sysid(
        tire="neural_exptanh",
        minutes=0.5 if quick else 3.0,
        heldout_minutes=0.25 if quick else 1.0,
        steps=60 if quick else 600,
        seed=seed,
        progress=not quick,
    )


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


def add_parser(sub) -> None:
    p = sub.add_parser("sysid", help="collect driving data on the plant and identify a tire model")
    p.add_argument("--tire", choices=TIRES, default="neural_exptanh")
    p.add_argument("--minutes", type=float, default=3.0, help="training log length [min]")
    p.add_argument("--heldout-minutes", type=float, default=1.0, help="held-out log [min]")
    p.add_argument("--steps", type=int, default=3000, help="maximum optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the log and a JSON summary")
    p.set_defaults(func=_cmd_sysid)
