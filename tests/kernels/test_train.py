"""The variational training loop: convergence, NaN stop, checkpoints, logs, callbacks, and
its failure behaviour (issue 21): failed writes, collapsed batches, resumed logs, progress in
non-interactive logs, arguments checked before the first step."""

import errno
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from quadratic import model as _model, optimizer as _optimizer, problem as _problem

from physml.kernels import (
    AbstractPreconditioner,
    EarlyStopping,
    OutputWriteError,
    StopReason,
    TimeLimit,
    _io,
    fit,
    load_params,
    load_tree,
)


def test_minimises_quadratic_to_known_optimum():
    res = fit(
        _problem(),
        _model(),
        optimizer=_optimizer(),
        steps=600,
        key=jax.random.key(0),
        progress=False,
    )
    np.testing.assert_allclose(res.model["x"], [1.0, -2.0, 0.5], atol=1e-3)
    assert res.stop_reason is None and res.n_steps == 600
    assert res.history[-1]["dist"] < 1e-3 and len(res.history) == 600


def test_nan_at_step_k_stops_with_step_k_minus_1_parameters():
    k = 7
    ref = fit(
        _problem(), _model(), optimizer=_optimizer(), steps=k, key=jax.random.key(0), progress=False
    )
    res = fit(
        _problem(nan_at_step=k),
        _model(),
        optimizer=_optimizer(),
        steps=50,
        key=jax.random.key(0),
        progress=False,
    )
    assert res.stop_reason is not None and f"step {k}" in res.stop_reason
    assert "non-finite loss" in res.stop_reason
    assert bool(res.stop == StopReason.nonfinite_loss)
    assert res.n_steps == k and len(res.history) == k
    np.testing.assert_array_equal(res.model["x"], ref.model["x"])
    assert float(res.model["counter"]) == k


def test_nan_never_reaches_a_checkpoint(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    res = fit(
        _problem(nan_at_step=5),
        _model(),
        optimizer=_optimizer(),
        steps=20,
        key=jax.random.key(0),
        checkpoint_path=ckpt,
        checkpoint_every=1,
        progress=False,
    )
    assert res.n_steps == 5
    state = load_tree(ckpt, res.state)
    assert np.all(np.isfinite(state.params["x"])) and int(state.step) == 5


def test_load_params_warm_starts_under_another_optimizer(tmp_path):
    """The parameters of an adam run's checkpoint (adam's state has arrays of its own) come back
    bit for bit, and continue under plain SGD, whose state structure differs from adam's."""
    ckpt = tmp_path / "adam.eqx"
    run = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=7,
        key=jax.random.key(2),
        checkpoint_path=ckpt,
        checkpoint_every=7,
        progress=False,
    )
    warm = load_params(ckpt, _model())
    for name in ("x", "counter"):
        assert warm[name].tobytes() == run.model[name].tobytes()
    assert float(warm["counter"]) == 7.0 and not np.allclose(warm["x"], 0.0)
    more = fit(
        _problem(), warm, optimizer=optax.sgd(0.05), steps=3, key=jax.random.key(3), progress=False
    )
    assert more.n_steps == 3 and np.isfinite(more.history[-1]["loss"])

    with pytest.raises(ValueError, match="does not match the model"):
        load_params(ckpt, {"x": jnp.zeros(4), "counter": jnp.zeros(())})
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_params(tmp_path / "missing.eqx", _model())


def test_checkpoint_resume_is_bit_identical(tmp_path):
    n = 25
    full = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=2 * n,
        key=jax.random.key(1),
        progress=False,
    )
    ckpt = tmp_path / "ckpt" / "state.eqx"
    log = tmp_path / "log.jsonl"
    first = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=n,
        key=jax.random.key(1),
        checkpoint_path=ckpt,
        log_path=log,
        progress=False,
    )
    assert first.n_steps == n and ckpt.exists()
    second = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=2 * n,
        key=jax.random.key(1),
        checkpoint_path=ckpt,
        log_path=log,
        resume=True,
        progress=False,
    )
    assert second.n_steps == 2 * n
    np.testing.assert_array_equal(second.model["x"], full.model["x"])
    assert second.model["x"].tobytes() == full.model["x"].tobytes()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(2 * n))
    assert [r["loss"] for r in lines] == [r["loss"] for r in full.history]
    assert list(tmp_path.glob("ckpt/*.tmp")) == []  # no temporary file left behind


def test_json_log_has_one_line_per_step(tmp_path):
    log = tmp_path / "log.jsonl"
    fit(
        _problem(),
        _model(),
        optimizer=_optimizer(),
        steps=13,
        key=jax.random.key(0),
        log_path=log,
        progress=False,
    )
    lines = log.read_text().splitlines()
    assert len(lines) == 13
    rec = json.loads(lines[-1])
    assert {"step", "loss", "loss_error", "loss_variance", "dist"} <= set(rec)


def test_early_stopping_restores_best():
    calls = []

    def val_loss(step, record, model):
        calls.append(step)
        return float(jnp.abs(model["x"][0] - 0.3))  # best when x[0] passes 0.3

    stopper = EarlyStopping(val_loss, patience=5, name="val_loss")
    res = fit(
        _problem(),
        _model(),
        optimizer=_optimizer(),
        steps=500,
        key=jax.random.key(0),
        callbacks=(stopper,),
        progress=False,
    )
    assert res.stop_reason is not None and "callback" in res.stop_reason
    assert res.n_steps < 500
    assert abs(float(res.model["x"][0]) - 0.3) == pytest.approx(stopper.best)
    assert "val_loss" in res.history[-1]


def test_a_time_limit_reports_its_own_stop_reason(monkeypatch):
    # A TimeLimit stop is StopReason.time_limit; any other callback's is StopReason.callback.
    class Plain:
        def __call__(self, step, record, model):
            return step == 2

    def run(callback):
        return fit(
            _problem(),
            _model(),
            optimizer=_optimizer(),
            steps=50,
            key=jax.random.key(0),
            callbacks=(callback,),
            progress=False,
        )

    limit = TimeLimit(1e-9)
    timed = run(limit)
    assert timed.stop == StopReason.time_limit and timed.n_steps == 1
    assert timed.stop_reason == "stopped at the wall-time limit (1e-09 s) after step 0"
    plain = run(Plain())
    assert plain.stop == StopReason.callback and plain.n_steps == 3
    assert plain.stop_reason == "stopped by a callback after step 2"


def test_preconditioner_is_applied():
    class Newton(AbstractPreconditioner):
        inverse_hessian: jax.Array

        def init(self, params):
            return jnp.zeros(())

        def __call__(self, grads, state, model, aux):
            return {"x": self.inverse_hessian @ grads["x"], "counter": grads["counter"]}, state + 1

    prob = _problem()
    opt = optax.multi_transform(
        {"x": optax.sgd(1.0), "counter": optax.sgd(-1.0)}, {"x": "x", "counter": "counter"}
    )
    res = fit(
        prob,
        _model(),
        optimizer=opt,
        steps=1,
        key=jax.random.key(0),
        preconditioner=Newton(jnp.linalg.inv(prob.hessian)),
        progress=False,
    )
    # One exact Newton step lands on the optimum.
    np.testing.assert_allclose(res.model["x"], prob.optimum, atol=1e-12)
    assert int(res.state.precond_state) == 1


def test_trainable_filter_freezes_parameters():
    model = {"x": jnp.zeros(3), "counter": jnp.zeros(())}
    spec = {"x": False, "counter": True}
    res = fit(
        _problem(),
        model,
        optimizer=optax.sgd(-1.0),
        steps=4,
        key=jax.random.key(0),
        trainable=spec,
        progress=False,
    )
    np.testing.assert_array_equal(res.model["x"], jnp.zeros(3))
    assert float(res.model["counter"]) == 4


def test_bad_input():
    with pytest.raises(TypeError, match="objective"):
        fit(lambda m, k: None, _model(), optimizer=_optimizer(), steps=3, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key"):
        fit(_problem(), _model(), optimizer=_optimizer(), steps=3, key=123)
    with pytest.raises(ValueError, match="steps"):
        fit(_problem(), _model(), optimizer=_optimizer(), steps=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="resume"):
        fit(
            _problem(),
            _model(),
            optimizer=_optimizer(),
            steps=3,
            key=jax.random.key(0),
            resume=True,
        )
    with pytest.raises(TypeError, match="optax"):
        fit(_problem(), _model(), optimizer="adam", steps=3, key=jax.random.key(0))


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _fit(**kw):
    kw = {
        "optimizer": _optimizer(),
        "steps": 12,
        "key": jax.random.key(1),
        "progress": False,
    } | kw
    return fit(kw.pop("problem", _problem(noise=0.3)), kw.pop("model", _model()), **kw)


def test_full_disk_at_the_final_checkpoint_keeps_the_result(tmp_path, monkeypatch):
    """ENOSPC inside equinox's serialiser (which wraps it in a TreePathError) after the last
    step: `OutputWriteError` says "no space left on device (ENOSPC)", carries the finished
    run as `.result`, and the earlier checkpoint is left as it was."""
    ckpt = tmp_path / "run.eqx"
    ckpt.write_bytes(b"earlier")
    monkeypatch.setattr(jnp, "save", _enospc)
    with pytest.raises(OutputWriteError, match=r"no space left on device \(ENOSPC\)") as e:
        _fit(checkpoint_path=ckpt)
    assert "TreePathError" not in str(e.value) and str(ckpt) in str(e.value)
    assert e.value.errno == errno.ENOSPC
    run = e.value.result
    assert run.n_steps == 12 and len(run.history) == 12 and run.stop_reason is None
    monkeypatch.undo()
    ref = _fit()
    assert run.model["x"].tobytes() == ref.model["x"].tobytes()
    assert ckpt.read_bytes() == b"earlier" and list(tmp_path.glob("*.tmp")) == []


def test_full_disk_mid_run_warns_retries_and_keeps_going(tmp_path, monkeypatch):
    """Periodic checkpoints fail twice (ENOSPC at fsync), then the disk has room again: the run
    warns once, finishes, and its final checkpoint is written."""
    ckpt = tmp_path / "run.eqx"
    fsync, failures = os.fsync, [2]

    def flaky_fsync(fd):
        if failures[0] > 0:
            failures[0] -= 1
            _enospc()
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.warns(RuntimeWarning, match=r"ENOSPC.*Training continues") as w:
        run = _fit(checkpoint_path=ckpt, checkpoint_every=3)
    assert len([x for x in w if "ENOSPC" in str(x.message)]) == 1
    assert run.n_steps == 12 and int(load_tree(ckpt, run.state).step) == 12


def test_log_write_failure_loses_no_record(tmp_path, monkeypatch):
    """The log's writes fail for steps 3–5 (ENOSPC): no half line is left, the records are kept
    and written once the disk has room, so the log still has one line per step."""
    log = tmp_path / "log.jsonl"
    write, failures = os.write, [3]

    def failing_write(fd, data):
        record = bytes(data)
        if failures[0] and any(f'{{"step": {k},'.encode() in record for k in (3, 4, 5)):
            failures[0] -= 1
            write(fd, record[:10])  # a short write, then the disk is full
            _enospc()
        return write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.warns(RuntimeWarning, match="ENOSPC"):
        run = _fit(log_path=log)
    monkeypatch.undo()
    lines = log.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(12))
    assert [json.loads(line)["loss"] for line in lines] == [r["loss"] for r in run.history]


def test_log_that_cannot_be_written_at_the_end_raises_with_the_result(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    write = os.write

    def full_after_step_7(fd, data):
        if b'"step": 8,' in bytes(data) or b'"step": 9,' in bytes(data):
            _enospc()
        return write(fd, data)

    monkeypatch.setattr(os, "write", full_after_step_7)
    with pytest.warns(RuntimeWarning), pytest.raises(OutputWriteError, match="ENOSPC") as e:
        _fit(log_path=log, steps=10)
    assert e.value.result.n_steps == 10
    monkeypatch.undo()
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == list(range(8))


def test_unwritable_output_is_refused_before_the_first_step(tmp_path, monkeypatch):
    """A checkpoint or log location that cannot be written (a read-only folder: the probe file
    is refused with EACCES, as it is for a non-root user) is reported before any step."""
    steps = []
    tracer = lambda k, rec, m: steps.append(k)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_io.tempfile, "mkstemp", refuse)
    for kw in ({"checkpoint_path": tmp_path / "ro" / "c.eqx"}, {"log_path": tmp_path / "l"}):
        with pytest.raises(OutputWriteError, match="not writable: permission denied"):
            _fit(callbacks=(tracer,), **kw)
    assert steps == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_folder_is_refused_before_the_first_step(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputWriteError, match="not writable"):
            _fit(checkpoint_path=ro / "c.eqx")
    finally:
        ro.chmod(0o700)


def test_non_finite_initial_model_is_refused_before_the_first_step():
    steps = []
    bad = {"x": jnp.array([0.0, jnp.nan, 0.0]), "counter": jnp.zeros(())}
    with pytest.raises(ValueError, match=r"`model` must be finite.*\['x'\]") as e:
        _fit(model=bad, callbacks=(lambda k, rec, m: steps.append(k),))
    assert steps == [] and "loss" not in str(e.value) and "checkpoint" not in str(e.value)


def _interrupted(ckpt, log, at):
    """A run of 60 steps killed after step `at` (its last checkpoint: step 40), with half a
    record at the end of the log, as a kill inside a write would leave."""

    def kill(k, rec, m):
        if k == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(steps=60, checkpoint_path=ckpt, checkpoint_every=20, log_path=log, callbacks=(kill,))
    with open(log, "a") as f:
        f.write('{"step": 46, "lo')


def test_resumed_log_has_one_record_per_step(tmp_path):
    """Killed at step 45 with the last checkpoint at step 40, resumed twice: the log holds
    steps 0..59 once each (not 62 lines), equal to an uninterrupted run's."""
    ckpt, log = tmp_path / "run.eqx", tmp_path / "log.jsonl"
    full = _fit(steps=60)
    _interrupted(ckpt, log, at=45)
    assert int(load_tree(ckpt, full.state).step) == 40
    _fit(steps=50, checkpoint_path=ckpt, log_path=log, resume=True)
    second = _fit(steps=60, checkpoint_path=ckpt, log_path=log, resume=True)
    lines = log.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(60))
    assert [json.loads(line)["loss"] for line in lines] == [r["loss"] for r in full.history]
    assert second.model["x"].tobytes() == full.model["x"].tobytes()


class _Collapsing(_problem().__class__):
    """The quadratic, whose objective reports a collapsed batch once the counter reaches
    `collapse_at`."""

    collapse_at: int = -1

    def value_and_grad(self, model, key):
        stats, grads, aux = super().value_and_grad(model, key)
        return stats, grads, {**aux, "collapsed": model["counter"] >= self.collapse_at}


def test_collapsed_batch_stops_with_the_last_parameters_that_had_not_collapsed(tmp_path):
    """Collapse seen at step 7 (the parameters after 7 updates): the run returns those after 6
    updates, and the history, the log and the checkpoint all end at step 6."""
    h = jnp.diag(jnp.array([1.0, 3.0, 10.0]))
    prob = _Collapsing(h, jnp.array([1.0, -2.0, 0.5]), noise=0.3, collapse_at=7)
    ckpt, log = tmp_path / "run.eqx", tmp_path / "log.jsonl"
    ref = _fit(steps=6)
    res = _fit(problem=prob, steps=20, checkpoint_path=ckpt, checkpoint_every=1, log_path=log)
    assert bool(res.stop == StopReason.collapsed)
    assert res.stop_reason.startswith("collapsed sample batch") and "at step 7" in res.stop_reason
    assert res.n_steps == 6 and float(res.model["counter"]) == 6 and len(res.history) == 6
    assert res.model["x"].tobytes() == ref.model["x"].tobytes()
    assert len(log.read_text().splitlines()) == 6
    assert int(load_tree(ckpt, res.state).step) == 6


def test_progress_in_a_non_interactive_log_is_a_few_lines(monkeypatch):
    """200 fast steps with stderr redirected to a file-like stream (not a TTY): at most a few
    plain lines, no carriage-return updates."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    _fit(steps=200, progress=True, desc="toy")
    out = stream.getvalue()
    assert "\r" not in out and 1 <= len(out.splitlines()) <= 3
    assert "toy: step 200/200" in out
