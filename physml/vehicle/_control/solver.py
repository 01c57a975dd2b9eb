"""Projected Gauss–Newton / Levenberg–Marquardt for a box-constrained least-squares problem.

    minimise J(z) = ½ |ρ(z)|²   subject to   lower ≤ z ≤ upper,

given J itself with what its evaluation computed on the way (`cost(z) -> (J, aux)`, J = +inf
where it is not finite; aux, e.g. a predicted trajectory, is any pytree) and ρ with its Jacobian
(`linearise(z, aux) -> (ρ, ∂ρ/∂z)`, given the aux of `cost` at the same z, so the linearisation
need not redo that work: the accepted trial point of the line search is the next iteration's
point). Each iteration solves the damped Gauss–Newton model on the box,

    min_d ½ dᵀ (JᵀJ + μ diag(JᵀJ)) d + (Jᵀρ)ᵀ d   on   lower − z ≤ d ≤ upper − z,

from the clipped Newton step by accelerated projected gradient (FISTA, Beck & Teboulle, SIAM J.
Imaging Sci. 2 (2009), step 1/L with L a Gershgorin bound), then takes the first step length
α ∈ (1, 0.5, 0.25, 0.1, 0.03) that passes the Armijo test J(z + α d) ≤ J(z) + c α ∇Jᵀd (the
full step first, the shorter ones vmapped only if it fails). The damping μ falls by 3 on an
accepted step and grows by 10 on a rejected one (Levenberg–Marquardt). Stops after
`max_iterations`, when the relative decrease of J is below `tol`, when μ > 1e6, or when the
linearisation is not finite. One `lax.while_loop`: jit- and vmap-able.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Bool, Float, Int

#: Trial step lengths of the Armijo test, largest first; Armijo constant.
_STEP_LENGTHS = (1.0, 0.5, 0.25, 0.1, 0.03)
_ARMIJO_C = 1e-4
_FISTA_ITERATIONS = 30


class BoxLeastSquaresSolution(eqx.Module):
    """What `solve_box_least_squares` returns.

    Attributes:
        z: the last accepted point (n,).
        cost: J there (+inf if the last linearisation was not finite).
        aux: what `cost` returned with J at z.
        cost_initial: J at the start point (+inf if not finite or no iteration ran).
        damping: the Levenberg–Marquardt damping μ to warm-start the next solve with.
        iterations: Gauss–Newton iterations run.
        stopped: whether a stopping test ended the loop before `max_iterations`.
    """

    z: Float[Array, " n"]
    cost: Float[Array, ""]
    aux: object
    cost_initial: Float[Array, ""]
    damping: Float[Array, ""]
    iterations: Int[Array, ""]
    stopped: Bool[Array, ""]


def box_qp(
    h: Float[Array, "n n"],
    g: Float[Array, " n"],
    lo: Float[Array, " n"],
    hi: Float[Array, " n"],
    d0: Float[Array, " n"],
) -> Float[Array, " n"]:
    """min ½ dᵀ H d + gᵀ d on lo ≤ d ≤ hi by FISTA from d0 (step 1 / Gershgorin bound)."""
    lip = jnp.max(jnp.sum(jnp.abs(h), axis=1))

    def body(_, carry):
        d, y, t = carry
        d_new = jnp.clip(y - (h @ y + g) / lip, lo, hi)
        t_new = 0.5 * (1 + jnp.sqrt(1 + 4 * t**2))
        y = d_new + (t - 1) / t_new * (d_new - d)
        return d_new, y, t_new

    d, _, _ = jax.lax.fori_loop(0, _FISTA_ITERATIONS, body, (d0, d0, jnp.asarray(1.0)))
    return d


def solve_box_least_squares(
    linearise: Callable[[Array, object], tuple[Array, Array]],
    cost: Callable[[Array], tuple[Array, object]],
    z0: Float[Array, " n"],
    *,
    damping: Float[ArrayLike, ""] = 1e-3,
    max_iterations: int,
    tol: float,
    lower: Float[ArrayLike, "*n"] = -1.0,
    upper: Float[ArrayLike, "*n"] = 1.0,
) -> BoxLeastSquaresSolution:
    """Minimise ½ |ρ(z)|² on lower ≤ z ≤ upper from z0 (the module docstring).

    Args:
        linearise: (z, aux) ↦ (ρ (m,), ∂ρ/∂z (m, n)), aux being `cost`'s at z.
        cost: z ↦ (½ |ρ(z)|², +inf where not finite; aux): the line search's evaluation.
        z0: the start (n,), inside the box.
        damping: the initial Levenberg–Marquardt damping μ (clipped to [1e-8, 1e2]).
        max_iterations: the iteration budget (static).
        tol: relative decrease of J below which an accepted step ends the solve.
        lower, upper: the box (scalars or (n,)).
    """
    alphas = jnp.asarray(_STEP_LENGTHS)

    def cond(carry):
        return (carry[3] < max_iterations) & ~carry[4]

    def body(carry):
        z, _, mu, it, _, c0, aux = carry
        # The linearisation at z also gives the cost there (J = ½ |ρ|²).
        rho, jac = linearise(z, aux)
        c = 0.5 * jnp.sum(rho**2)
        c0 = jnp.where(it == 0, c, c0)
        ok = jnp.isfinite(c) & jnp.all(jnp.isfinite(jac))
        rho = jnp.where(ok, rho, 0.0)
        jac = jnp.where(ok, jac, 0.0)
        g = jac.T @ rho
        hess = jac.T @ jac
        diag = jnp.diag(hess) + 1e-9
        h_damped = hess + mu * jnp.diag(diag)
        lo, hi = lower - z, upper - z
        newton = -jax.scipy.linalg.solve(h_damped, g, assume_a="pos")
        newton = jnp.where(jnp.all(jnp.isfinite(newton)), newton, -g / jnp.max(diag))
        d = box_qp(h_damped, g, lo, hi, jnp.clip(newton, lo, hi))
        slope = g @ d
        full, aux_full = cost(z + d)
        skipped = jtu.tree_map(lambda a: jnp.zeros((alphas.shape[0] - 1, *a.shape), a.dtype), aux)
        shorter, aux_shorter = jax.lax.cond(
            full <= c + _ARMIJO_C * slope,
            lambda: (jnp.full(alphas.shape[0] - 1, jnp.inf), skipped),
            lambda: jax.vmap(lambda a: cost(z + a * d))(alphas[1:]),
        )
        trial = jnp.concatenate([full[None], shorter])
        armijo = trial <= c + _ARMIJO_C * alphas * slope
        accept = ok & jnp.any(armijo) & (slope < 0)
        first = jnp.argmax(armijo)
        c_new = jnp.where(accept, trial[first], jnp.where(ok, c, jnp.inf))
        z_new = jnp.where(accept, z + alphas[first] * d, z)
        pick = lambda a, f, s: jnp.where(accept, jnp.where(first == 0, f, s[first - 1]), a)
        aux_new = jtu.tree_map(pick, aux, aux_full, aux_shorter)
        mu_new = jnp.where(accept, jnp.maximum(mu / 3.0, 1e-8), mu * 10.0)
        small = (c - c_new) <= tol * jnp.maximum(c, 1e-12)
        done = (accept & small) | (mu_new > 1e6) | ~ok
        return z_new, c_new, mu_new, it + 1, done, c0, aux_new

    inf = jnp.asarray(jnp.inf)
    _, aux0 = cost(z0)
    start = (z0, inf, jnp.clip(damping, 1e-8, 1e2), jnp.asarray(0), False, inf, aux0)
    z, c, mu, iterations, stopped, c0, aux = jax.lax.while_loop(cond, body, start)
    return BoxLeastSquaresSolution(z, c, aux, c0, mu, iterations, stopped)


__all__ = ["BoxLeastSquaresSolution", "box_qp", "solve_box_least_squares"]
