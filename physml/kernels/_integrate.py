"""Fixed-step Runge–Kutta rollouts as one `lax.scan`: explicit methods, or the linearly
implicit ROS2 (`ROS2`, `physml.kernels._rosenbrock`) for stiff fields.

A rollout integrates `dy/dt = f(t, y, u, args)` with the control `u_k` held constant over step
`k` (zero-order hold), from `t0` with step sizes `dt_k` that may differ per step (the drift MPC
uses a non-uniform horizon grid). It is differentiable in reverse mode through the scan,
`vmap`-able over initial states and control sequences, and traces once per shape.

Butcher tableaux: Hairer, Nørsett & Wanner, "Solving Ordinary Differential Equations I",
Sec. II.1 (Euler, order 1; Heun / explicit trapezoid, order 2; classical RK4, order 4).

Adaptive-step problems go through diffrax: see `ode_solve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._custom_types import Args, StepSize, Y
from ._rosenbrock import ROS2
from ._validate import check_finite_tree, check_step_sizes

VectorField = Callable[[Any, Y, Any, Args], Y]


def _axpy(y: Y, dt: Any, *terms: tuple[float, Y]) -> Y:
    """y + dt * Σ_j a_j k_j, leaf by leaf (zero coefficients are skipped at trace time)."""
    terms = tuple((a, k) for a, k in terms if a != 0.0)
    if not terms:
        return y

    def leaf(y_leaf, *k_leaves):
        incr = sum(a * k for (a, _), k in zip(terms, k_leaves, strict=True))
        return y_leaf + (dt * incr).astype(y_leaf.dtype)

    return jtu.tree_map(leaf, y, *(k for _, k in terms))


class ExplicitRK(eqx.Module):
    """An explicit Runge–Kutta method given by its Butcher tableau (a, b, c)."""

    a: ClassVar[tuple[tuple[float, ...], ...]]
    b: ClassVar[tuple[float, ...]]
    c: ClassVar[tuple[float, ...]]
    order: ClassVar[int]

    def step(self, f: VectorField, t: Any, y: Y, u: Any, dt: Any, args: Args) -> Y:
        """One step of size `dt` from (t, y) with the control `u` held constant."""
        ks: list[Y] = []
        for i, c_i in enumerate(self.c):
            y_i = _axpy(y, dt, *zip(self.a[i], ks, strict=False)) if i else y
            ks.append(f(t + c_i * dt, y_i, u, args))
        return _axpy(y, dt, *zip(self.b, ks, strict=True))


class Euler(ExplicitRK):
    """Forward Euler, order 1."""

    a = ((),)
    b = (1.0,)
    c = (0.0,)
    order = 1


class Heun(ExplicitRK):
    """Heun's method (explicit trapezoidal rule), order 2."""

    a = ((), (1.0,))
    b = (0.5, 0.5)
    c = (0.0, 1.0)
    order = 2


class Midpoint(ExplicitRK):
    """Explicit midpoint rule, order 2."""

    a = ((), (0.5,))
    b = (0.0, 1.0)
    c = (0.0, 0.5)
    order = 2


class RK4(ExplicitRK):
    """The classical fourth-order Runge–Kutta method."""

    a = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    b = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
    c = (0.0, 0.5, 0.5, 1.0)
    order = 4


_METHODS: dict[str, type[ExplicitRK]] = {
    "euler": Euler,
    "heun": Heun,
    "midpoint": Midpoint,
    "rk4": RK4,
}


def _resolve_method(method: str | ExplicitRK | ROS2) -> ExplicitRK | ROS2:
    if isinstance(method, (ExplicitRK, ROS2)):
        return method
    if isinstance(method, str) and method.lower() in _METHODS:
        return _METHODS[method.lower()]()
    raise ValueError(
        f"`method` must be one of {sorted(_METHODS)}, an `ExplicitRK` or a `ROS2` instance, "
        f"got {method!r}."
    )


def promote_state(y0: Y) -> Y:
    """`y0` with every integer or boolean leaf cast to the default float dtype (as diffrax does):
    an integer state cannot hold a fractional increment, so it would never move."""

    def leaf(x: Any) -> Any:
        if isinstance(x, jax.core.Tracer) or jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            return x
        return jnp.asarray(x, dtype=jnp.result_type(float))

    return jtu.tree_map(leaf, y0)


def _n_steps(controls: Any, dt: Any) -> int:
    leaves = jtu.tree_leaves(controls)
    if leaves:
        lengths = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
        if len(lengths) != 1 or -1 in lengths:
            raise ValueError(
                "`controls` must be a PyTree whose leaves all have the same leading (time) axis, "
                f"got leading sizes {sorted(lengths)}."
            )
        return lengths.pop()
    if np.ndim(dt) == 1:
        return int(np.shape(dt)[0])
    raise ValueError(
        "The number of steps is unknown: pass `controls` with a leading time axis, or `dt` as a "
        "1D array of per-step sizes."
    )


def rollout(
    f: VectorField,
    y0: Y,
    controls: Any,
    dt: StepSize,
    args: Args = None,
    *,
    method: str | ExplicitRK | ROS2 = "rk4",
    t0: float = 0.0,
    check: bool = True,
) -> Y:
    """Integrate `dy/dt = f(t, y, u, args)` over a control sequence with a fixed-step RK method.

    Args:
        f: vector field `f(t, y, u, args) -> dy/dt`, a PyTree shaped like `y`.
        y0: initial state, any PyTree of arrays; integer leaves are promoted to float.
        controls: PyTree whose leaves have a leading time axis of length T; step k uses
            `controls[k]` (zero-order hold). `None` if the system has no input (then `dt` must
            be a length-T array).
        dt: step size [time units of f], a scalar or a length-T array (non-uniform grid).
        args: passed through to `f` unchanged.
        method: "euler", "heun", "midpoint", "rk4", an `ExplicitRK` instance, or a `ROS2`
            instance (linearly implicit, for stiff `f`; `y0` one array, `f` autonomous within
            a step).
        t0: initial time.
        check: validate shapes, step sizes and finiteness of `y0` at the boundary (host-side;
            skipped automatically when called under `jit`/`vmap` with traced inputs).

    Returns:
        The trajectory: a PyTree like `y0` whose leaves have a leading axis of length T + 1,
        with `ys[0] == y0` and `ys[k + 1]` the state after step k.
    """
    solver = _resolve_method(method)
    n_steps = _n_steps(controls, dt)
    y0 = promote_state(y0)
    if isinstance(solver, ROS2) and not (
        jtu.treedef_is_leaf(jtu.tree_structure(y0)) and np.ndim(y0) == 1
    ):
        raise ValueError(
            "`method=ROS2(...)` integrates a state that is one 1D array (its Jacobian is a "
            f"matrix), got {jtu.tree_structure(y0)} with shapes "
            f"{[np.shape(leaf) for leaf in jtu.tree_leaves(y0)]}; flatten the state first."
        )
    if check:
        dt = check_step_sizes(dt, n_steps)
        if not jtu.tree_leaves(y0):
            raise ValueError("`y0` must contain at least one array, got an empty PyTree.")
        check_finite_tree(y0, "y0")
    dts = jnp.broadcast_to(jnp.asarray(dt), (n_steps,))
    times = t0 + jnp.concatenate([jnp.zeros((1,), dts.dtype), jnp.cumsum(dts)[:-1]])
    xs = (times, dts, controls)

    def body(y, x):
        t, h, u = x
        y_next = solver.step(f, t, y, u, h, args)
        return y_next, y_next

    _, ys = jax.lax.scan(body, y0, xs, length=n_steps)
    return jtu.tree_map(lambda a, b: jnp.concatenate([jnp.asarray(a)[None], b]), y0, ys)
