"""The plant's tyres: Pacejka's magic formula with combined slip, as CommonRoad codes it.

Pure and combined-slip forces of `utils/tire_model.py` of commonroad-vehicle-models 3.0.2
(BSD-3), from Pacejka, "Tire and Vehicle Dynamics", 3rd ed. (2012), Sec. 4.3.2 (MF-Tyre
equations 4.E9, 4.E19, 4.E50, 4.E58) at zero camber:

    F_x0 = D_x sin(C_x atan{B_x κ − E_x (B_x κ − atan B_x κ)} + S_vx),   κ = −s + S_hx,
    F_y0 = D_y sin(C_y atan{B_y α − E_y (B_y α − atan B_y α)}),   D_y = μ_y F_z,
    F_x = F_x0 G_xα(α, s),  F_y = F_y0 G_yκ(s, α) + S_vyκ  (cosine weighting functions),

with the package's brake slip s = 1 − R_w ω / u_w [-] (s < 0 when the wheel spins), slip angle
α [rad], normal load F_z [N] and the coefficients of `MagicFormulaCoefficients`. Forces [N] in
the wheel frame. `plant_tire_forces` gives both combined-slip forces at once.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .params import MagicFormulaCoefficients

Scalar = Float[Array, ""]


def _shape(b, e, x):
    """The magic-formula argument B x − E (B x − atan(B x)) inside the outer atan."""
    bx = b * x
    return jnp.arctan(bx - e * (bx - jnp.arctan(bx)))


def longitudinal_force(
    brake_slip: Float[ArrayLike, ""],
    normal_load_n: Float[ArrayLike, ""],
    c: MagicFormulaCoefficients,
) -> Scalar:
    """Pure-slip longitudinal force F_x0 [N] (Pacejka 2012, eq. 4.E9, package variant)."""
    kappa = -jnp.asarray(brake_slip)
    s_hx = c.p_hx1
    s_vx = normal_load_n * c.p_vx1
    kappa_x = kappa + s_hx
    d_x = c.p_dx1 * normal_load_n
    k_x = normal_load_n * c.p_kx1
    b_x = k_x / (c.p_cx1 * d_x)
    return d_x * jnp.sin(c.p_cx1 * _shape(b_x, c.p_ex1, kappa_x) + s_vx)


def lateral_force(
    slip_angle: Float[ArrayLike, ""],
    normal_load_n: Float[ArrayLike, ""],
    c: MagicFormulaCoefficients,
) -> tuple[Scalar, Scalar]:
    """Pure-slip lateral force F_y0 [N] and friction coefficient μ_y (Pacejka 2012, eq. 4.E19).

    With γ = 0 the shifts S_hy and S_vy vanish and μ_y = p_dy1.
    """
    mu_y = c.p_dy1 * jnp.ones_like(jnp.asarray(normal_load_n))
    d_y = mu_y * normal_load_n
    k_y = normal_load_n * c.p_ky1
    b_y = k_y / (c.p_cy1 * d_y)
    return d_y * jnp.sin(c.p_cy1 * _shape(b_y, c.p_ey1, slip_angle)), mu_y


def longitudinal_force_combined(
    brake_slip: Float[ArrayLike, ""],
    slip_angle: Float[ArrayLike, ""],
    pure_force_n: Float[ArrayLike, ""],
    c: MagicFormulaCoefficients,
) -> Scalar:
    """Combined-slip longitudinal force F_x [N]: F_x0 weighted by G_xα (Pacejka 2012, 4.E50)."""
    s_h = c.r_hx1
    alpha_s = slip_angle + s_h
    b = c.r_bx1 * jnp.cos(jnp.arctan(c.r_bx2 * brake_slip))
    d = pure_force_n / jnp.cos(c.r_cx1 * _shape(b, c.r_ex1, s_h))
    return d * jnp.cos(c.r_cx1 * _shape(b, c.r_ex1, alpha_s))


def lateral_force_combined(
    brake_slip: Float[ArrayLike, ""],
    slip_angle: Float[ArrayLike, ""],
    mu_y: Float[ArrayLike, ""],
    normal_load_n: Float[ArrayLike, ""],
    pure_force_n: Float[ArrayLike, ""],
    c: MagicFormulaCoefficients,
) -> Scalar:
    """Combined-slip lateral force F_y [N]: F_y0 weighted by G_yκ, plus S_vyκ (Pacejka 2012,
    4.E58)."""
    s_h = c.r_hy1
    kappa_s = brake_slip + s_h
    b = c.r_by1 * jnp.cos(jnp.arctan(c.r_by2 * (slip_angle - c.r_by3)))
    d = pure_force_n / jnp.cos(c.r_cy1 * _shape(b, c.r_ey1, s_h))
    d_v = mu_y * normal_load_n * c.r_vy1 * jnp.cos(jnp.arctan(c.r_vy4 * slip_angle))
    s_v = d_v * jnp.sin(c.r_vy5 * jnp.arctan(c.r_vy6 * brake_slip))
    return d * jnp.cos(c.r_cy1 * _shape(b, c.r_ey1, kappa_s)) + s_v


def plant_tire_forces(
    slip_angle: Float[ArrayLike, ""],
    brake_slip: Float[ArrayLike, ""],
    normal_load_n: Float[ArrayLike, ""],
    c: MagicFormulaCoefficients,
) -> tuple[Scalar, Scalar]:
    """The plant tyre's combined-slip forces (F_x, F_y) [N] at slip angle α [rad], brake slip
    s [-] (s = −σ, negative under wheel spin) and normal load F_z [N]; e.g.
    `plant_tire_forces(alpha, 0.0, f_z, plant.params.tire)` for a free-rolling wheel."""
    f0_x = longitudinal_force(brake_slip, normal_load_n, c)
    f0_y, mu_y = lateral_force(slip_angle, normal_load_n, c)
    return (
        longitudinal_force_combined(brake_slip, slip_angle, f0_x, c),
        lateral_force_combined(brake_slip, slip_angle, mu_y, normal_load_n, f0_y, c),
    )
