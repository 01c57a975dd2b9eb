"""The drift stabiliser used by `collect`: the plant's drift equilibria and an LQR around them.

Sustained drifts are held by `DriftStabiliser`, a gain-scheduled discrete LQR around the
plant's own drift equilibria (steady states with V̇ = β̇ = ṙ = ω̇_f = ω̇_r = 0 at fixed V and β,
solved with optimistix), in the spirit of the equilibrium-based drift controllers of Hindiyeh &
Gerdes (J. Dyn. Sys. Meas. Control 136, 2014) and Goh & Gerdes (IV 2016). It is a data-collection
tool, not the MPC of `DriftMPC`.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import scipy.linalg
from jaxtyping import Array, ArrayLike, Float

from .._plant.dynamics import IOMEGAF, IOMEGAR, ISIDESLIP, ISPEED, ISTEER, IYAWRATE, DriftPlant

#: Plant state components the stabiliser feeds back: δ, V, r, β, ω_f, ω_r.
FEEDBACK_INDEX = (ISTEER, ISPEED, IYAWRATE, ISIDESLIP, IOMEGAF, IOMEGAR)


class DriftStabiliser(eqx.Module):
    """Gain-scheduled LQR that holds the plant in a drift at a commanded sideslip.

    u = u_eq(β_ref) − K(β_ref) (z − z_eq(β_ref)), z = (δ, V, r, β, ω_f, ω_r), with the
    equilibrium and the gain interpolated linearly in β_ref over `beta_grid`. Grids may cover
    both directions (β < 0: drifting left, r > 0, counter-steer δ < 0; β > 0: the mirror);
    β_ref must stay inside one of the drift branches, never between them.

    Attributes:
        beta_grid: (n,) sideslip references [rad], increasing.
        z_eq: (n, 6) equilibrium states.
        u_eq: (n, 2) equilibrium inputs (δ_cmd [rad], τ [N·m]).
        gains: (n, 2, 6) LQR gains.
    """

    beta_grid: Float[Array, " n"]
    z_eq: Float[Array, "n 6"]
    u_eq: Float[Array, "n 2"]
    gains: Float[Array, "n 2 6"]

    def __call__(self, x: Float[Array, "9"], beta_ref: Float[ArrayLike, ""]) -> Float[Array, "2"]:
        """Command (δ_cmd [rad], τ [N·m]) at plant state x for the sideslip `beta_ref` [rad]."""
        interp = lambda table: jax.vmap(
            lambda col: jnp.interp(beta_ref, self.beta_grid, col), in_axes=-1, out_axes=-1
        )(table.reshape(table.shape[0], -1)).reshape(table.shape[1:])
        z = x[jnp.asarray(FEEDBACK_INDEX)]
        return interp(self.u_eq) - interp(self.gains) @ (z - interp(self.z_eq))


def _state(z, speed, beta):
    r, delta, _, omega_f, omega_r = z
    zero = jnp.zeros_like(r)
    return jnp.stack([zero, zero, delta, speed + zero, zero, r, beta + zero, omega_f, omega_r])


@eqx.filter_jit
def _solve_equilibrium(plant, speed, beta, guess):
    def residual(z, _):
        f = plant.vector_field(0.0, _state(z, speed, beta), z[1:3])
        # Scaled to comparable sizes: [m/s²], [rad/s], [rad/s² / 10], [rad/s² / 100] twice.
        return jnp.stack(
            [f[ISPEED], f[ISIDESLIP], f[IYAWRATE] / 10, f[IOMEGAF] / 100, f[IOMEGAR] / 100]
        )

    # Levenberg–Marquardt: plain Newton diverges from rough guesses on this kinked residual.
    # Tolerances follow the working precision: √eps ≈ 1.5e-8 in float64, 3.5e-4 in float32.
    eps = float(jnp.finfo(guess.dtype).eps)
    step_tol = max(1e-12, 10 * eps)
    sol = optx.least_squares(
        residual,
        optx.LevenbergMarquardt(rtol=step_tol, atol=step_tol),
        guess,
        max_steps=500,
        throw=False,
    )
    worst = jnp.max(jnp.abs(residual(sol.value, None)))
    ok = (sol.result == optx.RESULTS.successful) & (worst < np.sqrt(eps))
    return sol.value, ok


@eqx.filter_jit
def _linearise(plant, x, u):
    return jax.jacfwd(lambda x, u: plant.vector_field(0.0, x, u), argnums=(0, 1))(x, u)


def drift_equilibrium(
    plant: DriftPlant,
    speed_mps: float,
    sideslip_rad: float,
    guess: Sequence[float] | ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Steady drift of the plant at speed V and sideslip β (V̇ = β̇ = ṙ = ω̇_f = ω̇_r = 0).

    Unknowns: yaw rate r, steering δ (= δ_cmd with the servo at rest), torque τ, ω_f, ω_r,
    solved as a least-squares problem by Levenberg–Marquardt (optimistix) and accepted when
    every scaled residual is below √eps of the working precision. Returns the plant state (9,)
    and the input (δ_cmd, τ) as numpy arrays. Raises RuntimeError if it does not converge from
    `guess` (default: a guess on the drift branch with counter-steer and rear-wheel spin), if
    the steady state found is not a drift (sgn r ≠ −sgn β), or if it needs a steering angle
    beyond the actuators' limit.
    """
    p = plant.params
    if guess is None:
        s = -1.0 if sideslip_rad < 0 else 1.0
        # Fitted by hand to vehicle 2's drift branch at 8-12 m/s: δ ≈ -1.27 (|β| - 0.27) sgn β,
        # r ≈ 9 m/s² / V, rear slip ratio ≈ 1.5 |β|.
        beta = abs(sideslip_rad)
        guess = [
            -s * 9.0 / speed_mps,
            s * 1.27 * (beta - 0.27),
            1200.0,
            speed_mps / p.wheel_radius_m,
            (1 + 1.5 * beta) * speed_mps * np.cos(beta) / p.wheel_radius_m,
        ]
    z, ok = _solve_equilibrium(
        plant,
        jnp.asarray(speed_mps, float),
        jnp.asarray(sideslip_rad, float),
        jnp.asarray(guess, float),
    )
    z = np.asarray(z)
    if not bool(ok) or not np.all(np.isfinite(z)):
        raise RuntimeError(
            f"No drift equilibrium found at V = {speed_mps} m/s, "
            f"β = {np.degrees(sideslip_rad):.1f}° from the guess {np.asarray(guess)}."
        )
    where = f"V = {speed_mps} m/s, β = {np.degrees(sideslip_rad):.1f}°"
    # A drift turns against its sideslip (sgn r = −sgn β); the solve can also land on a
    # steady state that is not a drift, which must not be passed off as one.
    if sideslip_rad != 0 and np.sign(z[0]) != -np.sign(sideslip_rad):
        raise RuntimeError(
            f"The steady state found at {where} is not a drift: yaw rate r = {z[0]:+.3f} rad/s "
            "has the sign of β (a drift has sgn r = −sgn β). Start from a guess on the drift "
            "branch, e.g. continue from a nearby drift."
        )
    # At rest the servo holds δ = δ_cmd, so the steady state exists only within its range.
    steer_max = float(plant.actuators.steer_max_rad)
    if abs(z[1]) > steer_max:
        raise RuntimeError(
            f"The drift at {where} needs δ = {z[1]:+.3f} rad, beyond the actuators' "
            f"±{steer_max} rad: the plant cannot hold it."
        )
    return np.asarray(_state(jnp.asarray(z), speed_mps, sideslip_rad)), z[1:3].copy()


def design_drift_stabiliser(
    plant: DriftPlant,
    *,
    speed_mps: float = 10.0,
    sideslip_deg: tuple[float, float] = (25.0, 40.0),
    n_grid: int = 10,
    dt_s: float = 0.01,
) -> DriftStabiliser:
    """LQR drift stabiliser over |β| in `sideslip_deg` at `speed_mps`, both directions.

    Each grid point: the plant linearised at its drift equilibrium, discretised with a
    zero-order hold at the control period `dt_s`, and a discrete LQR with weights that put
    1° of β error on a par with 0.05 rad/s of r, 0.5 m/s of V, 0.1 rad of δ_cmd and 300 N·m.
    """
    lo, hi = sorted(np.radians(sideslip_deg))
    idx = np.asarray(FEEDBACK_INDEX)
    # Bryson's rule: 1 / (acceptable deviation)² on (δ, V, r, β, ω_f, ω_r) and (δ_cmd, τ).
    q = np.diag(1 / np.array([np.inf, 0.5, 0.05, np.radians(1.0), np.inf, 30.0]) ** 2)
    r = np.diag(1 / np.array([0.1, 300.0]) ** 2)
    tables = []
    for side in (-1.0, 1.0):
        # Continuation from deep drift (well inside the drift branch) towards smaller |β|.
        betas = side * np.linspace(hi, lo, n_grid)
        guess = None
        rows = []
        for beta in betas:
            x_eq, u_eq = drift_equilibrium(plant, speed_mps, beta, guess)
            guess = [x_eq[IYAWRATE], u_eq[0], u_eq[1], x_eq[IOMEGAF], x_eq[IOMEGAR]]
            a_full, b_full = (
                np.asarray(m) for m in _linearise(plant, jnp.asarray(x_eq), jnp.asarray(u_eq))
            )
            a, b = a_full[np.ix_(idx, idx)], b_full[idx]
            n, m = a.shape[0], b.shape[1]
            big = np.zeros((n + m, n + m))
            big[:n, :n], big[:n, n:] = a * dt_s, b * dt_s
            ed = scipy.linalg.expm(big)
            ad, bd = ed[:n, :n], ed[:n, n:]
            pmat = scipy.linalg.solve_discrete_are(ad, bd, q, r)
            k = np.linalg.solve(r + bd.T @ pmat @ bd, bd.T @ pmat @ ad)
            rows.append((beta, x_eq[idx], u_eq, k))
        tables.extend(rows[::-1] if side > 0 else rows)
    beta, z, u, k = (np.stack(c) for c in zip(*tables, strict=True))
    return DriftStabiliser(jnp.asarray(beta), jnp.asarray(z), jnp.asarray(u), jnp.asarray(k))


# ---------------------------------------------------------------------------------------------
