"""Physical parameters of the single-track drift model being learned.

Defaults are the Toyota Supra prior of Djeumou et al., "One model to drift them all", CoRL 2024,
appendix A.1 (m, I_z, I_w, R, a, b). Friction belongs to the tyre models, not here.
The drive input τ reaches the rear wheels through the affine map of A.1,
E(τ) = k_τ τ + τ_0 ("a linear function with learnable parameters"): k_τ = `torque_gain`, and
τ_0 = `torque_offset_nm` where the map has an offset (None: E(τ) = k_τ τ, the log's τ is the
wheel torque itself up to a driveline efficiency).
Every parameter is a float array field so that the user can choose which ones are learned
(`physml.vehicle.trainable_spec`); the rest stay fixed.

Normal loads (`normal_loads`). Static: F_zf = m g b / L, F_zr = m g a / L, L = a + b. With a
centre-of-mass height h > 0 the drive force moves load between the axles (quasi-static
longitudinal load transfer, T. D. Gillespie, "Fundamentals of Vehicle Dynamics", SAE 1992,
ch. 2, eq. 2-5 with the acceleration m a_x = F_x):

    ΔF_z = h F_x / L,   F_x = E(τ) / R,   F_zf = m g b / L − ΔF_z,   F_zr = m g a / L + ΔF_z,

F_x being the rear tyre's drive force when the wheel speed is quasi-steady (ω̇_r = 0 in
CoRL 2024 A.1: R F_xr = E(τ)). The transfer is a function of the input alone, so the loads
stay algebraic (no loop through the tyre forces); aerodynamic drag and the front tyre's
longitudinal component are left out. CommonRoad's single-track drift model transfers load in
the same way from its commanded acceleration (M. Althoff, M. Koschi, S. Manzinger,
"CommonRoad: Composable benchmarks for motion planning on roads", IV 2017; vehicle model
documentation, Sec. 7). The default h = 0 is the static split of CoRL 2024 A.1.

Brakes (`axle_torques`). A.1 puts the whole wheel torque E(τ) on the rear wheel, brakes
included. A road car brakes mostly at the front: with a front share b_f of the brake torque
(CommonRoad's T_sb; 0.66 for the plant's vehicle 2), E < 0 splits into T_f = b_f E on the
front axle and T_r = (1 − b_f) E on the rear wheel, while a drive torque E ≥ 0 stays on the
rear. The front wheel has no speed state: its brake force is quasi-static, F_xf = T_f / R,
capped at the front tyre's `force_bound` (the friction limit μ F_z for Fiala and the magic
formula, a looser bound for the learned tyres; a locked wheel slides at it), with the
front tyre's lateral force left uncoupled from it (`SingleTrackModel.vector_field`). The
default b_f = 0 is A.1's rear-only torque.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

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
        cg_height_m: height h of the centre of mass above the ground [m], ≥ 0; 0 (the default,
            CoRL 2024 A.1) keeps the static load split (module docstring).
        brake_split_front: b_f, the share of a brake torque (E(τ) < 0) taken by the front axle,
            in [0, 1); 0 (the default, CoRL 2024 A.1) puts it on the rear wheel (module
            docstring).
        gravity_mps2: gravitational acceleration g [m/s²].
        torque_gain: k_τ of the drive map E(τ) = k_τ τ + τ_0 [N m per unit of τ]; with τ the
            total wheel torque [N m] (drive at the rear axle; a brake torque summed over both
            axles, split by `brake_split_front`), k_τ ≈ 1 absorbs a driveline efficiency.
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
    cg_height_m: Float[Array, ""] = float_field(0.0)
    brake_split_front: Float[Array, ""] = float_field(0.0)
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
        height = self.cg_height_m
        if not isinstance(height, jax.core.Tracer):
            h = np.asarray(height)
            if h.shape != () or not np.isfinite(float(h)) or float(h) < 0:
                raise ValueError(
                    "`VehicleParams.cg_height_m` must be a finite scalar ≥ 0 [m] (0: no load "
                    f"transfer), got {height!r}."
                )
        split = self.brake_split_front
        if not isinstance(split, jax.core.Tracer):
            b = np.asarray(split)
            if b.shape != () or not (np.isfinite(float(b)) and 0.0 <= float(b) < 1.0):
                raise ValueError(
                    "`VehicleParams.brake_split_front` must be a scalar in [0, 1) (the front "
                    f"axle's share of a brake torque; 0: all on the rear wheel), got {split!r}."
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

    def axle_torques(
        self, tau: Float[ArrayLike, "*batch"]
    ) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
        """(T_f, T_r) [N m]: the wheel torque E(τ) split between the front axle and the rear
        wheel, T_f = b_f min(E, 0), T_r = E − T_f (module docstring, "Brakes")."""
        torque = self.drive_torque(jnp.asarray(tau, float))
        front = self.brake_split_front * jnp.minimum(torque, 0.0)
        return front, torque - front

    @property
    def wheelbase_m(self) -> Float[Array, ""]:
        return self.a_m + self.b_m

    def normal_loads(
        self, tau: Float[ArrayLike, "*batch"] | None = None
    ) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
        """Normal loads (F_zf, F_zr) [N] under the drive input τ: m g b/L ∓ h E(τ)/(R L), m g
        a/L ± … (module docstring). `tau` None: the static loads m g b/L, m g a/L."""
        weight = self.mass_kg * self.gravity_mps2
        front = weight * self.b_m / self.wheelbase_m
        rear = weight * self.a_m / self.wheelbase_m
        if tau is None:
            return front, rear
        shift = self.load_transfer_n(tau)
        return front - shift, rear + shift

    def load_transfer_n(self, tau: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """ΔF_z = h E(τ) / (R L) [N], the load the drive input τ moves from front to rear."""
        force = self.drive_torque(jnp.asarray(tau, float)) / self.wheel_radius_m
        return self.cg_height_m * force / self.wheelbase_m
