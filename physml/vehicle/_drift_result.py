"""What a drift run gives back: `DriftRunResult` (one model in closed loop on one path, its
metrics and JSON summary) and its one-line and tabular text forms (`physml drift`, the
robustness matrix). Split from `_drift_run.py`, which runs the pipeline."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import jax
import numpy as np

from ._control.closed_loop import ClosedLoopResult
from ._control.paths import AbstractPath
from ._model.single_track import SingleTrackModel
from ._plant.actuators import Actuators
from ._plant.dynamics import ISIDESLIP, ISPEED, IX, IY


@dataclasses.dataclass
class DriftRunResult:
    """One model in closed loop on one path.

    Attributes:
        label: "nominal" or the identified tyre's name (one of `TIRES`).
        path_name: the path's `name` ("donut", "figure8", ...).
        path: the path driven.
        model: the single-track model the MPC used.
        closed_loop: the `simulate` result, or None if no closed loop could run (`error`).
        identification: `identify`'s report (None for the nominal model).
        error: why no closed loop ran (e.g. the model has no drift equilibrium on the path).
        wall_time_s: wall time of each stage [s] ("identify", "mpc", "simulate").
        bridged_fraction: share of the lap where the MPC's reference was interpolated because
            the model has no drift equilibrium there (`DriftReference.bridged_fraction`).
        actuators: the input limits the MPC respected (`plant.actuators`), for the plots;
            None: unknown (`plot_drift` then assumes the default `Actuators()`).
        front_slip_limit_rad: the front slip angle |α_f| [rad] beyond which the MPC's plan paid
            (`MPCWeights.front_slip_limit_rad`; inf: no envelope).
    """

    label: str
    path_name: str
    path: AbstractPath
    model: SingleTrackModel
    closed_loop: ClosedLoopResult | None
    identification: dict | None = None
    error: str | None = None
    wall_time_s: dict = dataclasses.field(default_factory=dict)
    bridged_fraction: float = 0.0
    actuators: Actuators | None = None
    front_slip_limit_rad: float = math.inf

    @property
    def ok(self) -> bool:
        """The closed loop ran for the whole duration (on an open path: to its end) without a
        stop (spin-out etc.)."""
        return self.closed_loop is not None and self.closed_loop.stop is None

    @property
    def metrics(self) -> dict:
        """The closed-loop metrics (see `simulate`) plus `laps` (arc length covered / one lap),
        `time_in_drift_s`, solve times in ms, and `spin_out`, `stop_time_s`, `stop_reason`."""
        if self.closed_loop is None:
            return {"spin_out": True, "stop_time_s": 0.0, "stop_reason": self.error}
        res = self.closed_loop
        m = dict(res.metrics)
        # The rows before `duration_s` (all of them for `simulate`'s record, which ends at a
        # stop; also a record of one row, a stop at the first step).
        n_valid = max(int(np.searchsorted(res.time_s, m["duration_s"] - 1e-9)), 1)
        s = res.path_state[:n_valid, 2]
        m["laps"] = float((s[-1] - s[0]) / self.path.length_m)
        # The record ends at a stop: drift_fraction is over the steps before it only.
        m["time_in_drift_s"] = m["drift_fraction"] * m["duration_s"]
        m["solve_time_median_ms"] = 1e3 * m.pop("solve_time_median_s")
        m["solve_time_p99_ms"] = 1e3 * m.pop("solve_time_p99_s")
        m["spin_out"] = res.stop is not None
        m["stop_time_s"] = None if res.stop is None else res.stop["time_s"]
        m["stop_reason"] = None if res.stop is None else res.stop["reason"]
        if res.stop is not None:
            x = np.asarray(res.stop["state"])
            m["stop_state"] = {
                "speed_mps": float(x[ISPEED]),
                "sideslip_deg": float(np.degrees(x[ISIDESLIP])),
                "x_m": float(x[IX]),
                "y_m": float(x[IY]),
            }
        return m

    def summary(self) -> dict:
        """A JSON-able summary: label, path, the MPC's front-slip envelope [deg] (None: none),
        metrics, identification report, wall times."""
        out = {
            "label": self.label,
            "path": self.path_name,
            "ok": self.ok,
            "error": self.error,
            "reference_bridged_fraction": self.bridged_fraction,
            # None (JSON null): no envelope.
            "front_slip_limit_deg": _jsonable(math.degrees(self.front_slip_limit_rad)),
            "metrics": _jsonable(self.metrics),
            "wall_time_s": {k: round(v, 2) for k, v in self.wall_time_s.items()},
        }
        if self.identification is not None:
            out["identification"] = _jsonable(
                {k: v for k, v in self.identification.items() if k != "scale"}
            )
        return out


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray | np.generic | jax.Array):
        return _jsonable(np.asarray(obj).tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN / inf
    return obj


def summary_line(run: DriftRunResult) -> str:
    if run.closed_loop is None:
        return f"no closed loop: {run.error}"
    m = run.metrics
    stop = "" if run.ok else f", STOPPED at {m['stop_time_s']:.2f} s: {m['stop_reason']}"
    bridged = ""
    if run.bridged_fraction > 0:
        bridged = f" (reference bridged over {100 * run.bridged_fraction:.1f} % of the lap)"
    return (
        f"{m['duration_s']:.1f} s, {m['laps']:.2f} laps, lateral RMSE {m['lateral_rmse_m']:.3f} m, "
        f"sideslip RMSE {m['sideslip_rmse_deg']:.2f} deg{stop}{bridged}"
    )


_COLUMNS = (
    ("model", "{}"),
    ("time [s]", "{:.1f}"),
    ("laps", "{:.2f}"),
    ("e RMSE [m]", "{:.3f}"),
    ("e max [m]", "{:.3f}"),
    ("β RMSE [°]", "{:.2f}"),
    ("in drift [s]", "{:.1f}"),
    ("solve med [ms]", "{:.1f}"),
    ("solve p99 [ms]", "{:.1f}"),
    ("spin-out", "{}"),
)


def _cell(fmt: str, value) -> str:
    # An untimed run (`time_solves=False`) has NaN solve times: shown as "-", like no value.
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return fmt.format(value)


def format_drift_table(results: Mapping[str, DriftRunResult]) -> str:
    """One row per model: duration, laps, lateral error RMSE / max, sideslip RMSE, time in
    drift (until a stop), solve time median / p99 ("-" when not timed), and the stop (time and
    reason) if any."""
    rows = []
    for label, run in results.items():
        m = run.metrics
        if run.closed_loop is None:
            rows.append([label] + ["-"] * (len(_COLUMNS) - 2) + [f"no reference: {run.error}"])
            continue
        stop = "no" if run.ok else f"at {m['stop_time_s']:.2f} s ({m['stop_reason']})"
        values = [
            label,
            m["duration_s"],
            m["laps"],
            m["lateral_rmse_m"],
            m["lateral_max_m"],
            m["sideslip_rmse_deg"],
            m["time_in_drift_s"],
            m["solve_time_median_ms"],
            m["solve_time_p99_ms"],
            stop,
        ]
        rows.append([_cell(fmt, v) for (_, fmt), v in zip(_COLUMNS, values, strict=True)])
    header = [name for name, _ in _COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


__all__ = ["DriftRunResult", "format_drift_table", "summary_line"]
