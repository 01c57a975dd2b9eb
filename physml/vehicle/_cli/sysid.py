"""`physml sysid`: collect → identify → held-out report, or with `--log FILE.csv --columns
MAP.json` a user's own table (`read_table`) → identify on its first part → held-out report on
its last `--heldout-minutes`; with `--out DIR`, the identified model (`model.eqx`,
`eqx.tree_serialise_leaves`, described by `model.json`), the training log (`train_log.npz`) and
`sysid_summary.json`. Both identify by the one recipe, `identify_tire`.

Every argument, input file and output folder is checked before any work (`prepare_sysid`); see
`physml.cli` for the exit statuses.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from ...cli import bounded, positive, seed, write_outputs
from ...kernels import OutputWriteError, check_writable
from .._data.collect import collect
from .._data.log import DriveLog, LogFormatError
from .._data.table import TableSchema, read_table
from .._model.params import VehicleParams
from .._plant.dynamics import DriftPlant
from .._saved import sysid_outputs
from .._sysid.identify import params_from_plant, split_windows, window_starts
from .._sysid.metrics import HORIZONS_S, format_rmse_table, rollout_rmse
from .._sysid.recipe import identify_tire
from .._tires.registry import TIRES

#: The shortest logs [min] the CLI accepts: shorter ones leave too few identification windows
#: (training) or no 2-s stretch for the held-out RMSE, found only after collecting.
MIN_MINUTES = 0.1
MIN_HELDOUT_MINUTES = 0.1


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

    `out_dir` (checked writable before any work) receives `sysid_outputs`' files; if one
    cannot be written, `OutputWriteError` is raised after the others are written, with the
    summary as its `result`. Returns the summary dict, or `(summary, plant, log, fitted_model)`
    with `return_model=True` (the demo's drift drives the model it just identified, with the
    log's front-slip envelope).
    """
    if out_dir is not None:
        check_writable(out_dir, kind="dir", name="out_dir")
    summary, plant, log, model = _sysid(tire, minutes, heldout_minutes, steps, seed, progress)
    if out_dir is not None and write_outputs(
        "sysid", sysid_outputs(out_dir, summary, log, model, seed=seed)
    ):
        err = OutputWriteError(out_dir, "some output files could not be written (see stderr)")
        err.result = summary
        raise err
    return (summary, plant, log, model) if return_model else summary


def _sysid(tire, minutes, heldout_minutes, steps, seed, progress):
    plant = DriftPlant()
    key = jax.random.key(seed)
    k_train, k_held, k_model, _ = jax.random.split(key, 4)
    t0 = time.perf_counter()
    log = collect(plant, minutes, key=k_train)
    held = collect(plant, heldout_minutes, key=k_held, mix="heldout")
    t_collect = time.perf_counter() - t0
    params = params_from_plant(plant)
    fitted = identify_tire(log, tire, key=k_model, params=params, steps=steps, progress=progress)
    summary = _summary(tire, log, held, fitted)
    summary.update(minutes=minutes, heldout_minutes=heldout_minutes)
    summary["collect_wall_time_s"] = round(t_collect, 2)
    return summary, plant, log, fitted.model


def _summary(tire, log, held, fitted) -> dict:
    """The summary of a sysid run (printing the held-out table)."""
    rmse = rollout_rmse(fitted.model, held)
    beta = (log.state if log.state_true is None else log.state_true)[:, 2]
    drift_s = float(np.sum(np.abs(beta) > np.radians(15.0)) * np.median(np.diff(log.time_s)))
    p = fitted.model.params
    summary = {
        "tire": tire,
        "minutes": round(log.duration_s / 60.0, 4),
        "heldout_minutes": round(held.duration_s / 60.0, 4),
        "seconds_with_abs_beta_gt_15deg": drift_s,
        "drive_map": {
            "torque_gain": float(p.torque_gain),
            "torque_offset_nm": None if p.torque_offset_nm is None else float(p.torque_offset_nm),
        },
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
    return summary


def read_user_log(
    file: str | Path, columns: str | Path, heldout_minutes: float
) -> tuple[DriveLog, DriveLog, VehicleParams]:
    """(training part, held-out last `heldout_minutes`, the car's parameters) of the CSV table
    `file` read by the schema in the JSON file `columns` (`TableSchema`, `read_table`). Raises
    `FileNotFoundError` or `LogFormatError` (naming the file) before any work when a file is
    missing or malformed, or a part is too short to identify or to evaluate on."""
    for flag, name in (("--log", file), ("--columns", columns)):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{flag} {str(name)!r}: no such file.")
    schema = TableSchema.from_json(columns)
    log = read_table(file, schema)
    cut = float(log.time_s[-1]) - 60.0 * heldout_minutes
    try:
        train = log.window(log.time_s[0], cut)
        split_windows(train)
    except ValueError as err:
        raise LogFormatError(
            f"--log {str(file)!r}: {log.duration_s:.1f} s at 100 Hz, too little before its "
            f"last --heldout-minutes {heldout_minutes:g} min to identify from ({err}); pass a "
            "longer log or fewer --heldout-minutes."
        ) from None
    held = log.window(cut, np.inf)
    h_max = round(max(HORIZONS_S) * 100)
    if window_starts(held.flags, 0, held.n_samples, h_max).size == 0:
        raise LogFormatError(
            f"--log {str(file)!r}: its last {heldout_minutes:g} min hold no {max(HORIZONS_S):g}-s "
            "stretch without a gap, which the held-out table needs; pass more --heldout-minutes."
        )
    return train, held, schema.vehicle_params()


def _sysid_table(tire, train, held, params, steps, seed, progress):
    fitted = identify_tire(
        train, tire, key=jax.random.key(seed), params=params, steps=steps, progress=progress
    )
    return _summary(tire, train, held, fitted), fitted.model


def prepare_sysid(args: argparse.Namespace) -> Callable[[], int]:
    """`physml sysid`: check the output folder, and `--log` / `--columns` (read and validated
    here), before any work; return the work (collect or take the table, identify, report;
    write `--out`'s files, exit status 1 if one could not be written)."""
    # As `physml drift`: the identification runs in float64 (the wheel-speed mode is stiff).
    jax.config.update("jax_enable_x64", True)
    if (args.log is None) != (args.columns is None):
        raise ValueError(
            "--log and --columns go together: a CSV table and the JSON file that maps its "
            "columns (see physml.vehicle.TableSchema)."
        )
    if args.out is not None:
        check_writable(args.out, kind="dir", name="--out")
    table = None
    if args.log is not None:
        table = read_user_log(args.log, args.columns, args.heldout_minutes)

    def work() -> int:
        if table is None:
            summary, _, log, model = _sysid(
                args.tire, args.minutes, args.heldout_minutes, args.steps, args.seed, True
            )
        else:
            log, held, params = table
            summary, model = _sysid_table(args.tire, log, held, params, args.steps, args.seed, True)
            summary["log_file"] = str(args.log)
        print(json.dumps(summary["identify"], indent=2, default=str))
        if args.out is None:
            return 0
        status = write_outputs(
            "sysid", sysid_outputs(args.out, summary, log, model, seed=args.seed)
        )
        if status == 0:
            print(
                f"[sysid] model.eqx, model.json, train_log.npz, sysid_summary.json in {args.out}/"
            )
        else:
            print(json.dumps(summary, indent=2, default=str))
        return status

    return work


def add_parser(sub) -> None:
    """Add `physml sysid` to the subcommands `sub`."""
    p = sub.add_parser(
        "sysid",
        help="collect driving data on the plant and identify a tire model",
        description="Collect MINUTES of driving on the plant, identify a single-track model "
        "with the chosen tyre, and report rollout RMSEs on a held-out log. With --log FILE.csv "
        "--columns MAP.json: identify from your own driving table instead (the JSON maps its "
        "columns and units, see physml.vehicle.TableSchema), holding out its last "
        "HELDOUT_MINUTES for the report. With --out DIR: the model (model.eqx + model.json), the "
        "log (train_log.npz) and sysid_summary.json, for physml drift --log "
        "DIR/train_log.npz --model DIR/model.eqx.",
    )
    p.add_argument("--tire", choices=TIRES, default="neural_exptanh", help="tyre to identify")
    p.add_argument(
        "--minutes",
        type=bounded(float, MIN_MINUTES, unit="min"),
        default=3.0,
        help="training log length, ignored with --log [min]",
    )
    p.add_argument(
        "--heldout-minutes",
        type=bounded(float, MIN_HELDOUT_MINUTES, unit="min"),
        default=1.0,
        help="held-out log length [min] (with --log: the last HELDOUT_MINUTES of the table)",
    )
    p.add_argument("--steps", type=positive(int), default=3000, help="maximum identification steps")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed (logs, initial model, fit)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the model, the log and a JSON summary, checked writable before any "
        "work (default: nothing written)",
    )
    p.add_argument(
        "--log",
        type=Path,
        default=None,
        metavar="FILE",
        help="identify from this CSV driving table instead of collecting on the plant (with "
        "--columns; default: collect)",
    )
    p.add_argument(
        "--columns",
        type=Path,
        default=None,
        metavar="MAP",
        help="JSON file mapping the --log table's columns and units to the model's signals "
        "(physml.vehicle.TableSchema.from_mapping)",
    )
    p.set_defaults(prepare=prepare_sysid)
