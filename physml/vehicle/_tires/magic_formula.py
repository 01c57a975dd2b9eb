"""Pacejka magic-formula tyre: lateral, longitudinal and combined slip.

Pacejka, "Tire and Vehicle Dynamics", 3rd ed. (2012), Sec. 4.3.2: the sine version of the magic
formula, eq. (4.49),
    y(x) = D sin[C arctan{B x − E (B x − arctan(B x))}],
here with D = μ F_z (peak), no shifts, x = α [rad] (lateral) and x = σ [-] (longitudinal). Combined
slip by the cosine weighting functions of the same section (the G-functions of the MF-Tyre set,
Sec. 4.3.2 "combined slip"; shifts, E and camber omitted):
    F_y = G_yκ(σ, α) F_y0(α),  G_yκ = cos[C_yκ arctan(B_yκ σ)],  B_yκ = r_By1 cos[arctan(r_By2 α)],
    F_x = G_xα(α, σ) F_x0(σ),  G_xα = cos[C_xα arctan(B_xα α)],  B_xα = r_Bx1 cos[arctan(r_Bx2 σ)].
The second factor of B_yκ flattens the weighting at large |α|, so a spinning, sliding wheel
keeps a lateral force growing with its slip angle, as the plant's MF-Tyre set does
(r_By2 ≈ 9.2, r_Bx2 ≈ −13.8); all fields start at typical values and are learned.
Signs follow physml's convention: F_y = −y(α) (opposes the slip angle), F_x = +y(σ).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import AbstractTireModel, Features, Scalar, float_array


def magic_formula(x: Array, b: Array, c: Array, d: Array, e: Array) -> Array:
    """Pacejka (2012) eq. (4.49): D sin[C arctan{B x − E (B x − arctan B x)}]."""
    bx = b * x
    return d * jnp.sin(c * jnp.arctan(bx - e * (bx - jnp.arctan(bx))))


class MagicFormula(AbstractTireModel):
    """Magic-formula tyre (per axle), load-normalised: peak force = μ F_z.

    Attributes:
        mu: peak friction coefficient D / F_z [-] (lateral and longitudinal).
        b_y, c_y, e_y: lateral stiffness, shape and curvature factors (α in rad).
        b_x, c_x, e_x: longitudinal factors (σ dimensionless).
        b_ykappa, c_ykappa, b_xalpha, c_xalpha: combined-slip weighting factors (r_By1, r_Cy1,
            r_Bx1, r_Cx1).
        b_ykappa_alpha, b_xalpha_sigma: dependence of B_yκ on α [1/rad] and of B_xα on σ [-]
            (r_By2, r_Bx2; module docstring).
    Bound: |F_y|, |F_x| ≤ μ F_z (|sin| ≤ 1, |cos| ≤ 1).
    Defaults are typical passenger-car values (BCD ≈ 12 F_z per rad laterally).
    """

    mu: Float[Array, ""] = eqx.field(default=1.0, converter=float_array)
    b_y: Float[Array, ""] = eqx.field(default=9.0, converter=float_array)
    c_y: Float[Array, ""] = eqx.field(default=1.35, converter=float_array)
    e_y: Float[Array, ""] = eqx.field(default=-0.5, converter=float_array)
    b_x: Float[Array, ""] = eqx.field(default=11.0, converter=float_array)
    c_x: Float[Array, ""] = eqx.field(default=1.6, converter=float_array)
    e_x: Float[Array, ""] = eqx.field(default=0.0, converter=float_array)
    b_ykappa: Float[Array, ""] = eqx.field(default=6.0, converter=float_array)
    c_ykappa: Float[Array, ""] = eqx.field(default=1.0, converter=float_array)
    b_xalpha: Float[Array, ""] = eqx.field(default=6.0, converter=float_array)
    c_xalpha: Float[Array, ""] = eqx.field(default=1.0, converter=float_array)
    b_ykappa_alpha: Float[Array, ""] = eqx.field(default=9.0, converter=float_array)
    b_xalpha_sigma: Float[Array, ""] = eqx.field(default=13.0, converter=float_array)

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        d = jnp.abs(self.mu) * normal_load
        return -magic_formula(jnp.asarray(slip_angle, float), self.b_y, self.c_y, d, self.e_y)

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        alpha = jnp.asarray(slip_angle, float)
        sigma = jnp.asarray(slip_ratio, float)
        d = jnp.abs(self.mu) * normal_load
        fy0 = -magic_formula(alpha, self.b_y, self.c_y, d, self.e_y)
        fx0 = magic_formula(sigma, self.b_x, self.c_x, d, self.e_x)
        # cos(arctan x) = 1 / sqrt(1 + x²)
        b_yk = self.b_ykappa / jnp.sqrt(1.0 + (self.b_ykappa_alpha * alpha) ** 2)
        b_xa = self.b_xalpha / jnp.sqrt(1.0 + (self.b_xalpha_sigma * sigma) ** 2)
        g_ykappa = jnp.cos(self.c_ykappa * jnp.arctan(b_yk * sigma))
        g_xalpha = jnp.cos(self.c_xalpha * jnp.arctan(b_xa * alpha))
        return g_ykappa * fy0, g_xalpha * fx0

    def force_bound(self, normal_load: Scalar) -> Array:
        return jnp.abs(self.mu) * normal_load
