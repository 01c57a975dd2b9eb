"""The ROS2 Rosenbrock W-method: order 2 (also with an approximate or partial Jacobian) and
damping of very stiff modes (L-stability)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from physml.kernels import ROS2, ROS2_GAMMA, rollout, ros2_step

# y' = A y: a coupled stiff pair (eigenvalues −1 and −1000) driving a mild third component
# (eigenvalue −2), as the wheel mode drives the path states in the drift MPC.
_V = np.array([[1.0, 0.3], [0.2, 1.0]])
A = np.zeros((3, 3))
A[:2, :2] = _V @ np.diag([-1.0, -1000.0]) @ np.linalg.inv(_V)
A[2] = [1.0, 0.5, -2.0]
Y0 = np.array([1.0, -0.5, 0.7])  # with a stiff transient
Y0_SMOOTH = np.array([_V[0, 0], _V[1, 0], 0.7])  # on the slow manifold of the stiff pair
T = 1.0


def _integrate(h, y0=Y0, **kwargs):
    f = lambda y: jnp.asarray(A) @ y
    step = jax.jit(lambda y: ros2_step(f, y, h, **kwargs))
    y = jnp.asarray(y0)
    for _ in range(round(T / h)):
        y = step(y)
    return np.asarray(y)


def _order(y0=Y0, **kwargs):
    exact = scipy.linalg.expm(A * T) @ y0
    hs = np.array([0.04, 0.02, 0.01, 0.005])
    errs = np.array([np.max(np.abs(_integrate(h, y0, **kwargs) - exact)) for h in hs])
    return np.polyfit(np.log(hs), np.log(errs), 1)[0], errs


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # the exact Jacobian
        {"jacobian": A * 1.1},  # a W-method: a wrong matrix keeps order 2
        # The stiff pair implicit, the third component explicit (zero rows and columns of J):
        # order 2 from a start on the slow manifold. (From a stiff transient, the explicit
        # component integrates the transient explicitly and the order drops to 1.)
        {"stiff": (0, 1), "y0": Y0_SMOOTH},
        {"stiff": (1, 0), "jacobian": A[np.ix_([1, 0], [1, 0])], "y0": Y0_SMOOTH},
    ],
)
def test_order_two_on_a_stiff_linear_problem(kwargs):
    # hλ = −40 … −5 on the stiff mode: outside RK4's stability region (hλ > −2.79).
    slope, errs = _order(**kwargs)
    assert 1.9 < slope < 2.1, (slope, errs)
    assert errs[-1] < 5e-5, errs


def test_exact_jacobian_default_matches_the_given_one():
    f = lambda y: jnp.asarray(A) @ y + 0.1 * jnp.sin(y)
    y = jnp.asarray(Y0)
    given = jax.jacfwd(f)(y)
    np.testing.assert_array_equal(ros2_step(f, y, 0.1), ros2_step(f, y, 0.1, jacobian=given))
    block = given[:2, :2]
    np.testing.assert_array_equal(
        ros2_step(f, y, 0.1, stiff=(0, 1)), ros2_step(f, y, 0.1, stiff=(0, 1), jacobian=block)
    )


@pytest.mark.parametrize("z", [-1.0, -10.0, -1e2, -1e4, -1e6, -1e9])
def test_very_stiff_modes_are_damped(z):
    # The stability function R(z) = (1 + (1 − 2γ) z) / (1 − γ z)² (γ² − 2γ + 1/2 = 0):
    # |R| < 1 on the negative axis and R(z) → 0 as z → −∞ (L-stability).
    y1 = float(ros2_step(lambda y: z * y, jnp.ones(1), 1.0)[0])
    expected = (1 + (1 - 2 * ROS2_GAMMA) * z) / (1 - ROS2_GAMMA * z) ** 2
    assert y1 == pytest.approx(expected, rel=1e-12)
    assert abs(y1) < 1.0
    assert abs(y1) <= 1.0 / abs(z), (z, y1)


def test_rollout_step_interface_and_bad_input():
    # The `ExplicitRK.step` signature: f(t, y, u, args) with u held over the step.
    f = lambda t, y, u, args: jnp.asarray(A) @ y + u
    y = jnp.asarray(Y0)
    u = jnp.asarray([0.1, 0.0, -0.1])
    got = ROS2(stiff=(0, 1)).step(f, 0.0, y, u, 0.05, None)
    np.testing.assert_array_equal(
        got, ros2_step(lambda z: f(0.0, z, u, None), y, 0.05, stiff=(0, 1))
    )
    # Four steps of 0.05 s (hλ = −50 on the stiff mode) from a stiff transient: ROS2 (all
    # components implicit) within 2e-3 of the exact y(t) = e^{At} (y0 + A⁻¹u) − A⁻¹u; RK4
    # unstable.
    shift = np.linalg.solve(A, np.asarray(u))
    exact = scipy.linalg.expm(A * 0.2) @ (Y0 + shift) - shift
    ros = y
    for _ in range(4):
        ros = ROS2().step(f, 0.0, ros, u, 0.05, None)
    rk4 = rollout(f, y, jnp.broadcast_to(u, (4, 3)), 0.05, check=False)[-1]
    assert float(jnp.max(jnp.abs(ros - exact))) < 2e-3
    assert float(jnp.max(jnp.abs(rk4 - exact))) > 1e3
    with pytest.raises(ValueError, match="jacobian"):
        ros2_step(lambda z: z, y, 0.1, jacobian=jnp.eye(2))
    with pytest.raises(ValueError, match="stiff"):
        ros2_step(lambda z: z, y, 0.1, stiff=(0, 0))


def test_rollout_accepts_ros2_with_order_two_on_a_stiff_problem():
    """`rollout(..., method=ROS2(...))` (a stiff field, hλ down to −40): the same states as
    `ros2_step` applied by hand, and order 2 from the slope of log error vs log h."""
    f = lambda t, y, u, args: jnp.asarray(A) @ y + u
    u = jnp.asarray([0.1, 0.0, -0.1])
    y = jnp.asarray(Y0)
    ys = rollout(f, y, jnp.broadcast_to(u, (5, 3)), 0.02, method=ROS2(stiff=(0, 1)))
    by_hand = [y]
    for _ in range(5):
        by_hand.append(ros2_step(lambda z: f(0.0, z, u, None), by_hand[-1], 0.02, stiff=(0, 1)))
    np.testing.assert_allclose(ys, jnp.stack(by_hand), rtol=1e-13, atol=1e-15)

    shift = np.linalg.solve(A, np.asarray(u))
    exact = scipy.linalg.expm(A * T) @ (Y0 + shift) - shift
    hs = np.array([0.04, 0.02, 0.01, 0.005])
    errs = []
    for h in hs:
        n = round(T / h)
        end = rollout(f, y, jnp.broadcast_to(u, (n, 3)), h, method=ROS2())[-1]
        errs.append(np.max(np.abs(np.asarray(end) - exact)))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 1.9 < slope < 2.1, (slope, errs)
    with pytest.raises(ValueError, match="one 1D array"):
        rollout(f, {"y": y}, jnp.broadcast_to(u, (2, 3)), 0.1, method=ROS2())
