"""Step-indexed learning-rate schedules for `fit` (optax schedules: a function of the step count
that optax keeps in the optimiser state, so a resumed run follows the same schedule)."""

from __future__ import annotations

import optax

from ._validate import check_positive_int, check_positive_number, is_finite_scalar


def hold_cosine_schedule(
    learning_rate: float | int,
    steps: int,
    *,
    final_learning_rate: float | int | None = None,
    hold_fraction: float | int = 0.5,
) -> optax.Schedule:
    """A step-indexed learning rate: `learning_rate` held for the first ⌊hold_fraction·steps⌋
    steps, then cosine-decayed to `final_learning_rate` at step `steps` (and held there):

        η(k) = η_f + (η₀ − η_f)·½(1 + cos(π·(k − k_h)/(steps − k_h))),   k_h <= k <= steps.

    A constant `learning_rate` if `final_learning_rate` is None or nothing is left to decay.
    A function of the step count only (optax keeps the count in the optimiser state, which
    `fit` checkpoints), so a run stopped by a `TimeLimit` and resumed follows the same schedule.
    """
    learning_rate = check_positive_number(learning_rate, "learning_rate")
    steps = check_positive_int(steps, "steps")
    if isinstance(hold_fraction, (bool, str)) or not is_finite_scalar(hold_fraction):
        raise ValueError(f"`hold_fraction` must be a number in [0, 1], got {hold_fraction!r}.")
    if not 0 <= float(hold_fraction) <= 1:
        raise ValueError(f"`hold_fraction` must be in [0, 1], got {hold_fraction!r}.")
    if final_learning_rate is None:
        return optax.constant_schedule(learning_rate)
    final = check_positive_number(final_learning_rate, "final_learning_rate")
    hold = int(float(hold_fraction) * steps)
    if hold >= steps:
        return optax.constant_schedule(learning_rate)
    decay = optax.cosine_decay_schedule(learning_rate, steps - hold, final / learning_rate)
    return optax.join_schedules([optax.constant_schedule(learning_rate), decay], [hold])


__all__ = ["hold_cosine_schedule"]
