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

Placement on the ground. Every path starts at the origin heading along +x (as `ground_track`);
`pose(s)` is the path point and tangent direction at s, and `project(x, y, course, s_guess)`
maps a car's position and course angle χ = ψ + β [rad] (the direction of its velocity) to the
path coordinates (e, Δφ, s) of the model (`SingleTrackModel.path_vector_field`): e [m] is the
signed distance to the path, positive to the left of the direction of travel, Δφ = χ − θ(s)
[rad] wrapped to [−π, π) the course error against the path tangent θ(s), and s [m] the arc
length of the nearest path point, chosen near `s_guess` (a local search, so that s keeps
increasing lap after lap and the crossing of a figure-eight is not ambiguous).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


class AbstractPath(eqx.Module):
    """A path parametrised by arc length s [m]: curvature κ(s) [1/m], sideslip β_ref(s) [rad].

    Attributes:
        closed: whether the path is periodic in s with period `length_m` (one lap).
        name: a short name for tables and file names ("donut", "figure8", ...).
    """

    closed: eqx.AbstractVar[bool]
    name: eqx.AbstractVar[str]

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

    @abc.abstractmethod
    def pose(self, s: Float[ArrayLike, ""]) -> Float[Array, "3"]:
        """(x [m], y [m], θ [rad]): the path point at arc length s and its tangent direction."""

    @abc.abstractmethod
    def project(
        self,
        x_m: Float[ArrayLike, ""],
        y_m: Float[ArrayLike, ""],
        course_rad: Float[ArrayLike, ""],
        s_guess_m: Float[ArrayLike, ""],
    ) -> Float[Array, "3"]:
        """(e [m], Δφ [rad], s [m]) of a car at (x, y) moving in direction χ = ψ + β (see the
        module docstring); s is the nearest path point near `s_guess_m` (local search)."""

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


def wrap_angle(angle: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
    """Angle wrapped to [−π, π) [rad]."""
    return jnp.mod(jnp.asarray(angle, float) + np.pi, 2 * np.pi) - np.pi


def _unwrap_near(s_raw, s_guess, period):
    """The representative of s_raw modulo `period` nearest to s_guess."""
    return s_guess + jnp.mod(s_raw - s_guess + 0.5 * period, period) - 0.5 * period


def _circle_pose(s, radius, direction):
    """Pose on a circle that starts at the origin heading +x and turns left (+1) or right (−1)."""
    a = jnp.asarray(s, float) / radius
    return jnp.stack([radius * jnp.sin(a), direction * radius * (1 - jnp.cos(a)), direction * a])


def _circle_project(x, y, course, radius, direction):
    """(e, Δφ, s ∈ [0, 2πR)) on that circle: closed form from the centre (0, direction·R)."""
    wx = jnp.asarray(x, float)
    wy = jnp.asarray(y, float) - direction * radius
    rho = jnp.sqrt(wx**2 + wy**2)
    # Position angle a with w = R (sin a, −direction cos a); s = R a.
    a = jnp.mod(jnp.arctan2(wx, -direction * wy), 2 * np.pi)
    e = direction * (radius - rho)
    dphi = wrap_angle(course - direction * a)
    return jnp.stack([e, dphi, radius * a])


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
    closed: ClassVar[bool] = True
    name: ClassVar[str] = "donut"

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

    def pose(self, s):
        return _circle_pose(s, self.radius_m, self.direction)

    def project(self, x_m, y_m, course_rad, s_guess_m):
        e, dphi, s = _circle_project(x_m, y_m, course_rad, self.radius_m, self.direction)
        return jnp.stack([e, dphi, _unwrap_near(s, jnp.asarray(s_guess_m, float), self.length_m)])


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
    closed: ClassVar[bool] = True
    name: ClassVar[str] = "figure8"

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

    def pose(self, s):
        half = 2 * np.pi * self.radius_m
        p = self._phase(s)
        left = _circle_pose(p, self.radius_m, 1)
        right = _circle_pose(p - half, self.radius_m, -1)
        return jnp.where(p < half, left, right)

    def project(self, x_m, y_m, course_rad, s_guess_m):
        # Both circles touch at the origin with the same tangent; each gives a candidate, and
        # the one whose arc length is nearer the guess (periodically) wins.
        half = 2 * np.pi * self.radius_m
        s_guess = jnp.asarray(s_guess_m, float)
        left = _circle_project(x_m, y_m, course_rad, self.radius_m, 1)
        right = _circle_project(x_m, y_m, course_rad, self.radius_m, -1)
        s_left = _unwrap_near(left[2], s_guess, self.length_m)
        s_right = _unwrap_near(right[2] + half, s_guess, self.length_m)
        use_left = jnp.abs(s_left - s_guess) <= jnp.abs(s_right - s_guess)
        return jnp.where(
            use_left,
            jnp.stack([left[0], left[1], s_left]),
            jnp.stack([right[0], right[1], s_right]),
        )


class TabulatedPath(AbstractPath):
    """A general path given as curvature and sideslip on an arc-length grid (linear
    interpolation; held constant beyond the ends of an open path, periodic for a closed one).
    `name` defaults to "TabulatedPath"."""

    s_m: Float[Array, " n"]
    curvature_per_m: Float[Array, " n"]
    sideslip_table_rad: Float[Array, " n"]
    closed: bool = eqx.field(static=True, default=False)
    name: str = eqx.field(static=True, default="TabulatedPath")
    # One lap [m], kept static so that the path can be traced through `jit` as an argument.
    _length: float = eqx.field(static=True, default=0.0)
    #: Half-width of the arc-length window of `project`'s local search [m].
    search_window_m: float = eqx.field(static=True, default=10.0)

    def __init__(
        self,
        s_m,
        curvature_per_m,
        sideslip_rad,
        *,
        closed: bool = False,
        search_window_m: float = 10.0,
        name: str = "TabulatedPath",
    ):
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
        if not (isinstance(name, str) and name):
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        self.closed = bool(closed)
        self.name = name
        self._length = float(s[-1])
        self.search_window_m = _positive("search_window_m", search_window_m)

    @property
    def length_m(self) -> float:
        return self._length

    def _s(self, s):
        s = jnp.asarray(s, float)
        return jnp.mod(s, self.length_m) if self.closed else s

    def curvature(self, s):
        return jnp.interp(self._s(s), self.s_m, self.curvature_per_m)

    def sideslip(self, s):
        return jnp.interp(self._s(s), self.s_m, self.sideslip_table_rad)

    def _track(self):
        # Ground track at 4x the table's resolution (trapezoidal rule, see `ground_track`).
        n = 4 * (self.s_m.shape[0] - 1) + 1
        return jnp.linspace(0.0, self.length_m, n), self.ground_track(n)

    def pose(self, s):
        s_grid, track = self._track()
        s = self._s(s)
        return jax.vmap(lambda col: jnp.interp(s, s_grid, col), in_axes=1)(track)

    def project(self, x_m, y_m, course_rad, s_guess_m):
        # Local search: the nearest ground-track point within ±search_window_m of the guess,
        # then the tangent-frame offset from it (first order in the distance along the path).
        s_grid, track = self._track()
        s_guess = jnp.asarray(s_guess_m, float)
        s_near = _unwrap_near(s_grid, s_guess, self.length_m) if self.closed else s_grid
        dx = jnp.asarray(x_m, float) - track[:, 0]
        dy = jnp.asarray(y_m, float) - track[:, 1]
        far = jnp.abs(s_near - s_guess) > self.search_window_m
        i = jnp.argmin(jnp.where(far, jnp.inf, dx**2 + dy**2))
        theta = track[i, 2]
        along = dx[i] * jnp.cos(theta) + dy[i] * jnp.sin(theta)
        e = -dx[i] * jnp.sin(theta) + dy[i] * jnp.cos(theta)
        s = s_near[i] + along
        theta_s = theta + self.curvature(s_grid[i]) * along
        return jnp.stack([e, wrap_angle(course_rad - theta_s), s])


def sideslip_reverses(path: AbstractPath, ds_m: float = 0.5) -> bool:
    """Whether the path's sideslip reference β_ref(s) takes both signs over one lap (sampled
    every `ds_m` [m]): a drift from one side to the other, as on a figure-eight or an S-bend,
    whose transient needs a finer prediction grid than a steady drift
    (docs/notes/2026-12-03-brake-split-and-the-reversal.md)."""
    if not isinstance(path, AbstractPath):
        raise TypeError(f"`path` must be an AbstractPath, got {type(path).__name__}.")
    if not (np.isfinite(ds_m) and ds_m > 0):
        raise ValueError(f"`ds_m` must be a finite spacing > 0 [m], got {ds_m!r}.")
    s = np.linspace(0.0, float(path.length_m), max(int(np.ceil(path.length_m / ds_m)), 1) + 1)
    beta = np.asarray(path.sideslip(jnp.asarray(s)), float)
    return bool(beta.min() < 0.0 < beta.max())


__all__ = [
    "AbstractPath",
    "Donut",
    "FigureEight",
    "TabulatedPath",
    "sideslip_reverses",
    "wrap_angle",
]
