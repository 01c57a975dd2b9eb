"""Figures of a drift run (`run_drift`): the car's track over the path with heading arrows; the
sideslip, lateral error, speed, yaw rate, rear wheel speed and commands (with their limits) over
time; and several models compared on one path.

The figures are `matplotlib.figure.Figure` objects built without pyplot, so no backend is
chosen or switched here: save them (`file=`) or show them in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ._control.closed_loop import ClosedLoopResult
from ._drift_result import DriftRunResult, summary_line
from ._plant.actuators import Actuators
from ._plant.dynamics import IOMEGAR, ISIDESLIP, ISPEED, ISTEER, IX, IY, IYAW, IYAWRATE
from ._plant.envelope import VALID_MIN_SPEED_MPS


def _valid(res: ClosedLoopResult) -> slice:
    period = float(res.time_s[1] - res.time_s[0]) if res.time_s.size > 1 else 1.0
    return slice(0, max(round(res.metrics["duration_s"] / period), 1))


def plot_trajectory(ax, run: DriftRunResult, *, arrows: int = 40, color: str = "tab:blue"):
    """The car's path on the ground plane [m] over the reference path, with arrows along the
    car's heading ψ every few steps of its last lap (the angle between arrow and track is the
    sideslip)."""
    res = run.closed_loop
    track = np.asarray(run.path.ground_track(800))
    ax.plot(track[:, 0], track[:, 1], "k--", lw=0.8, label="path")
    if res is None:
        ax.set_title(f"{run.label}: no closed loop")
        return ax
    x = res.plant_state[_valid(res)]
    ax.plot(x[:, IX], x[:, IY], color=color, lw=1.0, label=f"{run.label}")
    # Arrows over the last lap only, so that laps do not stack their arrows on each other.
    laps = max(run.metrics["laps"], 1.0)
    last = x[-max(round(len(x) / laps), 2) :]
    a = last[:: max(len(last) // arrows, 1)]
    ax.quiver(
        a[:, IX], a[:, IY], np.cos(a[:, IYAW]), np.sin(a[:, IYAW]),
        color=color, angles="xy", scale_units="xy", scale=0.5, width=0.004, alpha=0.8,
    )  # fmt: skip
    if res.stop is not None:
        ax.plot(x[-1, IX], x[-1, IY], "rx", ms=10, mew=2, label="stop")
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    return ax


def plot_drift(run: DriftRunResult, file: str | Path | None = None):
    """The closed loop of one model: trajectory with heading arrows; over time, sideslip β and
    lateral error e against their references, speed V (with the 4 m/s stall line), yaw rate
    r, rear wheel speed ω_r, and the commands δ and τ with their limits (the run's
    `actuators`, default `Actuators()`; the applied steering angle beside its command).
    Returns the figure and saves it to `file` if given."""
    fig = Figure(figsize=(13, 12))
    grid = fig.add_gridspec(7, 2, width_ratios=(1.0, 1.3))
    plot_trajectory(fig.add_subplot(grid[:, 0]), run)
    axes = [fig.add_subplot(grid[i, 1]) for i in range(7)]
    for ax in axes[1:]:
        ax.sharex(axes[0])
    res = run.closed_loop
    if res is not None:
        act = Actuators() if run.actuators is None else run.actuators
        v = _valid(res)
        t = res.time_s[v]
        x = res.plant_state[v]
        steer, torque = (act.steer_max_rad,), (act.torque_min_nm, act.torque_max_nm)
        rows = [
            ("β [deg]", np.degrees(x[:, ISIDESLIP]), np.degrees(res.sideslip_ref[v]), ()),
            ("e [m]", res.path_state[v, 0], np.zeros_like(t), ()),
            ("V [m/s]", x[:, ISPEED], None, (VALID_MIN_SPEED_MPS,)),
            ("r [rad/s]", x[:, IYAWRATE], None, ()),
            ("ω_r [rad/s]", x[:, IOMEGAR], None, ()),
            ("δ [rad]", res.command[v, 0], None, (-steer[0], steer[0])),
            ("τ [N·m]", res.command[v, 1], None, torque),
        ]
        for ax, (label, value, ref, limits) in zip(axes, rows, strict=True):
            ax.plot(t, value, lw=0.9, label="command" if label.startswith("δ") else "plant")
            if ref is not None:
                ax.plot(t, ref, "k--", lw=0.8, label="reference")
            for limit in limits:
                ax.axhline(limit, color="tab:gray", ls=":", lw=1.0, label="limit")
            if res.stop is not None:
                ax.axvline(res.stop["time_s"], color="r", lw=0.8)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[5].plot(t, x[:, ISTEER], lw=0.8, color="tab:orange", label="applied")
        axes[0].legend(loc="best", fontsize=8)
        handles = {h.get_label(): h for h in axes[5].get_legend_handles_labels()[0]}
        axes[5].legend(handles.values(), handles.keys(), loc="best", fontsize=8)
        axes[-1].set_xlabel("time [s]")
    fig.suptitle(f"{run.label} on the {run.path_name}: {summary_line(run)}", fontsize=10)
    fig.tight_layout()
    if file is not None:
        fig.savefig(file, dpi=120)
    return fig


def plot_comparison(results: Mapping[str, DriftRunResult], file: str | Path | None = None):
    """Several models on one path: trajectories, then β − β_ref and e over time."""
    fig = Figure(figsize=(13, 6))
    grid = fig.add_gridspec(2, 2, width_ratios=(1.0, 1.3))
    ax_xy = fig.add_subplot(grid[:, 0])
    ax_b, ax_e = fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, 1], sharex=None)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    for (label, run), color in zip(results.items(), colors, strict=False):
        plot_trajectory(ax_xy, run, arrows=20, color=color)
        res = run.closed_loop
        if res is None:
            continue
        v = _valid(res)
        t = res.time_s[v]
        dbeta = np.degrees(res.plant_state[v, ISIDESLIP] - res.sideslip_ref[v])
        ax_b.plot(t, dbeta, color=color, lw=0.9, label=label)
        ax_e.plot(t, res.path_state[v, 0], color=color, lw=0.9, label=label)
        if res.stop is not None:
            for ax in (ax_b, ax_e):
                ax.axvline(res.stop["time_s"], color=color, ls=":", lw=1.0)
    handles = {h.get_label(): h for h in ax_xy.get_legend_handles_labels()[0]}
    ax_xy.legend(handles.values(), handles.keys(), fontsize=8, loc="upper right")
    ax_b.set_ylabel("β − β_ref [deg]")
    ax_e.set_ylabel("e [m]")
    ax_e.set_xlabel("time [s]")
    ax_b.legend(fontsize=8)
    for ax in (ax_b, ax_e):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if file is not None:
        fig.savefig(file, dpi=120)
    return fig


__all__ = ["plot_comparison", "plot_drift", "plot_trajectory"]
