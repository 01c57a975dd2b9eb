"""A driving log as a user's car would export it, and identification from it with `physml sysid`.

Drives the plant (CommonRoad's `vehicle_dynamics_std`, with sensor noise) through MINUTES of the
test programme, then writes what a data logger on a real car gives: a CSV at 25 Hz (not the
100 Hz of physml's own logs) with its own column names and units (time in ms, the handwheel
angle in degrees with a 15:1 steering ratio, the yaw rate in deg/s, body-frame velocities vx/vy
from a GNSS/INS in km/h instead of speed and sideslip, the rear wheel speeds in rpm and in km/h,
the drive torque in kN·m) and the JSON column map (`physml.vehicle.TableSchema`) that tells
physml how to read it, with the car's mass, inertias and geometry. Then identify from it:

    python examples/vehicle_from_csv.py --out drive_csv
    physml sysid --log drive_csv/drive.csv --columns drive_csv/columns.json

`physml sysid` holds out the table's last minute (`--heldout-minutes`) and prints the rollout
RMSE of the identified model on it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import jax
import numpy as np

from physml import vehicle
from physml.kernels import check_writable, write_text_atomic

#: Steering ratio of the exported handwheel angle (road-wheel angle × ratio).
STEERING_RATIO = 15.0
#: Logging rate of the export [Hz] (every 4th sample of the 100-Hz log).
EXPORT_EVERY = 4


def export_columns(log: vehicle.DriveLog, wheel_radius_m: float) -> dict[str, np.ndarray]:
    """The log's signals under a logger's names and units (module docstring)."""
    t, y, u = (np.asarray(a)[::EXPORT_EVERY] for a in (log.time_s, log.state, log.control))
    r, speed, beta, omega = y.T
    return {
        "t_ms": 1e3 * t,
        "hw_deg": np.degrees(u[:, 0]) * STEERING_RATIO,
        "gyro_dps": np.degrees(r),
        "vx_kmh": 3.6 * speed * np.cos(beta),
        "vy_kmh": 3.6 * speed * np.sin(beta),
        "ws_rl_rpm": omega * 60.0 / (2.0 * math.pi),
        "ws_rr_kmh": 3.6 * wheel_radius_m * omega,
        "tq_knm": u[:, 1] / 1e3,
    }


def column_map(params: vehicle.VehicleParams) -> dict:
    """The JSON column map of the export (`TableSchema.from_mapping`)."""
    car = {k: float(getattr(params, k)) for k in ("mass_kg", "yaw_inertia_kgm2",
                                                  "wheel_inertia_kgm2", "wheel_radius_m",
                                                  "a_m", "b_m", "cg_height_m",
                                                  "brake_split_front")}  # fmt: skip
    return {
        "time": {"column": "t_ms", "unit": "ms"},
        "steering": {"column": "hw_deg", "unit": "deg", "ratio": STEERING_RATIO},
        "yaw_rate": {"column": "gyro_dps", "unit": "deg/s"},
        "vx": {"column": "vx_kmh", "unit": "km/h"},
        "vy": {"column": "vy_kmh", "unit": "km/h"},
        "wheel_speed_rl": {"column": "ws_rl_rpm", "unit": "rpm"},
        "wheel_speed_rr": {"column": "ws_rr_kmh", "unit": "km/h"},
        "torque": {"column": "tq_knm", "unit": "kN*m"},
        "vehicle": car,
    }


def main(out: Path, minutes: float = 4.0, seed: int = 0) -> tuple[Path, Path]:
    check_writable(out, kind="dir", name="--out")  # before the drive, not after it
    plant = vehicle.DriftPlant()
    log = vehicle.collect(plant, minutes, key=jax.random.key(seed))
    params = vehicle.params_from_plant(plant)
    columns = export_columns(log, float(params.wheel_radius_m))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(zip(*(np.char.mod("%.9g", c) for c in columns.values()), strict=True))
    table, mapping = out / "drive.csv", out / "columns.json"
    write_text_atomic(table, text.getvalue())
    write_text_atomic(mapping, json.dumps(column_map(params), indent=1))
    rows = len(columns["t_ms"])
    print(f"wrote {table} ({rows} rows, {1e3 / (10 * EXPORT_EVERY):.0f} Hz) and {mapping}")
    print(f"identify with: physml sysid --log {table} --columns {mapping}")
    return table, mapping


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("drive_csv"), help="output folder")
    parser.add_argument("--minutes", type=float, default=4.0, help="length of the drive [min]")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of the drive")
    args = parser.parse_args()
    main(args.out, args.minutes, args.seed)
