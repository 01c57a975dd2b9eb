"""The headline pipeline: three minutes of driving on the plant → an identified tyre model → the
drift MPC holding the plant on a donut or a figure-eight.

Djeumou, Goh, Topcu, Balachandran, "Autonomous drifting with 3 minutes of data via learned tire
models", ICRA 2023 (arXiv:2306.06330), Sec. V: the same closed loop with a learned
(neural-ExpTanh) tyre, with an identified Fiala tyre (their physics baseline) and, here, with
no identification at all (the "nominal" model: the plant's measured mass, inertias and geometry,
`params_from_plant`, with textbook tyre parameters, as `make_model` builds without data).

Thin glue over `collect`, `make_model` / `identify`, `DriftMPC` and `simulate`: the numerics
live there; this module only sequences them (the result record, its metrics and its text forms:
`_drift_result.py`; figures: `physml.vehicle.plot`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence

import jax
from jaxtyping import PRNGKeyArray

from ..kernels._validate import check_key
from ._control.closed_loop import simulate
from ._control.envelope import front_slip_envelope
from ._control.mpc import DEFAULT_GRID_S, DriftMPC, check_mpc_options
from ._control.paths import AbstractPath, Donut, FigureEight, sideslip_reverses
from ._control.problem import MPCWeights
from ._data.collect import collect
from ._data.log import DriveLog
from ._drift_result import DriftRunResult, format_drift_table, summary_line
from ._errors import NoDriftEquilibriumError
from ._model.single_track import SingleTrackModel
from ._plant.dynamics import DriftPlant
from ._sysid.identify import make_model, params_from_plant
from ._sysid.recipe import identify_tire
from ._tires.registry import TIRES

#: Path names understood by `make_path` (and `physml drift --path`).
PATHS = ("donut", "figure8")
#: The label of the un-identified model in a comparison.
NOMINAL = "nominal"
#: The tyre of the nominal model (textbook parameters, no identification).
NOMINAL_TIRE = "fiala"
#: Soft speed floor margin m_V [m/s] of the pipeline's MPC (`MPCWeights`): keeps the plan out
#: of braking into a stall (docs/notes/2026-12-01-drift-mpc-findings.md).
DRIFT_SPEED_FLOOR_MARGIN_MPS = 2.0
#: Integral action k_I [1/s] on the lateral error (`DriftMPC`): removes an identified model's
#: steady offset with a 1/k_I = 5 s time constant
#: (docs/notes/2026-12-02-load-transfer-and-figure-eight.md).
DRIFT_LATERAL_INTEGRAL_GAIN = 0.2
#: Horizon grid [s] on a path whose sideslip reference changes sign (`sideslip_reverses`): 50
#: steps of 0.02 s, then 5 of 0.1 s (1.5 s, as `DEFAULT_GRID_S`; control at 50 Hz). The rear
#: wheel spins up or regains grip within hundredths of a second through a reversal
#: (docs/notes/2026-12-03-brake-split-and-the-reversal.md). A steady drift keeps the default.
DRIFT_REVERSAL_GRID_S = (0.02,) * 50 + (0.1,) * 5
#: The largest |dV/dt| [m/s²] the pipeline's reference may ask between its points
#: (`drift_reference`'s `accel_limit_mps2`); faster speed changes are bridged. The logs'
#: drifting samples reach 2.1–2.4 m/s² of acceleration
#: (docs/notes/2026-12-03-reversal-weights.md).
DRIFT_REFERENCE_ACCEL_LIMIT_MPS2 = 3.0
#: Cost tolerances on a path whose sideslip reference changes sign (a steady drift's in
#: brackets): σ_β = 3.5° (2°), σ_V = 0.75 m/s (1.5 m/s), σ_e = 0.5 m (0.25 m), with the
#: pipeline's speed floor. A looser σ_β keeps the rear spinning through the crossing, a tighter
#: σ_V brakes back the speed the swing adds, a looser σ_e lets the swing start earlier
#: (docs/notes/2026-12-03-reversal-weights.md,
#: docs/notes/2026-12-03-figure-eight-lateral-tolerance.md).
DRIFT_REVERSAL_WEIGHTS = MPCWeights(
    sideslip_rad=math.radians(3.5),
    lateral_m=0.5,
    speed_mps=0.75,
    speed_floor_margin_mps=DRIFT_SPEED_FLOOR_MARGIN_MPS,
)


def make_path(name: str, *, radius_m: float = 11.0, sideslip_deg: float = 30.0) -> AbstractPath:
    """A drift path by name: "donut" (a left circle of radius R) or "figure8" (two tangent
    circles of radius R), holding |β| = `sideslip_deg` [deg]. R = 11 m and 30° are the donut of
    the tests and the MPC benchmark (about 10 m/s on the plant)."""
    if name not in PATHS:
        raise ValueError(f"`path` must be one of {PATHS}, got {name!r}.")
    beta = math.radians(sideslip_deg)
    return Donut(radius_m, beta) if name == "donut" else FigureEight(radius_m, beta)


def nominal_model(plant: DriftPlant, *, key: PRNGKeyArray) -> SingleTrackModel:
    """The model with no identification: the plant's measured mass, inertias and geometry
    (`params_from_plant`) and textbook Fiala tyres (`make_model` without data)."""
    return make_model(NOMINAL_TIRE, key=key, params=params_from_plant(plant))


def fit_model(
    label: str,
    log: DriveLog,
    plant: DriftPlant,
    *,
    key: PRNGKeyArray,
    steps: int = 3000,
    progress: bool = True,
) -> tuple[SingleTrackModel, dict | None]:
    """The model of `label`: "nominal" (no identification), or a tyre of `TIRES` identified on
    the log by the identification recipe (`identify_tire`) with the plant's measured mass,
    inertias and geometry (`params_from_plant`). Returns the model and `identify`'s report
    (None for the nominal model)."""
    k_model, _ = jax.random.split(check_key(key))
    if label == NOMINAL:
        return nominal_model(plant, key=k_model), None
    if label not in TIRES:
        raise ValueError(f"`tire` must be {NOMINAL!r} or one of {TIRES}, got {label!r}.")
    params = params_from_plant(plant)
    fitted = identify_tire(log, label, key=key, params=params, steps=steps, progress=progress)
    return fitted.model, fitted.report


def _check_wheel_speed(wheel_speed: str | None, mpc_options: Mapping | None) -> None:
    if wheel_speed not in (None, "measured", "quasi_steady"):
        raise ValueError(
            f"`wheel_speed` must be None, 'measured' or 'quasi_steady', got {wheel_speed!r}."
        )
    given = (mpc_options or {}).get("wheel_speed", wheel_speed)
    if wheel_speed is not None and given != wheel_speed:
        raise ValueError(
            f"`wheel_speed={wheel_speed!r}` disagrees with mpc_options['wheel_speed'] = "
            f"{given!r}; give the wheel-speed mode once (the `wheel_speed` argument)."
        )


def drive(
    label: str,
    model: SingleTrackModel,
    plant: DriftPlant,
    path: AbstractPath,
    duration_s: float,
    *,
    key: PRNGKeyArray,
    time_solves: bool = True,
    wheel_speed: str | None = None,
    mpc_options: Mapping | None = None,
    log: DriveLog | None = None,
) -> DriftRunResult:
    """Build the drift MPC for `model` on `path` (`DriftMPC.from_path`) and run it on `plant`
    for `duration_s` [s] from a steady drift (`simulate`). The MPC uses `wheel_speed`
    ("measured", or "quasi_steady" for an un-identified model; None: `mpc_options`'
    "wheel_speed" if given, else "measured"), the soft speed floor
    m_V = `DRIFT_SPEED_FLOOR_MARGIN_MPS`, integral action on the lateral error with
    k_I = `DRIFT_LATERAL_INTEGRAL_GAIN`, the input limits of `plant.actuators`, a reference
    that asks no speed change beyond `DRIFT_REFERENCE_ACCEL_LIMIT_MPS2`, and on a path
    whose sideslip reference changes sign (`sideslip_reverses`) the horizon grid
    `DRIFT_REVERSAL_GRID_S` and the tolerances `DRIFT_REVERSAL_WEIGHTS` (else `DEFAULT_GRID_S`
    and `MPCWeights`' defaults), and any
    `mpc_options` over these. Given `log`, the data `model` was identified from, the plan also
    pays for front slip angles beyond the log's (`MPCWeights.front_slip_limit_rad` =
    `front_slip_envelope(model, log)`), unless `mpc_options` sets `weights`: beyond the data a
    learned tyre extrapolates, and an MPC that may go there plans manoeuvres the plant does not
    make (docs/notes/2026-12-03-reversal-causes-and-real-time.md). A model with no drift
    equilibrium on the path (`NoDriftEquilibriumError`) gives a result with `error` set and no
    closed loop; invalid options (and a `wheel_speed` that disagrees with
    `mpc_options["wheel_speed"]`) raise."""
    check_key(key)
    if log is not None and not isinstance(log, DriveLog):
        raise TypeError(f"`log` must be a DriveLog or None, got {type(log).__name__}.")
    _check_wheel_speed(wheel_speed, mpc_options)
    options = {
        "wheel_speed": "measured" if wheel_speed is None else wheel_speed,
        "weights": MPCWeights(speed_floor_margin_mps=DRIFT_SPEED_FLOOR_MARGIN_MPS),
        "actuators": plant.actuators,
        "lateral_integral_gain": DRIFT_LATERAL_INTEGRAL_GAIN,
        "grid_s": DEFAULT_GRID_S,
        "reference_accel_limit_mps2": DRIFT_REFERENCE_ACCEL_LIMIT_MPS2,
    }
    if sideslip_reverses(path):
        options.update(grid_s=DRIFT_REVERSAL_GRID_S, weights=DRIFT_REVERSAL_WEIGHTS)
    options.update(mpc_options or {})
    check_mpc_options(options)
    if log is not None and "weights" not in (mpc_options or {}):
        options["weights"] = dataclasses.replace(
            options["weights"], front_slip_limit_rad=front_slip_envelope(model, log)
        )
    limit = float(options["weights"].front_slip_limit_rad)  # what the MPC pays beyond
    times = {}
    tic = time.perf_counter()
    try:
        mpc = DriftMPC.from_path(model, path, **options)
    except NoDriftEquilibriumError as err:
        return DriftRunResult(
            label, path.name, path, model, None, error=str(err), actuators=options["actuators"],
            front_slip_limit_rad=limit,
        )  # fmt: skip
    times["mpc"] = time.perf_counter() - tic
    tic = time.perf_counter()
    res = simulate(plant, mpc, path, duration_s, key=key, time_solves=time_solves)
    times["simulate"] = time.perf_counter() - tic
    return DriftRunResult(
        label,
        path.name,
        path,
        model,
        res,
        wall_time_s=times,
        bridged_fraction=mpc.reference.bridged_fraction,
        actuators=options["actuators"],
        front_slip_limit_rad=limit,
    )


def run_drift(
    path: AbstractPath | str,
    *,
    key: PRNGKeyArray,
    tires: Sequence[str] = ("neural_exptanh",),
    minutes: float = 3.0,
    duration_s: float = 60.0,
    steps: int = 3000,
    plant: DriftPlant | None = None,
    log: DriveLog | None = None,
    progress: bool = True,
    time_solves: bool = True,
    wheel_speed: str | None = None,
    mpc_options: Mapping | None = None,
    models: Mapping[str, SingleTrackModel] | None = None,
) -> dict[str, DriftRunResult]:
    """Collect `minutes` of driving on the plant, identify each model of `tires` (except those
    given in `models`), and hold a drift along `path` for `duration_s` seconds with each.

    Args:
        path: an `AbstractPath`, or "donut" / "figure8" (`make_path` defaults).
        key: PRNG key; split into the log's, the models' and the closed loop's keys. All models
            see the same log and the same sensor noise in closed loop.
        tires: labels to run, each "nominal" (no identification), one of `TIRES`, or a key
            of `models`.
        minutes: length of the identification log [min] (ignored with `log`).
        duration_s: closed-loop time [s].
        steps: maximum identification steps.
        plant: the vehicle (default `DriftPlant()`).
        log: a log to identify from instead of collecting one. It is taken as the data of every
            model but the nominal one, also of those in `models`: their MPC pays for leaving
            its front-slip envelope (`drive`). A log collected here is the data of the models
            identified here only; a model in `models` then runs without an envelope.
        progress: print the stages and show `identify`'s progress bar.
        time_solves: replay the MPC's solves to time them (`simulate`).
        wheel_speed: the MPC's wheel-speed mode for every model, "measured" or
            "quasi_steady"; default None: `mpc_options`' "wheel_speed" if given, else
            "quasi_steady" for the nominal model (not identified: its slip-to-force map is the
            least reliable part) and "measured" for the others. A `wheel_speed` that disagrees
            with `mpc_options["wheel_speed"]` is refused.
        mpc_options: keyword arguments for `DriftMPC.from_path` (e.g. `max_iterations`,
            `bridge_m`) over `drive`'s defaults (the reference's 3-m/s² speed-change limit,
            the reversal grid and tolerances, and for every model but the nominal one the
            log's front-slip envelope); checked before any work.
        models: {label: model} of models already built (e.g. identified earlier and loaded):
            each label must be in `tires`; it is driven as given, not identified (its
            result's `identification` is None). A log is collected only if another label
            needs identification.

    Returns:
        {label: DriftRunResult}, in the order of `tires`.
    """
    path = make_path(path) if isinstance(path, str) else path
    if not isinstance(path, AbstractPath):
        raise TypeError(f"`path` must be an AbstractPath or one of {PATHS}, got {path!r}.")
    if not tires:
        raise ValueError("`tires` must name at least one model.")
    check_key(key)
    models = dict(models or {})
    for label, model in models.items():
        if label not in tires:
            raise ValueError(f"`models` has {label!r}, which is not in `tires` {list(tires)}.")
        if not isinstance(model, SingleTrackModel):
            raise TypeError(
                f"`models[{label!r}]` must be a SingleTrackModel, got {type(model).__name__}."
            )
    for label in tires:
        if label != NOMINAL and label not in TIRES and label not in models:
            raise ValueError(
                f"each tire must be {NOMINAL!r}, one of {TIRES} or a key of `models`, got "
                f"{label!r}."
            )
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"`duration_s` must be a finite duration > 0 [s], got {duration_s!r}.")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"`steps` must be an int >= 1, got {steps!r}.")
    _check_wheel_speed(wheel_speed, mpc_options)
    check_mpc_options(dict(mpc_options or {}))
    wheel_speed = (mpc_options or {}).get("wheel_speed", wheel_speed)
    plant = DriftPlant() if plant is None else plant
    say = print if progress else (lambda *a, **k: None)
    k_log, k_model, k_sim = jax.random.split(key, 3)
    log_given = log is not None
    if log is None and any(label not in (NOMINAL, *models) for label in tires):
        tic = time.perf_counter()
        say(f"[drift] collecting {minutes:g} min of driving on the plant ...", flush=True)
        log = collect(plant, minutes, key=k_log)
        say(f"[drift] collected in {time.perf_counter() - tic:.1f} s", flush=True)
    results = {}
    for label in tires:
        tic = time.perf_counter()
        if label in models:
            model, report = models[label], None
        else:
            if label != NOMINAL:
                say(f"[drift] identifying {label} ...", flush=True)
            model, report = fit_model(
                label, log, plant, key=k_model, steps=steps, progress=progress
            )
        t_fit = time.perf_counter() - tic
        say(
            f"[drift] {label}: {duration_s:g} s closed loop on the {path.name} ...",
            flush=True,
        )
        run = drive(
            label,
            model,
            plant,
            path,
            duration_s,
            key=k_sim,
            time_solves=time_solves,
            wheel_speed=wheel_speed or ("quasi_steady" if label == NOMINAL else "measured"),
            mpc_options=mpc_options,
            # The data each model was identified from: a collected log is not the data of a
            # given model; a given log is taken to be.
            log=None if label == NOMINAL or (label in models and not log_given) else log,
        )
        run.identification = report
        run.wall_time_s = {"identify": t_fit, **run.wall_time_s}
        say(f"[drift] {label}: {summary_line(run)}", flush=True)
        results[label] = run
    return results


__all__ = [
    "NOMINAL",
    "PATHS",
    "DriftRunResult",
    "drive",
    "fit_model",
    "format_drift_table",
    "make_path",
    "nominal_model",
    "run_drift",
    "summary_line",
]
