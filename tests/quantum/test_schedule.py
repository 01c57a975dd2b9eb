"""The training recipe in the library: the step-indexed hold-then-cosine learning rate, the
wall-clock budget (`TimeLimit`), and `ground_state` stopped by it and resumed from its checkpoint
following the same schedule as an uninterrupted run."""

import math
import time

import jax
import numpy as np
import optax
import pytest

from physml.kernels import TimeLimit, hold_cosine_schedule
from physml.quantum import SR, ARConv1D, FixedMagnetization, ground_state, heisenberg, tfim


def test_hold_cosine_schedule_values():
    lr, final, steps = 0.05, 0.005, 10
    eta = hold_cosine_schedule(lr, steps, final_learning_rate=final, hold_fraction=0.5)
    values = np.array([float(eta(k)) for k in range(steps + 3)])
    np.testing.assert_allclose(values[:6], lr)  # held for ⌊0.5 · 10⌋ = 5 steps, k = 5 starts
    assert math.isclose(values[steps], final) and math.isclose(values[-1], final)
    assert math.isclose(float(eta(7.5)), (lr + final) / 2)  # half-way down the cosine
    assert np.all(np.diff(values) <= 1e-15)
    k = np.arange(5, 11)
    np.testing.assert_allclose(
        values[5:11], final + (lr - final) * 0.5 * (1 + np.cos(np.pi * (k - 5) / 5)), rtol=1e-6
    )
    assert float(hold_cosine_schedule(lr, steps)(9)) == lr  # no final rate: constant
    assert float(hold_cosine_schedule(lr, 3, final_learning_rate=final, hold_fraction=1)(3)) == lr
    assert float(hold_cosine_schedule(lr, 4, final_learning_rate=final, hold_fraction=0)(0)) == lr
    for kwargs, match in [
        ({"hold_fraction": 1.5}, r"`hold_fraction` must be in \[0, 1\], got 1.5"),
        ({"final_learning_rate": -1.0}, "`final_learning_rate` must be > 0"),
        ({"final_learning_rate": math.nan}, "`final_learning_rate` must be a finite number"),
    ]:
        with pytest.raises(ValueError, match=match):
            hold_cosine_schedule(lr, steps, **kwargs)
    with pytest.raises(ValueError, match="`learning_rate` must be > 0"):
        hold_cosine_schedule(0.0, steps)


def test_time_limit_stops_when_the_next_step_would_overrun(monkeypatch):
    clock = iter([0.0, 3.0, 6.0, 8.0, 9.5])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    limit = TimeLimit(10.0)  # created at t = 0
    # Steps end at 3 (3 + 3 <= 10), 6 (6 + 3), 8 (8 + 2 = 10, not past), 9.5 (9.5 + 1.5 > 10).
    assert [limit(k, {}, None) for k in range(4)] == [False, False, False, True]
    assert limit.message == "10 s"
    with pytest.raises(ValueError, match="`seconds` must be > 0"):
        TimeLimit(0)


def _chain(n=4):
    return ARConv1D(n, layers=2, features=2, kernel_size=2, positive=True, key=jax.random.key(0))


def _run(H, **kw):
    kw = {
        "n_samples": 16,
        "steps": 6,
        "key": jax.random.key(1),
        "preconditioner": SR(1e-3),
        "learning_rate": 0.05,
        "final_learning_rate": 0.005,
        "n_eval_samples": 16,
        "progress": False,
    } | kw
    return ground_state(H, _chain(H.hilbert.size), **kw)


def test_time_limited_run_resumes_on_the_same_schedule(tmp_path):
    """A 1-ns budget stops after the first step (checkpointed); resuming with the same
    arguments ends with the parameters of an uninterrupted run, bit for bit: the step-indexed
    schedule continued from the optimiser's step count, not restarted (a restarted one would
    step by η(0..4) instead of η(1..5), which differ after the hold)."""
    H = tfim(4, 1.0)
    # One optimizer object for the three runs: one compiled step.
    sgd = optax.sgd(hold_cosine_schedule(0.05, 6, final_learning_rate=0.005))
    kw = {"optimizer": sgd, "learning_rate": None, "final_learning_rate": None}
    whole = _run(H, **kw)
    ckpt = tmp_path / "state.eqx"
    first = _run(H, time_limit_s=1e-9, checkpoint_path=ckpt, **kw)
    assert first.n_steps == 1 and first.summary()["n_steps"] == 1
    assert first.stop_reason.startswith("stopped at the wall-time limit (1e-09 s) after step 0")
    rest = _run(H, checkpoint_path=ckpt, resume=True, **kw)
    assert rest.n_steps == 6 and len(rest.history) == 5 and rest.stop_reason is None
    for a, b in zip(jax.tree.leaves(rest.model), jax.tree.leaves(whole.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_default_recipe_is_sgd_with_the_schedule_under_sr():
    """With a preconditioner and no optimizer, the recipe is SGD on the schedule: the same
    parameters as passing `optax.sgd` with that schedule by hand."""
    H = heisenberg(4, total_sz=0)
    model = FixedMagnetization(_chain())
    kw = {"n_samples": 16, "steps": 3, "key": jax.random.key(2), "progress": False}
    kw |= {"preconditioner": SR(1e-3), "n_eval_samples": 16}
    by_recipe = ground_state(H, model, learning_rate=0.02, final_learning_rate=0.01, **kw)
    schedule = hold_cosine_schedule(0.02, 3, final_learning_rate=0.01)
    by_hand = ground_state(H, model, optimizer=optax.sgd(schedule), **kw)
    for a, b in zip(jax.tree.leaves(by_recipe.model), jax.tree.leaves(by_hand.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_ground_state_refuses_two_learning_rates_and_bad_budgets():
    H = tfim(4, 1.0)
    with pytest.raises(ValueError, match="either through `optimizer` or through `learning_rate`"):
        _run(H, optimizer=optax.sgd(0.1))
    with pytest.raises(ValueError, match="`time_limit_s` must be > 0"):
        _run(H, time_limit_s=-1.0)
    with pytest.raises(ValueError, match="`hold_fraction` must be in"):
        _run(H, hold_fraction=2.0)
    with pytest.raises(ValueError, match="`resume=True` needs a `checkpoint_path`"):
        _run(H, resume=True)
