"""The quasi-equilibrium drift reference along a path (Goh & Gerdes, "Simultaneous stabilization
and tracking of basic automobile drifting trajectories", IEEE IV 2016).

At each arc length s of a grid the reference is the model's steady drift at the path's
(κ(s), β_ref(s)) (`solve_equilibrium` in curvature form), tabulated and interpolated linearly, so
that a jitted controller only looks it up. Left turns are solved and right turns mirrored (the
model is left-right symmetric: r, β, δ change sign), each distinct (κ, |β|) once, by
continuation from the deepest drift. Short stretches without an equilibrium (a figure-eight's
sideslip reversal for an identified model) may be bridged by interpolating along s.
"""

from __future__ import annotations

import itertools
import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .._errors import NoDriftEquilibriumError
from .._model.single_track import SingleTrackModel
from .equilibria import equilibrium_guess, solve_equilibrium
from .paths import AbstractPath


class DriftReference(eqx.Module):
    """Quasi-equilibrium drift reference along a path (Goh & Gerdes, "Simultaneous stabilization
    and tracking of basic automobile drifting trajectories", IEEE IV 2016): at each arc length
    s the model's steady drift at the path's (κ(s), β(s)), tabulated on a grid and interpolated
    linearly, so that a jitted controller only looks it up.

    Attributes:
        s_m: (n,) arc-length grid [m], from 0 to `length_m`.
        state: (n, 4) equilibrium (r [rad/s], V [m/s], β [rad], ω_r [rad/s]).
        control: (n, 2) equilibrium inputs (δ [rad], τ [N·m]).
        curvature_per_m: (n,) κ(s) [1/m] the equilibria were solved at.
        length_m: one lap [m]; `closed` paths wrap s modulo it.
        closed: whether the path is periodic (`AbstractPath.closed`).
        bridged: (n,) True where the model has no equilibrium and the point was interpolated
            along s from its solved neighbours (`drift_reference(..., bridge_m=...)`): a guess
            for the transient there, not a steady drift.
    """

    s_m: Float[Array, " n"]
    state: Float[Array, "n 4"]
    control: Float[Array, "n 2"]
    curvature_per_m: Float[Array, " n"]
    bridged: Bool[Array, " n"]
    length_m: float = eqx.field(static=True)
    closed: bool = eqx.field(static=True)

    @property
    def bridged_fraction(self) -> float:
        """Share of the lap's length whose reference was interpolated, not solved."""
        s, b = np.asarray(self.s_m), np.asarray(self.bridged, float)
        seg = np.diff(s) * 0.5 * (b[1:] + b[:-1])  # trapezoid over the grid
        return float(seg.sum() / (s[-1] - s[0]))

    def at(self, s: Float[ArrayLike, ""]) -> tuple[Float[Array, "4"], Float[Array, "2"]]:
        """(state, control) of the reference at arc length s [m] (linear interpolation)."""
        s = jnp.asarray(s, float)
        s = jnp.mod(s, self.length_m) if self.closed else s
        look = jax.vmap(lambda col: jnp.interp(s, self.s_m, col), in_axes=1)
        return look(self.state), look(self.control)


def _mirror(state, control):
    """The mirror image of a drift (left ↔ right): r, β, δ change sign; V, ω_r, τ do not."""
    flip = np.array([-1.0, 1.0, -1.0, 1.0])
    return state * flip, control * np.array([-1.0, 1.0])


def drift_reference(
    model: SingleTrackModel,
    path: AbstractPath,
    *,
    ds_m: float = 0.5,
    steer_limit_rad: float | None = 0.6,
    torque_limits_nm: tuple[float, float] | None = (-2000.0, 2500.0),
    bridge_m: float = 0.0,
    accel_limit_mps2: float = math.inf,
) -> DriftReference:
    """Tabulate the quasi-equilibrium drift reference of `model` along `path`.

    Each grid point is the equilibrium at (κ(s), β_ref(s)) (`solve_equilibrium` in curvature
    form). Left turns are solved and right turns mirrored (the model is left-right symmetric);
    distinct (κ, |β|) pairs are solved once, from the largest |β| down, each starting from the
    last solution (continuation), so a donut is one solve and a figure-eight one circle's
    sideslip-reversal blend.

    Args:
        model: the single-track model the controller uses.
        path: an `AbstractPath` (`Donut`, `FigureEight`, `TabulatedPath`).
        ds_m: grid spacing [m] (a path whose κ and β_ref are constant on that grid, as a
            donut, gets two points: its reference is constant).
        steer_limit_rad, torque_limits_nm: the car's input limits (default: `Actuators()`'s);
            `None` skips a check.
        bridge_m: the longest stretch of path [m] without an equilibrium that may be bridged,
            measured between the solved points on either side (what is interpolated; one
            unsolved grid point spans 2 `ds_m`): its points are interpolated linearly in s
            (state and inputs) between those solved points, or, at an open path's end, hold
            the last one; they are marked in `DriftReference.bridged`. 0 (default): every
            point must be an equilibrium. Meant for a figure-eight's sideslip reversal, where
            an identified model may have no steady drift at the intermediate β; the bridged
            reference is then a guess that the MPC tracks through the transient.
        accel_limit_mps2: the largest speed change |dV/dt| = |V dV/ds| [m/s²] the reference
            may ask of the car between its points (default ∞: no limit). An equilibrium whose
            speed V(s) cannot be reached from the other equilibria at that rate (V(s) above the
            forward-backward envelope min over s' of √(V(s')² + 2 a |s − s'|), the speed-profile
            construction of racing lines, e.g. Kapania, Subosits & Gerdes, J. Dyn. Sys. Meas.
            Control 138 (2016)) is treated as unsolved: bridged, or refused with `bridge_m` = 0.
            Where κ passes through 0 with β still large (an S-bend's inflection), the
            equilibria's speeds grow without bound (12 → 44 m/s within 7 m); such a point is
            no drift a car can be in there. The test is two-sided: an equilibrium much slower
            than its neighbours drops those within (V² − V_slow²)/(2a) of it. The bridge
            interpolates V linearly, so within a bridged stretch the speed may change up to
            2 V_max/(V_max + V_min) times faster than `a`.

    Raises:
        NoDriftEquilibriumError naming the arc length, κ and β where the model cannot hold the
        drift (no equilibrium, below the model's valid speed, beyond an input limit, or a
        straight stretch), with the reason; with `bridge_m` > 0, only where such a stretch is
        longer than `bridge_m` (the message names the stretch) or where no point of the path
        has an equilibrium. ValueError for invalid arguments.
    """
    if not isinstance(path, AbstractPath):
        raise TypeError(f"`path` must be an AbstractPath, got {type(path).__name__}.")
    if not (np.isfinite(ds_m) and ds_m > 0):
        raise ValueError(f"`ds_m` must be a finite spacing > 0 [m], got {ds_m!r}.")
    if not (
        isinstance(bridge_m, numbers.Real)
        and not isinstance(bridge_m, bool)
        and np.isfinite(bridge_m)
        and bridge_m >= 0
    ):
        raise ValueError(f"`bridge_m` must be a finite length >= 0 [m], got {bridge_m!r}.")
    if not (
        isinstance(accel_limit_mps2, numbers.Real)
        and not isinstance(accel_limit_mps2, bool)
        and accel_limit_mps2 > 0
    ):
        raise ValueError(
            f"`accel_limit_mps2` must be a number > 0 [m/s²] (inf: no limit), got "
            f"{accel_limit_mps2!r}."
        )
    length = float(path.length_m)
    s = np.linspace(0.0, length, max(int(np.ceil(length / ds_m)), 1) + 1)
    kappa = np.asarray(path.curvature(jnp.asarray(s)), float)
    beta = np.asarray(path.sideslip(jnp.asarray(s)), float)
    if np.all(kappa == kappa[0]) and np.all(beta == beta[0]):
        s, kappa, beta = s[[0, -1]], kappa[[0, -1]], beta[[0, -1]]  # constant: two points
    closed = path.closed
    # Canonical (left-turn) problems, rounded so that mirrored and repeated points coincide.
    canon = {}
    for i, (k, b) in enumerate(zip(kappa, beta, strict=True)):
        if k == 0:
            raise NoDriftEquilibriumError(
                f"The path is straight at s = {s[i]:.2f} m (κ = 0): a steady drift needs a curve, "
                "so there is no drift equilibrium to track there."
            )
        sign = np.sign(k)
        canon.setdefault((round(abs(k), 12), round(float(sign * b), 12)), []).append(i)
    solved, failures = {}, {}
    guess = None
    last_kappa = None
    for k, b in sorted(canon, key=lambda kb: (kb[0], kb[1])):
        # Sorted by κ, then by β ascending: β = −|β| first, deepest drift first.
        i = canon[(k, b)][0]
        try:
            eq = solve_equilibrium(
                model,
                b,
                curvature_per_m=k,
                guess=guess if last_kappa == k else None,
                steer_limit_rad=steer_limit_rad,
                torque_limits_nm=torque_limits_nm,
            )
        except NoDriftEquilibriumError as err:
            message = (
                f"The car cannot hold the reference at s = {s[i]:.2f} m of the path "
                f"(κ = {kappa[i]:+.4g} 1/m, β = {np.degrees(beta[i]):+.1f}°): {err}"
            )
            if bridge_m == 0:
                raise NoDriftEquilibriumError(message) from err
            failures[(k, b)] = message
            continue  # the next solve starts from the last equilibrium found
        solved[(k, b)] = (np.asarray(eq.state), np.asarray(eq.control))
        guess, last_kappa = equilibrium_guess(eq, mode="curvature"), k
    state = np.zeros((s.size, 4))
    control = np.zeros((s.size, 2))
    bridged = np.zeros(s.size, bool)
    for (k, b), idx in canon.items():
        if (k, b) in failures:
            bridged[idx] = True
            continue
        y, u = solved[(k, b)]
        for i in idx:
            state[i], control[i] = (y, u) if kappa[i] > 0 else _mirror(y, u)
    messages = {i: failures[key] for key, idx in canon.items() if key in failures for i in idx}
    if math.isfinite(accel_limit_mps2):
        for i in np.flatnonzero(_unreachable(s, state[:, 1], bridged, closed, accel_limit_mps2)):
            messages[i] = (
                f"The reference at s = {s[i]:.2f} m of the path (κ = {kappa[i]:+.4g} 1/m, "
                f"β = {np.degrees(beta[i]):+.1f}°) asks V = {state[i, 1]:.2f} m/s, which the "
                f"car cannot reach from the neighbouring drifts at |dV/dt| ≤ "
                f"{accel_limit_mps2:g} m/s² (`accel_limit_mps2`; `DriftMPC.from_path`'s "
                "`reference_accel_limit_mps2`). Allow a bridge over it (`bridge_m`; "
                "`physml drift --bridge`) or raise the limit."
            )
            if bridge_m == 0:
                raise NoDriftEquilibriumError(messages[i])
            bridged[i] = True
    if bridged.any():
        _bridge(s, state, control, bridged, closed, bridge_m, messages)
    return DriftReference(
        jnp.asarray(s),
        jnp.asarray(state),
        jnp.asarray(control),
        jnp.asarray(kappa),
        jnp.asarray(bridged),
        length_m=length,
        closed=closed,
    )


def _unreachable(s, speed, unsolved, closed, accel):
    """Solved grid points whose speed lies above the forward-backward envelope of the solved
    speeds under |d(V²)/ds| ≤ 2 `accel` (`drift_reference`'s `accel_limit_mps2`); on a closed
    path the envelope runs over three laps and the middle one is read."""
    good = np.flatnonzero(~unsolved)
    if good.size < 2:
        return np.zeros(s.size, bool)
    arc, v2 = s[good], speed[good] ** 2
    if closed:
        lap = s[-1] - s[0]
        arc = np.concatenate([arc - lap, arc, arc + lap])
        v2 = np.tile(v2, 3)
    cap = v2.copy()
    for order in (range(1, cap.size), range(cap.size - 2, -1, -1)):
        for i in order:
            j = i - 1 if order.step == 1 else i + 1
            cap[i] = min(cap[i], cap[j] + 2 * accel * abs(arc[i] - arc[j]))
    if closed:
        cap = cap[good.size : 2 * good.size]
        v2 = v2[good.size : 2 * good.size]
    out = np.zeros(s.size, bool)
    out[good] = v2 > cap * (1 + 1e-9)
    return out


def _bridge(s, state, control, bridged, closed, bridge_m, messages):
    """Fill the `bridged` grid points of (state, control) in place: linear in s between the
    solved points on either side (across the end of the lap on a closed path); an open path's
    unsolved ends hold their nearest solved point. Refuses a stretch longer than `bridge_m`
    [m], measured between the solved points around it (or the open path's end): the length
    that is interpolated. `messages` maps each unsolved grid index to why it has no
    equilibrium."""
    n, lap = s.size, s[-1] - s[0]
    good = np.flatnonzero(~bridged)
    if good.size == 0:
        raise NoDriftEquilibriumError(
            f"No point of the path has a drift equilibrium. {messages[0]}"
        )

    def arc(i):  # s of grid index i, counting on past the end of a closed lap
        return s[i % (n - 1)] + lap * (i // (n - 1)) if closed else s[i]

    # Stretches (first unsolved index, span [m]). On a closed path the last grid point is the
    # first (s = L ≡ 0: the same κ and β, so solved or not alike).
    stretches = [(a + 1, s[b] - s[a]) for a, b in itertools.pairwise(good) if b - a > 1]
    if closed:
        if good[0] + n - 1 - good[-1] > 1:
            stretches.append((good[-1] + 1, arc(good[0] + n - 1) - s[good[-1]]))
    else:
        stretches += [(0, s[good[0]] - s[0])] if good[0] > 0 else []
        stretches += [(good[-1] + 1, s[-1] - s[good[-1]])] if good[-1] < n - 1 else []
    for first, span in stretches:
        if span > bridge_m + 1e-9:
            start = arc(first - 1) if first > 0 else s[0]
            ends = (start % lap, (start + span) % lap) if closed else (start, start + span)
            raise NoDriftEquilibriumError(
                f"No drift equilibrium over a stretch of {span:.2f} m of the path (s = "
                f"{ends[0]:.2f} to {ends[1]:.2f} m between solved points), "
                f"longer than `bridge_m` = {bridge_m:g} m. "
                f"{messages[first % (n - 1) if closed else first]}"
            )
    # np.interp: periodic in s on a closed path (s = L maps to s = 0, so both ends get the same
    # value); on an open one it holds the end values.
    period = lap if closed else None
    for table in (state, control):
        for j in range(table.shape[1]):
            filled = np.interp(s, s[good], table[good, j], period=period)
            table[:, j] = np.where(bridged, filled, table[:, j])


__all__ = ["DriftReference", "drift_reference"]
