"""Closed loop: the drift MPC driving the plant along a path, with sensor noise.

The plant (`DriftPlant`, CommonRoad's single-track drift model behind the actuators) is
integrated with RK4 at a fine step (1 ms, as `collect`), the controller runs every control
period (20 Hz by default, the first step of the MPC's grid) on noisy measurements and its
command is held (zero-order hold) until the next one. The run is a jitted `lax.scan` over
control periods, called on chunks of `chunk_s` seconds (the same compiled program for every
chunk), so that a run that stops is not simulated past the chunk in which it stopped; the MPC's
solve time is measured outside jit afterwards by replaying each recorded solve (same warm
start, same measurement) and timing it on the host.

Measurements. (r, V, β, ω_r) through `Sensors` (GNSS/INS and wheel encoder); the path
coordinates (e, Δφ, s) from a noisy GNSS/INS position and heading, projected on the path
(`AbstractPath.project`). `PoseSensor`'s noise levels are representative of an RTK dual-antenna
GNSS/INS of the OxTS RT3000 class (OxTS, "RT3000 v3 / RT500 user manual", specification
tables: position accuracy of the order of 1-2 cm with RTK corrections, heading accuracy of the
order of 0.1° with a 2 m antenna baseline), rounded up like `Sensors`': 2 cm per axis and
0.15° of heading (1σ), independent at each control step. Not modelled: latency (the command
acts at the instant of the measurement it was computed from), biases, GNSS outages.

Spin-out: the run stops when |β| > 60° (as `collect`'s valid range), V < 4 m/s,
|e| > `max_lateral_error_m`, or the plant state is not finite; the time, state and reason are
reported and the record ends at the last control step before the stop.
"""

from __future__ import annotations

import dataclasses
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ...kernels import rollout
from ...kernels._validate import check_key
from .._data.stabiliser import drift_equilibrium
from .._plant.dynamics import IOMEGAR, ISIDESLIP, ISPEED, IX, IY, IYAW, IYAWRATE, DriftPlant
from .._plant.envelope import VALID_MAX_SIDESLIP_RAD, VALID_MIN_SPEED_MPS
from .._plant.sensors import Sensors
from .mpc import DriftMPC, MPCStatus
from .paths import AbstractPath


class StopReason(eqx.Enumeration):
    """Why a closed-loop run stopped (`none`: it did not); the messages are what
    `ClosedLoopResult.stop["reason"]` reports."""

    none = "none"
    spin_out = "spin-out: |sideslip| > 60 deg"
    stalled = "stalled: speed < 4 m/s"
    left_path = "left the path: |lateral error| too large"
    nonfinite = "plant state not finite"
    #: Not a failure: an open path's run ends where the path does (`simulate`).
    path_end = "reached the end of the path"


class PoseSensor(eqx.Module):
    """GNSS/INS position and heading noise (1σ), see the module docstring for the source.

    Attributes:
        position_std_m: 0.02 m per horizontal axis (RTK GNSS/INS).
        heading_std_rad: 0.15° = 2.6e-3 rad (dual-antenna GNSS/INS).
    """

    position_std_m: float = 0.02
    heading_std_rad: float = math.radians(0.15)

    def __check_init__(self):
        for name in ("position_std_m", "heading_std_rad"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"PoseSensor.{name} must be a finite number >= 0, got {value!r}.")

    def measure(self, pose: Float[ArrayLike, "3"], *, key: PRNGKeyArray) -> Float[Array, "3"]:
        """Noisy (x [m], y [m], ψ [rad])."""
        check_key(key)
        pose = jnp.asarray(pose, float)
        std = jnp.asarray([self.position_std_m, self.position_std_m, self.heading_std_rad])
        return pose + std * jax.random.normal(key, (3,), pose.dtype)


@dataclasses.dataclass(frozen=True)
class ClosedLoopResult:
    """A closed-loop run (numpy arrays, one row per control step; the record ends at a stop:
    T = `duration_s` / period, fewer if the run stopped or reached an open path's end).

    Attributes:
        time_s: (T,) time at each control step [s]; the last row is the last step that ran
            (its command led to the stop, at `stop["time_s"]` = time_s[-1] + period).
        plant_state: (T, 9) plant state at the step (see `physml.vehicle._plant.dynamics`).
        path_state: (T, 3) true (e [m], Δφ [rad], s [m]) of the plant.
        measurement: (T, 7) what the controller saw (r, V, β, ω_r, e, Δφ, s).
        command: (T, 2) the commands (δ_cmd [rad], τ [N·m]).
        sideslip_ref: (T,) β_ref(s) at the true s [rad].
        iterations, cost, violation: (T,) from each `MPCInfo`; status: the (T,) `MPCStatus`
            of the solves (one batched item: compare with `== MPCStatus.converged` etc.).
        solve_time_s: (n,) wall time of each replayed solve [s] (empty if not timed).
        stop: None, or dict(time_s, reason, state) of the first stop (spin-out etc.).
        metrics: dict of scalars (see `simulate`).
    """

    time_s: np.ndarray
    plant_state: np.ndarray
    path_state: np.ndarray
    measurement: np.ndarray
    command: np.ndarray
    sideslip_ref: np.ndarray
    iterations: np.ndarray
    cost: np.ndarray
    status: MPCStatus
    violation: np.ndarray
    solve_time_s: np.ndarray
    stop: dict | None
    metrics: dict

    def summary(self) -> str:
        m = self.metrics
        stopped = self.stop["reason"] if self.stop else "no"
        lines = [
            f"duration {m['duration_s']:.1f} s, stopped: {stopped}",
            f"lateral error RMSE {m['lateral_rmse_m']:.3f} m, max {m['lateral_max_m']:.3f} m",
            f"sideslip error RMSE {m['sideslip_rmse_deg']:.2f} deg; in drift "
            f"{100 * m['drift_fraction']:.0f}% of the time",
            f"solve time median {1e3 * m['solve_time_median_s']:.2f} ms, p99 "
            f"{1e3 * m['solve_time_p99_s']:.2f} ms; GN iterations mean {m['iterations_mean']:.2f}; "
            f"fallbacks {m['n_fallback']}",
        ]
        return "\n".join(lines)


def drift_start(
    plant: DriftPlant, controller: DriftMPC, path: AbstractPath, s_m: float = 0.0
) -> Float[Array, "9"]:
    """A plant state in a steady drift on the path at arc length s: the plant's own drift
    equilibrium at the reference's speed and sideslip there, placed on the path (e = 0) with
    its velocity along the tangent (ψ = θ(s) − β)."""
    y_ref, _ = controller.reference.at(s_m)
    speed, beta = float(y_ref[1]), float(y_ref[2])
    x, _ = drift_equilibrium(plant, speed, beta)
    px, py, theta = (float(v) for v in path.pose(s_m))
    x = x.copy()
    x[IX], x[IY], x[IYAW] = px, py, theta - beta
    return jnp.asarray(x)


def default_start_s(controller: DriftMPC) -> float:
    """Where a run starts by default [m]: the first reference grid point whose |β_ref| is within
    1% of the largest along the lap: s = 0 on a donut, just past the sideslip reversal on a
    figure-eight (whose β_ref = 0 at the crossing s = 0 is no drift, so there is no drift
    equilibrium of the plant to start from there)."""
    beta = np.abs(np.asarray(controller.reference.state[:, 2]))
    return float(np.asarray(controller.reference.s_m)[np.argmax(beta >= 0.99 * beta.max())])


def _path_coords(path, x, s_guess):
    return path.project(x[IX], x[IY], x[IYAW] + x[ISIDESLIP], s_guess)


@eqx.filter_jit
def _run(
    plant, controller, path, sensors, pose_sensor, x0, s0, state0, keys, dt_sim, n_sub, limits
):
    period = dt_sim * n_sub
    max_e = limits

    def body(carry, key):
        x, mpc_state, s_est, stop = carry
        k_state, k_pose = jax.random.split(key)
        y_true = x[jnp.asarray([IYAWRATE, ISPEED, ISIDESLIP, IOMEGAR])]
        y_meas = sensors.measure(y_true, key=k_state)
        pose = pose_sensor.measure(x[jnp.asarray([IX, IY, IYAW])], key=k_pose)
        coords = path.project(pose[0], pose[1], pose[2] + y_meas[2], s_est)
        meas = jnp.concatenate([y_meas, coords])
        u, new_state, info = controller.step(mpc_state, meas)
        x_new = rollout(
            plant.vector_field, x, jnp.broadcast_to(u, (n_sub, 2)), dt_sim, check=False
        )[-1]
        true = _path_coords(path, x, s_est)
        true_new = _path_coords(path, x_new, true[2])
        # The first that holds, in this order.
        reason = StopReason.none
        for test, why in (
            (jnp.abs(true_new[0]) > max_e, StopReason.left_path),
            (x_new[ISPEED] < VALID_MIN_SPEED_MPS, StopReason.stalled),
            (jnp.abs(x_new[ISIDESLIP]) > VALID_MAX_SIDESLIP_RAD, StopReason.spin_out),
            (~jnp.all(jnp.isfinite(x_new)), StopReason.nonfinite),
        ):
            reason = StopReason.where(test, why, reason)
        if not path.closed:  # the run ends at an open path's end, unless it failed there
            ended = (reason == StopReason.none) & (true_new[2] >= path.length_m)
            reason = StopReason.where(ended, StopReason.path_end, reason)
        stopped = stop != StopReason.none
        stop_new = StopReason.where(stopped, stop, reason)
        halt = stop_new != StopReason.none
        x_next = jnp.where(halt, x, x_new)
        state_next = jax.tree_util.tree_map(
            lambda a, b: jnp.where(halt, a, b), mpc_state, new_state
        )
        s_next = coords[2] + y_meas[1] * period
        out = (x, true, meas, u, info.iterations, info.cost, info.status, info.violation, mpc_state)
        return (x_next, state_next, s_next, stop_new), (out, stop_new)

    return jax.lax.scan(body, (x0, state0, s0, StopReason.none), keys)


def simulate(
    plant: DriftPlant,
    controller: DriftMPC,
    path: AbstractPath,
    duration_s: float,
    *,
    key: PRNGKeyArray,
    sensors: Sensors | None = None,
    pose_sensor: PoseSensor | None = None,
    control_rate_hz: float | None = None,
    dt_sim_s: float = 1e-3,
    x0: Float[ArrayLike, "9"] | None = None,
    start_s_m: float | None = None,
    max_lateral_error_m: float = 3.0,
    drift_threshold_rad: float = math.radians(10.0),
    time_solves: bool = True,
    chunk_s: float = 5.0,
) -> ClosedLoopResult:
    """Run `controller` on `plant` along `path` for `duration_s` seconds.

    Args:
        plant: the vehicle (`DriftPlant`, with its actuators).
        controller: a `DriftMPC` built for the same path.
        path: the path (for the measurement's projection and the metrics).
        duration_s: simulated time [s]; on an open path the run ends earlier where the car
            reaches the path's end (s ≥ `length_m`, not a stop: `stop` is None).
        key: PRNG key of the sensor noise.
        sensors, pose_sensor: noise models (defaults `Sensors()`, `PoseSensor()`).
        control_rate_hz: controller rate [Hz]; must be 1 / controller.dt_s[0] (its plan is
            shifted by that step), the default.
        dt_sim_s: RK4 step of the plant [s]; must divide the control period.
        x0: initial plant state (9,); default `drift_start` at `start_s_m`.
        start_s_m: arc length [m] the run starts at (the first guess of the projection on
            the path); default `default_start_s(controller)` (0 on a donut, just past the
            sideslip reversal on a figure-eight).
        max_lateral_error_m: |e| beyond which the car has left the path and the run stops [m].
        drift_threshold_rad: a step counts as drifting when |β| exceeds this with the sign of
            β_ref (10° by default).
        time_solves: replay every solve outside jit to measure its wall time.
        chunk_s: simulated time per jitted call [s]: a run that stops is simulated to the end
            of the chunk in which it stopped, not to `duration_s`. Does not change the result.

    Returns:
        A `ClosedLoopResult`; `metrics` holds `duration_s` (until a stop or an open path's
        end), `lateral_rmse_m`, `lateral_max_m`, `sideslip_rmse_deg` (against β_ref at the
        true s), `drift_fraction`, `iterations_mean`, `n_fallback` (non-finite solves
        replaced by the shifted plan), `max_violation`, `solve_time_median_s`,
        `solve_time_p99_s`.
    """
    check_key(key)
    if not isinstance(plant, DriftPlant):
        raise TypeError(f"`plant` must be a DriftPlant, got {type(plant).__name__}.")
    if not isinstance(controller, DriftMPC):
        raise TypeError(f"`controller` must be a DriftMPC, got {type(controller).__name__}.")
    if not isinstance(path, AbstractPath):
        raise TypeError(f"`path` must be an AbstractPath, got {type(path).__name__}.")
    if type(path) is not type(controller.path) or path.length_m != controller.path.length_m:
        raise ValueError(
            f"`path` ({type(path).__name__}, {path.length_m:.3g} m) is not the controller's "
            f"path ({type(controller.path).__name__}, {controller.path.length_m:.3g} m)."
        )
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"`duration_s` must be a finite duration > 0 [s], got {duration_s!r}.")
    if not (isinstance(chunk_s, int | float) and math.isfinite(chunk_s) and chunk_s > 0):
        raise ValueError(f"`chunk_s` must be a finite duration > 0 [s], got {chunk_s!r}.")
    period = float(controller.dt_s[0])
    if control_rate_hz is not None and abs(control_rate_hz * period - 1.0) > 1e-9:
        raise ValueError(
            f"`control_rate_hz` must be 1 / controller.dt_s[0] = {1 / period:g} Hz (the MPC "
            f"shifts its plan by one grid step per call), got {control_rate_hz!r}."
        )
    n_sub = round(period / dt_sim_s) if dt_sim_s > 0 else 0
    # Relative tolerance above float32 rounding: a grid built without jax_enable_x64 holds
    # 0.05 s as 0.0500000007 s.
    if n_sub < 1 or abs(n_sub * dt_sim_s - period) > 1e-6 * period:
        raise ValueError(
            f"`dt_sim_s` must be > 0 and divide the control period {period} s, got {dt_sim_s!r}."
        )
    sensors = Sensors() if sensors is None else sensors
    pose_sensor = PoseSensor() if pose_sensor is None else pose_sensor
    if start_s_m is None:
        start_s_m = default_start_s(controller)
    if not (isinstance(start_s_m, int | float) and math.isfinite(start_s_m)):
        raise ValueError(f"`start_s_m` must be a finite arc length [m], got {start_s_m!r}.")
    x0 = drift_start(plant, controller, path, start_s_m) if x0 is None else jnp.asarray(x0, float)
    if x0.shape != (9,) or not bool(jnp.all(jnp.isfinite(x0))):
        raise ValueError(f"`x0` must be a finite plant state of shape (9,), got {x0!r}.")
    s0 = _path_coords(path, x0, jnp.asarray(float(start_s_m)))[2]
    n = max(round(duration_s / period), 1)
    keys = jax.random.split(key, n)

    y0 = x0[jnp.asarray([IYAWRATE, ISPEED, ISIDESLIP, IOMEGAR])]
    start = jnp.concatenate([y0, _path_coords(path, x0, s0)])
    _, u_eq = drift_equilibrium(plant, float(x0[ISPEED]), float(x0[ISIDESLIP]))
    state0 = controller.init(start, last_command=jnp.asarray(u_eq))
    # Chunks of one length (the last padded with repeats of the final key and cut off), so
    # every chunk runs the same compiled scan; the carry passes from one to the next, so a run
    # that does not stop is the same as one scan over all steps.
    chunk = min(n, max(round(chunk_s / period), 1))
    carry = (x0, s0, state0)
    pieces, n_run, stop_at = [], 0, None
    while n_run < n and stop_at is None:
        idx = np.minimum(np.arange(n_run, n_run + chunk), n - 1)
        (x_c, state_c, s_c, _), (out_c, stops_c) = _run(
            plant,
            controller,
            path,
            sensors,
            pose_sensor,
            carry[0],
            carry[1],
            carry[2],
            keys[idx],
            jnp.asarray(dt_sim_s),
            n_sub,
            jnp.asarray(float(max_lateral_error_m)),
        )
        take = min(chunk, n - n_run)
        stopped = np.flatnonzero(np.asarray(stops_c != StopReason.none)[:take])
        if stopped.size:
            i = int(stopped[0])
            stop_at = (n_run + i, StopReason[jax.tree_util.tree_map(lambda a, i=i: a[i], stops_c)])
        pieces.append(jax.tree_util.tree_map(lambda a, take=take: a[:take], out_c))
        carry = (x_c, s_c, state_c)
        n_run += take
    out = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *pieces)
    n_valid = n if stop_at is None else stop_at[0] + 1
    out = jax.tree_util.tree_map(lambda a: a[:n_valid], out)
    xs, true, meas, cmds, its, costs, status, viol, mpc_states = out
    xs, true, meas, cmds = (np.asarray(a) for a in (xs, true, meas, cmds))
    t = np.arange(n_valid) * period
    stop = None
    if stop_at is not None and stop_at[1] != StopReason[StopReason.path_end]:
        # The plant is not advanced by the step that stopped it: the state reported is the one
        # the last command was applied to.
        stop = {"time_s": float(n_valid * period), "reason": stop_at[1], "state": xs[-1]}
    beta_ref = np.asarray(path.sideslip(jnp.asarray(true[:, 2])))

    solve_times = np.zeros(0)
    if time_solves:
        replay = []
        # One untimed call first: it compiles `step` for host (non-traced) arguments.
        first = jax.tree_util.tree_map(lambda a: a[0], mpc_states)
        jax.block_until_ready(controller.step(first, jnp.asarray(meas[0]))[0])
        for i in range(n_valid):
            state_i = jax.tree_util.tree_map(lambda a, i=i: a[i], mpc_states)
            meas_i = jnp.asarray(meas[i])
            tic = time.perf_counter()
            jax.block_until_ready(controller.step(state_i, meas_i)[0])
            replay.append(time.perf_counter() - tic)
        solve_times = np.asarray(replay)

    v = slice(0, n_valid)
    e, dbeta = true[v, 0], xs[v, ISIDESLIP] - beta_ref[v]
    in_drift = (np.abs(xs[v, ISIDESLIP]) > drift_threshold_rad) & (
        np.sign(xs[v, ISIDESLIP]) == np.sign(beta_ref[v])
    )
    metrics = {
        "duration_s": float(n_valid * period),
        "lateral_rmse_m": float(np.sqrt(np.mean(e**2))),
        "lateral_max_m": float(np.max(np.abs(e))),
        "sideslip_rmse_deg": float(np.degrees(np.sqrt(np.mean(dbeta**2)))),
        "drift_fraction": float(np.mean(in_drift)),
        "iterations_mean": float(np.mean(np.asarray(its)[v])),
        "n_fallback": int(np.sum(np.asarray(status == MPCStatus.nonfinite_fallback)[v])),
        "max_violation": float(np.max(np.asarray(viol)[v])),
        "solve_time_median_s": float(np.median(solve_times)) if solve_times.size else math.nan,
        "solve_time_p99_s": float(np.percentile(solve_times, 99)) if solve_times.size else math.nan,
    }
    return ClosedLoopResult(
        time_s=t,
        plant_state=xs,
        path_state=true,
        measurement=meas,
        command=cmds,
        sideslip_ref=beta_ref,
        iterations=np.asarray(its),
        cost=np.asarray(costs),
        status=status,
        violation=np.asarray(viol),
        solve_time_s=solve_times,
        stop=stop,
        metrics=metrics,
    )


__all__ = [
    "ClosedLoopResult",
    "PoseSensor",
    "StopReason",
    "default_start_s",
    "drift_start",
    "simulate",
]
