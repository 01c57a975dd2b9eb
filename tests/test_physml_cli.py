"""The command line: entry points, argument errors (one line, exit status 2, before any work),
outputs checked before the work and never lost after it, help with defaults, and the
`sysid --out` → `drift --log --model` round trip."""

import argparse
import errno
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import physml.cli as cli
from physml.cli import HelpFormatter, build_parser, info, main
from physml.kernels import OutputWriteError
from physml.quantum import _cli as quantum_cli
from physml.vehicle import (
    DriftPlant,
    DriveLog,
    IdentificationResult,
    _cli as vehicle_cli,
    _drift_run as drift_run,
    make_model,
    params_from_plant,
)
from physml.vehicle._cli import drift as drift_cli, sysid as sysid_cli
from physml.vehicle._drift_run import nominal_model


def test_info_reports_versions_backend_and_float64():
    data = info()
    for name in ("physml", "jax", "equinox", "diffrax", "optax", "netket", "numpyro"):
        assert data[name] and data[name] != "not installed", name
    assert data["backend"] == "cpu"
    assert isinstance(data["float64"], bool) and data["devices"]


def test_info_command_runs_as_installed_script(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["physml"] == "0.1.0"


def test_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "physml", "info"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "jax" in out.stdout


def test_parser_lists_demo():
    parser = build_parser()
    assert parser.parse_args(["demo", "--quick"]).quick


# -- argument errors: one line, exit status 2, before any work --------------------------------


class WorkStarted(AssertionError):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """Every entry into real work raises `WorkStarted`."""

    def refuse(*args, **kwargs):
        raise WorkStarted("the command started working before refusing its arguments")

    for module, name in [
        (sysid_cli, "collect"),
        (sysid_cli, "identify_tire"),
        (drift_cli, "run_drift"),
        (vehicle_cli, "drive"),
        (drift_run, "fit_model"),
        (drift_run, "collect"),
        (vehicle_cli, "demo"),
        (quantum_cli, "ground_state"),
        (quantum_cli, "_exact_or_none"),
        (quantum_cli, "demo"),
    ]:
        monkeypatch.setattr(module, name, refuse)


def _run(argv, capsys):
    """(exit status, stdout, stderr, seconds) of `physml argv`, in process."""
    tic = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    seconds = time.perf_counter() - tic
    out = capsys.readouterr()
    return code, out.out, out.err, seconds


def _text_file(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("not a log\n")
    return str(file)


@pytest.mark.parametrize(
    "argv, message",
    [
        # numeric options of sysid (issue 21: --steps 0 failed after 28 s of collecting)
        ("sysid --steps 0", "argument --steps: must be > 0, got '0'"),
        ("sysid --steps 1.5", "argument --steps: expected a int > 0, got '1.5'"),
        ("sysid --heldout-minutes 0", "argument --heldout-minutes: must be >= 0.1 min, got '0'"),
        ("sysid --minutes nan", "argument --minutes: must be >= 0.1 min, got 'nan'"),
        ("sysid --seed -1", "argument --seed: must be in [0, 4294967295], got '-1'"),
        ("sysid --tire slick", "argument --tire: invalid choice: 'slick'"),
        ("sysid --log run.csv", "--log and --columns go together"),
        ("sysid --log run.csv --columns map.json", "--log 'run.csv': no such file"),
        # drift: the sideslip in the degrees the user typed, not radians
        ("drift --sideslip 100", "argument --sideslip: must be in (0, 90) deg, got '100'"),
        ("drift --radius 0", "argument --radius: must be > 0 m, got '0'"),
        ("drift --minutes 0.01", "--minutes must be >= 0.1 min to identify a model, got 0.01"),
        ("drift --model missing.eqx", "--model 'missing.eqx': no such file"),
        ("drift --log missing.npz", "--log 'missing.npz': no such file"),
        # ground-state: learning rate, samples, steps, fields
        ("ground-state --lr -1", "argument --lr: must be > 0, got '-1'"),
        ("ground-state --lr 0", "argument --lr: must be > 0, got '0'"),
        ("ground-state --samples 1", "argument --samples: must be >= 2, got '1'"),
        ("ground-state --steps 0", "argument --steps: must be > 0, got '0'"),
        ("ground-state --h inf", "argument --h: must be finite, got 'inf'"),
        ("ground-state --features 0", "argument --features: must be > 0, got '0'"),
        ("ground-state --dilations 1 0 2", "argument --dilations: must be > 0, got '0'"),
        ("ground-state --time-limit 0", "argument --time-limit: must be > 0, got '0'"),
        ("ground-state --hold-fraction 2", "argument --hold-fraction: must be in [0, 1], got '2'"),
        ("ground-state --final-lr -1", "argument --final-lr: must be > 0, got '-1'"),
        # physml's own checks at the boundary, before training
        ("ground-state --symmetry d4 --sites 6", "--symmetry d4 needs --lattice square"),
        ("ground-state --model heisenberg --lattice square --L 2 --pbc", "at least 3"),
        ("ground-state --layers 2", "`dilations` must be a positive integer or 2"),
        ("demo --seed x", "argument --seed: expected a int in [0, 4294967295], got 'x'"),
        ("", "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_one_line_exit_2_before_any_work(argv, message, no_work, capsys):
    code, out, err, seconds = _run(argv.split(), capsys)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and message in err, err
    prog = f"physml {argv.split()[0]}" if argv else "physml"
    assert err.startswith(f"{prog}: error: "), err
    assert seconds < 3.0  # refused before collecting or training


def test_unreadable_log_is_refused_with_its_name(tmp_path, no_work, capsys):
    code, _, err, _ = _run(["drift", "--log", _text_file(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "notes.txt" in err and "not a physml driving log" in err, err
    assert "allow_pickle" not in err  # numpy's unsafe advice is not passed on


def test_traceback_flag_reraises_an_argument_error(no_work):
    with pytest.raises(ValueError, match=r"--minutes must be >= 0\.1 min"):
        main(["--traceback", "drift", "--minutes", "0.01"])


def test_a_crash_during_the_work_keeps_its_traceback(monkeypatch):
    """Only the preparation's errors become one line: an error after the work started (here a
    ValueError from inside the run) propagates, so that a long run's failure is not reduced to
    a line that cannot be debugged."""

    def crash(**kwargs):
        raise ValueError("inside the run")

    monkeypatch.setattr(quantum_cli, "demo", crash)
    with pytest.raises(ValueError, match="inside the run"):
        main(["demo", "--quick"])


def test_argument_error_as_a_script_is_one_line_with_exit_status_2():
    out = subprocess.run(
        [sys.executable, "-m", "physml", "sysid", "--heldout-minutes", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert "physml sysid: error: argument --heldout-minutes: must be >= 0.1 min" in out.stderr


# -- outputs: checked before the work, never lost after it ------------------------------------


@pytest.mark.parametrize("command", ["ground-state", "sysid", "drift", "demo"])
def test_unwritable_out_is_refused_before_any_work(command, no_work, capsys):
    # A path under a file fails for every user, root included.
    code, _, err, seconds = _run([command, "--out", "/dev/null/x"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"physml {command}: error: Could not write '/dev/null"), err
    assert seconds < 3.0


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_demo_on_a_full_disk_prints_its_result_names_enospc_and_keeps_the_old_file(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(quantum_cli, "demo", lambda **kw: {"energy": -1.5})
    monkeypatch.setattr(vehicle_cli, "demo", lambda **kw: {"tire": "fiala"})
    out = tmp_path / "summary.json"
    out.write_text("earlier summary")
    monkeypatch.setattr(os, "fsync", _enospc)  # the disk fills while the file is written
    code, stdout, err, _ = _run(["demo", "--out", str(out)], capsys)
    assert code == 1
    assert json.loads(stdout[stdout.index("{") :])["quantum"] == {"energy": -1.5}
    assert f"physml demo: could not write {out}: no space left on device (ENOSPC)" in err
    assert out.read_text() == "earlier summary"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left


def test_write_outputs_reports_each_failure_and_writes_the_rest(tmp_path, capsys):
    def fail():
        raise OutputWriteError(tmp_path / "a", "no space left on device (ENOSPC)")

    done = []
    status = cli.write_outputs("x", {"a": fail, "b": lambda: done.append("b")})
    assert status == 1 and done == ["b"]
    assert (
        capsys.readouterr().err == "physml x: could not write a: no space left on device (ENOSPC)\n"
    )


# -- help -------------------------------------------------------------------------------------


def _subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_option_has_help_with_its_default():
    formatter = HelpFormatter("physml")
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, (name, action.option_strings)
            if action.nargs != 0 and action.default is not None:
                assert "default" in formatter._get_help_string(action), (name, action.dest)


@pytest.mark.parametrize(
    "command, shown",
    [
        ("sysid", ["maximum identification steps (default: 3000)", "[min] (default: 3.0)"]),
        ("drift", ["|β| [deg] (default: 30.0)", "PRNG seed (log, models, closed loop)"]),
        ("ground-state", ["channels per layer (default: 10)", "(default: sr)", "(default: 0.05"]),
        ("demo", ["PRNG seed of every part (default: 0)"]),
    ],
)
def test_help_shows_defaults(command, shown, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for part in shown:
        assert part in text, part


# -- sysid --out → drift --log --model ----------------------------------------------------------


def _small_log(n=200):
    t = np.arange(n) * 0.01
    state = np.tile([0.5, 10.0, -0.3, 30.0], (n, 1)) + 0.01 * np.sin(t)[:, None]
    return DriveLog(t, state, np.zeros((n, 2)), metadata={"seed": 0})


def test_sysid_out_then_drift_reuses_the_log_and_model(tmp_path, monkeypatch, capsys):
    """The files of `sysid --out` and their reuse by `drift --log --model`, with the fit and the
    closed loop replaced: the model handed to the MPC is the saved one, nothing is collected or
    identified again."""
    plant = DriftPlant()
    model = make_model("fiala", key=jax.random.key(1), params=params_from_plant(plant))
    model = jax.tree.map(lambda x: x * 1.01 if hasattr(x, "dtype") else x, model)  # "identified"
    log = _small_log()
    summary = {"tire": "fiala", "minutes": 0.1, "identify": {"steps": 5, "val_loss": 0.5}}
    monkeypatch.setattr(sysid_cli, "_sysid", lambda *a: (summary, plant, log, model))
    assert main(["sysid", "--tire", "fiala", "--seed", "4", "--out", str(tmp_path)]) == 0
    names = {"model.eqx", "model.json", "train_log.npz", "sysid_summary.json"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    meta = json.loads((tmp_path / "model.json").read_text())
    assert (meta["tire"], meta["seed"], meta["identify"]["steps"]) == ("fiala", 4, 5)

    loaded, _ = drift_cli.load_model(tmp_path / "model.eqx", plant)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(model), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    # A model saved before VehicleParams had a brake split (format version 2) has one leaf
    # fewer: refused by its version, with what this physml reads.
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.eqx").write_bytes((tmp_path / "model.eqx").read_bytes())
    (old / "model.json").write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(ValueError, match=r"format version 2 .* reads version 3"):
        drift_cli.load_model(old / "model.eqx", plant)

    seen = {}

    def fake_drive(label, m, plant_, path, duration_s, *, key, **kwargs):
        seen.update(label=label, model=m, duration=duration_s, log=kwargs.get("log"))
        return drift_run.DriftRunResult(label, path.name, path, m, None, error="fake run")

    def refuse(*args, **kwargs):
        raise WorkStarted("collected or identified again")

    # `drift --model` goes through `run_drift` with the model given: its closed loop is faked,
    # and collecting or identifying anything is refused.
    monkeypatch.setattr(drift_run, "drive", fake_drive)
    monkeypatch.setattr(drift_run, "summary_line", lambda run: "")
    monkeypatch.setattr(drift_cli, "_report_drift", lambda *a: 0)
    for module, name in [
        (sysid_cli, "collect"),
        (sysid_cli, "identify_tire"),
        (drift_run, "collect"),
        (drift_run, "fit_model"),
        (drift_run, "identify_tire"),
    ]:
        monkeypatch.setattr(module, name, refuse)
    argv = ["drift", "--log", str(tmp_path / "train_log.npz"), "--model"]
    argv += [str(tmp_path / "model.eqx"), "--duration", "2", "--quiet"]
    assert main(argv) == 0
    assert seen["label"] == "fiala" and seen["duration"] == 2.0
    for a, b in zip(jax.tree.leaves(seen["model"]), jax.tree.leaves(model), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    np.testing.assert_allclose(seen["log"].state, log.state)  # the model's data: its envelope

    # Without --log, the log saved beside the model is the model's data; a model alone runs
    # without it, and says so.
    capsys.readouterr()
    seen.clear()
    assert main(["drift", "--model", str(tmp_path / "model.eqx"), "--duration", "2"]) == 0
    np.testing.assert_allclose(seen["log"].state, log.state)
    assert "the model's log, saved beside it" in capsys.readouterr().out
    (old / "model.json").write_text(json.dumps(meta))
    seen.clear()
    assert main(["drift", "--model", str(old / "model.eqx"), "--duration", "2"]) == 0
    assert seen["label"] == "fiala" and seen["log"] is None
    assert "no train_log.npz beside --model" in capsys.readouterr().out

    # A --tire that disagrees with the saved model is refused, not silently replaced.
    capsys.readouterr()
    code, _, err, _ = _run([*argv, "--tire", "neural_exptanh"], capsys)
    assert code == 2 and "--tire neural_exptanh disagrees with --model" in err


def test_sysid_out_on_a_full_disk_keeps_the_result(tmp_path, monkeypatch, capsys):
    plant = DriftPlant()
    model = nominal_model(plant, key=jax.random.key(0))
    summary = {"tire": "fiala", "minutes": 0.1, "identify": {"steps": 5}}
    monkeypatch.setattr(sysid_cli, "_sysid", lambda *a: (summary, plant, _small_log(), model))
    monkeypatch.setattr(os, "fsync", _enospc)
    code, out, err, _ = _run(["sysid", "--out", str(tmp_path / "run")], capsys)
    assert code == 1
    assert "could not write" in err and "model.eqx: no space left on device (ENOSPC)" in err
    assert '"tire": "fiala"' in out  # the summary is printed instead
    assert not (tmp_path / "run" / "model.eqx").exists()


@pytest.mark.slow
def test_sysid_then_drift_round_trip_on_a_tiny_run(tmp_path, capsys):
    """The real thing, as small as it goes: 6 s of data, 5 identification steps, 1 s of closed
    loop with the saved model (about 3 minutes on 2 loaded cores)."""
    out = tmp_path / "sysid"
    argv = ["sysid", "--tire", "fiala", "--minutes", "0.1", "--heldout-minutes", "0.1"]
    assert main([*argv, "--steps", "5", "--out", str(out)]) == 0
    argv = ["drift", "--log", str(out / "train_log.npz"), "--model", str(out / "model.eqx")]
    code = main([*argv, "--duration", "1", "--no-timing", "--quiet", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "drift_summary.json").read_text())
    assert code == (0 if summary["ok"] else 1)
    assert summary["model_file"] == str(out / "model.eqx") and summary["tire"] == "fiala"
    assert summary["runs"]["fiala"]["identification"]["loaded"] is True
    assert summary["minutes"] == pytest.approx(0.1, abs=0.01)  # the log's own length
    assert "[drift] collecting" not in capsys.readouterr().out


# -- sysid --log FILE.csv --columns MAP.json ----------------------------------------------------

_COLUMNS = {
    "time": {"column": "t_ms", "unit": "ms"},
    "steering": {"column": "hw", "unit": "deg", "ratio": 15.0},
    "yaw_rate": {"column": "gyro", "unit": "deg/s"},
    "vx": {"column": "vx", "unit": "km/h"},
    "vy": {"column": "vy", "unit": "km/h"},
    "wheel_speed": {"column": "ws", "unit": "rpm"},
    "throttle": {"column": "pedal", "unit": "%"},
    "vehicle": {"mass_kg": 1500.0, "wheel_radius_m": 0.33},
}


def _table(tmp_path, seconds=12.0, rate_hz=25.0, columns=_COLUMNS):
    """A driving table at `rate_hz` with smooth made-up signals, and its column map."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    cols = {
        "t_ms": 1e3 * t,
        "hw": 30 * np.sin(t),
        "gyro": 20 * np.cos(t),
        "vx": 40 + 5 * np.sin(0.3 * t),
        "vy": 8 * np.sin(0.5 * t),
        "ws": 350 + 40 * np.sin(0.3 * t),
        "pedal": 30 + 10 * np.sin(0.7 * t),
    }
    lines = [",".join(cols)] + [
        ",".join(repr(float(cols[c][k])) for c in cols) for k in range(t.size)
    ]
    (tmp_path / "run.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "map.json").write_text(json.dumps(columns))
    return str(tmp_path / "run.csv"), str(tmp_path / "map.json")


def test_sysid_from_a_table_identifies_on_its_first_part_and_reports_on_the_rest(
    tmp_path, monkeypatch, capsys
):
    """`sysid --log --columns`: the table's first part goes to the recipe with the schema's
    car (throttle: an affine drive map), the held-out table is printed for the last
    --heldout-minutes, and the saved model (its drive map recorded) reloads. The fit itself is
    replaced (the recipe is tested in tests/vehicle)."""
    seen = {}

    def fake_identify_tire(data, tire, *, key, params, steps, progress):
        seen.update(data=data, tire=tire, params=params, steps=steps)
        model = make_model(tire, key=key, params=params)
        return IdentificationResult(model, {"steps": steps, "best_step": 0}, [])

    monkeypatch.setattr(sysid_cli, "identify_tire", fake_identify_tire)
    log, columns = _table(tmp_path)
    out = tmp_path / "out"
    argv = ["sysid", "--log", log, "--columns", columns, "--tire", "fiala", "--steps", "7"]
    code, stdout, err, _ = _run([*argv, "--heldout-minutes", "0.1", "--out", str(out)], capsys)
    assert code == 0, err
    train = seen["data"]
    assert seen["tire"] == "fiala" and seen["steps"] == 7
    assert train.duration_s == pytest.approx(12.0 - 6.0 - 0.04, abs=0.011)
    assert float(seen["params"].mass_kg) == 1500.0
    assert float(seen["params"].torque_offset_nm) == 0.0  # a throttle: affine map learned
    assert "omega_r [rad/s]" in stdout and "fiala" in stdout
    summary = json.loads((out / "sysid_summary.json").read_text())
    assert summary["log_file"] == log and summary["drive_map"]["torque_offset_nm"] == 0.0
    assert set(summary["heldout_rmse"]) == {"0.5s", "1s", "2s"}
    meta = json.loads((out / "model.json").read_text())
    assert meta["drive_map"] == "affine"
    loaded, _ = drift_cli.load_model(out / "model.eqx", DriftPlant())
    assert float(loaded.params.mass_kg) == 1500.0 and loaded.params.torque_offset_nm is not None


@pytest.mark.parametrize(
    "change, heldout, message",
    [
        ({"yaw_rate": {"column": "gyro_z", "unit": "deg/s"}}, "0.1", "has no column 'gyro_z'"),
        ({"vx": {"column": "vx", "unit": "kph"}}, "0.1", "unit 'kph' does not parse"),
        ({}, "0.2", "too little before its last --heldout-minutes 0.2 min to identify from"),
    ],
)
def test_sysid_refuses_a_bad_table_before_any_work(
    tmp_path, no_work, capsys, change, heldout, message
):
    log, columns = _table(tmp_path, columns={**_COLUMNS, **change})
    argv = ["sysid", "--log", log, "--columns", columns, "--heldout-minutes", heldout]
    code, _, err, _ = _run(argv, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert message in err and ("run.csv" in err or "map.json" in err), err
