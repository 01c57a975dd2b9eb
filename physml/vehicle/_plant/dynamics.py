"""The plant: CommonRoad's single-track drift model (`vehicle_dynamics_std`) ported to JAX.

The vehicle that generates the identification data and is driven in closed loop; deliberately
*not* the model physml learns: magic-formula combined-slip tyres on both axles
(`magic_formula.py`), quasi-static load transfer, front and rear wheel-speed dynamics. Source:
commonroad-vehicle-models 3.0.2 (BSD-3), `vehicle_dynamics_std.py`; Althoff & Würsching,
"CommonRoad: Vehicle Models", 2020, Sec. 7. `tests/vehicle/test_plant.py` checks the right-hand
side against the package to 1e-9 relative in float64.

State `x: Float[Array, "9"]` (the package's order; indices `IX` … `IOMEGAR`, names
`STATE_NAMES`): position x, y [m]; steering angle δ [rad] (> 0 left); speed V [m/s]; heading ψ
[rad]; yaw rate r [rad/s] (> 0 left); sideslip β [rad] (> 0: velocity left of the heading,
ISO 8855); front and rear wheel speeds ω_f, ω_r [rad/s].
Package input `u_cr`: steering rate δ̇ [rad/s], acceleration a_x [m/s²], turned into wheel torque
T = m R_w a_x (drive on the rear axle for vehicle 2; brakes 0.66 front / 0.34 rear).
`DriftPlant.vector_field` takes the physical input (δ_cmd [rad], τ [N·m]) through `Actuators`
onto (δ̇, a_x = τ / (m R_w)). Below V = 0.2 m/s the package blends in a kinematic model, kept
here, with switches written so that values and gradients stay finite down to V = 0. Valid for
forward motion with |β| < 90°; `collect` flags anything outside |β| ≤ 60°, V ≥ 4 m/s.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .actuators import Actuators
from .magic_formula import (
    lateral_force,
    lateral_force_combined,
    longitudinal_force,
    longitudinal_force_combined,
)
from .params import PlantParameters, drift_bmw_320i

GRAVITY_MPS2 = 9.81  # the package's value
#: Names of the plant state components, in order (see the module docstring for units).
STATE_NAMES = (
    "x_m",
    "y_m",
    "steer_rad",
    "speed_mps",
    "yaw_rad",
    "yaw_rate_radps",
    "sideslip_rad",
    "omega_front_radps",
    "omega_rear_radps",
)
IX, IY, ISTEER, ISPEED, IYAW, IYAWRATE, ISIDESLIP, IOMEGAF, IOMEGAR = range(9)

# The package's low-speed constants (vehicle_dynamics_std.py): blend centre, blend width, and
# the speed below which slip angles and the dynamic β̇ are switched off [m/s]. The switches are
# `jnp.where` with the untaken branch evaluated at a safe denominator (V replaced by 1 where
# V ≤ 0.1), so values and gradients stay finite; the right-hand side is piecewise smooth, its
# derivative jumping at V = 0.1 m/s (dynamic weight 0.018 there) and where a max(0, ·) or an
# input constraint becomes active.
_V_BLEND = 0.2
_V_BLEND_WIDTH = 0.05
_V_MIN = _V_BLEND / 2
_KINEMATIC_WHEEL_TIME_CONSTANT_S = 0.02

Scalar = Float[Array, ""]


# ---------------------------------------------------------------------------------------------
# The package's input constraints (utils/steering_constraints.py, acceleration_constraints.py)


def _steering_constraint(steer, steer_rate, p: PlantParameters):
    at_limit = ((steer <= p.steer_min_rad) & (steer_rate <= 0)) | (
        (steer >= p.steer_max_rad) & (steer_rate >= 0)
    )
    clipped = jnp.clip(steer_rate, p.steer_rate_min_radps, p.steer_rate_max_radps)
    return jnp.where(at_limit, 0.0, clipped)


def _acceleration_constraint(speed, accel, p: PlantParameters):
    above = speed > p.accel_switch_speed_mps
    safe_speed = jnp.where(above, speed, 1.0)
    pos_limit = jnp.where(
        above, p.accel_max_mps2 * p.accel_switch_speed_mps / safe_speed, p.accel_max_mps2
    )
    stopped = ((speed <= p.speed_min_mps) & (accel <= 0)) | (
        (speed >= p.speed_max_mps) & (accel >= 0)
    )
    clipped = jnp.where(
        accel <= -p.accel_max_mps2,
        -p.accel_max_mps2,
        jnp.where(accel >= pos_limit, pos_limit, accel),
    )
    return jnp.where(stopped, 0.0, clipped)


def constrained_inputs(
    x: Float[ArrayLike, "9"], u_cr: Float[ArrayLike, "2"], params: PlantParameters
) -> Float[Array, "2"]:
    """(δ̇ [rad/s], a_x [m/s²]) after the package's steering and acceleration constraints."""
    x = jnp.asarray(x)
    u_cr = jnp.asarray(u_cr)
    return jnp.stack(
        [
            _steering_constraint(x[ISTEER], u_cr[0], params),
            _acceleration_constraint(x[ISPEED], u_cr[1], params),
        ]
    )


def tire_forces(
    x: Float[ArrayLike, "9"], u_cr: Float[ArrayLike, "2"], params: PlantParameters
) -> dict[str, Scalar]:
    """Slips, normal loads and tyre forces of the plant at state `x` and package input `u_cr`.

    Returns a dict of scalars: `alpha_f`, `alpha_r` [rad] (slip angles, the package's and
    CoRL 2024 App. A.1's definition), `brake_slip_f`, `brake_slip_r` (s = 1 − R_w ω / u_w, see
    the tyre functions), `F_zf`, `F_zr` [N] (quasi-static load transfer, Althoff & Würsching
    2020, Sec. 7), and `F_xf`, `F_yf`, `F_xr`, `F_yr` [N] in each wheel's frame.
    """
    x = jnp.asarray(x)
    p, c = params, params.tire
    steer, speed, yaw_rate, beta = x[ISTEER], x[ISPEED], x[IYAWRATE], x[ISIDESLIP]
    accel = _acceleration_constraint(speed, jnp.asarray(u_cr)[1], p)
    lf, lr = p.cg_to_front_m, p.cg_to_rear_m

    moving = speed > _V_MIN
    safe_speed = jnp.where(moving, speed, 1.0)
    v_long = safe_speed * jnp.cos(beta)
    alpha_f = jnp.where(
        moving, jnp.arctan((safe_speed * jnp.sin(beta) + yaw_rate * lf) / v_long) - steer, 0.0
    )
    alpha_r = jnp.where(
        moving, jnp.arctan((safe_speed * jnp.sin(beta) - yaw_rate * lr) / v_long), 0.0
    )

    m = p.mass_kg
    f_zf = m * (-accel * p.cg_height_m + GRAVITY_MPS2 * lr) / (lr + lf)
    f_zr = m * (accel * p.cg_height_m + GRAVITY_MPS2 * lf) / (lr + lf)

    u_wf = jnp.maximum(
        0.0,
        speed * jnp.cos(beta) * jnp.cos(steer)
        + (speed * jnp.sin(beta) + lf * yaw_rate) * jnp.sin(steer),
    )
    u_wr = jnp.maximum(0.0, speed * jnp.cos(beta))
    s_f = 1 - p.wheel_radius_m * x[IOMEGAF] / jnp.maximum(u_wf, _V_MIN)
    s_r = 1 - p.wheel_radius_m * x[IOMEGAR] / jnp.maximum(u_wr, _V_MIN)

    f0_xf = longitudinal_force(s_f, f_zf, c)
    f0_xr = longitudinal_force(s_r, f_zr, c)
    f0_yf, mu_yf = lateral_force(alpha_f, f_zf, c)
    f0_yr, mu_yr = lateral_force(alpha_r, f_zr, c)
    return {
        "alpha_f": alpha_f,
        "alpha_r": alpha_r,
        "brake_slip_f": s_f,
        "brake_slip_r": s_r,
        "F_zf": f_zf,
        "F_zr": f_zr,
        "u_wf": u_wf,
        "u_wr": u_wr,
        "F_xf": longitudinal_force_combined(s_f, alpha_f, f0_xf, c),
        "F_xr": longitudinal_force_combined(s_r, alpha_r, f0_xr, c),
        "F_yf": lateral_force_combined(s_f, alpha_f, mu_yf, f_zf, f0_yf, c),
        "F_yr": lateral_force_combined(s_r, alpha_r, mu_yr, f_zr, f0_yr, c),
    }


def std_vector_field(
    x: Float[ArrayLike, "9"], u_cr: Float[ArrayLike, "2"], params: PlantParameters
) -> Float[Array, "9"]:
    """Right-hand side ẋ of CommonRoad's single-track drift model, in the package's inputs.

    Args:
        x: plant state (9,), see the module docstring.
        u_cr: (steering rate δ̇ [rad/s], longitudinal acceleration a_x [m/s²]) before the
            package's input constraints, which are applied here as the package does.
        params: vehicle parameters.

    Returns:
        ẋ (9,). Equations: Althoff & Würsching 2020, Sec. 7, as coded in
        `vehicle_dynamics_std.py` (including its kinematic blend at low speed).
    """
    x = jnp.asarray(x)
    p = params
    steer_rate, accel = constrained_inputs(x, u_cr, p)
    steer, speed, yaw, yaw_rate, beta = x[ISTEER], x[ISPEED], x[IYAW], x[IYAWRATE], x[ISIDESLIP]
    omega_f, omega_r = x[IOMEGAF], x[IOMEGAR]
    lf, lr, lwb, m = p.cg_to_front_m, p.cg_to_rear_m, p.wheelbase_m, p.mass_kg
    f = tire_forces(x, u_cr, p)
    f_xf, f_yf, f_xr, f_yr = f["F_xf"], f["F_yf"], f["F_xr"], f["F_yr"]

    # The package's torque map: T = m R_w a_x, drive (engine) for a_x > 0, brake otherwise.
    torque = m * p.wheel_radius_m * accel
    t_brake = jnp.where(accel > 0, 0.0, torque)
    t_drive = jnp.where(accel > 0, torque, 0.0)

    d_speed = (
        1
        / m
        * (
            -f_yf * jnp.sin(steer - beta)
            + f_yr * jnp.sin(beta)
            + f_xr * jnp.cos(beta)
            + f_xf * jnp.cos(steer - beta)
        )
    )
    dd_yaw = (
        1
        / p.yaw_inertia_kgm2
        * (f_yf * jnp.cos(steer) * lf - f_yr * lr + f_xf * jnp.sin(steer) * lf)
    )
    moving = speed > _V_MIN
    safe_speed = jnp.where(moving, speed, 1.0)
    d_beta = jnp.where(
        moving,
        -yaw_rate
        + 1
        / (m * safe_speed)
        * (
            f_yf * jnp.cos(steer - beta)
            + f_yr * jnp.cos(beta)
            - f_xr * jnp.sin(beta)
            + f_xf * jnp.sin(steer - beta)
        ),
        0.0,
    )

    # Wheel dynamics; the package forbids negative wheel speed (ω̇ = 0 once ω < 0).
    d_omega_f = jnp.where(
        omega_f >= 0,
        1
        / p.wheel_inertia_kgm2
        * (
            -p.wheel_radius_m * f_xf + p.brake_split_front * t_brake + p.drive_split_front * t_drive
        ),
        0.0,
    )
    d_omega_r = jnp.where(
        omega_r >= 0,
        1
        / p.wheel_inertia_kgm2
        * (
            -p.wheel_radius_m * f_xr
            + (1 - p.brake_split_front) * t_brake
            + (1 - p.drive_split_front) * t_drive
        ),
        0.0,
    )

    # Kinematic single-track model at the CoG (utils/vehicle_dynamics_ks_cog.py) and the
    # package's kinematic β̇ and ψ̈; its (tan²δ · b/l)² is the package's, kept as written.
    beta_ks = jnp.arctan(jnp.tan(steer) * lr / lwb)
    d_yaw_ks = speed * jnp.cos(beta_ks) * jnp.tan(steer) / lwb
    d_beta_ks = (lr * steer_rate) / (
        lwb * jnp.cos(steer) ** 2 * (1 + (jnp.tan(steer) ** 2 * lr / lwb) ** 2)
    )
    dd_yaw_ks = (
        1
        / lwb
        * (
            accel * jnp.cos(beta) * jnp.tan(steer)
            - speed * jnp.sin(beta) * d_beta_ks * jnp.tan(steer)
            + speed * jnp.cos(beta) * steer_rate / jnp.cos(steer) ** 2
        )
    )
    tau_w = _KINEMATIC_WHEEL_TIME_CONSTANT_S
    d_omega_f_ks = (1 / tau_w) * (f["u_wf"] / p.wheel_radius_m - jnp.maximum(0.0, omega_f))
    d_omega_r_ks = (1 / tau_w) * (f["u_wr"] / p.wheel_radius_m - jnp.maximum(0.0, omega_r))

    w_std = 0.5 * (jnp.tanh((speed - _V_BLEND) / _V_BLEND_WIDTH) + 1)
    w_ks = 1 - w_std
    return jnp.stack(
        [
            speed * jnp.cos(beta + yaw),
            speed * jnp.sin(beta + yaw),
            steer_rate,
            w_std * d_speed + w_ks * accel,
            w_std * yaw_rate + w_ks * d_yaw_ks,
            w_std * dd_yaw + w_ks * dd_yaw_ks,
            w_std * d_beta + w_ks * d_beta_ks,
            w_std * d_omega_f + w_ks * d_omega_f_ks,
            w_std * d_omega_r + w_ks * d_omega_r_ks,
        ]
    )


class DriftPlant(eqx.Module):
    """The plant vehicle: CommonRoad's single-track drift model behind drift-car actuators.

    `vector_field(t, x, u, args)` follows the kernels' convention and takes the physical input
    u = (δ_cmd [rad], τ [N·m]): the steering command goes through the steering servo of
    `actuators`, the wheel torque τ (drive on the rear axle when positive, brakes split 66/34
    front/rear when negative) becomes the package's a_x = τ / (m R_w), and the package's own
    constraints then apply (its power limit may lower a positive τ at speed: see
    `applied_inputs`).

    Attributes:
        params: vehicle parameters; default CommonRoad vehicle 2 with a drift car's steering
            rate (`drift_bmw_320i`). Use `bmw_320i()` for the package's vehicle 2 exactly.
        actuators: steering servo and torque limits, see `Actuators`.
    """

    params: PlantParameters = eqx.field(default_factory=drift_bmw_320i)
    actuators: Actuators = eqx.field(default_factory=Actuators)

    def __check_init__(self):
        a, p = self.actuators, self.params
        if a.steer_rate_max_radps > p.steer_rate_max_radps or a.steer_max_rad > p.steer_max_rad:
            raise ValueError(
                "The actuators are faster or reach further than the plant lets them: "
                f"Actuators(steer_rate_max_radps={a.steer_rate_max_radps!r}, "
                f"steer_max_rad={a.steer_max_rad!r}) against the plant's constraints "
                f"|δ̇| ≤ {p.steer_rate_max_radps!r} rad/s, |δ| ≤ {p.steer_max_rad!r} rad. Use "
                "params=drift_bmw_320i(steer_rate_max_radps=...) or slower actuators."
            )

    def package_inputs(
        self, x: Float[ArrayLike, "9"], u: Float[ArrayLike, "2"]
    ) -> Float[Array, "2"]:
        """The package input (δ̇ [rad/s], a_x [m/s²]) that the physical input u produces at x."""
        x, u = jnp.asarray(x), jnp.asarray(u)
        steer_rate = self.actuators.steer_rate(x[ISTEER], u[0])
        torque = self.actuators.torque(u[1])
        return jnp.stack([steer_rate, torque / (self.params.mass_kg * self.params.wheel_radius_m)])

    def applied_inputs(
        self, x: Float[ArrayLike, "9"], u: Float[ArrayLike, "2"]
    ) -> Float[Array, "2"]:
        """(δ [rad], τ [N·m]) that act on the tyres: actual steering angle, torque after limits."""
        x = jnp.asarray(x)
        _, accel = constrained_inputs(x, self.package_inputs(x, u), self.params)
        return jnp.stack([x[ISTEER], accel * self.params.mass_kg * self.params.wheel_radius_m])

    def vector_field(
        self, t, x: Float[Array, "9"], u: Float[Array, "2"], args=None
    ) -> Float[Array, "9"]:
        """ẋ at state x under physical input u = (δ_cmd [rad], τ [N·m]); t and args unused."""
        del t, args
        return std_vector_field(x, self.package_inputs(x, u), self.params)

    def straight_state(self, speed_mps: float, *, dtype=None) -> Float[Array, "9"]:
        """Straight-line state at `speed_mps` [m/s] with freely rolling wheels (ω = V / R_w)."""
        if not np.isfinite(speed_mps) or speed_mps <= 0:
            raise ValueError(f"`speed_mps` must be a finite speed > 0 [m/s], got {speed_mps!r}.")
        omega = speed_mps / self.params.wheel_radius_m
        return jnp.asarray([0, 0, 0, speed_mps, 0, 0, 0, omega, omega], dtype=dtype)
