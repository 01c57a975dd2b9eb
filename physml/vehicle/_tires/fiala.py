"""Fiala brush tyre with a combined-slip coupling on the driven axle.

Fiala, "Seitenkräfte am rollenden Luftreifen", VDI-Zeitschrift 96 (1954); in the form used for
drifting by Goh & Gerdes and by Djeumou et al. (ICRA 2023, CoRL 2024) as the physics baseline:
    z = tan α,  tan α_sl = 3 F_max / C_α,  F_max = μ F_z,
    |α| < α_sl:  F_y = −C_α z + C_α²/(3 F_max) |z| z − C_α³/(27 F_max²) z³,
    else:        F_y = −F_max sgn α.
The rear axle's combined slip, by the static field `coupling`:
- "slip_vector" (default): the brush law on the stiffness-weighted slip magnitude
  φ = sqrt((C_σ σ)² + (C_α tan α)²) [N], along the weighted slip vector:
      |F| = φ − φ²/(3 μF_z) + φ³/(27 (μF_z)²)  (φ < 3 μF_z, else μF_z),
      F_x = |F| C_σ σ / φ,  F_y = −|F| C_α tan α / φ
  (Pacejka, "Tire and Vehicle Dynamics", 3rd ed. (2012), Sec. 3.2.3, with the practical slips
  σ, tan α); it reduces to the pure-slip laws at σ = 0 and at α = 0.
- "friction_circle": F_x is the brush law in σ (saturating at μF_z) and the lateral law is
  derated to F_max = sqrt((μF_z)² − F_x²) (Goh & Gerdes; Djeumou et al., ICRA 2023): under
  wheel spin the lateral force vanishes whatever the slip angle.
Stiffnesses are per unit normal load (C_α = c_alpha · F_z), so all parameters are O(1..10).
A fit to axle forces starts from a grid of (μ, C_α/F_z, C_σ/F_z) (`FIT_GRID`).
"""

from __future__ import annotations

import itertools

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import AbstractTireModel, Features, FitBounds, Scalar, float_array, smooth_norm

#: Fraction of μF_z that the friction circle always leaves to the lateral force, so that
#: F_max > 0 and sqrt stays differentiable when |F_x| reaches μF_z.
_CIRCLE_FLOOR = 1e-3
#: The couplings of combined slip on the driven axle (module docstring).
COUPLINGS = ("slip_vector", "friction_circle")
#: Starts of a fit to axle forces: μ [-], C_α / F_z [1/rad], C_σ / F_z [-] (all combinations).
FIT_GRID = ((0.6, 1.0, 1.4), (5.0, 12.0, 25.0), (1.0, 5.0, 15.0))
#: Box bounds of that fit.
FIT_BOUNDS = {"mu": (0.05, 3.0), "c_alpha": (0.3, 100.0), "c_sigma": (0.1, 100.0)}


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
        coupling: "slip_vector" (default) or "friction_circle" (module docstring).
    Bound: |F| ≤ μ F_z (lateral and combined).
    """

    mu: Float[Array, ""] = eqx.field(default=1.0, converter=float_array)
    c_alpha: Float[Array, ""] = eqx.field(default=12.0, converter=float_array)
    c_sigma: Float[Array, ""] = eqx.field(default=15.0, converter=float_array)
    coupling: str = eqx.field(static=True, default="slip_vector")

    def __check_init__(self):
        if self.coupling not in COUPLINGS:
            raise ValueError(f"`coupling` must be one of {COUPLINGS}, got {self.coupling!r}.")

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        f_max = jnp.abs(self.mu) * normal_load
        return brush(jnp.tan(slip_angle), jnp.abs(self.c_alpha) * normal_load, f_max)

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        mu_fz = jnp.abs(self.mu) * normal_load
        if self.coupling == "slip_vector":
            # per unit load: φ/F_z = sqrt((c_σ σ)² + (c_α tan α)²), |F|/F_z = brush(−φ/F_z)
            # with unit stiffness and peak μ.
            phi_x = jnp.abs(self.c_sigma) * jnp.asarray(slip_ratio, float)
            phi_y = jnp.abs(self.c_alpha) * jnp.tan(slip_angle)
            phi = smooth_norm(phi_x, phi_y)
            magnitude = normal_load * brush(-phi, jnp.ones_like(phi), jnp.abs(self.mu))
            return -magnitude * phi_y / phi, magnitude * phi_x / phi
        # The brush law gives a force opposing its argument; a drive slip σ > 0 pushes forward.
        fx = brush(-jnp.asarray(slip_ratio, float), jnp.abs(self.c_sigma) * normal_load, mu_fz)
        fx = jnp.clip(fx, -(1 - _CIRCLE_FLOOR) * mu_fz, (1 - _CIRCLE_FLOOR) * mu_fz)
        f_max = jnp.sqrt(mu_fz**2 - fx**2)
        fy = brush(jnp.tan(slip_angle), jnp.abs(self.c_alpha) * normal_load, f_max)
        return fy, fx

    def force_bound(self, normal_load: Scalar) -> Array:
        return jnp.abs(self.mu) * normal_load

    def fit_starts(self, *, combined: bool) -> tuple[Fiala, ...]:
        """Every combination of `FIT_GRID`, with this tyre's coupling; for `lateral` alone
        (`combined=False`) C_σ, which does not enter it, stays at 15."""
        grid = itertools.product(*FIT_GRID)
        out = {(mu, ca, cs if combined else 15.0) for mu, ca, cs in grid}
        return tuple(Fiala(mu, ca, cs, coupling=self.coupling) for mu, ca, cs in sorted(out))

    def fit_bounds(self) -> FitBounds:
        return FIT_BOUNDS
