"""Held-out rollout metrics: RMSE of (r, V, β, ω_r) at fixed prediction horizons.

For a horizon H, the model is rolled out open loop from the measured state at a start sample
under the logged controls, and the error is taken at t0 + H. The RMSE is over start samples
spaced `stride_s` apart on unflagged data; the same starts (valid for the longest horizon) are
used for every horizon, so the columns of the table are comparable. A model that diverges
(non-finite rollout) gets an RMSE of inf, never a silently dropped window.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._data.log import DriveLog
from .._model.single_track import SingleTrackModel, rollout_substeps
from .identify import window_starts

HORIZONS_S = (0.5, 1.0, 2.0)
STATE_LABELS = ("r [rad/s]", "V [m/s]", "beta [deg]", "omega_r [rad/s]")


def rollout_errors(
    model: SingleTrackModel,
    log: DriveLog,
    *,
    horizons_s=HORIZONS_S,
    stride_s: float = 0.25,
    substeps: int = 2,
    max_windows: int = 512,
    min_abs_beta_rad: float = 0.0,
) -> dict[float, np.ndarray]:
    """Per-window errors ŷ − y at each horizon: {H [s]: (n_windows, 4)}.

    `min_abs_beta_rad` keeps only windows that start with |β| ≥ it (e.g. 15° for drift data).
    """
    if not isinstance(log, DriveLog):
        raise TypeError(f"`log` must be a DriveLog, got {type(log).__name__}.")
    dt = float(np.median(np.diff(log.time_s)))
    steps = {h: round(h / dt) for h in horizons_s}
    if min(steps.values()) < 1:
        raise ValueError(f"every horizon must be >= one sample ({dt} s), got {horizons_s!r}.")
    h_max = max(steps.values())
    starts = window_starts(log.flags, 0, log.n_samples, h_max)
    starts = starts[np.abs(np.asarray(log.state)[starts, 2]) >= min_abs_beta_rad]
    starts = starts[:: max(1, round(stride_s / dt))]
    if starts.size == 0:
        raise ValueError(
            f"the log has no unflagged stretch of {h_max * dt:.2f} s starting "
            f"with |beta| >= {min_abs_beta_rad} rad."
        )
    starts = starts[np.linspace(0, starts.size - 1, min(max_windows, starts.size)).astype(int)]
    idx = starts[:, None] + np.arange(h_max + 1)[None, :]
    y = np.asarray(log.state)[idx]
    u = jnp.asarray(np.asarray(log.control)[idx[:, :-1]])
    y_hat = np.asarray(
        rollout_substeps(model, jnp.asarray(y[:, 0]), u, jnp.asarray(dt), "rk4", substeps)
    )
    return {h: y_hat[:, k] - y[:, k] for h, k in steps.items()}


def rollout_rmse(model: SingleTrackModel, log: DriveLog, **kwargs) -> dict[float, np.ndarray]:
    """RMSE of (r, V, β, ω_r) at each horizon: {H [s]: (4,)}, inf if any rollout diverged."""
    out = {}
    for h, err in rollout_errors(model, log, **kwargs).items():
        out[h] = (
            np.sqrt(np.mean(err**2, axis=0)) if np.all(np.isfinite(err)) else np.full(4, np.inf)
        )
    return out


def format_rmse_table(results: dict[str, dict[float, np.ndarray]]) -> str:
    """A text table: one row per (model, horizon), columns r, V, β [deg], ω_r."""
    head = f"{'model':<16}{'H [s]':>6}" + "".join(f"{s:>17}" for s in STATE_LABELS)
    lines = [head, "-" * len(head)]
    for name, by_h in results.items():
        for h, rmse in by_h.items():
            vals = np.asarray(rmse, float).copy()
            vals[2] = np.degrees(vals[2])
            lines.append(f"{name:<16}{h:>6.2f}" + "".join(f"{v:>17.4g}" for v in vals))
    return "\n".join(lines)
