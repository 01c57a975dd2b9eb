"""Three minutes of test driving: manoeuvres, a drift stabiliser, and `collect`.

A test driver excites the tyres with a programme of manoeuvres (grip cornering, step and sine
steer, speed changes, power-over drift initiation, sustained drifts with counter-steer, drift
exits). `collect` drives the plant through a random programme of them, simulating at a fine
step (RK4, 1 ms, `physml.kernels.rollout`) and logging at 100 Hz through the sensor model, all
in one jitted `lax.scan` over the log.

Sustained drifts are held by `DriftStabiliser`, a gain-scheduled discrete LQR around the
plant's own drift equilibria (steady states with V̇ = β̇ = ṙ = ω̇_f = ω̇_r = 0 at fixed V and β,
solved with optimistix), in the spirit of the equilibrium-based drift controllers of Hindiyeh &
Gerdes (J. Dyn. Sys. Meas. Control 136, 2014) and Goh & Gerdes (IV 2016). It is a data-collection
tool, not the MPC of `DriftMPC`.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import scipy.linalg
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from ..kernels import rollout
from ._data import FLAG_INVALID, FLAG_RESET, SCHEMA_VERSION, DriveLog
from ._plant import IOMEGAF, IOMEGAR, ISIDESLIP, ISPEED, ISTEER, IYAWRATE, DriftPlant
from ._sensors import Sensors

#: Plant state components the stabiliser feeds back: δ, V, r, β, ω_f, ω_r.
FEEDBACK_INDEX = (ISTEER, ISPEED, IYAWRATE, ISIDESLIP, IOMEGAF, IOMEGAR)


class DriftStabiliser(eqx.Module):
    """Gain-scheduled LQR that holds the plant in a drift at a commanded sideslip.

    u = u_eq(β_ref) − K(β_ref) (z − z_eq(β_ref)), z = (δ, V, r, β, ω_f, ω_r), with the
    equilibrium and the gain interpolated linearly in β_ref over `beta_grid`. Grids may cover
    both directions (β < 0: drifting left, r > 0, counter-steer δ < 0; β > 0: the mirror);
    β_ref must stay inside one of the drift branches, never between them.

    Attributes:
        beta_grid: (n,) sideslip references [rad], increasing.
        z_eq: (n, 6) equilibrium states.
        u_eq: (n, 2) equilibrium inputs (δ_cmd [rad], τ [N·m]).
        gains: (n, 2, 6) LQR gains.
    """

    beta_grid: Float[Array, " n"]
    z_eq: Float[Array, "n 6"]
    u_eq: Float[Array, "n 2"]
    gains: Float[Array, "n 2 6"]

    def __call__(self, x: Float[Array, "9"], beta_ref: Float[ArrayLike, ""]) -> Float[Array, "2"]:
        """Command (δ_cmd [rad], τ [N·m]) at plant state x for the sideslip `beta_ref` [rad]."""
        interp = lambda table: jax.vmap(
            lambda col: jnp.interp(beta_ref, self.beta_grid, col), in_axes=-1, out_axes=-1
        )(table.reshape(table.shape[0], -1)).reshape(table.shape[1:])
        z = x[jnp.asarray(FEEDBACK_INDEX)]
        return interp(self.u_eq) - interp(self.gains) @ (z - interp(self.z_eq))


def _state(z, speed, beta):
    r, delta, _, omega_f, omega_r = z
    zero = jnp.zeros_like(r)
    return jnp.stack([zero, zero, delta, speed + zero, zero, r, beta + zero, omega_f, omega_r])


@eqx.filter_jit
def _solve_equilibrium(plant, speed, beta, guess):
    def residual(z, _):
        f = plant.vector_field(0.0, _state(z, speed, beta), z[1:3])
        # Scaled to comparable sizes: [m/s²], [rad/s], [rad/s² / 10], [rad/s² / 100] twice.
        return jnp.stack(
            [f[ISPEED], f[ISIDESLIP], f[IYAWRATE] / 10, f[IOMEGAF] / 100, f[IOMEGAR] / 100]
        )

    # Levenberg–Marquardt: plain Newton diverges from rough guesses on this kinked residual.
    # Tolerances follow the working precision: √eps ≈ 1.5e-8 in float64, 3.5e-4 in float32.
    eps = float(jnp.finfo(guess.dtype).eps)
    step_tol = max(1e-12, 10 * eps)
    sol = optx.least_squares(
        residual,
        optx.LevenbergMarquardt(rtol=step_tol, atol=step_tol),
        guess,
        max_steps=500,
        throw=False,
    )
    worst = jnp.max(jnp.abs(residual(sol.value, None)))
    ok = (sol.result == optx.RESULTS.successful) & (worst < np.sqrt(eps))
    return sol.value, ok


@eqx.filter_jit
def _linearise(plant, x, u):
    return jax.jacfwd(lambda x, u: plant.vector_field(0.0, x, u), argnums=(0, 1))(x, u)


def drift_equilibrium(
    plant: DriftPlant,
    speed_mps: float,
    sideslip_rad: float,
    guess: Sequence[float] | ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Steady drift of the plant at speed V and sideslip β (V̇ = β̇ = ṙ = ω̇_f = ω̇_r = 0).

    Unknowns: yaw rate r, steering δ (= δ_cmd with the servo at rest), torque τ, ω_f, ω_r,
    solved as a least-squares problem by Levenberg–Marquardt (optimistix) and accepted when
    every scaled residual is below √eps of the working precision. Returns the plant state (9,)
    and the input (δ_cmd, τ) as numpy arrays. Raises RuntimeError if it does not converge from
    `guess` (default: a guess on the drift branch with counter-steer and rear-wheel spin).
    """
    p = plant.params
    if guess is None:
        s = -1.0 if sideslip_rad < 0 else 1.0
        # Fitted by hand to vehicle 2's drift branch at 8-12 m/s: δ ≈ -1.27 (|β| - 0.27) sgn β,
        # r ≈ 9 m/s² / V, rear slip ratio ≈ 1.5 |β|.
        beta = abs(sideslip_rad)
        guess = [
            -s * 9.0 / speed_mps,
            s * 1.27 * (beta - 0.27),
            1200.0,
            speed_mps / p.wheel_radius_m,
            (1 + 1.5 * beta) * speed_mps * np.cos(beta) / p.wheel_radius_m,
        ]
    z, ok = _solve_equilibrium(
        plant,
        jnp.asarray(speed_mps, float),
        jnp.asarray(sideslip_rad, float),
        jnp.asarray(guess, float),
    )
    z = np.asarray(z)
    if not bool(ok) or not np.all(np.isfinite(z)):
        raise RuntimeError(
            f"No drift equilibrium found at V = {speed_mps} m/s, "
            f"β = {np.degrees(sideslip_rad):.1f}° from the guess {np.asarray(guess)}."
        )
    return np.asarray(_state(jnp.asarray(z), speed_mps, sideslip_rad)), z[1:3].copy()


def design_drift_stabiliser(
    plant: DriftPlant,
    *,
    speed_mps: float = 10.0,
    sideslip_deg: tuple[float, float] = (25.0, 40.0),
    n_grid: int = 10,
    dt_s: float = 0.01,
) -> DriftStabiliser:
    """LQR drift stabiliser over |β| in `sideslip_deg` at `speed_mps`, both directions.

    Each grid point: the plant linearised at its drift equilibrium, discretised with a
    zero-order hold at the control period `dt_s`, and a discrete LQR with weights that put
    1° of β error on a par with 0.05 rad/s of r, 0.5 m/s of V, 0.1 rad of δ_cmd and 300 N·m.
    """
    lo, hi = sorted(np.radians(sideslip_deg))
    idx = np.asarray(FEEDBACK_INDEX)
    # Bryson's rule: 1 / (acceptable deviation)² on (δ, V, r, β, ω_f, ω_r) and (δ_cmd, τ).
    q = np.diag(1 / np.array([np.inf, 0.5, 0.05, np.radians(1.0), np.inf, 30.0]) ** 2)
    r = np.diag(1 / np.array([0.1, 300.0]) ** 2)
    tables = []
    for side in (-1.0, 1.0):
        # Continuation from deep drift (well inside the drift branch) towards smaller |β|.
        betas = side * np.linspace(hi, lo, n_grid)
        guess = None
        rows = []
        for beta in betas:
            x_eq, u_eq = drift_equilibrium(plant, speed_mps, beta, guess)
            guess = [x_eq[IYAWRATE], u_eq[0], u_eq[1], x_eq[IOMEGAF], x_eq[IOMEGAR]]
            a_full, b_full = (
                np.asarray(m) for m in _linearise(plant, jnp.asarray(x_eq), jnp.asarray(u_eq))
            )
            a, b = a_full[np.ix_(idx, idx)], b_full[idx]
            n, m = a.shape[0], b.shape[1]
            big = np.zeros((n + m, n + m))
            big[:n, :n], big[:n, n:] = a * dt_s, b * dt_s
            ed = scipy.linalg.expm(big)
            ad, bd = ed[:n, :n], ed[:n, n:]
            pmat = scipy.linalg.solve_discrete_are(ad, bd, q, r)
            k = np.linalg.solve(r + bd.T @ pmat @ bd, bd.T @ pmat @ ad)
            rows.append((beta, x_eq[idx], u_eq, k))
        tables.extend(rows[::-1] if side > 0 else rows)
    beta, z, u, k = (np.stack(c) for c in zip(*tables, strict=True))
    return DriftStabiliser(jnp.asarray(beta), jnp.asarray(z), jnp.asarray(u), jnp.asarray(k))


# ---------------------------------------------------------------------------------------------
# Manoeuvres. A programme is a sequence of segments; each gives, per 100-Hz control step, a
# controller mode and its references. The modes:
MODE_SPEED = 0  # steer command from the programme, torque from a speed controller
MODE_POWER_OVER = 1  # steer into the turn with full torque until |β| > 6°, then hold the drift
MODE_DRIFT = 2  # DriftStabiliser at the programme's β_ref
MODE_CATCH = 3  # drift exit: point the front wheels along their velocity, little torque

#: Manoeuvre names, in the order of the log's `manoeuvre` indices.
MANOEUVRES = (
    "grip_cornering",
    "step_steer",
    "sine_steer",
    "speed_change",
    "drift_entry",
    "drift",
    "drift_exit",
)
# Power-over: steer 0.3 rad into the turn at the drift speed, full torque (2500 N·m breaks the
# rear loose at 10 m/s within about 0.5 s), and hand over to the stabiliser at |β| = 6°, early,
# because yaw builds up fast: handing over at 10-15° overshoots past 60° about half the time.
_POWER_OVER_SWITCH_RAD = float(np.radians(6.0))
_ENTRY_STEER_RAD = 0.3
_ENTRY_TORQUE_NM = 2500.0
_ABORT_SIDESLIP_RAD = float(np.radians(57.0))
_SPEED_GAIN_NMPS = 600.0  # speed controller: N·m per m/s of speed error
_SPEED_FEEDFORWARD_NM = 150.0  # about the rolling resistance of the plant's tyres at 10 m/s
_CATCH_TORQUE_NM = 300.0

_MIXES = {
    # name: (speed range [m/s], steer amplitude [rad], sine frequency [Hz], drift |β| centre [deg],
    #        drift β wobble amplitude [deg], drift β wobble frequency [Hz], drift hold [s])
    "train": (
        (8.0, 15.0),
        (0.04, 0.15),
        (0.3, 1.2),
        (27.0, 36.0),
        (0.0, 5.0),
        (0.05, 0.2),
        (9.0, 13.0),
    ),
    "heldout": (
        (10.0, 17.0),
        (0.03, 0.12),
        (0.8, 2.0),
        (26.0, 37.0),
        (2.0, 6.0),
        (0.2, 0.4),
        (5.0, 8.0),
    ),
}


def _segment(rng, kind, rate, mix, drift_speed):
    """Arrays (mode, steer, speed_ref, torque, beta_ref, manoeuvre) of one manoeuvre."""
    speeds, steer_amp, sine_f, beta_c, beta_a, beta_f, hold = _MIXES[mix]
    u = lambda lo_hi: rng.uniform(*lo_hi)
    side = rng.choice([-1.0, 1.0])
    parts = []  # (manoeuvre name, mode, duration [s], steer(t), speed_ref, torque, beta_ref(t))

    if kind == "grip_cornering":
        amp, dur = side * u(steer_amp), u((5.0, 8.0))
        steer = lambda t: amp * np.clip(np.minimum(t, dur - t), 0.0, 1.0)
        parts.append(("grip_cornering", MODE_SPEED, dur, steer, u(speeds), 0.0, None))
    elif kind == "step_steer":
        amp = side * u(steer_amp)
        parts.append(
            (
                "step_steer",
                MODE_SPEED,
                4.0,
                lambda t: amp * ((t >= 1) & (t < 3)),
                u(speeds),
                0.0,
                None,
            )
        )
    elif kind == "sine_steer":
        amp, f = u(steer_amp), u(sine_f)
        parts.append(
            (
                "sine_steer",
                MODE_SPEED,
                6.0,
                lambda t: amp * np.sin(2 * np.pi * f * t),
                u(speeds),
                0.0,
                None,
            )
        )
    elif kind == "speed_change":
        amp = side * 0.3 * u(steer_amp)
        parts.append(("speed_change", MODE_SPEED, 3.0, lambda t: amp + 0 * t, speeds[0], 0.0, None))
        parts.append(("speed_change", MODE_SPEED, 3.0, lambda t: amp + 0 * t, speeds[1], 0.0, None))
    elif kind == "drift":
        # Approach in a steady left (side = -1: β < 0) or right turn, power over, hold, exit.
        into_turn = -side * _ENTRY_STEER_RAD
        centre, wobble, f = u(beta_c), u(beta_a), u(beta_f)
        beta_ref = lambda t: side * np.radians(centre + wobble * np.sin(2 * np.pi * f * t))
        parts.append(
            (
                "grip_cornering",
                MODE_SPEED,
                2.0,
                lambda t: into_turn * np.minimum(t, 1.0),
                drift_speed,
                0.0,
                None,
            )
        )
        parts.append(
            (
                "drift_entry",
                MODE_POWER_OVER,
                2.0,
                lambda t: into_turn + 0 * t,
                drift_speed,
                _ENTRY_TORQUE_NM,
                beta_ref,
            )
        )
        parts.append(("drift", MODE_DRIFT, u(hold), None, drift_speed, 0.0, beta_ref))
        parts.append(("drift_exit", MODE_CATCH, 2.0, None, drift_speed, 0.0, None))
        parts.append(("grip_cornering", MODE_SPEED, 2.0, lambda t: 0 * t, drift_speed, 0.0, None))
    else:  # pragma: no cover - internal
        raise ValueError(kind)

    out = []
    t_drift = 0.0
    for name, mode, dur, steer, speed_ref, torque, beta_ref in parts:
        n = round(dur * rate)
        t = np.arange(n) / rate
        tb = t + t_drift if beta_ref is not None else t
        out.append(
            {
                "mode": np.full(n, mode, np.int32),
                "steer": steer(t).astype(float) if steer is not None else np.zeros(n),
                "speed_ref": np.full(n, speed_ref),
                "torque": np.full(n, torque),
                "beta_ref": beta_ref(tb) if beta_ref is not None else np.zeros(n),
                "manoeuvre": np.full(n, MANOEUVRES.index(name), np.int32),
            }
        )
        if beta_ref is not None:
            t_drift += dur
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def manoeuvre_programme(
    duration_s: float,
    *,
    rng: np.random.Generator,
    mix: str = "train",
    rate_hz: float = 100.0,
    drift_speed_mps: float = 10.0,
) -> dict[str, np.ndarray]:
    """A random driving programme of at least `duration_s`, cut to it: drifts alternate with
    grip manoeuvres (cornering, step and sine steer, speed changes). Returns per-step arrays
    `mode`, `steer` [rad], `speed_ref` [m/s], `torque` [N·m], `beta_ref` [rad], `manoeuvre`
    (index into MANOEUVRES) and `segment_start` (bool)."""
    if mix not in _MIXES:
        raise ValueError(f"`mix` must be one of {sorted(_MIXES)}, got {mix!r}.")
    n_total = round(duration_s * rate_hz)
    grip = ("grip_cornering", "step_steer", "sine_steer", "speed_change")
    segments, n = [], 0
    while n < n_total:
        kind = "drift" if len(segments) % 2 else grip[rng.integers(len(grip))]
        seg = _segment(rng, kind, rate_hz, mix, drift_speed_mps)
        seg["segment_start"] = np.arange(seg["mode"].shape[0]) == 0
        segments.append(seg)
        n += seg["mode"].shape[0]
    return {k: np.concatenate([s[k] for s in segments])[:n_total] for k in segments[0]}


# ---------------------------------------------------------------------------------------------
# Driving the plant through a programme: one jitted scan over the 100-Hz control steps.

#: The log's valid range of the plant: forward driving above this speed [m/s] (the dynamic
#: tyre model, and RK4's stability at 1 ms on the stiff wheel modes, need V well above 0) ...
VALID_MIN_SPEED_MPS = 4.0
#: ... and below this sideslip magnitude [rad] (60°: a spin-out, not a drift).
VALID_MAX_SIDESLIP_RAD = float(np.radians(60.0))


def in_valid_range(x: Float[Array, "9"]) -> Bool[Array, ""]:
    """True where the plant state is finite, V ≥ 4 m/s and |β| ≤ 60°."""
    return (
        jnp.all(jnp.isfinite(x))
        & (x[ISPEED] >= VALID_MIN_SPEED_MPS)
        & (jnp.abs(x[ISIDESLIP]) <= VALID_MAX_SIDESLIP_RAD)
    )


def _command(plant, stabiliser, x, s, latched, aborted):
    speed, beta, yaw_rate = x[ISPEED], x[ISIDESLIP], x[IYAWRATE]
    tau_speed = _SPEED_FEEDFORWARD_NM + _SPEED_GAIN_NMPS * (s["speed_ref"] - speed)
    # Drift exit: front wheels along their own velocity (α_f = 0), so the front axle stops
    # adding yaw moment while the rear, with little torque, regains grip.
    lf = plant.params.cg_to_front_m
    steer_catch = jnp.arctan2(speed * jnp.sin(beta) + lf * yaw_rate, speed * jnp.cos(beta))
    power_over = s["mode"] == MODE_POWER_OVER
    latched = latched | (power_over & (jnp.abs(beta) > _POWER_OVER_SWITCH_RAD))
    # A drift running away (|β| > 57°) is abandoned for the exit manoeuvre, as a driver would.
    aborted = aborted | (latched & (jnp.abs(beta) > _ABORT_SIDESLIP_RAD))
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
            jnp.stack([steer_catch, jnp.full_like(speed, _CATCH_TORQUE_NM)]),
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
    """
    if not isinstance(plant, DriftPlant):
        raise TypeError(f"`plant` must be a DriftPlant, got {type(plant).__name__}.")
    if not (isinstance(minutes, int | float) and np.isfinite(minutes) and minutes > 0):
        raise ValueError(f"`minutes` must be a finite duration > 0 [min], got {minutes!r}.")
    if mix not in _MIXES:
        raise ValueError(f"`mix` must be one of {sorted(_MIXES)}, got {mix!r}.")
    sensors = Sensors() if sensors is None else sensors
    period = 1.0 / sensors.rate_hz
    n_sub = round(period / dt_sim_s) if dt_sim_s > 0 else 0
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
