"""The closed loop: the drift MPC with a nominal model holding the plant in a drift."""

import jax
import numpy as np
import pytest

from physml.vehicle import (
    ISIDESLIP,
    Donut,
    DriftMPC,
    DriftPlant,
    Fiala,
    FigureEight,
    MPCStatus,
    SingleTrackModel,
    StopReason,
    TabulatedPath,
    params_from_plant,
    simulate,
)
from physml.vehicle._control import closed_loop

PATH = Donut(11.0, np.radians(30.0))


@pytest.fixture(scope="module")
def setup():
    plant = DriftPlant()
    # Nominal model: the plant's measured mass, inertias and geometry with default Fiala tyres
    # (friction-circle coupling pinned); not identified, so it does not match the plant's tyres.
    tyre = Fiala(coupling="friction_circle")
    model = SingleTrackModel(params_from_plant(plant), tyre, tyre)
    mpc = DriftMPC.from_path(model, PATH, max_iterations=5, wheel_speed="quasi_steady")
    return plant, mpc


def test_plant_stays_in_drift_on_the_donut(setup):
    plant, mpc = setup
    res = simulate(plant, mpc, PATH, 2.0, key=jax.random.key(0), time_solves=False)
    assert res.stop is None, res.stop
    m = res.metrics
    assert m["duration_s"] == pytest.approx(2.0)
    assert m["drift_fraction"] == 1.0
    assert m["lateral_max_m"] < 0.5, m
    assert m["sideslip_rmse_deg"] < 5.0, m
    assert m["n_fallback"] == 0 and m["max_violation"] <= 1e-9
    assert res.plant_state.shape == (40, 9) and res.measurement.shape == (40, 7)
    assert not np.any(np.asarray(res.status == MPCStatus.nonfinite_fallback))
    # The car went round: s grew at about V (≈ 10 m/s).
    assert 15.0 < res.path_state[-1, 2] < 25.0
    # Drift convention on a left donut: β < 0.
    assert np.all(res.plant_state[:, ISIDESLIP] < 0)


def test_a_stop_is_reported_with_time_state_and_reason(setup):
    plant, mpc = setup
    # A 2-cm corridor: the car "leaves the path" within a few steps; the run stops there.
    res = simulate(
        plant, mpc, PATH, 2.0, key=jax.random.key(1), max_lateral_error_m=0.02, time_solves=True
    )
    assert res.stop is not None
    assert res.stop["reason"] == StopReason[StopReason.left_path]
    assert res.stop["reason"] == "left the path: |lateral error| too large"  # as serialised
    assert 0 < res.stop["time_s"] < 2.0
    assert res.stop["state"].shape == (9,)
    assert res.metrics["duration_s"] <= res.stop["time_s"] + 1e-9
    # The record ends at the last step that ran; the stop state is the one it was applied to.
    i = round(res.stop["time_s"] / 0.05)
    assert res.plant_state.shape == (i, 9) and res.time_s.shape == res.command.shape[:1] == (i,)
    np.testing.assert_array_equal(res.stop["state"], res.plant_state[-1])
    assert res.solve_time_s.size == round(res.metrics["duration_s"] / 0.05)
    assert np.isfinite(res.metrics["solve_time_median_s"])


def test_a_run_that_stops_is_not_simulated_to_the_end(setup, monkeypatch):
    # Chunks of 0.5 s over 3 s: the run stops within 0.5 s (a 3-mm corridor), so one chunk runs,
    # not six; and the result is the same as one scan over the whole duration (today's run).
    plant, mpc = setup
    calls = []
    run = closed_loop._run

    def counted(*args):
        calls.append(args[8].shape[0])  # the chunk's keys
        return run(*args)

    monkeypatch.setattr(closed_loop, "_run", counted)
    common = dict(key=jax.random.key(1), max_lateral_error_m=0.003, time_solves=False)
    res = simulate(plant, mpc, PATH, 3.0, chunk_s=0.5, **common)
    assert calls == [10]
    one = simulate(plant, mpc, PATH, 3.0, chunk_s=3.0, **common)
    assert calls == [10, 60]
    assert res.stop is not None and res.stop["time_s"] == one.stop["time_s"] < 0.5
    assert res.stop["reason"] == one.stop["reason"]
    n = round(res.stop["time_s"] / 0.05)
    for a, b in ((res.plant_state, one.plant_state), (res.command, one.command)):
        assert a.shape[0] == b.shape[0] == n
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(res.stop["state"], one.stop["state"])
    finite = {k: v for k, v in res.metrics.items() if not k.startswith("solve_time")}
    assert finite == {k: one.metrics[k] for k in finite}


def test_chunks_do_not_change_a_run_without_a_stop(setup):
    # 0.35 s chunks (7 steps) over 1 s: three chunks, the last one padded and cut off.
    plant, mpc = setup
    whole = simulate(plant, mpc, PATH, 1.0, key=jax.random.key(0), time_solves=False)
    chunked = simulate(
        plant, mpc, PATH, 1.0, key=jax.random.key(0), time_solves=False, chunk_s=0.35
    )
    assert whole.stop is None and chunked.stop is None
    for name in ("plant_state", "path_state", "measurement", "command", "cost"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    assert chunked.plant_state.shape == (20, 9)


def test_a_run_on_an_open_path_ends_at_its_end(setup):
    """An open 25-m arc of the donut's circle at about 10 m/s: a 4-s run ends when the car
    reaches s = 25 m, with no stop (not a failure) and metrics over the steps on the path;
    a failure on the way is still a stop."""
    plant, mpc = setup
    s = np.linspace(0.0, 25.0, 51)
    arc = TabulatedPath(s, np.full(51, 1 / 11.0), np.full(51, -np.radians(30.0)), closed=False)
    mpc_arc = DriftMPC.from_path(mpc.model, arc, max_iterations=5, wheel_speed="quasi_steady")
    res = simulate(plant, mpc_arc, arc, 4.0, key=jax.random.key(0), time_solves=False)
    assert res.stop is None
    n = res.time_s.size
    assert res.metrics["duration_s"] == pytest.approx(n * 0.05) and 2.0 < n * 0.05 < 3.0
    assert res.path_state[-1, 2] < 25.0 <= res.path_state[-1, 2] + 0.05 * 12.0
    assert res.plant_state.shape == (n, 9)
    failed = simulate(
        plant, mpc_arc, arc, 4.0, key=jax.random.key(1), max_lateral_error_m=0.003,
        time_solves=False,
    )  # fmt: skip
    assert failed.stop is not None
    assert failed.stop["reason"] == StopReason[StopReason.left_path]


def test_bad_input_is_reported(setup):
    plant, mpc = setup
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="control_rate_hz"):
        simulate(plant, mpc, PATH, 1.0, key=key, control_rate_hz=50.0)
    with pytest.raises(ValueError, match="dt_sim_s"):
        simulate(plant, mpc, PATH, 1.0, key=key, dt_sim_s=0.003)
    with pytest.raises(ValueError, match="duration_s"):
        simulate(plant, mpc, PATH, -1.0, key=key)
    with pytest.raises(ValueError, match="chunk_s"):
        simulate(plant, mpc, PATH, 1.0, key=key, chunk_s=0.0)
    with pytest.raises(ValueError, match="controller's"):
        simulate(plant, mpc, FigureEight(11.0, 0.5), 1.0, key=key)
    with pytest.raises(TypeError, match="DriftPlant"):
        simulate("plant", mpc, PATH, 1.0, key=key)


@pytest.mark.slow  # a 30-s closed loop: several minutes on a loaded 2-core box
@pytest.mark.xfail(
    strict=True,
    reason="known open problem: the MPC does not complete the sideslip reversal. With the "
    "nominal model it brakes through the reversal and stalls after about half a lap; with the "
    "soft speed floor (MPCWeights.speed_floor_margin_mps = 2, as run_drift uses) the car does "
    "not stall but fails to enter the opposite drift and leaves the path (~0.54 laps); see "
    "docs/notes/2026-12-01-drift-mpc-findings.md",
)
def test_figure_eight_two_laps_without_spin_out():
    plant = DriftPlant()
    tyre = Fiala(coupling="friction_circle")
    model = SingleTrackModel(params_from_plant(plant), tyre, tyre)
    path = FigureEight(11.0, np.radians(30.0), transition_m=12.0)
    mpc = DriftMPC.from_path(model, path, max_iterations=5, wheel_speed="quasi_steady")
    res = simulate(plant, mpc, path, 30.0, key=jax.random.key(0), time_solves=False)
    assert res.stop is None, res.stop
    # Two laps = 8πR of arc; the sideslip follows its reversals.
    assert res.path_state[-1, 2] - res.path_state[0, 2] >= 2 * path.length_m
    assert res.metrics["sideslip_rmse_deg"] < 5.0, res.metrics
