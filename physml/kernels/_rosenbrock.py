"""The two-stage Rosenbrock W-method ROS2 for stiff y' = f(y).

Verwer, Spee, Blom & Hundsdorfer, "A second-order Rosenbrock method applied to photochemical
dispersion problems", SIAM J. Sci. Comput. 20 (1999), eq. 2.3, with γ = 1 + 1/√2:

    W k₁ = f(y),   W k₂ = f(y + h k₁) − 2 k₁,   y₁ = y + h (3/2 k₁ + 1/2 k₂),   W = I − γ h J.

Order 2 for any matrix J (a W-method: J may be approximate or partial); with the exact Jacobian
it is L-stable, so a stiff mode is damped at any step h, unlike an explicit Runge–Kutta step.
A "stiff block" treats only the components `stiff` implicitly: J is the Jacobian of those
components of f with respect to themselves and W is the identity elsewhere, so each stage costs
one small LU factorisation and those components' solves; the others are explicit.

Autonomous: a step holds everything but y fixed (e.g. a zero-order-hold control).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

#: ROS2's γ = 1 + 1/√2 (Verwer et al. 1999): the L-stable choice.
ROS2_GAMMA = 1.0 + 1.0 / math.sqrt(2.0)


def ros2_step(
    f: Callable[[Float[Array, " n"]], Float[Array, " n"]],
    y: Float[ArrayLike, " n"],
    h: Float[ArrayLike, ""],
    *,
    jacobian: Float[ArrayLike, "m m"] | None = None,
    stiff: Sequence[int] | None = None,
) -> Float[Array, " n"]:
    """One ROS2 step of length h of y' = f(y) (the module docstring).

    Args:
        f: the vector field y ↦ y', an (n,) array to an (n,) array.
        y: the state (n,) at the start of the step.
        h: the step length (time units of f).
        jacobian: the matrix J of W = I − γ h J: (n, n), or (m, m) on the components `stiff`
            when given. Any matrix keeps order 2; default: the exact Jacobian at y (forward
            mode, on the stiff block only when `stiff` is given).
        stiff: indices of the m implicitly treated components (default: all of them); the
            others are explicit (zero rows and columns of J).

    Returns:
        The state (n,) after the step.
    """
    y = jnp.asarray(y)
    if stiff is None:
        idx = None
        if jacobian is None:
            jacobian = jax.jacfwd(f)(y)
    else:
        idx = np.asarray(stiff, dtype=int)
        if idx.ndim != 1 or idx.size == 0 or len(set(idx.tolist())) != idx.size:
            raise ValueError(f"`stiff` must be distinct component indices, got {stiff!r}.")
        if jacobian is None:
            jacobian = jax.jacfwd(lambda ys: f(y.at[idx].set(ys))[idx])(y[idx])
    jacobian = jnp.asarray(jacobian)
    m = y.shape[0] if idx is None else idx.size
    if jacobian.shape != (m, m):
        raise ValueError(
            f"`jacobian` must be ({m}, {m}) (the {'stiff block' if idx is not None else 'state'}"
            f"), got shape {jacobian.shape}."
        )
    lu = jax.scipy.linalg.lu_factor(jnp.eye(m) - ROS2_GAMMA * h * jacobian)
    if idx is None:
        solve = lambda rhs: jax.scipy.linalg.lu_solve(lu, rhs)
    elif np.array_equal(idx, np.arange(idx.size)):
        # A leading block (the common case): concatenation, no scatter.
        solve = lambda rhs: jnp.concatenate(
            [jax.scipy.linalg.lu_solve(lu, rhs[: idx.size]), rhs[idx.size :]]
        )
    else:
        solve = lambda rhs: rhs.at[idx].set(jax.scipy.linalg.lu_solve(lu, rhs[idx]))
    k1 = solve(f(y))
    k2 = solve(f(y + h * k1) - 2.0 * k1)
    return y + h * (1.5 * k1 + 0.5 * k2)


class ROS2(eqx.Module):
    """ROS2 with the step interface of the explicit Runge–Kutta methods (`ExplicitRK.step`),
    for fields f(t, y, u, args) that do not depend on t within a step (zero-order hold).

    Attributes:
        stiff: indices of the implicit components (default: all), see `ros2_step`.
    """

    gamma: ClassVar[float] = ROS2_GAMMA
    order: ClassVar[int] = 2
    stiff: tuple[int, ...] | None = eqx.field(static=True, default=None)

    def step(self, f: Callable, t: Any, y: Array, u: Any, dt: Any, args: Any) -> Array:
        """One step of size `dt` from (t, y) with the control `u` held (exact Jacobian)."""
        return ros2_step(lambda z: f(t, z, u, args), y, dt, stiff=self.stiff)


__all__ = ["ROS2", "ROS2_GAMMA", "ros2_step"]
