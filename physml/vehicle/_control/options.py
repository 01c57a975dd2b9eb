"""Checks of the drift MPC's settings, shared by `DriftMPC`, `DriftMPC.from_path` and the
pipeline (`run_drift` checks its MPC options before any work), and the torque box of the
quasi-steady wheel-speed mode (capped at 95 % of the model's traction limit, where the
quasi-steady wheel speed ceases to exist: `traction_torque_limit_nm`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from .._model.single_track import SingleTrackModel
from .._plant.actuators import Actuators
from .problem import MPCWeights, mean_model, traction_torque_limit_nm

#: Share of the model's traction limit the torque box keeps with the quasi-steady wheel speed.
TRACTION_MARGIN = 0.95


def check_settings(grid_s, max_iterations, tol, torque_rate_max_nmps, wheel_speed, clock):
    grid = np.asarray(grid_s, float)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"`grid_s` must be >= 2 finite step lengths > 0 [s], got {grid_s!r}.")
    if not (isinstance(max_iterations, int) and max_iterations >= 1):
        raise ValueError(f"`max_iterations` must be an int >= 1, got {max_iterations!r}.")
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"`tol` must be finite and > 0, got {tol!r}.")
    if not (math.isfinite(torque_rate_max_nmps) and torque_rate_max_nmps > 0):
        raise ValueError(
            f"`torque_rate_max_nmps` must be finite and > 0 [N·m/s], got {torque_rate_max_nmps!r}."
        )
    if clock not in ("path", "time"):
        raise ValueError(f"`reference_clock` must be 'path' or 'time', got {clock!r}.")
    if wheel_speed not in ("measured", "quasi_steady"):
        raise ValueError(
            f"`wheel_speed` must be 'measured' or 'quasi_steady', got {wheel_speed!r}."
        )
    return grid


def check_integral(gain, limit_m):
    """k_I ≥ 0 [1/s] and the shift limit > 0 [m] of the MPC's integral action."""
    for name, value, least in (
        ("lateral_integral_gain", gain, 0.0),
        ("lateral_integral_limit_m", limit_m, None),
    ):
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        ok = real and math.isfinite(value) and (value >= least if least is not None else value > 0)
        if not ok:
            want = "a finite number >= 0 [1/s]" if least is not None else "a finite length > 0 [m]"
            raise ValueError(f"`{name}` must be {want}, got {value!r}.")


def check_model(model, ensemble):
    if not isinstance(model, SingleTrackModel):
        raise TypeError(f"`model` must be a SingleTrackModel, got {type(model).__name__}.")
    leading = {jnp.shape(a)[:1] for a in jtu.tree_leaves(eqx.filter(model, eqx.is_array))}
    if ensemble and (len(leading) != 1 or leading == {()}):
        raise ValueError(
            "`ensemble=True` needs a model whose arrays all have one leading particle axis "
            f"(see `stack_models`), got leading shapes {sorted(leading)}."
        )
    if not ensemble and any(jnp.ndim(a) > 0 for a in jtu.tree_leaves(model.params)):
        raise ValueError(
            "`model` has batched vehicle parameters; pass `ensemble=True` for a stack of "
            "posterior particles."
        )


def torque_box(model, actuators, wheel_speed, ensemble):
    torque_min, torque_max = float(actuators.torque_min_nm), float(actuators.torque_max_nm)
    if wheel_speed == "quasi_steady":
        # Beyond the traction limit the model's wheel spins up without bound and its torque
        # gradient vanishes: no quasi-steady wheel speed. Keep a margin.
        limit = traction_torque_limit_nm(mean_model(model) if ensemble else model)
        torque_max = min(torque_max, TRACTION_MARGIN * limit)
    return torque_min, torque_max


def check_options(options: Mapping, defaults: Mapping) -> None:
    """Validate keyword options of `DriftMPC.from_path` (`defaults`: its keyword defaults):
    unknown names raise `ValueError`, invalid settings `ValueError` / `TypeError`."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"Unknown MPC option(s) {unknown}; expected some of {sorted(defaults)}.")
    o = {**defaults, **options}
    check_settings(
        o["grid_s"],
        o["max_iterations"],
        o["tol"],
        o["torque_rate_max_nmps"],
        o["wheel_speed"],
        o["reference_clock"],
    )
    check_integral(o["lateral_integral_gain"], o["lateral_integral_limit_m"])
    bridge = o["bridge_m"]
    real = isinstance(bridge, numbers.Real) and not isinstance(bridge, bool)
    if not (real and math.isfinite(bridge) and bridge >= 0):
        raise ValueError(f"`bridge_m` must be a finite length >= 0 [m], got {bridge!r}.")
    accel = o["reference_accel_limit_mps2"]
    if not (isinstance(accel, numbers.Real) and not isinstance(accel, bool) and accel > 0):
        raise ValueError(
            "`reference_accel_limit_mps2` must be a number > 0 [m/s²] (inf: no limit), got "
            f"{accel!r}."
        )
    for name, kind in (("weights", MPCWeights), ("actuators", Actuators)):
        if o[name] is not None and not isinstance(o[name], kind):
            raise TypeError(f"`{name}` must be {kind.__name__} or None, got {o[name]!r}.")


__all__ = [
    "TRACTION_MARGIN",
    "check_integral",
    "check_model",
    "check_options",
    "check_settings",
    "torque_box",
]
