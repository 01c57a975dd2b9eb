"""Three minutes of test driving: `collect` drives the plant through a random programme of
manoeuvres (`manoeuvres.py`; sustained drifts held by the LQR `DriftStabiliser` of
`stabiliser.py`), simulating at a fine step (RK4, 1 ms, `physml.kernels.rollout`) and logging at
100 Hz through the sensor model, all in one jitted `lax.scan` over the log.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from ...kernels import rollout
from ...kernels._validate import check_key
from .._plant.dynamics import IOMEGAR, ISIDESLIP, ISPEED, IYAWRATE, DriftPlant
from .._plant.envelope import VALID_MAX_SIDESLIP_RAD, VALID_MIN_SPEED_MPS, in_valid_range
from .._plant.sensors import Sensors
from .log import FLAG_INVALID, FLAG_RESET, SCHEMA_VERSION, DriveLog
from .manoeuvres import (
    ABORT_SIDESLIP_RAD,
    CATCH_TORQUE_NM,
    MANOEUVRES,
    MIXES,
    MODE_CATCH,
    MODE_DRIFT,
    MODE_POWER_OVER,
    MODE_SPEED,
    POWER_OVER_SWITCH_RAD,
    SPEED_FEEDFORWARD_NM,
    SPEED_GAIN_NMPS,
    manoeuvre_programme,
)
from .stabiliser import DriftStabiliser, design_drift_stabiliser


def _command(plant, stabiliser, x, s, latched, aborted):
    speed, beta, yaw_rate = x[ISPEED], x[ISIDESLIP], x[IYAWRATE]
    tau_speed = SPEED_FEEDFORWARD_NM + SPEED_GAIN_NMPS * (s["speed_ref"] - speed)
    # Drift exit: front wheels along their own velocity (α_f = 0), so the front axle stops
    # adding yaw moment while the rear, with little torque, regains grip.
    lf = plant.params.cg_to_front_m
    steer_catch = jnp.arctan2(speed * jnp.sin(beta) + lf * yaw_rate, speed * jnp.cos(beta))
    power_over = s["mode"] == MODE_POWER_OVER
    latched = latched | (power_over & (jnp.abs(beta) > POWER_OVER_SWITCH_RAD))
    # A drift running away (|β| > 57°) is abandoned for the exit manoeuvre, as a driver would.
    aborted = aborted | (latched & (jnp.abs(beta) > ABORT_SIDESLIP_RAD))
    mode = jnp.where(power_over & latched, MODE_DRIFT, s["mode"])
    # A drift that never started (power-over did not break the rear loose) is abandoned:
    # drive on straight at the programme's speed rather than "stabilise" a grip state.
    steer = jnp.where(mode == MODE_DRIFT, 0.0, s["steer"])
    mode = jnp.where((mode == MODE_DRIFT) & ~latched, MODE_SPEED, mode)
    mode = jnp.where(aborted & (mode != MODE_SPEED), MODE_CATCH, mode)
    candidates = jnp.stack(
        [
            jnp.stack([steer, tau_speed]),
            jnp.stack([steer, s["torque"]]),
            # A drifting driver modulates the throttle and never brakes: torque ≥ 0.
            stabiliser(x, s["beta_ref"]).at[1].max(0.0),
            jnp.stack([steer_catch, jnp.full_like(speed, CATCH_TORQUE_NM)]),
        ]
    )
    return candidates[mode], latched, aborted


@eqx.filter_jit
def _drive(plant, stabiliser, programme, carry0, x_reset, dt_sim, n_sub):
    def body(carry, s):
        x, latched, aborted, reset = carry
        # After a spin-out the car is put back on a straight line (a new run on the track);
        # that sample carries FLAG_RESET: it does not follow from the one before.
        x = jnp.where(reset, x_reset, x)
        # The drift latch lives from a power-over to the end of the drift that follows it.
        keep = (s["mode"] != MODE_SPEED) & ~s["segment_start"] & ~reset
        u, latched, aborted = _command(plant, stabiliser, x, s, latched & keep, aborted & keep)
        x_new = rollout(
            plant.vector_field, x, jnp.broadcast_to(u, (n_sub, 2)), dt_sim, check=False
        )[-1]
        ok = in_valid_range(x)
        # A state outside the valid range is logged once, flagged, and then replaced, so
        # nothing non-finite or meaningless reaches the log as data.
        ok_next = ok & jnp.all(jnp.isfinite(x_new))
        flags = jnp.where(ok, 0, FLAG_INVALID) + jnp.where(reset, FLAG_RESET, 0)
        carry = (jnp.where(ok_next, x_new, x), latched, aborted, ~ok_next)
        return carry, (x, plant.applied_inputs(x, u), u, flags)

    return jax.lax.scan(body, carry0, programme)


# Designed stabilisers by (plant, drift speed, control period): a memo of a pure function, so
# that repeated `collect` calls skip the ~15 s design (equilibria + Riccati equations).
_STABILISERS: dict = {}
_CHUNK_STEPS = 1000  # 10 s at 100 Hz


def _key_data(key) -> np.ndarray:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key, np.uint32).ravel()


def _is_real(x) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def collect(
    plant: DriftPlant,
    minutes: float = 3.0,
    *,
    key: PRNGKeyArray,
    mix: str = "train",
    sensors: Sensors | None = None,
    dt_sim_s: float = 1e-3,
    drift_speed_mps: float = 10.0,
    stabiliser: DriftStabiliser | None = None,
) -> DriveLog:
    """Drive `plant` through a random test programme and log it at the sensors' rate.

    Args:
        plant: the vehicle (`DriftPlant`), with its actuators.
        minutes: length of the log [min].
        key: PRNG key; it fixes the programme and the sensor noise (same key, same log).
        mix: "train" or "heldout": a different manoeuvre mix (speeds, steer frequencies, drift
            references) for evaluation on data the model was not fitted to. Use a different
            key as well.
        sensors: noise model and logging rate (default `Sensors()`: 100 Hz).
        dt_sim_s: RK4 step of the simulation [s]; must divide the logging period.
        drift_speed_mps: speed of the drifts [m/s].
        stabiliser: drift stabiliser; default designed for `plant` at `drift_speed_mps`
            (and cached for the session).

    Returns:
        A `DriveLog` with measured and true [r, V, β, ω_r], the controls (δ, τ) that acted on
        the car, flags (bit 1: outside the valid range V ≥ 4 m/s, |β| ≤ 60°; bit 2: reset after
        a spin-out) and the manoeuvre of every sample.

    Raises:
        TypeError: `plant` is not a `DriftPlant`, or `key` is not one PRNG key (e.g. an int).
        ValueError: a non-finite or non-positive `drift_speed_mps`, `minutes` or `dt_sim_s`, or
            an unknown `mix`; checked before any work.
    """
    if not isinstance(plant, DriftPlant):
        raise TypeError(f"`plant` must be a DriftPlant, got {type(plant).__name__}.")
    key = check_key(key)
    if not (_is_real(drift_speed_mps) and np.isfinite(drift_speed_mps) and drift_speed_mps > 0):
        raise ValueError(
            f"`drift_speed_mps` must be a finite speed > 0 [m/s], got {drift_speed_mps!r} "
            "(the drifts of the log are held at this speed, e.g. 10.0)."
        )
    if not (_is_real(minutes) and np.isfinite(minutes) and minutes > 0):
        raise ValueError(f"`minutes` must be a finite duration > 0 [min], got {minutes!r}.")
    if mix not in MIXES:
        raise ValueError(f"`mix` must be one of {sorted(MIXES)}, got {mix!r}.")
    sensors = Sensors() if sensors is None else sensors
    period = 1.0 / sensors.rate_hz
    ok_dt = _is_real(dt_sim_s) and np.isfinite(dt_sim_s) and dt_sim_s > 0
    n_sub = round(period / dt_sim_s) if ok_dt else 0
    if n_sub < 1 or abs(n_sub * dt_sim_s - period) > 1e-9 * period:
        raise ValueError(
            f"`dt_sim_s` must be > 0 and divide the logging period {period} s "
            f"(1 / sensors.rate_hz), got {dt_sim_s!r}."
        )
    if stabiliser is None:
        cache_key = (plant, float(drift_speed_mps), period)
        if cache_key not in _STABILISERS:
            _STABILISERS[cache_key] = design_drift_stabiliser(
                plant, speed_mps=drift_speed_mps, dt_s=period
            )
        stabiliser = _STABILISERS[cache_key]

    key_programme, key_noise = jax.random.split(key)
    rng = np.random.default_rng(_key_data(key_programme))
    prog = manoeuvre_programme(
        minutes * 60.0, rng=rng, mix=mix, rate_hz=sensors.rate_hz, drift_speed_mps=drift_speed_mps
    )
    dtype = jnp.asarray(0.0).dtype
    programme = {
        k: jnp.asarray(v, dtype if v.dtype.kind == "f" else None)
        for k, v in prog.items()
        if k != "manoeuvre"
    }
    x0 = plant.straight_state(drift_speed_mps)
    # The scan runs in chunks of fixed length so that it compiles once per session, whatever
    # the length of the log; the last chunk is padded by repeating the last step.
    n_total = prog["mode"].shape[0]
    n_chunks = -(-n_total // _CHUNK_STEPS)
    pad = n_chunks * _CHUNK_STEPS - n_total
    programme = {
        k: jnp.concatenate([v, jnp.repeat(v[-1:], pad, axis=0)]) for k, v in programme.items()
    }
    false = jnp.asarray(False)
    carry, outputs = (x0, false, false, false), []
    for c in range(n_chunks):
        chunk = {k: v[c * _CHUNK_STEPS : (c + 1) * _CHUNK_STEPS] for k, v in programme.items()}
        carry, out = _drive(
            plant, stabiliser, chunk, carry, x0, jnp.asarray(dt_sim_s, dtype), n_sub
        )
        outputs.append(out)
    xs, applied, _, flags = (jnp.concatenate(o)[:n_total] for o in zip(*outputs, strict=True))
    state_true = xs[:, jnp.asarray([IYAWRATE, ISPEED, ISIDESLIP, IOMEGAR])]
    measured = sensors.measure(state_true, key=key_noise)
    n = state_true.shape[0]
    flags = np.asarray(flags, np.int64)
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "source": "physml.vehicle.collect: CommonRoad vehicle_dynamics_std, vehicle 2 "
        "(BMW 320i), ported to JAX",
        "rate_hz": sensors.rate_hz,
        "dt_sim_s": dt_sim_s,
        "integrator": "rk4",
        "minutes": minutes,
        "mix": mix,
        "key_data": _key_data(key).tolist(),
        "drift_speed_mps": drift_speed_mps,
        "sensor_std": {
            "yaw_rate_radps": sensors.yaw_rate_std_radps,
            "speed_mps": sensors.speed_std_mps,
            "sideslip_rad": sensors.sideslip_std_rad,
            "wheel_speed_rel": sensors.wheel_speed_rel_std,
        },
        "actuators": {
            k: float(getattr(plant.actuators, k))
            for k in (
                "steer_max_rad",
                "steer_rate_max_radps",
                "steer_time_constant_s",
                "torque_min_nm",
                "torque_max_nm",
            )
        },
        "valid_range": {
            "min_speed_mps": VALID_MIN_SPEED_MPS,
            "max_abs_sideslip_rad": VALID_MAX_SIDESLIP_RAD,
        },
        "n_invalid": int(np.sum(flags & FLAG_INVALID > 0)),
        "n_reset": int(np.sum(flags & FLAG_RESET > 0)),
    }
    return DriveLog(
        time_s=np.arange(n, dtype=np.float64) / sensors.rate_hz,
        state=np.asarray(measured, np.float64),
        control=np.asarray(applied, np.float64),
        state_true=np.asarray(state_true, np.float64),
        flags=flags,
        manoeuvre=prog["manoeuvre"].astype(np.int64),
        manoeuvre_names=MANOEUVRES,
        metadata=metadata,
    )
