"""The test driver's manoeuvres: random programmes of grip and drift manoeuvres for `collect`.

A programme is a sequence of segments (grip cornering, step and sine steer, speed changes,
power-over drift initiation, sustained drifts with counter-steer, drift exits); each gives, per
100-Hz control step, a controller mode and its references. Two mixes: "train" and "heldout"
(other speeds, steering frequencies, drift wobbles and hold times, to test generalisation).
"""

from __future__ import annotations

import numpy as np

# Controller modes of a programme step:
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
POWER_OVER_SWITCH_RAD = float(np.radians(6.0))
ENTRY_STEER_RAD = 0.3
ENTRY_TORQUE_NM = 2500.0
ABORT_SIDESLIP_RAD = float(np.radians(57.0))
SPEED_GAIN_NMPS = 600.0  # speed controller: N·m per m/s of speed error
SPEED_FEEDFORWARD_NM = 150.0  # about the rolling resistance of the plant's tyres at 10 m/s
CATCH_TORQUE_NM = 300.0

MIXES = {
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
    speeds, steer_amp, sine_f, beta_c, beta_a, beta_f, hold = MIXES[mix]
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
        into_turn = -side * ENTRY_STEER_RAD
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
                ENTRY_TORQUE_NM,
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
    if mix not in MIXES:
        raise ValueError(f"`mix` must be one of {sorted(MIXES)}, got {mix!r}.")
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
