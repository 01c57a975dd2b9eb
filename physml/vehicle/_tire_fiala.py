"""Fiala brush tyre with a friction-circle limit on the driven axle.

Fiala, "Seitenkräfte am rollenden Luftreifen", VDI-Zeitschrift 96 (1954); in the form used for
drifting by Goh & Gerdes and by Djeumou et al. (ICRA 2023, CoRL 2024) as the physics baseline:
    z = tan α,  tan α_sl = 3 F_max / C_α,
    |α| < α_sl:  F_y = −C_α z + C_α²/(3 F_max) |z| z − C_α³/(27 F_max²) z³,
    else:        F_y = −F_max sgn α,
with F_max = μ F_z for a free-rolling axle and F_max = sqrt((μ F_z)² − F_x²) on the driven axle
(friction circle). The longitudinal force of the driven axle is the same brush law in the slip
ratio, F_x = +C_σ σ − ..., saturating at μ F_z.

Stiffnesses are per unit normal load (C_α = c_alpha · F_z) so that all parameters are O(1..10)
and learn at one rate.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._tire_base import AbstractTireModel, Features, Scalar

#: Fraction of μF_z that the friction circle always leaves to the lateral force, so that
#: F_max > 0 and sqrt stays differentiable when |F_x| reaches μF_z.
_CIRCLE_FLOOR = 1e-3


def _f(x) -> Array:
    return jnp.asarray(x, dtype=float)


def brush(z: Array, stiffness: Array, f_max: Array) -> Array:
    """The Fiala brush law F(z) (force opposing z), saturated beyond tan α_sl = 3 F_max / C."""
    z_sl = 3.0 * f_max / stiffness
    zc = jnp.clip(z, -z_sl, z_sl)  # beyond the slide limit the cubic equals −F_max sgn z
    return (
        -stiffness * zc
        + stiffness**2 / (3.0 * f_max) * jnp.abs(zc) * zc
        - stiffness**3 / (27.0 * f_max**2) * zc**3
    )


class Fiala(AbstractTireModel):
    """Fiala brush tyre (per axle).

    Attributes:
        mu: friction coefficient μ [-].
        c_alpha: cornering stiffness per unit load C_α / F_z [1/rad].
        c_sigma: longitudinal slip stiffness per unit load C_σ / F_z [-].
    Bound: |F| ≤ μ F_z (lateral and combined).
    """

    mu: Float[Array, ""] = eqx.field(default=1.0, converter=_f)
    c_alpha: Float[Array, ""] = eqx.field(default=12.0, converter=_f)
    c_sigma: Float[Array, ""] = eqx.field(default=15.0, converter=_f)

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        f_max = jnp.abs(self.mu) * normal_load
        return brush(jnp.tan(slip_angle), jnp.abs(self.c_alpha) * normal_load, f_max)

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        mu_fz = jnp.abs(self.mu) * normal_load
        # The brush law gives a force opposing its argument; a drive slip σ > 0 pushes forward.
        fx = brush(-jnp.asarray(slip_ratio, float), jnp.abs(self.c_sigma) * normal_load, mu_fz)
        fx = jnp.clip(fx, -(1 - _CIRCLE_FLOOR) * mu_fz, (1 - _CIRCLE_FLOOR) * mu_fz)
        f_max = jnp.sqrt(mu_fz**2 - fx**2)
        fy = brush(jnp.tan(slip_angle), jnp.abs(self.c_alpha) * normal_load, f_max)
        return fy, fx

    def force_bound(self, normal_load: Scalar) -> Array:
        return jnp.abs(self.mu) * normal_load
