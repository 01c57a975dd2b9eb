"""`physml drift` and the drift part of `physml demo`: argument errors, and a tiny end-to-end
run (half a minute of data, a few identification steps, a couple of seconds of closed loop)
that must write its JSON summary and plots."""

import dataclasses
import functools
import json

import jax
import numpy as np
import pytest

from physml.cli import build_parser, main
from physml.vehicle import (
    ISIDESLIP,
    IX,
    IY,
    IYAW,
    ClosedLoopResult,
    Donut,
    DriftPlant,
    DriftRunResult,
    FigureEight,
    MPCStatus,
    MPCWeights,
    StopReason,
    _cli,
    _drift_run,
    drive,
    run_drift,
)
from physml.vehicle._cli import drift as drift_cli
from physml.vehicle._drift_run import NOMINAL, make_path, nominal_model


@pytest.mark.parametrize(
    "argv, message",
    [
        (["drift", "--path", "oval"], "invalid choice: 'oval'"),
        (["drift", "--tire", "slick"], "invalid choice: 'slick'"),
        (["drift", "--minutes", "-1"], "must be > 0, got '-1'"),
        (["drift", "--minutes", "three"], "expected a float > 0, got 'three'"),
        (["drift", "--duration", "0"], "must be > 0, got '0'"),
        (["drift", "--steps", "2.5"], "expected a int > 0, got '2.5'"),
        (["drift", "--bridge", "-1"], "must be >= 0 m, got '-1'"),
        (["drift", "--bridge", "inf"], "must be >= 0 m, got 'inf'"),
        (["drift", "--bridge", "far"], "expected a float >= 0 m, got 'far'"),
    ],
)
def test_bad_arguments_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_parser_defaults_are_the_headline_run():
    args = build_parser().parse_args(["drift"])
    assert (args.path, args.tire, args.minutes, args.duration, args.seed) == (
        "donut",
        "neural_exptanh",
        3.0,
        60.0,
        0,
    )
    assert not args.compare and args.out is None


def test_paths_and_library_errors():
    assert isinstance(make_path("donut"), Donut)
    eight = make_path("figure8", radius_m=9.0, sideslip_deg=25.0)
    assert isinstance(eight, FigureEight) and eight.radius_m == 9.0
    with pytest.raises(ValueError, match="`path` must be one of"):
        make_path("oval")
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="got 'slick'"):
        run_drift("donut", key=key, tires=["slick"])
    with pytest.raises(ValueError, match="`duration_s`"):
        run_drift("donut", key=key, tires=[NOMINAL], duration_s=-1.0)


def test_bad_mpc_options_raise_before_any_work(monkeypatch):
    # A bad option is the caller's error, not a "no reference" row: it raises before the log
    # is collected (and before any model is fitted or reference solved).
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(_drift_run, "collect", no_work)
    monkeypatch.setattr(_drift_run, "fit_model", no_work)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`max_iterations` must be an int >= 1, got 0"):
        run_drift("donut", key=key, mpc_options={"max_iterations": 0})
    with pytest.raises(ValueError, match=r"Unknown MPC option\(s\) \['max_iter'\]"):
        run_drift("donut", key=key, mpc_options={"max_iter": 3})
    with pytest.raises(ValueError, match="`bridge_m`"):
        run_drift("donut", key=key, mpc_options={"bridge_m": -1.0})
    with pytest.raises(ValueError, match="`wheel_speed`"):
        run_drift("donut", key=key, wheel_speed="estimated")
    # `drive` too: a ValueError, not a result with `error` set.
    plant = DriftPlant()
    model = nominal_model(plant, key=key)
    with pytest.raises(ValueError, match="max_iterations"):
        drive(
            "x", model, plant, make_path("donut"), 1.0, key=key, mpc_options={"max_iterations": 0}
        )


def test_tiny_run_writes_summary_and_plots_and_the_demo_drives(tmp_path, monkeypatch):
    # One test, not a module fixture shared by two: the demo's closed loop reuses the programs
    # the tiny run compiled (≈ 60 s), and pytest-xdist would otherwise build the fixture again
    # on the second worker whenever it splits the module.
    _check_tiny_run(_tiny_run(tmp_path), tmp_path)
    _check_demo_drift_part(monkeypatch)


def _tiny_run(out):
    # Half a minute of data, 20 identification steps, one second of closed loop, no solve
    # timing: the whole pipeline, as small as it goes.
    argv = [
        "drift", "--path", "donut", "--minutes", "0.5", "--duration", "1", "--steps", "20",
        "--seed", "3", "--tire", "fiala", "--no-timing", "--quiet", "--out", str(out),
    ]  # fmt: skip
    return main(argv)


def _check_tiny_run(code, out):
    summary = json.loads((out / "drift_summary.json").read_text())
    assert set(summary["runs"]) == {"fiala"}
    assert summary["path"]["name"] == "donut"
    assert summary["path"]["length_m"] == pytest.approx(2 * np.pi * 11.0)
    run = summary["runs"]["fiala"]
    # The exit code says whether the chosen model held the drift, and agrees with the JSON.
    assert code == (0 if summary["ok"] else 1)
    assert summary["ok"] == run["ok"]
    assert 1 <= run["identification"]["steps"] <= 20
    m = run["metrics"]
    if run["error"] is None:
        assert 0 < m["duration_s"] <= 1.0 + 1e-9
        assert m["spin_out"] == (m["stop_time_s"] is not None) == (not run["ok"])
        assert np.isfinite(m["lateral_rmse_m"]) and m["lateral_rmse_m"] >= 0
        # About 10 m/s on an 11-m circle: ~0.14 lap per second while it runs.
        assert 0 < m["laps"] < 0.3 * m["duration_s"], m["laps"]
        # Not timed (--no-timing): NaN in the metrics is null in the JSON.
        assert m["solve_time_median_ms"] is None
    assert (out / "drift_donut_fiala.png").stat().st_size > 10_000
    assert not (out / "drift_donut_comparison.png").exists()


def _fake_run(label, path, *, stop_at_s=None, error=None):
    """A `DriftRunResult` with a made-up 2-s closed loop on `path` (no simulation)."""
    n, period = 40, 0.05
    t = np.arange(n) * period
    s = 10.0 * t
    poses = np.stack([np.asarray(path.pose(si)) for si in s])
    plant_state = np.zeros((n, 9))
    plant_state[:, IX], plant_state[:, IY] = poses[:, 0], poses[:, 1]
    plant_state[:, IYAW] = poses[:, 2] + np.radians(30.0)
    plant_state[:, ISIDESLIP] = -np.radians(30.0)
    path_state = np.stack([0.1 * np.sin(t), np.zeros(n), s], axis=1)
    stop = None
    n_valid = n
    if stop_at_s is not None:
        n_valid = round(stop_at_s / period)
        reason = StopReason[StopReason.spin_out]
        stop = {"time_s": stop_at_s, "reason": reason, "state": plant_state[n_valid]}
    metrics = {
        "duration_s": n_valid * period,
        "lateral_rmse_m": 0.07,
        "lateral_max_m": 0.1,
        "sideslip_rmse_deg": 1.0,
        "drift_fraction": 1.0,
        "iterations_mean": 3.0,
        "n_fallback": 0,
        "max_violation": 0.0,
        "solve_time_median_s": 0.004,
        "solve_time_p99_s": 0.009,
    }
    converged = jax.vmap(lambda _: MPCStatus.converged)(np.zeros(n))  # (n,) statuses
    res = ClosedLoopResult(
        t, plant_state, path_state, np.zeros((n, 7)), np.zeros((n, 2)),
        np.full(n, -np.radians(30.0)), np.zeros(n), np.zeros(n), converged, np.zeros(n),
        np.zeros(0), stop, metrics,
    )  # fmt: skip
    model = nominal_model(DriftPlant(), key=jax.random.key(0))
    if error is not None:
        return DriftRunResult(label, "donut", path, model, None, error=error)
    return DriftRunResult(label, "donut", path, model, res)


def test_compare_prints_one_table_reports_a_spin_out_and_exits_non_zero(
    monkeypatch, tmp_path, capsys
):
    path = make_path("donut")
    seen = {}

    def fake_run_drift(path_arg, *, tires, **kwargs):
        seen["tires"] = list(tires)
        return {
            NOMINAL: _fake_run(NOMINAL, path, error="no drift equilibrium at s = 0"),
            "fiala": _fake_run("fiala", path),
            "neural_exptanh": _fake_run("neural_exptanh", path, stop_at_s=1.25),
        }

    monkeypatch.setattr(drift_cli, "run_drift", fake_run_drift)
    code = main(["drift", "--compare", "--quiet", "--out", str(tmp_path)])
    assert seen["tires"] == [NOMINAL, "fiala", "neural_exptanh"]
    assert code == 1  # the chosen model spun out
    out = capsys.readouterr().out
    table = out[: out.index("[drift]")]
    assert all(label in table for label in (NOMINAL, "fiala", "neural_exptanh"))
    assert "at 1.25 s (spin-out: |sideslip| > 60 deg)" in table
    assert "no reference: no drift equilibrium at s = 0" in table
    summary = json.loads((tmp_path / "drift_summary.json").read_text())
    assert not summary["ok"]
    m = summary["runs"]["neural_exptanh"]["metrics"]
    assert m["spin_out"] and m["stop_time_s"] == 1.25 and m["duration_s"] == pytest.approx(1.25)
    assert m["stop_reason"] == "spin-out: |sideslip| > 60 deg"
    # laps from the arc length covered until the stop: 12.5 m of a 69-m lap.
    assert m["laps"] == pytest.approx((1.2 * 10.0) / path.length_m, rel=0.05)
    assert summary["runs"]["fiala"]["ok"] and summary["runs"]["fiala"]["metrics"]["laps"] > 0
    assert summary["runs"][NOMINAL]["error"].startswith("no drift equilibrium")
    for name in ("nominal", "fiala", "neural_exptanh", "comparison"):
        assert (tmp_path / f"drift_donut_{name}.png").stat().st_size > 10_000


def _check_demo_drift_part(monkeypatch):
    # The demo's drift step on tiny settings; identification is replaced by a model of the
    # tiny run's structure.
    calls = {}

    def fake_sysid(**kwargs):
        calls.update(kwargs)
        assert kwargs["return_model"]
        plant = DriftPlant()
        summary = {"tire": kwargs["tire"], "minutes": kwargs["minutes"], "identify": {}}
        log, calls["envelope_rad"] = _straight_log(0.25)
        return summary, plant, log, nominal_model(plant, key=jax.random.key(0))

    monkeypatch.setattr(_cli, "run_sysid", fake_sysid)
    out = _cli.demo(seed=0, quick=True)
    assert calls["minutes"] == 0.5 and calls["steps"] == 60
    assert {"tire", "minutes", "identify", "drift"} <= set(out)
    drift = json.loads(json.dumps(out["drift"]))
    assert drift["path"] == "donut" and drift["label"] == "neural_exptanh"
    # The model's log reaches the MPC: its front-slip envelope, the straight log's 99.5 % |δ|
    # quantile, exact up to float32 rounding (rel 1e-5).
    envelope_deg = np.degrees(calls["envelope_rad"])
    assert drift["front_slip_limit_deg"] == pytest.approx(envelope_deg, rel=1e-5)
    assert drift["error"] is not None or 0 < drift["metrics"]["duration_s"] <= 1.0 + 1e-9


def test_table_prints_a_dash_for_untimed_solves_and_counts_drift_until_the_stop():
    path = make_path("donut")
    timed = _fake_run("fiala", path)
    untimed = _fake_run("neural_exptanh", path, stop_at_s=1.25)
    untimed.closed_loop.metrics.update(solve_time_median_s=np.nan, solve_time_p99_s=np.nan)
    table = _drift_run.format_drift_table({"fiala": timed, "neural_exptanh": untimed})
    assert "nan" not in table
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert rows["fiala"][7:9] == ["4.0", "9.0"]
    assert rows["neural_exptanh"][7:9] == ["-", "-"]
    # In drift the whole time, until the spin-out at 1.25 s: 1.25 s in drift, not 2 s.
    assert untimed.metrics["time_in_drift_s"] == pytest.approx(1.25)
    assert rows["neural_exptanh"][6] == "1.2"


def test_run_drift_drives_given_models_without_identifying_them(monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("collected or identified a model that was given")

    seen = []

    def fake_drive(label, model, plant, path, duration_s, *, key, wheel_speed, **kwargs):
        seen.append((label, model, wheel_speed))
        return _drift_run.DriftRunResult(label, path.name, path, model, None, error="fake")

    monkeypatch.setattr(_drift_run, "collect", no_work)
    monkeypatch.setattr(_drift_run, "fit_model", no_work)
    monkeypatch.setattr(_drift_run, "drive", fake_drive)
    plant = DriftPlant()
    mine = nominal_model(plant, key=jax.random.key(1))
    nominal = nominal_model(plant, key=jax.random.key(2))
    models = {"mine": mine, NOMINAL: nominal}
    results = run_drift(
        "donut", key=jax.random.key(0), tires=["mine", NOMINAL], models=models, progress=False
    )
    assert list(results) == ["mine", NOMINAL]
    # The nominal model keeps the quasi-steady wheel speed, as when it is built here.
    assert seen == [("mine", mine, "measured"), (NOMINAL, nominal, "quasi_steady")]
    assert all(run.identification is None for run in results.values())
    with pytest.raises(ValueError, match="`models` has 'other', which is not in `tires`"):
        run_drift("donut", key=jax.random.key(0), tires=[NOMINAL], models={"other": mine})
    with pytest.raises(ValueError, match="got 'other'"):
        run_drift("donut", key=jax.random.key(0), tires=["other"])


def test_a_wheel_speed_that_disagrees_with_the_mpc_options_is_refused(monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(_drift_run, "collect", no_work)
    monkeypatch.setattr(_drift_run, "fit_model", no_work)
    key = jax.random.key(0)
    conflict = {"wheel_speed": "measured", "mpc_options": {"wheel_speed": "quasi_steady"}}
    with pytest.raises(ValueError, match="disagrees with mpc_options\\['wheel_speed'\\]"):
        run_drift("donut", key=key, **conflict)
    plant = DriftPlant()
    model = nominal_model(plant, key=key)
    with pytest.raises(ValueError, match="disagrees with mpc_options\\['wheel_speed'\\]"):
        drive("x", model, plant, make_path("donut"), 1.0, key=key, **conflict)


def test_metrics_of_a_run_that_stopped_at_its_first_step():
    # `simulate`'s record ends at a stop: one row when the first command already stopped it.
    path = make_path("donut")
    run = _fake_run("fiala", path, stop_at_s=0.05)
    res = run.closed_loop
    one_row = {
        name: getattr(res, name)[:1]
        for name in ("time_s", "plant_state", "path_state", "measurement", "command")
    }
    run.closed_loop = dataclasses.replace(res, **one_row)
    m = run.metrics
    assert m["laps"] == 0.0 and m["stop_time_s"] == 0.05
    assert m["time_in_drift_s"] == pytest.approx(0.05)
    assert "at 0.05 s" in _drift_run.format_drift_table({"fiala": run})


def test_drive_predicts_a_sideslip_reversal_on_the_finer_grid(monkeypatch):
    """A path whose β_ref changes sign (figure-eight, S-bend) gets `DRIFT_REVERSAL_GRID_S`
    (0.02-s steps, control at 50 Hz) and `DRIFT_REVERSAL_WEIGHTS`, a donut the default 0.05-s
    grid and default tolerances (with the pipeline's speed floor); explicit `grid_s` and
    `weights` in the MPC options win."""
    from physml.vehicle import TabulatedPath, sideslip_reverses
    from physml.vehicle._control.mpc import DEFAULT_GRID_S

    s = np.linspace(0.0, 40.0, 81)
    kappa = np.where(s < 20.0, 0.1, -0.1)
    s_bend = TabulatedPath(s, kappa, -0.5 * np.sign(kappa))
    assert sideslip_reverses(FigureEight(11.0, 0.5)) and sideslip_reverses(s_bend)
    assert not sideslip_reverses(Donut(11.0, 0.5)) and not sideslip_reverses(Donut(8.0, -0.6))
    with pytest.raises(TypeError, match="AbstractPath"):
        sideslip_reverses("figure8")

    grids, weights, limits = [], [], []

    def fake_simulate(plant, mpc, path, duration_s, **kwargs):
        grids.append(tuple(float(h) for h in np.asarray(mpc.dt_s)))
        weights.append(mpc.weights)
        raise RuntimeError("stop after the MPC is built")

    from_path = _drift_run.DriftMPC.from_path

    @functools.wraps(from_path)  # keeps the signature that `check_mpc_options` reads
    def spy_from_path(*args, **kwargs):
        limits.append(kwargs.get("reference_accel_limit_mps2"))
        return from_path(*args, **kwargs)

    monkeypatch.setattr(_drift_run.DriftMPC, "from_path", spy_from_path)

    monkeypatch.setattr(_drift_run, "simulate", fake_simulate)
    plant = DriftPlant()
    key = jax.random.key(0)
    model = nominal_model(plant, key=key)
    figure8, donut = make_path("figure8"), make_path("donut")
    for path, options in ((figure8, {"bridge_m": 20.0}), (donut, {})):
        with pytest.raises(RuntimeError, match="stop after"):
            drive("x", model, plant, path, 1.0, key=key, mpc_options=options)
    with pytest.raises(RuntimeError, match="stop after"):
        drive("x", model, plant, figure8, 1.0, key=key,
              mpc_options={"bridge_m": 20.0, "grid_s": (0.05,) * 10,
                           "weights": MPCWeights(sideslip_rad=0.1)})  # fmt: skip
    assert grids == [_drift_run.DRIFT_REVERSAL_GRID_S, DEFAULT_GRID_S, (0.05,) * 10]
    reversal = _drift_run.DRIFT_REVERSAL_WEIGHTS
    steady = MPCWeights(speed_floor_margin_mps=_drift_run.DRIFT_SPEED_FLOOR_MARGIN_MPS)
    assert weights == [reversal, steady, MPCWeights(sideslip_rad=0.1)]
    # Looser sideslip, tighter speed than a steady drift; the same speed floor.
    assert reversal.sideslip_rad > steady.sideslip_rad and reversal.speed_mps < steady.speed_mps
    assert reversal.speed_floor_margin_mps == steady.speed_floor_margin_mps
    # Every path's reference asks no speed change beyond the pipeline's limit.
    assert limits == [_drift_run.DRIFT_REFERENCE_ACCEL_LIMIT_MPS2] * 3


def _straight_log(delta_max_rad, n=400):
    """A log of straight driving (r = 0, β = 0) with steering up to `delta_max_rad`, so its
    front-slip envelope (α_f = −δ) is known exactly: the 99.5 % quantile of |δ|."""
    from physml.vehicle import DriveLog

    delta = np.linspace(0.0, delta_max_rad, n)
    state = np.column_stack([np.zeros(n), np.full(n, 10.0), np.zeros(n), np.full(n, 30.0)])
    log = DriveLog(np.arange(n) * 0.01, state, np.column_stack([delta, np.zeros(n)]))
    return log, float(np.quantile(delta, 0.995))


def test_drive_with_the_models_log_pays_for_leaving_its_front_slip_envelope(monkeypatch):
    """Given the identification log, `drive`'s MPC gets `front_slip_limit_rad` = the log's
    front-slip envelope on top of the path's weights; without a log it has none; explicit
    `weights` win; a log that is not a DriveLog is refused before any work."""
    weights = []

    def fake_simulate(plant, mpc, path, duration_s, **kwargs):
        weights.append(mpc.weights)
        raise RuntimeError("stop after the MPC is built")

    monkeypatch.setattr(_drift_run, "simulate", fake_simulate)
    plant = DriftPlant()
    key = jax.random.key(0)
    model = nominal_model(plant, key=key)
    log, envelope = _straight_log(0.25)
    figure8, donut = make_path("figure8"), make_path("donut")
    runs = [
        (figure8, {"bridge_m": 20.0}, log),
        (donut, {}, log),
        (donut, {}, None),
        (donut, {"weights": MPCWeights(sideslip_rad=0.1)}, log),
    ]
    for path, options, given in runs:
        with pytest.raises(RuntimeError, match="stop after"):
            drive("x", model, plant, path, 1.0, key=key, mpc_options=options, log=given)
    steady = MPCWeights(speed_floor_margin_mps=_drift_run.DRIFT_SPEED_FLOOR_MARGIN_MPS)
    reversal = _drift_run.DRIFT_REVERSAL_WEIGHTS
    assert weights == [
        dataclasses.replace(reversal, front_slip_limit_rad=envelope),
        dataclasses.replace(steady, front_slip_limit_rad=envelope),
        steady,
        MPCWeights(sideslip_rad=0.1),
    ]
    assert 0.24 < envelope < 0.25
    # The summary (drift_summary.json) reports the envelope in degrees, null without one.
    run = _drift_run.DriftRunResult("x", "donut", donut, model, None, front_slip_limit_rad=0.2)
    assert run.summary()["front_slip_limit_deg"] == pytest.approx(np.degrees(0.2))
    run = _drift_run.DriftRunResult("x", "donut", donut, model, None)
    assert run.summary()["front_slip_limit_deg"] is None
    with pytest.raises(TypeError, match="log"):  # also under the test run's type checker
        drive("x", model, plant, donut, 1.0, key=key, log={"state": []})


def test_run_drift_gives_the_log_to_every_model_but_the_nominal_one(monkeypatch):
    seen = {}

    def fake_drive(label, model, plant, path, duration_s, *, key, log=None, **kwargs):
        seen[label] = log
        return _drift_run.DriftRunResult(label, path.name, path, model, None, error="fake")

    def fake_fit(label, log, plant, **kwargs):
        return nominal_model(plant, key=jax.random.key(3)), {"fake": True}

    monkeypatch.setattr(_drift_run, "drive", fake_drive)
    monkeypatch.setattr(_drift_run, "fit_model", fake_fit)
    plant = DriftPlant()
    log, _ = _straight_log(0.2)
    given = nominal_model(plant, key=jax.random.key(1))
    run_drift(
        "donut", key=jax.random.key(0), tires=["neural_exptanh", "mine", NOMINAL],
        models={"mine": given}, log=log, plant=plant, progress=False,
    )  # fmt: skip
    assert seen == {"neural_exptanh": log, "mine": log, NOMINAL: None}
    # A log collected here is the data of the models identified here, not of a given one.
    collected, _ = _straight_log(0.3)
    monkeypatch.setattr(_drift_run, "collect", lambda plant, minutes, key: collected)
    seen.clear()
    run_drift(
        "donut", key=jax.random.key(0), tires=["neural_exptanh", "mine", NOMINAL],
        models={"mine": given}, plant=plant, progress=False,
    )  # fmt: skip
    assert seen == {"neural_exptanh": collected, "mine": None, NOMINAL: None}
