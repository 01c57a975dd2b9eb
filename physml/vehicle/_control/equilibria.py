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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Bool, Complex, Float

from ...kernels._validate import is_finite_scalar
from .._errors import NoDriftEquilibriumError
from .._model.single_track import SingleTrackModel
from .._plant.actuators import Actuators
from .._plant.params import PlantParameters

#: Scales that make residuals and unknowns O(1): ṙ [rad/s²], V̇ [m/s²], β̇ [rad/s], ω̇_r [rad/s²].
_RESIDUAL_SCALE = np.array([1.0, 1.0, 1.0, 100.0])
#: Unknown scales: (r or V, ω_r, δ, τ) in [rad/s or m/s, rad/s, rad, N·m].
_TORQUE_SCALE_NM = 1000.0
_OMEGA_SCALE_RADPS = 30.0
#: Below this speed the model's low-speed regularisation, not the physics, would decide.
MIN_SPEED_MPS = 3.0
#: The car's own limits, used by `solve_equilibrium` unless told otherwise: the steering lock
#: and wheel-torque limits of the default `Actuators()` (0.6 rad; −2000 … 2500 N·m) and the
#: top speed of the plant (CommonRoad vehicle 2, `PlantParameters().speed_max_mps` = 50.8 m/s).
DEFAULT_STEER_LIMIT_RAD = Actuators().steer_max_rad
DEFAULT_TORQUE_LIMITS_NM = (Actuators().torque_min_nm, Actuators().torque_max_nm)
DEFAULT_MAX_SPEED_MPS = PlantParameters().speed_max_mps


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
    steer_limit_rad: float | None = DEFAULT_STEER_LIMIT_RAD,
    torque_limits_nm: tuple[float, float] | None = DEFAULT_TORQUE_LIMITS_NM,
    max_speed_mps: float | None = DEFAULT_MAX_SPEED_MPS,
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
        steer_limit_rad, torque_limits_nm: the car's input limits, |δ| <= steer_limit_rad
            [rad] (> 0) and τ within (τ_min, τ_max) [N·m]; an equilibrium that needs inputs
            beyond them cannot be held and is reported as an error. Default: the default
            `Actuators()`'s (0.6 rad; −2000 … 2500 N·m); `None` skips the check.
        max_speed_mps: the fastest equilibrium accepted [m/s]; default the plant's top speed
            (50.8 m/s, CommonRoad vehicle 2); `None` skips the check.

    Returns:
        An `Equilibrium`. Raises `NoDriftEquilibriumError` with the reason if none is found,
        if the one found lies below `MIN_SPEED_MPS` (where the model's low-speed
        regularisation decides), above `max_speed_mps` or needs inputs beyond the limits;
        `ValueError` for invalid arguments (limits included: finite, steering and speed
        limits > 0, torque limits an increasing pair).
    """
    _check_limits(steer_limit_rad, torque_limits_nm, max_speed_mps)
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
        if max_speed_mps is not None and speed_mps > max_speed_mps:
            raise ValueError(
                f"`speed_mps` must be <= `max_speed_mps` = {max_speed_mps} m/s, got {speed_mps!r}."
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
        raise NoDriftEquilibriumError(
            f"No drift equilibrium of this model at {where}: the best of {len(starts)} starts "
            f"left a scaled residual of {float(res):.2e} (> {tol:g}). The model may not be able "
            "to hold this sideslip there (try a smaller |β|, a larger radius or another speed)."
        )
    if float(y[1]) < MIN_SPEED_MPS:
        raise NoDriftEquilibriumError(
            f"The equilibrium at {where} has V = {float(y[1]):.2f} m/s, below {MIN_SPEED_MPS} m/s "
            "where the model is not valid: the curvature is too tight to drift at this sideslip."
        )
    if max_speed_mps is not None and float(y[1]) > max_speed_mps:
        raise NoDriftEquilibriumError(
            f"The equilibrium at {where} has V = {float(y[1]):.1f} m/s, above the car's top "
            f"speed {max_speed_mps} m/s (`max_speed_mps`): the car cannot drive this drift."
        )
    delta, tau = float(u[0]), float(u[1])
    if steer_limit_rad is not None and abs(delta) > steer_limit_rad:
        raise NoDriftEquilibriumError(
            f"The equilibrium at {where} needs a steering angle δ = {delta:+.3f} rad, beyond the "
            f"limit ±{steer_limit_rad} rad: the car cannot hold this drift."
        )
    if torque_limits_nm is not None and not torque_limits_nm[0] <= tau <= torque_limits_nm[1]:
        raise NoDriftEquilibriumError(
            f"The equilibrium at {where} needs a drive torque τ = {tau:.0f} N·m, outside the "
            f"limits {tuple(torque_limits_nm)} N·m: the car cannot hold this drift."
        )
    eig = np.linalg.eigvals(np.asarray(jac))
    return Equilibrium(
        state=y, control=u, eigenvalues=jnp.asarray(eig, dtype=complex), residual=res, converged=ok
    )


def _is_finite_real(x) -> bool:
    # Python and numpy numbers and 0-d arrays; not bools, strings or complex numbers.
    if isinstance(x, bool | str | bytes | complex) or np.ndim(x) != 0:
        return False
    return is_finite_scalar(x)


def _check_limits(steer_limit_rad, torque_limits_nm, max_speed_mps) -> None:
    if steer_limit_rad is not None and not (
        _is_finite_real(steer_limit_rad) and steer_limit_rad > 0
    ):
        raise ValueError(
            f"`steer_limit_rad` must be None or a finite steering lock > 0 [rad] (the car's "
            f"|δ| limit), got {steer_limit_rad!r}."
        )
    if torque_limits_nm is not None:
        pair = tuple(torque_limits_nm) if isinstance(torque_limits_nm, tuple | list) else ()
        if not (len(pair) == 2 and all(map(_is_finite_real, pair)) and pair[0] < pair[1]):
            raise ValueError(
                "`torque_limits_nm` must be None or a pair (τ_min, τ_max) of finite torques "
                f"[N·m] with τ_min < τ_max, got {torque_limits_nm!r}."
            )
    if max_speed_mps is not None and not (
        _is_finite_real(max_speed_mps) and max_speed_mps > MIN_SPEED_MPS
    ):
        raise ValueError(
            f"`max_speed_mps` must be None or a finite speed > {MIN_SPEED_MPS} m/s, got "
            f"{max_speed_mps!r}."
        )


def equilibrium_guess(eq: Equilibrium, *, mode: str = "speed") -> Float[Array, "4"]:
    """Scaled unknowns of `eq`, to start a nearby solve (continuation along β, V or κ)."""
    first = eq.state[0] if mode == "speed" else eq.state[1]
    return jnp.stack(
        [first, eq.state[3] / _OMEGA_SCALE_RADPS, eq.control[0], eq.control[1] / _TORQUE_SCALE_NM]
    )


__all__ = [
    "DEFAULT_MAX_SPEED_MPS",
    "DEFAULT_STEER_LIMIT_RAD",
    "DEFAULT_TORQUE_LIMITS_NM",
    "MIN_SPEED_MPS",
    "Equilibrium",
    "equilibrium_guess",
    "solve_equilibrium",
]
