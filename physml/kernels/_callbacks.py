"""Driver-side callbacks of the training loop.

A callback is any callable `cb(step, record, model) -> bool | None`, called on the host after
each step with the step index, the record about to be logged (a dict of floats it may add to)
and the current model. Returning True stops the run. A callback may also define
`final_model(model) -> model`, which `fit` applies to the returned model (used to restore the
best parameters).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ._validate import check_positive_number


class EarlyStopping:
    """Stop when a monitored quantity has not improved for `patience` steps.

    Args:
        monitor: a key of the step record ("loss", or one a previous callback adds, such as
            "val_loss"), or a callable `(step, record, model) -> float` evaluated here and
            stored in the record as `name`.
        patience: number of steps without improvement (by more than `min_delta`) to wait.
        min_delta: the smallest change that counts as an improvement.
        mode: "min" or "max".
        restore_best: return the best model seen instead of the last one.
        every: evaluate only every `every` steps (useful for costly validation callables).
        name: record key for a callable monitor.
    """

    def __init__(
        self,
        monitor: str | Callable[[int, dict, Any], float] = "loss",
        *,
        patience: int = 20,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
        every: int = 1,
        name: str = "monitor",
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max', got {mode!r}.")
        if patience < 1 or every < 1:
            raise ValueError(f"`patience` and `every` must be >= 1, got {patience}, {every}.")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode, self.restore_best, self.every, self.name = mode, restore_best, every, name
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.best_model: Any = None
        self._evaluations_since_best = 0

    def __call__(self, step: int, record: dict, model: Any) -> bool:
        if step % self.every:
            return False
        if callable(self.monitor):
            value = float(self.monitor(step, record, model))
            record[self.name] = value
        else:
            if self.monitor not in record:
                raise KeyError(
                    f"EarlyStopping monitors {self.monitor!r}, which is not in the step record "
                    f"(keys: {sorted(record)}); add a callback before it that computes it."
                )
            value = float(record[self.monitor])
        sign = 1.0 if self.mode == "min" else -1.0
        if math.isfinite(value) and sign * (self.best - value) > self.min_delta:
            self.best, self.best_step, self.best_model = value, step, model
            self._evaluations_since_best = 0
            return False
        self._evaluations_since_best += 1
        return self._evaluations_since_best * self.every >= self.patience

    def final_model(self, model: Any) -> Any:
        if self.restore_best and self.best_model is not None:
            return self.best_model
        return model


class TimeLimit:
    """`fit` callback: a wall-clock budget. The clock starts when the callback is created; after
    each step the run stops if the next step, taking as long as the last, would end past
    `seconds` (the first step, which compiles, counts from the creation). With a
    `checkpoint_path` the state is saved, so the run resumes where it stopped.

    Attributes:
        seconds: the budget [s].
        message: what `fit` quotes in its `stop_reason`.
    """

    def __init__(self, seconds: float | int):
        self.seconds = check_positive_number(seconds, "seconds")
        self.message = f"{self.seconds:g} s"
        self._start = self._last = time.perf_counter()

    def __call__(self, step: int, record: dict, model: Any) -> bool:
        now = time.perf_counter()
        last, self._last = now - self._last, now
        return now - self._start + last > self.seconds
