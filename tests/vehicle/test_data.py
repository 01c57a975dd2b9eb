"""The driving-log format: round trip and one clear error per kind of malformed file."""

import errno
import json
import os

import numpy as np
import pytest

from physml.kernels import OutputWriteError
from physml.vehicle import DriveLog, LogFormatError, load_log, save_log
from physml.vehicle._data.log import CONTROL_COLUMNS, STATE_COLUMNS


def _log(n=300, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(n, 4))
    return DriveLog(
        time_s=np.arange(n) / 100.0,
        state=true + 0.01 * rng.normal(size=(n, 4)),
        control=rng.normal(size=(n, 2)),
        state_true=true,
        flags=np.where(np.arange(n) % 50 == 0, 1, 0),
        manoeuvre=np.arange(n) % 3,
        manoeuvre_names=("a", "b", "c"),
        metadata={"rate_hz": 100.0, "seed": [0, 1]},
    )


def test_round_trip(tmp_path):
    log = _log()
    save_log(tmp_path / "log.npz", log)
    back = load_log(tmp_path / "log.npz")
    for name in ("time_s", "state", "control", "state_true", "flags", "manoeuvre"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name))
    assert back.manoeuvre_names == log.manoeuvre_names
    assert back.metadata == log.metadata
    assert back.n_samples == 300 and back.duration_s == pytest.approx(2.99)
    assert back.good.sum() == 300 - 6


def test_round_trip_without_truth(tmp_path):
    log = _log()
    log = DriveLog(time_s=log.time_s, state=log.state, control=log.control)
    save_log(tmp_path / "real.npz", log)
    back = load_log(tmp_path / "real.npz")
    assert back.state_true is None and np.all(back.flags == 0)


def test_window_splits_by_time():
    log = _log()
    first, second = log.window(0.0, 2.0), log.window(2.0, 10.0)
    assert first.n_samples == 200 and second.n_samples == 100
    assert first.time_s[-1] < second.time_s[0]
    with pytest.raises(ValueError, match="selects no sample"):
        log.window(50.0, 60.0)


def _rewrite(tmp_path, **changes):
    """Save a good log, then rewrite the archive with some keys changed (None = removed)."""
    save_log(tmp_path / "good.npz", _log())
    with np.load(tmp_path / "good.npz") as d:
        arrays = {k: d[k] for k in d.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema_version": np.asarray(2)}, "schema version 2"),
        ({"control": None}, "lacks the keys \\['control'\\]"),
        ({"state_columns": np.asarray(["r", "V", "beta", "omega_f"])}, "state_columns"),
        ({"state_units": np.asarray(["deg/s", "m/s", "rad", "rad/s"])}, "state_units"),
        ({"control_units": np.asarray(["deg", "N*m"])}, "control_units"),
        ({"control_columns": np.asarray(["delta"])}, "control_columns"),
        ({"time_s": np.r_[np.arange(150), np.arange(150)] / 100.0}, "strictly increasing"),
        (
            {"state": np.where(np.arange(300)[:, None] == 7, np.nan, np.ones((300, 4)))},
            "`state` must be finite",
        ),
        ({"control": np.full((300, 2), np.inf)}, "`control` must be finite"),
        ({"state": np.ones((300, 3))}, "must have shape \\(300, 4\\), got \\(300, 3\\)"),
        ({"manoeuvre": np.full(300, 7)}, "manoeuvre"),
        ({"flags": np.zeros(300)}, "`flags` must be a int array"),
    ],
)
def test_each_malformation_has_its_error(tmp_path, changes, message):
    with pytest.raises(LogFormatError, match=message):
        load_log(_rewrite(tmp_path, **changes))


def test_minimum_length(tmp_path):
    log = _log(n=50)
    save_log(tmp_path / "short.npz", log)
    with pytest.raises(LogFormatError, match="50 samples; at least 100"):
        load_log(tmp_path / "short.npz")
    assert load_log(tmp_path / "short.npz", min_samples=10).n_samples == 50


def test_schema_is_documented_in_the_file(tmp_path):
    save_log(tmp_path / "log.npz", _log())
    with np.load(tmp_path / "log.npz") as d:
        assert tuple(d["state_columns"]) == STATE_COLUMNS
        assert tuple(d["control_columns"]) == CONTROL_COLUMNS
        assert int(d["schema_version"]) == 1
        assert json.loads(str(d["metadata_json"]))["rate_hz"] == 100.0


def test_constructor_validates():
    with pytest.raises(LogFormatError, match="strictly increasing"):
        DriveLog(time_s=np.zeros(3), state=np.zeros((3, 4)), control=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="DriveLog"):
        save_log("x.npz", {"time_s": np.zeros(3)})


# --- Reliability (issue 21): a failed write keeps the earlier log; damage is named -----------


def test_failed_write_keeps_the_earlier_log_and_names_enospc(tmp_path, monkeypatch):
    path = tmp_path / "log.npz"
    save_log(path, _log(seed=0))
    before = path.read_bytes()

    def full_disk(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OutputWriteError, match="ENOSPC") as err:
        save_log(path, _log(seed=1))
    assert err.value.errno == errno.ENOSPC and str(path) in str(err.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.npz"]  # no temporary file left
    np.testing.assert_array_equal(load_log(path).state, _log(seed=0).state)


def _damaged(tmp_path, kind):
    path = tmp_path / "log.npz"
    save_log(path, _log())
    good = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("time_s,r,V,beta,omega_r\n0.0,0.1,10.0,0.2,30.0\n")
    elif kind == "npy":
        np.save(tmp_path / "array.npy", np.zeros(3))
        path = tmp_path / "array.npy"
    return path


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("truncated", "truncated or damaged"),
        ("empty", "the file is empty"),
        ("text", "not an .npz archive"),
        ("npy", "a single .npy array"),
    ],
)
def test_damaged_or_foreign_files_raise_log_format_error(tmp_path, kind, why):
    path = _damaged(tmp_path, kind)
    with pytest.raises(LogFormatError, match="damaged or is not a physml driving log") as err:
        load_log(path)
    assert str(path) in str(err.value) and why in str(err.value)
    assert "allow_pickle" not in str(err.value)  # no advice to unpickle an unknown file


@pytest.mark.parametrize(
    ("metadata", "why"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_bad_metadata_raises_log_format_error(tmp_path, metadata, why):
    path = _rewrite(tmp_path, metadata_json=np.asarray(metadata))
    with pytest.raises(LogFormatError, match=why) as err:
        load_log(path)
    assert str(path) in str(err.value)


def test_missing_file_is_not_a_format_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_log(tmp_path / "nowhere.npz")
