"""Outputs that are never lost (issue 21): atomic writes and groups of them, the JSON-lines log,
and the boundary checks (`check_key`, `check_positive_number`) that every entry uses."""

import errno
import json
import os

import jax
import numpy as np
import pytest

from physml.kernels import JsonLinesLog, OutputWriteError, write_atomic, write_atomic_group
from physml.kernels._validate import check_key, check_positive_number


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_wrapped_os_error_is_reported_as_itself(tmp_path):
    """An OSError that a serialiser wraps in its own exception is still "no space left on
    device (ENOSPC)", and the earlier file stays."""
    path = tmp_path / "out.bin"
    path.write_bytes(b"earlier")

    def wrapping_writer(f):
        try:
            _enospc()
        except OSError as e:
            raise RuntimeError("Error at leaf with path ('w',)") from e

    with pytest.raises(OutputWriteError, match=r"no space left on device \(ENOSPC\)"):
        write_atomic(path, wrapping_writer)
    assert path.read_bytes() == b"earlier" and list(tmp_path.glob("*.tmp")) == []
    with pytest.raises(ZeroDivisionError):  # not an OS error: unchanged
        write_atomic(path, lambda f: 1 / 0)


def test_group_write_replaces_nothing_when_one_file_fails(tmp_path, monkeypatch):
    a, b = tmp_path / "m.eqx", tmp_path / "m.json"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    fsync, calls = os.fsync, []

    def second_fails(fd):
        calls.append(fd)
        if len(calls) == 2:
            _enospc()
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", second_fails)
    with pytest.raises(OutputWriteError, match="ENOSPC"):
        write_atomic_group([(a, lambda f: f.write(b"new a")), (b, lambda f: f.write(b"new b"))])
    assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.eqx", "m.json"]
    monkeypatch.undo()
    write_atomic_group([(a, lambda f: f.write(b"new a")), (b, lambda f: f.write(b"new b"))])
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")


def test_json_lines_log_keeps_whole_records_before_the_resume_step(tmp_path):
    path = tmp_path / "log.jsonl"
    log = JsonLinesLog(path)
    for k in range(5):
        log.write({"step": k, "loss": float(k)})
    log.drop_last()
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"step": 4, "lo')  # a write that never finished
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()[:4]] == [0, 1, 2, 3]
    log = JsonLinesLog(path, keep_before=2)
    log.write({"step": 2, "loss": 2.0})
    log.close()
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [0, 1, 2]
    JsonLinesLog(path).close()  # a new run starts an empty log
    assert path.read_bytes() == b""


@pytest.mark.parametrize(
    "key, error, match",
    [
        ("seed", TypeError, "got str 'seed'"),
        (0, TypeError, r"pass `jax.random.key\(0\)`"),
        (None, TypeError, "got NoneType None"),
        (np.zeros(2, np.float32), TypeError, "dtype float32"),
        (jax.random.split(jax.random.key(0), 3), ValueError, "batch of keys"),
        (jax.random.split(jax.random.PRNGKey(0), 3), ValueError, "batch of legacy keys"),
    ],
)
def test_check_key_says_what_was_received(key, error, match):
    with pytest.raises(error, match=match):
        check_key(key, "key")


def test_check_key_accepts_every_kind_of_single_key():
    for key in (jax.random.key(0), jax.random.PRNGKey(0), jax.random.key(0, impl="rbg")):
        assert check_key(key) is key
    rbg_data = jax.random.key_data(jax.random.key(0, impl="rbg"))
    assert check_key(rbg_data) is rbg_data
    assert jax.jit(lambda k: check_key(k))(jax.random.key(1)).shape == ()


@pytest.mark.parametrize("value", [0, -1, -1e-3, float("nan"), float("inf"), "0.1", True, None])
def test_check_positive_number_refuses_non_positive_learning_rates(value):
    with pytest.raises(ValueError, match="`learning_rate` must be"):
        check_positive_number(value, "learning_rate")
    assert check_positive_number(1e-3, "learning_rate") == 1e-3


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    # mkstemp's 0600 must not leak into outputs: 0666 & ~umask, as open(path, "w") does.
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.bin", lambda f: f.write(b"x"))
        with open(tmp_path / "b.bin", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    mode = lambda name: os.stat(tmp_path / name).st_mode & 0o777
    assert mode("a.bin") == mode("b.bin") == 0o644
