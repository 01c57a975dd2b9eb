"""Fixed-step Runge–Kutta rollouts: convergence order, gradients, batching, retracing, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from physml.kernels import RK4, Euler, Heun, Midpoint, ode_solve, rollout


def damped_oscillator(t, y, u, args):
    """ẍ + 2ζω ẋ + ω² x = u·cos(t); with u ≡ 0 the solution is known in closed form."""
    omega, zeta = args
    x, v = y
    return jnp.stack([v, -2 * zeta * omega * v - omega**2 * x + u * jnp.cos(t)])


def exact_oscillator(t, omega, zeta, x0, v0):
    wd = omega * np.sqrt(1 - zeta**2)
    a = x0
    b = (v0 + zeta * omega * x0) / wd
    return np.exp(-zeta * omega * t) * (a * np.cos(wd * t) + b * np.sin(wd * t))


@pytest.mark.parametrize(
    ("method", "order"), [("euler", 1), ("heun", 2), ("midpoint", 2), ("rk4", 4)]
)
def test_convergence_order(method, order):
    """The slope of log(error) vs log(dt) at the final time is the method's order (±0.3)."""
    omega, zeta, t_end = 2.0, 0.1, 2.0
    y0 = jnp.array([1.0, 0.0])
    exact = exact_oscillator(t_end, omega, zeta, 1.0, 0.0)
    ns = np.array([40, 80, 160, 320]) if order < 4 else np.array([20, 40, 80, 160])
    errors = []
    for n in ns:
        ys = rollout(damped_oscillator, y0, jnp.zeros(n), t_end / n, (omega, zeta), method=method)
        errors.append(abs(float(ys[-1, 0]) - exact))
    slope = np.polyfit(np.log(t_end / ns), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (slope, errors)


def test_nonuniform_grid_matches_uniform_when_equal():
    f = damped_oscillator
    y0 = jnp.array([1.0, -0.5])
    u = jnp.linspace(0, 1, 30)
    a = rollout(f, y0, u, 0.05, (1.0, 0.2))
    b = rollout(f, y0, u, jnp.full(30, 0.05), (1.0, 0.2))
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


def test_nonuniform_grid_converges():
    """A mixed grid (the MPC's 25×0.05 s + 5×0.15 s shape) with RK4 agrees with a fine solve."""
    dts = jnp.concatenate([jnp.full(25, 0.05), jnp.full(5, 0.15)])
    y0 = jnp.array([1.0, 0.0])
    ys = rollout(damped_oscillator, y0, jnp.zeros(30), dts, (2.0, 0.1))
    exact = exact_oscillator(float(dts.sum()), 2.0, 0.1, 1.0, 0.0)
    assert abs(float(ys[-1, 0]) - exact) < 1e-4  # RK4 local error ~ (ω dt)^5 / 120 per step


def test_pytree_state_and_controls():
    def f(t, y, u, args):
        return {"pos": y["vel"], "vel": u["force"] / args["mass"]}

    y0 = {"pos": jnp.zeros(2), "vel": jnp.ones(2)}
    controls = {"force": jnp.ones((10, 2))}
    ys = rollout(f, y0, controls, 0.1, {"mass": 2.0})
    # Constant force: exact for RK4 (quadratic in t): x = t + t²/4 at t = 1.
    np.testing.assert_allclose(ys["pos"][-1], 1.0 + 0.25, rtol=1e-12)
    assert ys["pos"].shape == (11, 2)
    np.testing.assert_array_equal(ys["pos"][0], y0["pos"])


def test_gradient_matches_finite_differences():
    def loss(omega, u):
        ys = rollout(damped_oscillator, jnp.array([1.0, 0.0]), u, 0.05, (omega, 0.1))
        return jnp.sum(ys[:, 0] ** 2)

    u = jnp.sin(jnp.linspace(0, 3, 40))
    g_omega, g_u = jax.grad(loss, argnums=(0, 1))(1.5, u)
    eps = 1e-6
    fd = (loss(1.5 + eps, u) - loss(1.5 - eps, u)) / (2 * eps)
    np.testing.assert_allclose(g_omega, fd, rtol=1e-7)
    e7 = jnp.zeros(40).at[7].set(eps)
    fd_u = (loss(1.5, u + e7) - loss(1.5, u - e7)) / (2 * eps)
    np.testing.assert_allclose(g_u[7], fd_u, rtol=1e-6)


@given(st.integers(1, 5), st.sampled_from(["euler", "heun", "rk4"]))
def test_vmap_equals_loop(batch, method):
    key = jax.random.key(batch)
    y0s = jax.random.normal(key, (batch, 2))
    us = jax.random.normal(jax.random.fold_in(key, 1), (batch, 12))
    batched = jax.vmap(
        lambda y0, u: rollout(damped_oscillator, y0, u, 0.1, (1.0, 0.3), method=method)
    )(y0s, us)
    for i in range(batch):
        single = rollout(damped_oscillator, y0s[i], us[i], 0.1, (1.0, 0.3), method=method)
        np.testing.assert_allclose(batched[i], single, rtol=1e-13, atol=1e-13)


def test_no_retrace_on_second_call():
    @eqx.debug.assert_max_traces(max_traces=1)
    def run(y0, u, dt):
        return rollout(damped_oscillator, y0, u, dt, (1.0, 0.1), check=False)

    run_jit = jax.jit(run)
    run_jit(jnp.ones(2), jnp.zeros(16), jnp.full(16, 0.1)).block_until_ready()
    run_jit(jnp.zeros(2), jnp.ones(16), jnp.full(16, 0.2)).block_until_ready()


def test_solver_objects_accepted():
    for solver in (Euler(), Heun(), Midpoint(), RK4()):
        ys = rollout(damped_oscillator, jnp.ones(2), jnp.zeros(3), 0.1, (1.0, 0.1), method=solver)
        assert ys.shape == (4, 2)


def test_diffrax_adapter_agrees_with_rk4_on_piecewise_constant_controls():
    u = jnp.array([0.0, 1.0, -1.0, 0.5])
    ts = jnp.linspace(0.0, 2.0, 5)
    ref = rollout(
        damped_oscillator, jnp.array([1.0, 0.0]), jnp.repeat(u, 200), 0.5 / 200, (2.0, 0.1)
    )[::200]
    ys = ode_solve(
        damped_oscillator, jnp.array([1.0, 0.0]), ts, (2.0, 0.1), controls=u, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(ys, ref, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dt": 0.0}, "dt"),
        ({"dt": -0.1}, "dt"),
        ({"dt": jnp.full(3, 0.1)}, "3 step sizes but the controls have 5"),
        ({"y0": jnp.array([jnp.nan, 0.0])}, "y0"),
        ({"method": "rk45"}, "method"),
        ({"controls": {"a": jnp.zeros(5), "b": jnp.zeros(4)}}, "leading"),
        ({"controls": None}, "number of steps is unknown"),
    ],
)
def test_bad_input_is_reported(kwargs, match):
    args = {"y0": jnp.ones(2), "controls": jnp.zeros(5), "dt": 0.1, "method": "rk4"}
    args.update(kwargs)
    controls = args["controls"]
    f = damped_oscillator
    if isinstance(controls, dict):

        def f(t, y, u, a):
            return damped_oscillator(t, y, u["a"], a)

    with pytest.raises(ValueError, match=match):
        rollout(f, args["y0"], controls, args["dt"], (1.0, 0.1), method=args["method"])


def test_integer_initial_state_is_promoted_to_float():
    """y0 = [10] (int), dy/dt = −y/2: the state decays as 10·e^(−t/2) (issue 21: an integer
    state never moved, its increments cast to int)."""
    ys = rollout(lambda t, y, u, a: -y / 2, jnp.array([10]), None, jnp.full(20, 0.1))
    assert jnp.issubdtype(ys.dtype, jnp.floating)
    np.testing.assert_allclose(ys[-1], 10 * np.exp(-1.0), rtol=1e-6)
    decay = lambda t, y, u, a: jax.tree.map(lambda v: -v / 2, y)
    ys = rollout(decay, {"n": jnp.array([10, 4])}, None, jnp.full(2, 0.5))
    assert np.all(np.asarray(ys["n"][-1]) < [10, 4])


def test_ode_solve_refuses_a_non_finite_initial_state():
    """A NaN y0 is named as such, not as "maximum number of solver steps was reached"."""
    with pytest.raises(ValueError, match=r"`y0` must be finite"):
        ode_solve(lambda t, y, u, a: -y, jnp.array([jnp.nan, 1.0]), jnp.linspace(0, 1, 3))
    with pytest.raises(ValueError, match=r"`ts` must be finite"):
        ode_solve(lambda t, y, u, a: -y, jnp.array([1.0]), jnp.array([0.0, jnp.inf]))
