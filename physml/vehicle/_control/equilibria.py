"""Steady drift equilibria of the single-track model, with their open-loop stability.

An equilibrium is a state (r, V, β, ω_r) and input (δ, τ) with ṙ = V̇ = β̇ = ω̇_r = 0 (CoRL 2024,
A.1 model). Two ways to pose it, each four equations in four unknowns:

- at a speed V [m/s] and sideslip β [rad]: unknowns (r, ω_r, δ, τ);
- on a path of curvature κ [1/m] at sideslip β: unknowns (V, ω_r, δ, τ) with r = κ V (a steady
  circle of radius 1/κ: the velocity turns at the rate the heading does, β̇ = 0).

Solved as a scaled least-squares problem with Levenberg–Marquardt (optimistix) and accepted only
when every scaled residual is below `tol`. Stability: eigenvalues of ∂f/∂(r, V, β, ω_r) at the
equilibrium with the inputs held. A rear-drive drift equilibrium is a saddle with one unstable
real mode (Voser, Hindiyeh & Gerdes, "Analysis and control of high sideslip manoeuvres",
Vehicle System Dynamics 48 (2010)); that is why it needs feedback.
"""

from __future__ import annotations

import itertools
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Bool, Complex, Float

from .._model.single_track import SingleTrackModel
from .paths import AbstractPath, Donut, FigureEight, TabulatedPath

#: Scales that make residuals and unknowns O(1): ṙ [rad/s²], V̇ [m/s²], β̇ [rad/s], ω̇_r [rad/s²].
_RESIDUAL_SCALE = np.array([1.0, 1.0, 1.0, 100.0])
#: Unknown scales: (r or V, ω_r, δ, τ) in [rad/s or m/s, rad/s, rad, N·m].
_TORQUE_SCALE_NM = 1000.0
_OMEGA_SCALE_RADPS = 30.0
#: Below this speed the model's low-speed regularisation, not the physics, would decide.
MIN_SPEED_MPS = 3.0


class Equilibrium(eqx.Module):
    """A steady state of the single-track model.

    Attributes:
        state: (r [rad/s], V [m/s], β [rad], ω_r [rad/s]).
        control: (δ [rad], τ [N·m]).
        eigenvalues: of the state Jacobian at the equilibrium [1/s].
        residual: max scaled |ẏ| at the solution.
        converged: whether the solve met the tolerance.
    """

    state: Float[Array, "4"]
    control: Float[Array, "2"]
    eigenvalues: Complex[Array, "4"]
    residual: Float[Array, ""]
    converged: Bool[Array, ""]

    @property
    def unstable(self) -> bool:
        """Whether some mode grows: an eigenvalue with real part above 1e-9 · max(1, max |λ|) [1/s].

        The tolerance keeps rounding out: an equilibrium that is not isolated (e.g. a fully
        sliding rear axle leaves ω_r undetermined) has an eigenvalue that is zero up to
        rounding, and must not flip the verdict from run to run.
        """
        lam = np.asarray(self.eigenvalues)
        return bool(np.max(np.real(lam)) > 1e-9 * max(1.0, float(np.max(np.abs(lam)))))

    @property
    def curvature_per_m(self) -> float:
        """κ = r / V [1/m] of the circle the equilibrium drives."""
        return float(self.state[0] / self.state[1])


def _unpack(z, *, mode, given, beta):
    """(y, u) from scaled unknowns z; `given` is V (mode "speed") or κ (mode "curvature")."""
    if mode == "speed":
        v, r = given, z[0]
    else:
        v = z[0]
        r = given * v
    omega = _OMEGA_SCALE_RADPS * z[1]
    y = jnp.stack([r, v, beta, omega])
    u = jnp.stack([z[2], _TORQUE_SCALE_NM * z[3]])
    return y, u


@eqx.filter_jit
def _solve(model, z0, given, beta, *, mode, tol):
    prepared = model.prepare()

    def residual(z, _):
        y, u = _unpack(z, mode=mode, given=given, beta=beta)
        return prepared.vector_field(0.0, y, u) / _RESIDUAL_SCALE

    solver = optx.LevenbergMarquardt(rtol=1e-12, atol=1e-12)
    sol = optx.least_squares(residual, solver, z0, max_steps=400, throw=False)
    res = jnp.max(jnp.abs(residual(sol.value, None)))
    y, u = _unpack(sol.value, mode=mode, given=given, beta=beta)
    jac = jax.jacfwd(lambda yy: prepared.vector_field(0.0, yy, u))(y)
    # Accept on the residual itself: from a close continuation guess Levenberg–Marquardt can
    # reach ~1e-16 without meeting its own step-size stopping test before `max_steps`.
    ok = (res < tol) & jnp.all(jnp.isfinite(sol.value))
    return y, u, jac, res, ok


def _guesses(model: SingleTrackModel, beta: float, *, mode: str, given: float):
    """Starting points on the drift branch: counter-steer, wheel spin, lateral acceleration
    near the friction limit (≈ 0.8 g), for a few rear slip ratios."""
    p = model.params
    sgn = -np.sign(beta) if beta != 0 else 1.0  # turn direction: sgn r = −sgn β
    g = float(p.gravity_mps2)
    a, radius = float(p.a_m), float(p.wheel_radius_m)
    out = []
    for a_lat, slip in ((0.8, 0.3), (0.6, 0.1), (0.9, 0.8), (0.4, 0.05), (0.8, 1.5)):
        if mode == "speed":
            v = given
            r = sgn * a_lat * g / v
            first = r
        else:
            kappa = abs(given)
            v = np.sqrt(a_lat * g / max(kappa, 1e-6))
            r = np.sign(given) * v * kappa
            first = v
        alpha_f_guess = -0.05 * sgn
        delta = np.arctan((v * np.sin(beta) + a * r) / (v * np.cos(beta))) - alpha_f_guess
        omega = (1 + slip) * v * np.cos(beta) / radius
        torque = 0.5 * float(p.mass_kg) * a_lat * g * abs(np.sin(beta)) * radius
        out.append(np.array([first, omega / _OMEGA_SCALE_RADPS, delta, torque / _TORQUE_SCALE_NM]))
    return out


def solve_equilibrium(
    model: SingleTrackModel,
    sideslip_rad: float,
    *,
    speed_mps: float | None = None,
    curvature_per_m: float | None = None,
    guess: Float[Array, "4"] | None = None,
    tol: float | None = None,
    steer_limit_rad: float | None = None,
    torque_limits_nm: tuple[float, float] | None = None,
) -> Equilibrium:
    """Drift equilibrium of `model` at sideslip β and either a speed V or a path curvature κ.

    Args:
        model: a `SingleTrackModel` (any tyre model).
        sideslip_rad: β [rad]; a drift has sgn β = −sgn r (see `physml.vehicle._control.paths`).
        speed_mps: V [m/s] (give exactly one of `speed_mps` and `curvature_per_m`).
        curvature_per_m: κ [1/m] of the circle to drive.
        guess: scaled unknowns to start from (the `Equilibrium` of a nearby point works via
            `equilibrium_guess`); default: a few points on the drift branch.
        tol: largest accepted scaled residual; default 1e-9 with 64-bit floats
            (`jax_enable_x64`), else 1e-5: float32 evaluation of the model leaves scaled
            residuals of a few 1e-7 (its rounding floor), which 1e-9 would reject.
        steer_limit_rad, torque_limits_nm: the car's input limits; an equilibrium that needs
            inputs beyond them cannot be held and is reported as an error.

    Returns:
        An `Equilibrium`. Raises `ValueError` with the reason if none is found, or if the one
        found lies below `MIN_SPEED_MPS`, where the model's low-speed regularisation decides.
    """
    if tol is None:
        tol = 1e-9 if jax.config.jax_enable_x64 else 1e-5
    if (speed_mps is None) == (curvature_per_m is None):
        raise ValueError("Give exactly one of `speed_mps` and `curvature_per_m`.")
    if not (np.isfinite(sideslip_rad) and abs(sideslip_rad) < np.pi / 2):
        raise ValueError(f"`sideslip_rad` must be finite with |β| < π/2, got {sideslip_rad!r}.")
    if speed_mps is not None:
        if not (np.isfinite(speed_mps) and speed_mps >= MIN_SPEED_MPS):
            raise ValueError(
                f"`speed_mps` must be finite and >= {MIN_SPEED_MPS} m/s (the model's valid "
                f"range), got {speed_mps!r}."
            )
        mode, given = "speed", float(speed_mps)
    else:
        if not (np.isfinite(curvature_per_m) and curvature_per_m != 0):
            raise ValueError(
                f"`curvature_per_m` must be finite and non-zero, got {curvature_per_m!r}."
            )
        if sideslip_rad * curvature_per_m > 0:
            raise ValueError(
                f"A drift on a curve of curvature {curvature_per_m:+.3g} 1/m has sideslip of the "
                f"opposite sign (β = −sgn(κ)|β|), got β = {sideslip_rad:+.3g} rad."
            )
        mode, given = "curvature", float(curvature_per_m)
    starts = [np.asarray(guess, float)] if guess is not None else []
    starts += _guesses(model, float(sideslip_rad), mode=mode, given=given)
    best = None
    for z0 in starts:
        y, u, jac, res, ok = _solve(
            model,
            jnp.asarray(z0),
            jnp.asarray(given),
            jnp.asarray(float(sideslip_rad)),
            mode=mode,
            tol=tol,
        )
        if bool(ok) or best is None or float(res) < float(best[3]):
            best = (y, u, jac, res, ok)
        if bool(ok):
            break
    y, u, jac, res, ok = best
    where = (f"V = {speed_mps} m/s" if mode == "speed" else f"κ = {curvature_per_m} 1/m") + (
        f", β = {np.degrees(sideslip_rad):.1f}°"
    )
    if not bool(ok):
        raise ValueError(
            f"No drift equilibrium of this model at {where}: the best of {len(starts)} starts "
            f"left a scaled residual of {float(res):.2e} (> {tol:g}). The model may not be able "
            "to hold this sideslip there (try a smaller |β|, a larger radius or another speed)."
        )
    if float(y[1]) < MIN_SPEED_MPS:
        raise ValueError(
            f"The equilibrium at {where} has V = {float(y[1]):.2f} m/s, below {MIN_SPEED_MPS} m/s "
            "where the model is not valid: the curvature is too tight to drift at this sideslip."
        )
    delta, tau = float(u[0]), float(u[1])
    if steer_limit_rad is not None and abs(delta) > steer_limit_rad:
        raise ValueError(
            f"The equilibrium at {where} needs a steering angle δ = {delta:+.3f} rad, beyond the "
            f"limit ±{steer_limit_rad} rad: the car cannot hold this drift."
        )
    if torque_limits_nm is not None and not torque_limits_nm[0] <= tau <= torque_limits_nm[1]:
        raise ValueError(
            f"The equilibrium at {where} needs a drive torque τ = {tau:.0f} N·m, outside the "
            f"limits {tuple(torque_limits_nm)} N·m: the car cannot hold this drift."
        )
    eig = np.linalg.eigvals(np.asarray(jac))
    return Equilibrium(
        state=y, control=u, eigenvalues=jnp.asarray(eig, dtype=complex), residual=res, converged=ok
    )


def equilibrium_guess(eq: Equilibrium, *, mode: str = "speed") -> Float[Array, "4"]:
    """Scaled unknowns of `eq`, to start a nearby solve (continuation along β, V or κ)."""
    first = eq.state[0] if mode == "speed" else eq.state[1]
    return jnp.stack(
        [first, eq.state[3] / _OMEGA_SCALE_RADPS, eq.control[0], eq.control[1] / _TORQUE_SCALE_NM]
    )


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
        closed: whether the path is periodic (Donut, FigureEight, a closed TabulatedPath).
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
) -> DriftReference:
    """Tabulate the quasi-equilibrium drift reference of `model` along `path`.

    Each grid point is the equilibrium at (κ(s), β_ref(s)) (`solve_equilibrium` in curvature
    form). Left turns are solved and right turns mirrored (the model is left-right symmetric);
    distinct (κ, |β|) pairs are solved once, from the largest |β| down, each starting from the
    last solution (continuation), so a donut is one solve and a figure-eight one circle's
    sideslip-reversal blend.

    Args:
        model: the single-track model the controller uses.
        path: a `Donut`, `FigureEight` or `TabulatedPath`.
        ds_m: grid spacing [m] (a donut needs no grid: its reference is constant).
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

    Raises:
        ValueError naming the arc length, κ and β where the model cannot hold the drift (no
        equilibrium, below the model's valid speed, or beyond an input limit), with the reason;
        with `bridge_m` > 0, only where such a stretch is longer than `bridge_m` (the message
        names the stretch) or where no point of the path has an equilibrium.
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
    length = float(path.length_m)
    if isinstance(path, Donut):
        s = np.array([0.0, length])
    else:
        s = np.linspace(0.0, length, max(int(np.ceil(length / ds_m)), 1) + 1)
    kappa = np.asarray(path.curvature(jnp.asarray(s)), float)
    beta = np.asarray(path.sideslip(jnp.asarray(s)), float)
    if isinstance(path, TabulatedPath):
        closed = path.closed
    else:
        closed = isinstance(path, Donut | FigureEight)
    # Canonical (left-turn) problems, rounded so that mirrored and repeated points coincide.
    canon = {}
    for i, (k, b) in enumerate(zip(kappa, beta, strict=True)):
        if k == 0:
            raise ValueError(
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
        except ValueError as err:
            message = (
                f"The car cannot hold the reference at s = {s[i]:.2f} m of the path "
                f"(κ = {kappa[i]:+.4g} 1/m, β = {np.degrees(beta[i]):+.1f}°): {err}"
            )
            if bridge_m == 0:
                raise ValueError(message) from err
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
    if bridged.any():
        messages = {i: failures[key] for key, idx in canon.items() if key in failures for i in idx}
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
        raise ValueError(f"No point of the path has a drift equilibrium. {messages[0]}")

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
            raise ValueError(
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


__all__ = [
    "MIN_SPEED_MPS",
    "DriftReference",
    "Equilibrium",
    "drift_reference",
    "equilibrium_guess",
    "solve_equilibrium",
]
