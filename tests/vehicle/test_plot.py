"""`physml.vehicle.plot`: the drift figure shows what a stall or a spin-out looks like (speed,
yaw rate, rear wheel speed) and the input limits, on a made-up run (no simulation)."""

import jax
import numpy as np
import pytest
from matplotlib.figure import Figure

from physml.vehicle import (
    IOMEGAR,
    ISIDESLIP,
    ISPEED,
    IX,
    IY,
    IYAW,
    Actuators,
    ClosedLoopResult,
    DriftPlant,
    DriftRunResult,
    MPCStatus,
)
from physml.vehicle._drift_run import make_path, nominal_model
from physml.vehicle.plot import plot_drift


def _run(actuators):
    path = make_path("donut")
    n, period = 20, 0.05
    t = np.arange(n) * period
    s = 10.0 * t
    poses = np.stack([np.asarray(path.pose(si)) for si in s])
    x = np.zeros((n, 9))
    x[:, IX], x[:, IY], x[:, IYAW] = poses[:, 0], poses[:, 1], poses[:, 2]
    x[:, ISIDESLIP], x[:, ISPEED], x[:, IOMEGAR] = -0.5, np.linspace(10.0, 4.5, n), 40.0
    metrics = {
        "duration_s": n * period, "lateral_rmse_m": 0.1, "lateral_max_m": 0.2,
        "sideslip_rmse_deg": 1.0, "drift_fraction": 1.0, "iterations_mean": 3.0,
        "n_fallback": 0, "max_violation": 0.0, "solve_time_median_s": np.nan,
        "solve_time_p99_s": np.nan,
    }  # fmt: skip
    status = jax.vmap(lambda _: MPCStatus.converged)(np.zeros(n))
    res = ClosedLoopResult(
        t, x, np.stack([np.zeros(n), np.zeros(n), s], axis=1), np.zeros((n, 7)),
        np.zeros((n, 2)), np.full(n, -0.5), np.zeros(n), np.zeros(n), status, np.zeros(n),
        np.zeros(0), None, metrics,
    )  # fmt: skip
    model = nominal_model(DriftPlant(), key=jax.random.key(0))
    return DriftRunResult("nominal", "donut", path, model, res, actuators=actuators)


@pytest.mark.parametrize("actuators", [None, Actuators(steer_max_rad=0.75)])
def test_drift_figure_shows_speed_yaw_rate_wheel_speed_and_input_limits(actuators):
    fig = plot_drift(_run(actuators))
    assert isinstance(fig, Figure)
    by_label = {ax.get_ylabel(): ax for ax in fig.axes if ax.get_ylabel()}
    assert {"V [m/s]", "r [rad/s]", "ω_r [rad/s]", "δ [rad]", "τ [N·m]"} <= set(by_label)
    np.testing.assert_allclose(
        by_label["V [m/s]"].lines[0].get_ydata(), _run(None).closed_loop.plant_state[:, ISPEED]
    )
    act = Actuators() if actuators is None else actuators

    def horizontal(ax):
        return sorted(
            float(line.get_ydata()[0]) for line in ax.lines if line.get_label() == "limit"
        )

    assert horizontal(by_label["δ [rad]"]) == pytest.approx([-act.steer_max_rad, act.steer_max_rad])
    assert horizontal(by_label["τ [N·m]"]) == pytest.approx([act.torque_min_nm, act.torque_max_nm])
    assert horizontal(by_label["V [m/s]"]) == pytest.approx([4.0])
