"""A helper shared by the quantum benchmarks, on physml's public API only: `StepClock`, a
`physml.kernels.fit` callback that records step times (`quantum_2d_gpu.py`). The scripts run as
`python benchmarks/<script>.py`, which puts this folder on `sys.path`.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["StepClock"]


class StepClock:
    """fit callback: the wall-clock time after each step (for seconds per step)."""

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
                "The run took fewer than 2 steps, too few to time one: raise the time limit."
            )
        return float(np.median(steps))
