"""Where a model identified from a log has data: the log's front slip-angle envelope.

A learned tyre curve is fitted only over the slip angles the log visits; beyond them it is
extrapolation. The drift MPC can be told the largest front slip angle of the data
(`MPCWeights.front_slip_limit_rad`) and then pays for plans that leave it (the soft term ρ_α of
`physml.vehicle._control.problem`), as Djeumou et al. (ICRA 2023, Sec. V) keep their controller
to the states their three minutes of data cover.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from .._data.log import DriveLog
from .._model.single_track import SingleTrackModel


def front_slip_envelope(
    model: SingleTrackModel, log: DriveLog, *, quantile: float = 0.995
) -> float:
    """The front slip angle |α_f| [rad] that the fraction `quantile` of the log's good samples
    (flags = 0) stays within, α_f = atan((V sin β + a r) / (V cos β)) − δ (`model.slips`, on
    the logged states and steering). A high quantile rather than the maximum: a few noisy
    samples must not widen the envelope. Raises ValueError for a quantile outside (0, 1] or a
    log with no good sample."""
    if not (isinstance(quantile, int | float) and 0 < quantile <= 1):
        raise ValueError(f"`quantile` must be in (0, 1], got {quantile!r}.")
    if not isinstance(log, DriveLog):
        raise TypeError(f"`log` must be a DriveLog, got {type(log).__name__}.")
    good = np.asarray(log.flags) == 0
    if not np.any(good):
        raise ValueError("The log has no good sample (every flag is set); no envelope.")
    alpha_f = jax.vmap(model.slips)(log.state[good], log.control[good])[0]
    value = float(np.quantile(np.abs(np.asarray(alpha_f)), quantile))
    if not math.isfinite(value):
        raise ValueError(f"The log's front slip angles are not finite (got {value!r}).")
    return value


__all__ = ["front_slip_envelope"]
