"""Physical parameters of the single-track drift model being learned.

Defaults are the Toyota Supra prior of Djeumou et al., "One model to drift them all", CoRL 2024,
appendix A.1 (m, I_z, I_w, R, a, b). Friction belongs to the tyre models, not here.
The drive input τ reaches the rear wheels through the affine map of A.1,
E(τ) = k_τ τ + τ_0 ("a linear function with learnable parameters"): k_τ = `torque_gain`, and
τ_0 = `torque_offset_nm` where the map has an offset (None: E(τ) = k_τ τ, the log's τ is the
wheel torque itself up to a driveline efficiency).
Every parameter is a float array field so that the user can choose which ones are learned
(`physml.vehicle.trainable_spec`); the rest stay fixed.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._tires.base import float_array, float_field

_POSITIVE = (
    "mass_kg",
    "yaw_inertia_kgm2",
    "wheel_inertia_kgm2",
    "wheel_radius_m",
    "a_m",
    "b_m",
    "gravity_mps2",
    "torque_gain",
)


class VehicleParams(eqx.Module):
    """Vehicle parameters of the single-track model (SI units).

    Attributes:
        mass_kg: vehicle mass m [kg].
        yaw_inertia_kgm2: yaw moment of inertia I_z [kg m²].
        wheel_inertia_kgm2: rear axle rotational inertia I_w [kg m²].
        wheel_radius_m: rear wheel effective rolling radius R [m].
        a_m, b_m: distance from the centre of mass to the front / rear axle [m].
        gravity_mps2: gravitational acceleration g [m/s²].
        torque_gain: k_τ of the drive map E(τ) = k_τ τ + τ_0 [N m per unit of τ]; with τ the
            drive torque at the rear axle [N m], k_τ ≈ 1 absorbs a driveline efficiency.
        torque_offset_nm: τ_0 [N m], or None for a map without an offset (a scalar array where
            τ is a command, e.g. a throttle or an engine-torque request, whose map to the wheel
            torque is unknown and learned: `trainable_spec` then learns k_τ and τ_0).
    """

    mass_kg: Float[Array, ""] = float_field(2048.0)
    yaw_inertia_kgm2: Float[Array, ""] = float_field(3675.0)
    wheel_inertia_kgm2: Float[Array, ""] = float_field(6.0)
    wheel_radius_m: Float[Array, ""] = float_field(0.368)
    a_m: Float[Array, ""] = float_field(1.345)
    b_m: Float[Array, ""] = float_field(1.522)
    gravity_mps2: Float[Array, ""] = float_field(9.81)
    torque_gain: Float[Array, ""] = float_field(1.0)
    torque_offset_nm: Float[Array, ""] | None = eqx.field(
        default=None, converter=lambda x: None if x is None else float_array(x)
    )

    def __check_init__(self):
        for name in _POSITIVE:
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue  # traced inside jit/grad: checked where it is concrete
            if jnp.shape(value) != ():
                raise ValueError(
                    f"`VehicleParams.{name}` must be a scalar, got shape {jnp.shape(value)}."
                )
            v = float(np.asarray(value))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(
                    f"`VehicleParams.{name}` must be finite and > 0, got {v!r}. Units: see the "
                    "class docstring."
                )
        offset = self.torque_offset_nm
        if offset is not None and not isinstance(offset, jax.core.Tracer):
            if jnp.shape(offset) != () or not np.isfinite(float(np.asarray(offset))):
                raise ValueError(
                    "`VehicleParams.torque_offset_nm` must be None or a finite scalar [N m], "
                    f"got {offset!r}."
                )

    def drive_torque(self, tau: Float[Array, "*batch"]) -> Float[Array, "*batch"]:
        """The wheel torque E(τ) = k_τ τ + τ_0 [N m] of the drive input τ (CoRL 2024, A.1)."""
        torque = self.torque_gain * tau
        return torque if self.torque_offset_nm is None else torque + self.torque_offset_nm

    @property
    def wheelbase_m(self) -> Float[Array, ""]:
        return self.a_m + self.b_m

    def normal_loads(self) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """Static normal loads (F_zf, F_zr) [N] from the weight distribution: m g b/L, m g a/L."""
        weight = self.mass_kg * self.gravity_mps2
        return weight * self.b_m / self.wheelbase_m, weight * self.a_m / self.wheelbase_m
