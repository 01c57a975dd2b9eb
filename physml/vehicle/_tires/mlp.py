"""A plain MLP tyre: the unstructured baseline that shows what the structure of the others buys.

F_y = F_z · MLP(tan α / 0.2) on the front axle, (F_y, F_x) = F_z · MLP(tan α / 0.2, σ / 0.2) on
the rear. No bound, no sign, no saturation: it is only as good as the data it has seen, and
it is not started from axle forces (`fitted_to_forces` returns it unchanged).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ...kernels._validate import check_key
from .base import AbstractTireModel, Features, Scalar

_SLIP_SCALE = 0.2


class MLPTire(AbstractTireModel):
    """Unstructured MLP tyre (per axle); forces per unit load."""

    lateral_net: eqx.nn.MLP
    combined_net: eqx.nn.MLP

    def __init__(self, *, width: int = 32, depth: int = 2, key: PRNGKeyArray):
        k1, k2 = jax.random.split(check_key(key))
        self.lateral_net = eqx.nn.MLP(1, 1, width, depth, activation=jax.nn.tanh, key=k1)
        self.combined_net = eqx.nn.MLP(2, 2, width, depth, activation=jax.nn.tanh, key=k2)

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        x = jnp.tan(slip_angle)[None] / _SLIP_SCALE
        return normal_load * self.lateral_net(x)[0]

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        x = jnp.stack([jnp.tan(slip_angle), jnp.asarray(slip_ratio, float)]) / _SLIP_SCALE
        out = normal_load * self.combined_net(x)
        return out[0], out[1]

    def fitted_to_forces(
        self, fit: Callable[[AbstractTireModel], AbstractTireModel]
    ) -> AbstractTireModel:
        """Unchanged: the baseline keeps its random start."""
        return self
