"""A thin adapter from physml's vector-field convention to diffrax, for adaptive or stiff
problems (the neural-ODE tire curve, reference solutions in tests). It is an adapter, not a
second solver: all stepping, error control and adjoints are diffrax's.
"""

from __future__ import annotations

from typing import Any

import diffrax
import jax.numpy as jnp
import jax.tree_util as jtu

from ._custom_types import Args, Y
from ._integrate import VectorField
from ._validate import check_finite_tree


def ode_solve(
    f: VectorField,
    y0: Y,
    ts: Any,
    args: Args = None,
    *,
    controls: Any = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    dt0: float | None = None,
    max_steps: int = 4096,
    adjoint: diffrax.AbstractAdjoint | None = None,
    throw: bool = True,
) -> Y:
    """Solve `dy/dt = f(t, y, u, args)` with diffrax and return the states at the times `ts`.

    Args:
        f: vector field in physml's convention `f(t, y, u, args)`.
        y0: initial state at `ts[0]`.
        ts: increasing save times, shape (T + 1,).
        controls: optional PyTree with a leading axis of length T: `controls[k]` is held on
            [ts[k], ts[k+1]). The grid points are passed to diffrax as jump times so that the
            adaptive controller steps exactly onto each switch. `None` gives `u = None`.
        solver: a diffrax solver (default `diffrax.Tsit5()`; use `Kvaerno5()` for stiff problems).
        rtol, atol: tolerances of the PID step-size controller.
        dt0: initial step (default: chosen by diffrax).
        max_steps, adjoint, throw: as in `diffrax.diffeqsolve`.

    Returns:
        PyTree like `y0` with a leading axis of length T + 1 (the solution at each of `ts`).

    Raises:
        ValueError: `ts` is not 1D with two or more times, or `y0` or `ts` holds NaN or inf
            (checked here, host-side; diffrax would report a NaN state as the maximum number of
            steps reached). Traced inputs (under `jit`) are not checked.
    """
    check_finite_tree(y0, "y0")
    check_finite_tree(ts, "ts")
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"`ts` must be a 1D array of at least two times, got shape {ts.shape}.")
    solver = diffrax.Tsit5() if solver is None else solver
    n_seg = ts.shape[0] - 1

    def field(t, y, a):
        if controls is None:
            u = None
        else:
            k = jnp.clip(jnp.searchsorted(ts, t, side="right") - 1, 0, n_seg - 1)
            u = jtu.tree_map(lambda c: c[k], controls)
        return f(t, y, u, a)

    controller: diffrax.AbstractStepSizeController = diffrax.PIDController(rtol=rtol, atol=atol)
    if controls is not None:
        controller = diffrax.ClipStepSizeController(controller, jump_ts=ts[1:-1])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        solver,
        ts[0],
        ts[-1],
        dt0,
        y0,
        args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        throw=throw,
    )
    return sol.ys
