"""Figure for issue 6: drifting in closed loop with three minutes of data (Djeumou, Goh, Topcu,
Balachandran, "Autonomous drifting with 3 minutes of data via learned tire models", ICRA 2023,
Sec. V, figs. of the donut and figure-eight runs).

    python paper_figures/drift_closed_loop.py [out_dir] [--quick] [--duration 60] [--steps 3000]

One 3-minute log on the plant (`collect`); from it a neural-ExpTanh and a Fiala tyre are
identified (`make_model(..., data=log)` then `identify`); with each, and with the nominal model
(the plant's geometry and a textbook Fiala tyre, no identification), the drift MPC holds a 30°
drift on an 11-m donut on the plant for `--duration` seconds; the same neural-ExpTanh model
also drives a figure-eight. Writes to out_dir (default paper_figures/out/):

- drift_closed_loop_donut.png, drift_closed_loop_figure8.png: the neural-ExpTanh runs:
  trajectory on the ground plane with the car's heading as arrows (their angle to the track is
  the sideslip), β and the lateral error e over time against the reference, the commands δ, τ;
- drift_closed_loop_comparison.png: neural-ExpTanh vs Fiala vs nominal on the donut
  (trajectories, β − β_ref and e over time; a dotted line where a run stopped);
- drift_closed_loop.json: every run's metrics (`DriftRunResult.summary()`) and the load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import jax

from physml.kernels import write_text_atomic
from physml.vehicle import (
    DriftPlant,
    FigureEight,
    collect,
    drive,
    format_drift_table,
    run_drift,
)
from physml.vehicle.plot import plot_comparison, plot_drift


def main(
    out: str = "paper_figures/out/",
    *,
    seed: int = 0,
    minutes: float = 3.0,
    steps: int = 3000,
    duration_s: float = 60.0,
):
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    key_log, key_runs = jax.random.split(jax.random.key(seed))
    plant = DriftPlant()
    log = collect(plant, minutes, key=key_log)
    donut = run_drift(
        "donut",
        key=key_runs,
        tires=("nominal", "fiala", "neural_exptanh"),
        plant=plant,
        log=log,
        steps=steps,
        duration_s=duration_s,
    )
    # The figure-eight (R = 11 m, 30°) with the same identified model (no second
    # identification).
    neural = donut["neural_exptanh"]
    eight_path = FigureEight(11.0, math.radians(30.0))
    run = drive(
        "neural_exptanh", neural.model, plant, eight_path, duration_s, key=key_runs, log=log
    )
    run.identification = neural.identification
    eight = {"neural_exptanh": run}
    print(format_drift_table(donut))
    print(format_drift_table(eight))
    plot_drift(donut["neural_exptanh"], out_dir / "drift_closed_loop_donut.png")
    plot_drift(eight["neural_exptanh"], out_dir / "drift_closed_loop_figure8.png")
    plot_comparison(donut, out_dir / "drift_closed_loop_comparison.png")
    summary = {
        "seed": seed,
        "minutes": minutes,
        "steps": steps,
        "duration_s": duration_s,
        "load_average": list(os.getloadavg()),
        "donut": {k: r.summary() for k, r in donut.items()},
        "figure8": {k: r.summary() for k, r in eight.items()},
    }
    write_text_atomic(out_dir / "drift_closed_loop.json", json.dumps(summary, indent=2))
    return {"donut": donut, "figure8": eight}


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="paper_figures/out/")
    parser.add_argument("--quick", action="store_true", help="0.5 min, 100 steps, 5 s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args(sys.argv[1:])
    if args.quick:
        main(args.out, seed=args.seed, minutes=0.5, steps=100, duration_s=5.0)
    else:
        main(args.out, seed=args.seed, steps=args.steps, duration_s=args.duration)
