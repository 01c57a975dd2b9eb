"""The identification recipe: one way from a log and a tyre name to an identified model, the
same from the API, `physml sysid`, `physml drift` (`fit_model`) and the benchmarks.

    (k_model, k_fit) = jax.random.split(key)
    params = fit_drive_map(log, params)        only where the drive map is affine (a command)
    model  = make_model(tire, key=k_model, params=params)               a tyre with a textbook
    model  = make_model(tire, key=k_model, params=params, data=log)     the neural ODE
    result = identify(log, model, key=k_fit, steps=steps)    `identify`'s own defaults

The tyres with textbook values (Fiala, magic formula, ExpTanh, neural-ExpTanh, MLP) start from
them; the neural-ODE tyre, whose defaults are one generic curve for both axles rather than a
tyre's, starts from a fit to the log's axle forces (`make_model(data=...)`, `FORCE_FIT_START`).
The loss, optimiser, validation windows (as long as the training windows, 0.2 s) and early
stopping are `identify`'s defaults; nothing is overridden per caller. The comparisons over data
seeds that chose this recipe (held-out error, then the closed loop on the plant):
docs/notes/2026-12-02-identification-recipe.md.
"""

from __future__ import annotations

import time

import jax
from jaxtyping import PRNGKeyArray

from ...kernels._validate import check_key
from .._data.log import DriveLog
from .._model.params import VehicleParams
from .._model.single_track import SingleTrackModel
from .._tires.registry import TIRES
from .force_estimates import fit_drive_map
from .identify import IdentificationResult, identify, make_model

#: The tyres the recipe starts from the log's axle-force fit instead of their defaults.
FORCE_FIT_START = frozenset({"neural_ode"})


def start_model(
    data: DriveLog, tire: str, *, key: PRNGKeyArray, params: VehicleParams
) -> SingleTrackModel:
    """The recipe's initial model (module docstring): `make_model(tire, key=key,
    params=params)`, with `data=data` for the tyres of `FORCE_FIT_START`."""
    data_start = data if tire in FORCE_FIT_START else None
    return make_model(tire, key=key, params=params, data=data_start)


def identify_tire(
    data: DriveLog,
    tire: str,
    *,
    key: PRNGKeyArray,
    params: VehicleParams | None = None,
    steps: int = 3000,
    progress: bool = True,
    log_path: str | None = None,
) -> IdentificationResult:
    """Identify a single-track model with a `tire` tyre on each axle from `data` (the recipe of
    the module docstring).

    Args:
        data: a `DriveLog` at a uniform rate (100 Hz).
        tire: one of `TIRES`.
        key: PRNG key (initial model, window sampling).
        params: the car's `VehicleParams` (default: the Supra prior `VehicleParams()`); with
            `torque_offset_nm` set, the drive map E(τ) = k_τ τ + τ_0 is affine (τ a command):
            it starts from the log's wheel torques (`fit_drive_map`) and is learned with the
            tyres; otherwise k_τ is learned (`trainable_spec`).
        steps: maximum optimiser steps.
        progress, log_path: `identify`'s progress bar and JSON-lines log.

    Returns:
        `identify`'s `IdentificationResult`; its report adds "tire", and "init_wall_time_s"
        and "init_cpu_time_s" (building the initial model, outside `identify`'s times).
    """
    if tire not in TIRES:
        raise ValueError(f"`tire` must be one of {TIRES}, got {tire!r}.")
    if not isinstance(data, DriveLog):
        raise TypeError(f"`data` must be a DriveLog, got {type(data).__name__}.")
    if params is not None and not isinstance(params, VehicleParams):
        raise TypeError(f"`params` must be VehicleParams or None, got {type(params).__name__}.")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"`steps` must be an int >= 1, got {steps!r}.")
    k_model, k_fit = jax.random.split(check_key(key))
    tic, tic_cpu = time.perf_counter(), time.process_time()
    params = VehicleParams() if params is None else params
    if params.torque_offset_nm is not None:
        params = fit_drive_map(data, params)
    model = start_model(data, tire, key=k_model, params=params)
    init = {
        "init_wall_time_s": time.perf_counter() - tic,
        "init_cpu_time_s": time.process_time() - tic_cpu,
    }
    result = identify(data, model, key=k_fit, steps=steps, progress=progress, log_path=log_path)
    result.report.update(tire=tire, **init)
    return result
