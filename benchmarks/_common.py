"""Helpers shared by the quantum benchmarks (`quantum_accuracy.py`, `quantum_2d.py`,
`quantum_2d_gpu.py`), on physml's public API only.

- `learning_rate`: a constant step, or held for half the steps and then cosine-decayed;
- `TimeLimit`, `StepClock`: `physml.kernels.fit` callbacks for a wall-clock budget and step times;
- `ground_state_in_budget`: `physml.quantum.ground_state` with SR + SGD whose hold-then-decay
  schedule fits a wall-clock budget.

The scripts run as `python benchmarks/<script>.py`, which puts this folder on `sys.path`.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

from physml.kernels import fit
from physml.quantum import SR, VMCObjective, ground_state

__all__ = ["StepClock", "TimeLimit", "ground_state_in_budget", "learning_rate"]


def learning_rate(lr: float, final_lr: float | None, steps: int):
    """Constant `lr`, or held for the first half and then cosine-decayed to `final_lr`: the
    imaginary-time step shrinks once the state is close, which lowers the stochastic noise
    floor of the SR updates."""
    if final_lr is None:
        return lr
    half = steps // 2
    return optax.join_schedules(
        [optax.constant_schedule(lr), optax.cosine_decay_schedule(lr, steps - half, final_lr / lr)],
        [half],
    )


class TimeLimit:
    """fit callback: stop when the wall-clock budget of a run is spent."""

    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds

    def __call__(self, step, record, model):
        return time.perf_counter() > self.deadline


class StepClock:
    """fit callback: wall-clock time of each step, to size the decaying part of a run."""

    def __init__(self):
        self.times = [time.perf_counter()]

    def __call__(self, step, record, model):
        self.times.append(time.perf_counter())
        return False

    def seconds_per_step(self) -> float:
        """Median step time after the first step (which compiles)."""
        steps = np.diff(self.times[1:])
        if steps.size == 0:
            raise RuntimeError(
                "The constant-step part ran fewer than 2 steps, too few to time one: raise the "
                "time limit."
            )
        return float(np.median(steps))

    def compile_seconds(self) -> float:
        """First step less a typical one: about what compiling the decaying part costs again
        (its lr schedule is new static data for the jitted step)."""
        return max(self.times[1] - self.times[0] - self.seconds_per_step(), 0.0)


def ground_state_in_budget(
    H,
    model,
    *,
    n_samples: int,
    steps: int,
    key,
    lr: float,
    final_lr: float | None,
    diag_shift: float,
    time_limit: float | None,
    eval_reserve: float = 0.0,
    label: str = "",
    progress: bool = False,
    **kwargs,
):
    """`ground_state` with SR + SGD whose learning-rate schedule fits a wall-clock budget.

    The schedule is `learning_rate`'s: `lr` held for the first half, then cosine-decayed to
    `final_lr`. A step-indexed schedule stopped early by the clock would never decay, so with
    `time_limit` the halves are halves of the time: the constant-`lr` part runs for half of
    `time_limit − eval_reserve` (`eval_reserve`: seconds kept for the final estimate, which
    `time_limit` includes) and times its steps; the decay is then laid over as many steps as
    fit in what is left, less one recompile. SGD keeps no optimiser state, so the two parts are
    one run. `steps` caps the total either way. Without `time_limit`, with a constant lr, or
    with `steps` = 1, this is `ground_state` over `steps` (stopped by the clock if `time_limit`
    is given).

    Returns:
        (the `Result` of the last part, the number of steps before it).
    """
    t0 = time.perf_counter()
    done, optimizer, reserve = 0, optax.sgd(learning_rate(lr, final_lr, steps)), 0.0
    if time_limit and final_lr is not None and steps >= 2:  # one step has nothing to decay
        clock = StepClock()
        hold_key, key = jax.random.split(key)
        hold = fit(
            VMCObjective(H, n_samples, gradient=False),
            model,
            optimizer=optax.sgd(lr),
            steps=max(steps // 2, 1),
            key=hold_key,
            preconditioner=SR(diag_shift),
            callbacks=(clock, TimeLimit((time_limit - eval_reserve) / 2)),
            progress=progress,
            desc="VMC energy (constant step)",
        )
        if hold.stop_reason and not hold.stop_reason.startswith("stopped by a callback"):
            raise RuntimeError(f"{label}: training stopped: {hold.stop_reason}")
        model, done, reserve = hold.model, len(hold.history), eval_reserve
        left = time_limit - (time.perf_counter() - t0) - eval_reserve - clock.compile_seconds()
        if left <= 0:
            raise RuntimeError(
                f"{label}: the constant-step half took {time.perf_counter() - t0:.0f} s of the "
                f"{time_limit:g}-s budget (evaluation reserve {eval_reserve:g} s): no time is "
                "left to decay the step; raise the time limit."
            )
        decay = max(1, min(steps - done, int(left / clock.seconds_per_step())))
        optimizer = optax.sgd(optax.cosine_decay_schedule(lr, decay, final_lr / lr))
        steps = decay
        print(f"{label}: {done} steps at {clock.seconds_per_step():.3f} s/step, {decay} to decay")
    res = ground_state(
        H,
        model,
        n_samples=n_samples,
        steps=steps,
        key=key,
        optimizer=optimizer,
        preconditioner=SR(diag_shift),
        callbacks=(TimeLimit(time_limit - (time.perf_counter() - t0) - reserve),)
        if time_limit
        else (),
        progress=progress,
        **kwargs,
    )
    return res, done
