"""Reference paths for drifting: curvature κ(s) [1/m] and sideslip β_ref(s) [rad] along the arc
length s [m].

Sign conventions (those of the single-track model, CoRL 2024 A.1): yaw rate r > 0 and κ > 0 turn
left (counter-clockwise seen from above); β > 0 when the velocity points left of the heading.
In a steady left-hand drift the nose points into the circle further than the velocity does, so
the velocity is right of the heading and β < 0: a drift reference has sgn β = −sgn κ.

A path gives only geometry and the sideslip to hold; the speed, yaw rate, wheel speed and the
feed-forward inputs along it come from the model's drift equilibria at (κ(s), β(s)) (the
quasi-equilibrium approach of Goh & Gerdes, "Simultaneous stabilization and tracking of basic
automobile drifting trajectories", IEEE IV 2016), see `drift_reference`.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


class AbstractPath(eqx.Module):
    """A path parametrised by arc length s [m]: curvature κ(s) [1/m], sideslip β_ref(s) [rad].

    `Donut` and `FigureEight` are periodic in s with period `length_m` (one lap).
    """

    @property
    @abc.abstractmethod
    def length_m(self) -> float:
        """One lap [m] (the period of a closed path; the table's extent for an open one)."""

    @abc.abstractmethod
    def curvature(self, s: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
        """κ(s) [1/m], positive for a left turn."""

    @abc.abstractmethod
    def sideslip(self, s: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
        """β_ref(s) [rad] to hold at arc length s."""

    def ground_track(self, n: int = 400, *, laps: float = 1.0) -> Float[Array, "n 3"]:
        """(x, y, ψ) [m, m, rad] of the path on the ground plane, starting at the origin heading
        along +x, by integrating ψ' = κ(s), x' = cos ψ, y' = sin ψ (trapezoidal rule)."""
        s = jnp.linspace(0.0, laps * self.length_m, n)
        kappa = self.curvature(s)
        ds = jnp.diff(s)
        psi = jnp.concatenate([jnp.zeros(1), jnp.cumsum(0.5 * (kappa[1:] + kappa[:-1]) * ds)])
        # Exact for piecewise-constant κ between samples up to O(ds²): chord of each arc.
        mid = 0.5 * (psi[1:] + psi[:-1])
        x = jnp.concatenate([jnp.zeros(1), jnp.cumsum(jnp.cos(mid) * ds)])
        y = jnp.concatenate([jnp.zeros(1), jnp.cumsum(jnp.sin(mid) * ds)])
        return jnp.stack([x, y, psi], axis=-1)


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {value!r}.")
    return float(value)


def _drift_sideslip(name: str, value: float) -> float:
    if not (np.isfinite(value) and 0 < abs(value) < np.pi / 2):
        raise ValueError(
            f"`{name}` must be a sideslip magnitude in (0, π/2) rad, got {value!r} rad; "
            "its sign is set by the turn direction."
        )
    return float(abs(value))


class Donut(AbstractPath):
    """A constant-radius drift circle.

    Attributes:
        radius_m: circle radius R [m].
        sideslip_rad: sideslip magnitude |β| [rad] to hold; β_ref = −sgn(κ)|β|.
        direction: +1 counter-clockwise (left turn), −1 clockwise.
    """

    radius_m: float
    sideslip_rad: float
    direction: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        _positive("radius_m", self.radius_m)
        _drift_sideslip("sideslip_rad", self.sideslip_rad)
        if self.direction not in (1, -1):
            raise ValueError(f"`direction` must be +1 or -1, got {self.direction!r}.")

    @property
    def length_m(self) -> float:
        return 2 * np.pi * self.radius_m

    def curvature(self, s):
        return jnp.full(jnp.shape(s), self.direction / self.radius_m)

    def sideslip(self, s):
        return jnp.full(jnp.shape(s), -self.direction * abs(self.sideslip_rad))


class FigureEight(AbstractPath):
    """Two tangent circles of radius R run in opposite directions: a left circle, then a right one.

    The curvature switches sign at the crossing point (s = 0 and s = 2πR, modulo 4πR); the
    sideslip reverses there too, blended smoothly over `transition_m` of arc length
    (β_ref = −|β| tanh(…) through the crossing), as a driver swings the car from one drift into
    the other.
    """

    radius_m: float
    sideslip_rad: float
    transition_m: float = 4.0

    def __check_init__(self):
        _positive("radius_m", self.radius_m)
        _drift_sideslip("sideslip_rad", self.sideslip_rad)
        _positive("transition_m", self.transition_m)
        if self.transition_m > np.pi * self.radius_m:
            raise ValueError(
                f"`transition_m` ({self.transition_m} m) must be shorter than half a circle "
                f"(π R = {np.pi * self.radius_m:.3g} m)."
            )

    @property
    def length_m(self) -> float:
        return 4 * np.pi * self.radius_m

    def _phase(self, s):
        return jnp.mod(jnp.asarray(s, float), self.length_m)

    def curvature(self, s):
        return jnp.where(self._phase(s) < 2 * np.pi * self.radius_m, 1.0, -1.0) / self.radius_m

    def sideslip(self, s):
        half = 2 * np.pi * self.radius_m
        p = self._phase(s)
        # Signed distance to the nearest crossing, positive inside the left circle.
        d = jnp.minimum(p, half - p)
        d = jnp.where(p < half, d, -jnp.minimum(p - half, self.length_m - p))
        return -abs(self.sideslip_rad) * jnp.tanh(2.0 * d / self.transition_m)


class TabulatedPath(AbstractPath):
    """A general path given as curvature and sideslip on an arc-length grid (linear
    interpolation; held constant beyond the ends of an open path, periodic for a closed one)."""

    s_m: Float[Array, " n"]
    curvature_per_m: Float[Array, " n"]
    sideslip_table_rad: Float[Array, " n"]
    closed: bool = eqx.field(static=True, default=False)

    def __init__(self, s_m, curvature_per_m, sideslip_rad, *, closed: bool = False):
        s, k, b = (np.asarray(a, float) for a in (s_m, curvature_per_m, sideslip_rad))
        if s.ndim != 1 or s.shape != k.shape or s.shape != b.shape or s.size < 2:
            raise ValueError(
                "`s_m`, `curvature_per_m` and `sideslip_rad` must be 1D arrays of one length "
                f">= 2, got shapes {s.shape}, {k.shape}, {b.shape}."
            )
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(k)) and np.all(np.isfinite(b))):
            raise ValueError("the path tables must be finite.")
        if s[0] != 0.0 or np.any(np.diff(s) <= 0):
            raise ValueError("`s_m` must start at 0 and increase strictly [m].")
        if np.any(np.abs(b) >= np.pi / 2):
            raise ValueError(f"|sideslip| must be < π/2 rad, got max {np.abs(b).max():.3g}.")
        self.s_m, self.curvature_per_m, self.sideslip_table_rad = map(jnp.asarray, (s, k, b))
        self.closed = closed

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    def _s(self, s):
        s = jnp.asarray(s, float)
        return jnp.mod(s, self.length_m) if self.closed else s

    def curvature(self, s):
        return jnp.interp(self._s(s), self.s_m, self.curvature_per_m)

    def sideslip(self, s):
        return jnp.interp(self._s(s), self.s_m, self.sideslip_table_rad)


__all__ = ["AbstractPath", "Donut", "FigureEight", "TabulatedPath"]
