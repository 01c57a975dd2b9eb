"""Figure: the three-minute identification log (β, r, V, ω_r and the inputs δ, τ vs time).

Run: python paper_figures/vehicle_data.py [out_dir]   (default paper_figures/out/)
Writes vehicle_data.png (whole log) and vehicle_data_zoom.png (the first drift) and returns
their paths with the log.
"""

from __future__ import annotations

import pathlib
import sys

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from physml.vehicle import MANOEUVRES, DriftPlant, collect

DRIFTING = {MANOEUVRES.index(m) for m in ("drift_entry", "drift", "drift_exit")}


def _plot(log, window, path):
    t = log.time_s
    keep = (t >= window[0]) & (t < window[1])
    t = t[keep]
    rows = [
        ("β [deg]", np.degrees(log.state[keep, 2]), np.degrees(log.state_true[keep, 2])),
        ("r [rad/s]", log.state[keep, 0], log.state_true[keep, 0]),
        ("V [m/s]", log.state[keep, 1], log.state_true[keep, 1]),
        ("ω_r [rad/s]", log.state[keep, 3], log.state_true[keep, 3]),
        ("δ [rad]", log.control[keep, 0], None),
        ("τ [N·m]", log.control[keep, 1], None),
    ]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 11), sharex=True)
    drifting = np.isin(log.manoeuvre[keep], list(DRIFTING))
    flagged = log.flags[keep] != 0
    for ax, (label, measured, true) in zip(axes, rows, strict=True):
        ax.fill_between(
            t,
            0,
            1,
            where=drifting,
            transform=ax.get_xaxis_transform(),
            color="tab:orange",
            alpha=0.12,
            lw=0,
        )
        ax.plot(t, measured, lw=0.6, color="tab:blue", label="measured")
        if true is not None:
            ax.plot(t, true, lw=0.6, color="k", alpha=0.6, label="true")
        if flagged.any():
            ax.plot(t[flagged], measured[flagged], "rx", ms=4, label="flagged")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axhline(15, color="gray", ls=":", lw=0.8)
    axes[0].axhline(-15, color="gray", ls=":", lw=0.8)
    axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1].set_xlabel("time [s]  (shaded: drift entry, hold and exit)")
    fig.suptitle("CommonRoad vehicle 2 plant, 100 Hz log, sensor noise at GNSS/INS level")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(seed: int = 0, minutes: float = 3.0, out: str = "paper_figures/out/"):
    out_dir = pathlib.Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = collect(DriftPlant(), minutes, key=jax.random.key(seed))
    good = log.flags == 0
    drift_s = np.sum(good & (np.abs(log.state_true[:, 2]) > np.radians(15))) / 100
    print(
        f"{log.duration_s:.1f} s logged, {drift_s:.1f} s with |β| > 15°, "
        f"{int(np.sum(~good))} flagged samples"
    )
    whole = out_dir / "vehicle_data.png"
    _plot(log, (log.time_s[0], log.time_s[-1] + 1), whole)
    first = np.flatnonzero(np.isin(log.manoeuvre, list(DRIFTING)))
    start = log.time_s[first[0]] - 2.0 if first.size else 0.0
    zoom = out_dir / "vehicle_data_zoom.png"
    _plot(log, (start, start + 20.0), zoom)
    return {"figures": [str(whole), str(zoom)], "log": log, "drift_seconds": drift_s}


if __name__ == "__main__":
    main(out=sys.argv[1] if len(sys.argv) > 1 else "paper_figures/out/")
