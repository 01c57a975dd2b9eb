"""The plant's valid range: where its dynamic tyre model, and RK4 at 1 ms on the stiff wheel
modes, describe forward driving. A log sample or a closed-loop state outside it is a spin-out or a
stall, not a drift.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from .dynamics import ISIDESLIP, ISPEED

#: The log's valid range of the plant: forward driving above this speed [m/s] (the dynamic
#: tyre model, and RK4's stability at 1 ms on the stiff wheel modes, need V well above 0) ...
VALID_MIN_SPEED_MPS = 4.0
#: ... and below this sideslip magnitude [rad] (60°: a spin-out, not a drift).
VALID_MAX_SIDESLIP_RAD = float(np.radians(60.0))


def in_valid_range(x: Float[Array, "9"]) -> Bool[Array, ""]:
    """True where the plant state is finite, V ≥ 4 m/s and |β| ≤ 60°."""
    return (
        jnp.all(jnp.isfinite(x))
        & (x[ISPEED] >= VALID_MIN_SPEED_MPS)
        & (jnp.abs(x[ISIDESLIP]) <= VALID_MAX_SIDESLIP_RAD)
    )
