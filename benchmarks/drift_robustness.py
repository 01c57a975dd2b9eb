"""Drift robustness matrix: data seeds × paths × models, end to end on the independent plant.

For each data seed: collect 3 minutes of driving on the plant, identify each model from that log
(the recipe of `physml drift --seed SEED`: the key of seed s is split into the log's, the
models' and the closed loop's keys exactly as `run_drift` does), then hold a drift with the
drift MPC on each path, with sensor noise (as `run_drift`: each identified model's MPC pays for
leaving its log's front-slip envelope), and record per case: completed or how and when it
stopped, laps, lateral RMSE and max, sideslip RMSE, time in drift, and (where timed) the
solve-time median and p99. Then the success rate per model and path.

Paths (Djeumou et al., ICRA 2023, "various trajectories"; the Supra's figures in CoRL 2024):
donuts (R, β) = (8 m, 35°), (11 m, 30°), (15 m, 20°) for 60 s; the figure-eight (R = 11 m,
β = 30°, reference bridged over 20 m) for 2 laps; an open S-bend of varying curvature and
sideslip (`s_bend`) for its length. Success: a donut holds 60 s with lateral RMSE ≤ 0.3 m and
sideslip RMSE ≤ 3°; the figure-eight completes 2 laps with ≤ 0.5 m and ≤ 5°; the S-bend reaches
its end.

Each seed's log and identified models are cached on disk (`--out`) and reused by every path;
each case's result is one JSON file, so the script runs in resumable pieces (`--budget-s`):
cases already done are skipped. It prints the table at the end (also with `--report`).

    python benchmarks/drift_robustness.py --seeds 0 1 2 3 4 --budget-s 6000
    python benchmarks/drift_robustness.py --report
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # as `physml drift` (float64 references)

from physml import vehicle  # noqa: E402
from physml.kernels import load_tree, save_tree, write_text_atomic  # noqa: E402

MODELS = ("neural_exptanh", "neural_ode", "fiala", "nominal")
DONUTS = {"donut8": (8.0, 35.0), "donut11": (11.0, 30.0), "donut15": (15.0, 20.0)}
PATHS = (*DONUTS, "figure8", "s_bend")
DONUT_S = 60.0
BRIDGE_M = 20.0
#: Success thresholds: (lateral RMSE [m], sideslip RMSE [deg]) per kind of path.
METRIC_KEYS = (
    "lateral_rmse_m", "lateral_max_m", "sideslip_rmse_deg", "time_in_drift_s",
    "solve_time_median_ms", "solve_time_p99_ms",
)  # fmt: skip
LIMITS = {"donut": (0.3, 3.0), "figure8": (0.5, 5.0), "s_bend": (math.inf, math.inf)}


def s_bend() -> vehicle.TabulatedPath:
    """An open S-bend (220 m): a left drift on R = 10 m at β = −32° easing to R = 14 m at
    β = −24°, then a sideslip reversal into a right drift on R = 12 m at β = +28°. Curvature and
    sideslip change smoothly (tanh blends over 10-20 m); sgn β = −sgn κ (the paths' convention)."""
    s = np.linspace(0.0, 220.0, 441)

    def blend(a, b, centre, width):
        return a + (b - a) * 0.5 * (1 + np.tanh((s - centre) / (0.5 * width)))

    kappa = blend(1 / 10, 1 / 14, 70.0, 20.0)
    kappa = blend(kappa, -1 / 12, 140.0, 10.0)
    beta_mag = blend(32.0, 24.0, 70.0, 20.0)
    beta_mag = blend(beta_mag, 28.0, 140.0, 10.0)
    beta = -np.sign(kappa) * np.radians(beta_mag) * np.tanh(np.abs(kappa) * 12 / 0.3)
    return vehicle.TabulatedPath(s, kappa, beta, closed=False)


def make_path(name: str) -> vehicle.AbstractPath:
    if name in DONUTS:
        radius, beta = DONUTS[name]
        return vehicle.Donut(radius, math.radians(beta))
    if name == "figure8":
        return vehicle.FigureEight(11.0, math.radians(30.0))
    if name == "s_bend":
        return s_bend()
    raise ValueError(f"unknown path {name!r}; expected one of {PATHS}.")


def kind(path_name: str) -> str:
    return "donut" if path_name in DONUTS else path_name


def seed_keys(seed: int):
    """The keys `run_drift(path, key=jax.random.key(seed))` uses: log, models, closed loop."""
    return jax.random.split(jax.random.key(seed), 3)


def seed_data(out: Path, seed: int, minutes: float, plant: vehicle.DriftPlant):
    """The seed's 3-minute log, collected once and cached."""
    file = out / f"seed{seed}" / "log.npz"
    if file.is_file():
        return vehicle.load_log(file)
    k_log, _, _ = seed_keys(seed)
    log = vehicle.collect(plant, minutes, key=k_log)
    vehicle.save_log(file, log)
    return log


def seed_model(out: Path, seed: int, label: str, log, plant, steps: int):
    """The identified model of `label` for this seed (cached: parameters and report)."""
    _, k_model, _ = seed_keys(seed)
    file = out / f"seed{seed}" / f"{label}.eqx"
    report_file = file.with_suffix(".json")
    if file.is_file() and report_file.is_file():
        # Same structure as the identified model (identification changes values only).
        tire = "fiala" if label == "nominal" else label
        like = vehicle.make_model(tire, key=k_model, params=vehicle.params_from_plant(plant))
        return load_tree(file, like), json.loads(report_file.read_text())
    tic = time.perf_counter()
    model, report = vehicle.fit_model(label, log, plant, key=k_model, steps=steps, progress=False)
    report = {"wall_time_s": time.perf_counter() - tic, **(report or {})}
    save_tree(file, model)
    write_text_atomic(report_file, _to_json(report))
    return model, report


def duration_for(path_name: str, path, model) -> float:
    """Closed-loop time [s]: 60 s on a donut; on the figure-eight 2 laps and on the S-bend its
    length, at the model's drift speed on the path's tightest curve (+15 % margin)."""
    if path_name in DONUTS:
        return DONUT_S
    s = np.linspace(0.0, path.length_m, 200)
    kappa = np.asarray(path.curvature(s))
    beta = np.asarray(path.sideslip(s))
    i = int(np.argmax(np.abs(kappa) * (np.abs(beta) > 0.2)))
    try:
        eq = vehicle.solve_equilibrium(model, float(beta[i]), curvature_per_m=float(kappa[i]))
        speed = float(eq.state[1])
    except ValueError:
        speed = 8.0
    laps = 2.0 if path_name == "figure8" else 1.0
    return 1.15 * laps * path.length_m / max(speed, 4.0)


def run_case(
    out,
    seed,
    label,
    path_name,
    model,
    plant,
    time_solves,
    max_duration_s=math.inf,
    iterations=None,
    log=None,
):
    path = make_path(path_name)
    _, _, k_sim = seed_keys(seed)
    options = {} if path_name in DONUTS else {"bridge_m": BRIDGE_M}
    if iterations is not None:
        options["max_iterations"] = iterations
    duration = min(duration_for(path_name, path, model), max_duration_s)
    tic = time.perf_counter()
    try:
        run = vehicle.drive(
            label, model, plant, path, duration, key=k_sim, time_solves=time_solves,
            mpc_options=options,
            wheel_speed="quasi_steady" if label == "nominal" else "measured",  # as run_drift
            log=None if label == "nominal" else log,  # the data's front-slip envelope
        )  # fmt: skip
    except RuntimeError as err:
        # The plant has no steady drift at the model's reference start (speed, sideslip):
        # `drift_start` cannot place the car, a failure of the case, not of the script.
        record = {
            "seed": seed, "model": label, "path": path_name, "duration_s": duration,
            "completed": False, "success": False, "outcome": f"no plant start: {err}",
            "stop_time_s": 0.0, "laps": 0.0, "error": str(err),
            "front_slip_limit_deg": None, "wall_time_s": time.perf_counter() - tic,
        }  # fmt: skip
        for key in METRIC_KEYS:
            record.setdefault(key, None)
        write_text_atomic(case_file(out, seed, label, path_name, iterations), _to_json(record))
        return record
    m = run.metrics
    lat_max, beta_max = LIMITS[kind(path_name)]
    laps = m.get("laps", 0.0)
    if kind(path_name) == "figure8":
        completed = laps >= 2.0
    elif kind(path_name) == "s_bend":
        completed = run.closed_loop is not None and (
            float(run.closed_loop.path_state[-1, 2]) >= path.length_m - 1.0
        )
    else:
        completed = run.ok
    success = bool(
        completed
        and m.get("lateral_rmse_m", math.inf) <= lat_max
        and m.get("sideslip_rmse_deg", math.inf) <= beta_max
    )
    record = {
        "seed": seed,
        "model": label,
        "path": path_name,
        "duration_s": duration,
        "completed": bool(completed),
        "success": success,
        "outcome": "completed" if completed else (m.get("stop_reason") or "not finished in time"),
        "stop_time_s": _finite(m.get("stop_time_s")),
        "laps": _finite(laps),
        "lateral_rmse_m": _finite(m.get("lateral_rmse_m")),
        "lateral_max_m": _finite(m.get("lateral_max_m")),
        "sideslip_rmse_deg": _finite(m.get("sideslip_rmse_deg")),
        "time_in_drift_s": _finite(m.get("time_in_drift_s")),
        "solve_time_median_ms": _finite(m.get("solve_time_median_ms")) if time_solves else None,
        "solve_time_p99_ms": _finite(m.get("solve_time_p99_ms")) if time_solves else None,
        "front_slip_limit_deg": _finite(math.degrees(run.front_slip_limit_rad)),
        "error": run.error,
        "wall_time_s": time.perf_counter() - tic,
    }
    write_text_atomic(case_file(out, seed, label, path_name, iterations), _to_json(record))
    return record


def case_done(out: Path, seed: int, label: str, path_name: str, iterations=None) -> bool:
    """Whether this case has a record of the current settings. A record without the
    `front_slip_limit_deg` field ran before identified models paid for leaving their log's
    envelope, so it is run again (its file replaced) rather than mixed into the table."""
    file = case_file(out, seed, label, path_name, iterations)
    return file.is_file() and "front_slip_limit_deg" in json.loads(file.read_text())


def cases_dir(out: Path, iterations: int | None = None) -> Path:
    """The case records: `cases/` with the library's MPC settings, `cases-it{N}/` with N
    Gauss–Newton iterations per sample (`--mpc-iterations`); the seeds' caches are shared."""
    return out / ("cases" if iterations is None else f"cases-it{iterations}")


def case_file(out: Path, seed: int, label: str, path_name: str, iterations=None) -> Path:
    return cases_dir(out, iterations) / f"seed{seed}_{label}_{path_name}.json"


def _finite(x):
    """A JSON value for a metric: None for a missing or non-finite number."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _to_json(obj) -> str:
    # Arrays and numpy scalars as lists and numbers. The case records hold only finite numbers
    # or null (`_finite`); an identification report may hold NaN, which Python's json reads back.
    return json.dumps(obj, indent=1, default=lambda o: np.asarray(o).tolist())


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def report(out: Path, iterations: int | None = None) -> str:
    files = sorted(cases_dir(out, iterations).glob("*.json"))
    rows = [json.loads(f.read_text()) for f in files]
    if not rows:
        return "no cases run yet"
    order = {m: i for i, m in enumerate(MODELS)}
    porder = {p: i for i, p in enumerate(PATHS)}
    rows.sort(key=lambda r: (order.get(r["model"], 99), porder.get(r["path"], 99), r["seed"]))
    head = (
        f"{'model':<15}{'path':<9}{'seed':>4}  {'outcome':<22}{'stop[s]':>8}{'laps':>6}"
        f"{'e RMSE':>8}{'e max':>7}{'β RMSE':>8}{'drift[s]':>9}{'med[ms]':>8}{'p99[ms]':>8}  ok"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<15}{r['path']:<9}{r['seed']:>4}  {r['outcome'][:21]:<22}"
            f"{_fmt(r['stop_time_s'], '8.1f'):>8}{_fmt(r['laps'], '6.2f'):>6}"
            f"{_fmt(r['lateral_rmse_m'], '8.3f'):>8}{_fmt(r['lateral_max_m'], '7.2f'):>7}"
            f"{_fmt(r['sideslip_rmse_deg'], '8.2f'):>8}{_fmt(r['time_in_drift_s'], '9.1f'):>9}"
            f"{_fmt(r['solve_time_median_ms'], '8.2f'):>8}{_fmt(r['solve_time_p99_ms'], '8.2f'):>8}"
            f"  {'yes' if r['success'] else 'no'}"
        )
    lines += ["", "success rate (cases that met the path's targets / cases run)"]
    models = sorted({r["model"] for r in rows}, key=lambda m: order.get(m, 99))
    paths = sorted({r["path"] for r in rows}, key=lambda p: porder.get(p, 99))
    lines.append(f"{'model':<15}" + "".join(f"{p:>10}" for p in paths) + f"{'donuts':>10}")
    for m in models:
        cells = []
        for p in [*paths, "donuts"]:
            sel = [r for r in rows if r["model"] == m and (r["path"] == p or (
                p == "donuts" and r["path"] in DONUTS))]  # fmt: skip
            ok = sum(r["success"] for r in sel)
            cells.append(f"{ok}/{len(sel)}" if sel else "-")
        lines.append(f"{m:<15}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="data seeds")  # fmt: skip
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--minutes", type=float, default=3.0, help="log length [min]")
    parser.add_argument("--steps", type=int, default=3000, help="identification steps")
    parser.add_argument("--time-seeds", type=int, nargs="*", default=[0],
                        help="seeds whose solves are replayed and timed")  # fmt: skip
    parser.add_argument("--budget-s", type=float, default=math.inf,
                        help="start no new case after this many seconds")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/drift_robustness"))
    parser.add_argument("--mpc-iterations", type=int, default=None,
                        help="Gauss–Newton iterations per sample (default: the library's); "
                        "these cases are kept apart, in OUT/cases-itN")  # fmt: skip
    parser.add_argument("--report", action="store_true", help="only print the table")
    parser.add_argument("--smoke", action="store_true",
                        help="plumbing check: 0.5 min, 20 steps, 2-s runs, in /tmp")  # fmt: skip
    args = parser.parse_args(argv)
    if args.mpc_iterations is not None and args.mpc_iterations < 1:
        parser.error(f"--mpc-iterations must be >= 1, got {args.mpc_iterations}")
    it = args.mpc_iterations
    max_duration = math.inf
    if args.smoke:
        args.minutes, args.steps, max_duration = 0.5, 20, 2.0
        args.out = Path("/tmp/physml_drift_robustness_smoke")
    if args.report:
        print(report(args.out, it))
        return 0
    start = time.perf_counter()
    plant = vehicle.DriftPlant()
    for seed in args.seeds:
        todo = [
            (label, p)
            for label in args.models
            for p in args.paths
            if not case_done(args.out, seed, label, p, it)
        ]
        if not todo:
            continue
        log = seed_data(args.out, seed, args.minutes, plant)
        for label in args.models:
            paths = [p for lab, p in todo if lab == label]
            if not paths:
                continue
            if time.perf_counter() - start > args.budget_s:
                print(f"[robustness] budget reached; rerun to continue.\n\n{report(args.out, it)}")
                return 0
            model, _ = seed_model(args.out, seed, label, log, plant, args.steps)
            for p in paths:
                if time.perf_counter() - start > args.budget_s:
                    print(f"[robustness] budget reached; rerun.\n\n{report(args.out, it)}")
                    return 0
                r = run_case(
                    args.out, seed, label, p, model, plant, seed in args.time_seeds, max_duration,
                    it, log,
                )  # fmt: skip
                # Each case compiles its own MPC; a long run would otherwise pile up compiled
                # programs until XLA runs out of memory mappings (vm.max_map_count) and crashes.
                jax.clear_caches()
                print(
                    f"[robustness] seed {seed} {label} {p}: {r['outcome']} "
                    f"(laps {_fmt(r['laps'], '.2f')}, e {_fmt(r['lateral_rmse_m'], '.3f')} m, "
                    f"β {_fmt(r['sideslip_rmse_deg'], '.2f')}°, {r['wall_time_s']:.0f} s)",
                    flush=True,
                )
    print(report(args.out, it))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
