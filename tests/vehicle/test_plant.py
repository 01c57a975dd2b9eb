"""The plant port against the package it was ported from, and its actuators.

Tolerance of the port test: every component of ẋ is a sum of terms of the size of the
component's physical scale (forces over mass for V̇, R_w F_x / I_w for ω̇, ...), each computed
to a few ulps in float64, so the port and the package may differ by ~1e-15 of that scale after
cancellation. We require |port − package| ≤ 1e-9 · max(|package|, scale): 1e-9 relative where a
component is not a cancellation, 1e-9 of its scale where it is.
"""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

vehiclemodels = pytest.importorskip("vehiclemodels")
from vehiclemodels.parameters_vehicle2 import parameters_vehicle2  # noqa: E402
from vehiclemodels.utils import tire_model  # noqa: E402
from vehiclemodels.vehicle_dynamics_std import vehicle_dynamics_std  # noqa: E402

from physml.kernels import rollout  # noqa: E402
from physml.vehicle._plant.actuators import Actuators  # noqa: E402
from physml.vehicle._plant.dynamics import (  # noqa: E402
    DriftPlant,
    constrained_inputs,
    std_vector_field,
    tire_forces,
)
from physml.vehicle._plant.magic_formula import (  # noqa: E402
    lateral_force,
    lateral_force_combined,
    longitudinal_force,
    longitudinal_force_combined,
    plant_tire_forces,
)
from physml.vehicle._plant.params import PlantParameters, bmw_320i, drift_bmw_320i  # noqa: E402

P_PKG = parameters_vehicle2()
P = bmw_320i()
_RHS = jax.jit(lambda x, u: std_vector_field(x, u, P))
_F_SCALE = P.tire.p_dx1 * P.mass_kg * 9.81  # peak tyre force of the whole car [N]


def _scale(x):
    """Physical scale of each ẋ component at state x (see the module docstring)."""
    v, r, wf, wr = abs(x[3]), abs(x[5]), abs(x[7]), abs(x[8])
    wheel = P.wheel_radius_m * _F_SCALE / P.wheel_inertia_kgm2
    return np.array(
        [
            v,
            v,
            1.0,
            _F_SCALE / P.mass_kg,
            r + v,
            _F_SCALE * P.cg_to_rear_m / P.yaw_inertia_kgm2,
            r + _F_SCALE / (P.mass_kg * max(v, 0.1)),
            wheel + (v / P.wheel_radius_m + wf) / 0.02,
            wheel + (v / P.wheel_radius_m + wr) / 0.02,
        ]
    )


def _compare(x, u):
    ref = np.array(vehicle_dynamics_std(list(x), list(u), P_PKG))  # the package mutates x
    got = np.asarray(_RHS(jnp.asarray(x), jnp.asarray(u)))
    tol = 1e-9 * np.maximum(np.abs(ref), _scale(x))
    assert np.all(np.abs(got - ref) <= tol), (x, u, got, ref, np.abs(got - ref) / tol)


def test_parameters_are_the_packages_vehicle_2():
    pkg = {
        "mass_kg": P_PKG.m,
        "yaw_inertia_kgm2": P_PKG.I_z,
        "wheel_inertia_kgm2": P_PKG.I_y_w,
        "cg_to_front_m": P_PKG.a,
        "cg_to_rear_m": P_PKG.b,
        "cg_height_m": P_PKG.h_s,
        "wheel_radius_m": P_PKG.R_w,
        "brake_split_front": P_PKG.T_sb,
        "drive_split_front": P_PKG.T_se,
        "steer_min_rad": P_PKG.steering.min,
        "steer_max_rad": P_PKG.steering.max,
        "steer_rate_min_radps": P_PKG.steering.v_min,
        "steer_rate_max_radps": P_PKG.steering.v_max,
        "accel_max_mps2": P_PKG.longitudinal.a_max,
        "accel_switch_speed_mps": P_PKG.longitudinal.v_switch,
        "speed_min_mps": P_PKG.longitudinal.v_min,
        "speed_max_mps": P_PKG.longitudinal.v_max,
    }
    for name, value in pkg.items():
        assert getattr(P, name) == value, name
    for f in dataclasses.fields(P.tire):
        assert getattr(P.tire, f.name) == getattr(P_PKG.tire, f.name), f.name


finite = dict(allow_nan=False, allow_infinity=False)


@given(
    speed=st.floats(2.0, 40.0, **finite),
    beta_deg=st.floats(-40.0, 40.0, **finite),
    yaw_rate=st.floats(-2.0, 2.0, **finite),
    steer=st.floats(-1.1, 1.1, **finite),
    slip_front=st.floats(-0.2, 0.2, **finite),
    slip_rear=st.floats(-0.5, 3.0, **finite),  # up to 300 % wheel spin
    steer_rate=st.floats(-1.0, 1.0, **finite),
    accel=st.floats(-15.0, 15.0, **finite),
    yaw=st.floats(-math.pi, math.pi, **finite),
)
def test_port_matches_package_grip_and_drift(
    speed, beta_deg, yaw_rate, steer, slip_front, slip_rear, steer_rate, accel, yaw
):
    beta = math.radians(beta_deg)
    omega_f = speed * (1 + slip_front) / P.wheel_radius_m
    omega_r = speed * math.cos(beta) * (1 + slip_rear) / P.wheel_radius_m
    _compare([1.0, -2.0, steer, speed, yaw, yaw_rate, beta, omega_f, omega_r], [steer_rate, accel])


@given(
    speed=st.floats(0.0, 1.0, **finite),
    beta=st.floats(-0.5, 0.5, **finite),
    yaw_rate=st.floats(-0.5, 0.5, **finite),
    steer=st.floats(-1.1, 1.1, **finite),
    omega_f=st.floats(-3.0, 3.0, **finite),
    omega_r=st.floats(-3.0, 3.0, **finite),
    steer_rate=st.floats(-1.0, 1.0, **finite),
    accel=st.floats(-15.0, 15.0, **finite),
)
def test_port_matches_package_at_low_speed(
    speed, beta, yaw_rate, steer, omega_f, omega_r, steer_rate, accel
):
    # The kinematic blend, the V = 0.1 m/s switch and negative wheel speeds: the port takes the
    # same branches as the package (jnp.where on the same conditions), so it agrees there too.
    _compare([0.0, 0.0, steer, speed, 0.3, yaw_rate, beta, omega_f, omega_r], [steer_rate, accel])


@given(
    slip=st.floats(-1.0, 1.0, **finite),
    alpha=st.floats(-1.2, 1.2, **finite),
    load=st.floats(500.0, 9000.0, **finite),
)
def test_tyre_matches_package(slip, alpha, load):
    c, pc = P.tire, P_PKG.tire
    fx0 = tire_model.formula_longitudinal(slip, 0, load, pc)
    fy0, mu = tire_model.formula_lateral(alpha, 0, load, pc)
    np.testing.assert_allclose(longitudinal_force(slip, load, c), fx0, rtol=1e-12, atol=1e-9)
    got_fy0, got_mu = lateral_force(alpha, load, c)
    np.testing.assert_allclose(got_fy0, fy0, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got_mu, mu, rtol=0)
    np.testing.assert_allclose(
        longitudinal_force_combined(slip, alpha, fx0, c),
        tire_model.formula_longitudinal_comb(slip, alpha, fx0, pc),
        rtol=1e-12,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        lateral_force_combined(slip, alpha, mu, load, fy0, c),
        tire_model.formula_lateral_comb(slip, alpha, 0, mu, load, fy0, pc),
        rtol=1e-12,
        atol=1e-9,
    )


@given(
    speed=st.floats(2.0, 25.0, **finite),
    beta=st.floats(-1.0, 1.0, **finite),
    yaw_rate=st.floats(-1.5, 1.5, **finite),
    steer=st.floats(-0.5, 0.5, **finite),
    spin=st.floats(0.5, 2.0, **finite),
)
def test_plant_tire_forces_are_the_forces_the_plant_applies(speed, beta, yaw_rate, steer, spin):
    omega = spin * speed / float(P.wheel_radius_m)
    x = jnp.asarray([0.0, 0.0, steer, speed, 0.3, yaw_rate, beta, omega, omega])
    f = tire_forces(x, jnp.zeros(2), P)
    for axle in ("f", "r"):
        fx, fy = plant_tire_forces(
            f[f"alpha_{axle}"], f[f"brake_slip_{axle}"], f[f"F_z{axle}"], P.tire
        )
        np.testing.assert_allclose(fx, f[f"F_x{axle}"], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(fy, f[f"F_y{axle}"], rtol=1e-12, atol=1e-9)


def test_plant_jit_vmap_grad_are_finite_down_to_standstill():
    plant = DriftPlant()
    speeds = jnp.asarray([0.0, 0.05, 0.1, 0.2, 1.0, 10.0, 25.0])
    # A drifting state (β = -0.3 rad, 50 % rear wheel spin) scaled down to standstill.
    xs = jnp.stack(
        [jnp.asarray([0, 0, 0.1, v, 0, 0.2, -0.3, v / 0.344, 1.5 * v / 0.344]) for v in speeds]
    )
    u = jnp.asarray([0.2, 800.0])
    f = jax.jit(jax.vmap(lambda x: plant.vector_field(0.0, x, u)))(xs)
    assert jnp.all(jnp.isfinite(f))
    grad = jax.jit(
        jax.vmap(
            jax.jacfwd(lambda x, u: plant.vector_field(0.0, x, u), argnums=(0, 1)),
            in_axes=(0, None),
        )
    )(xs, u)
    assert all(jnp.all(jnp.isfinite(g)) for g in grad)
    # Reverse mode through a rollout, as system identification and the MPC use it. Euler steps:
    # XLA:CPU takes ~38 s to compile the reverse pass of 4 RK4 stages of this plant, ~12 s for 1.
    loss = lambda u: jnp.sum(
        rollout(
            plant.vector_field, xs[-2], jnp.tile(u, (50, 1)), 1e-3, method="euler", check=False
        )[-1]
        ** 2
    )
    assert jnp.all(jnp.isfinite(jax.jit(jax.grad(loss))(u)))


def test_vector_field_traces_once():
    plant = DriftPlant()
    f = jax.jit(eqx.debug.assert_max_traces(plant.vector_field, max_traces=1))
    x = plant.straight_state(10.0)
    f(0.0, x, jnp.asarray([0.1, 100.0]))
    f(0.0, x + 0.1, jnp.asarray([-0.1, 500.0]))


_ROLLOUT = eqx.filter_jit(lambda plant, x0, u: rollout(plant.vector_field, x0, u, 1e-3))


@given(
    commands=st.lists(
        st.tuples(st.floats(-2.0, 2.0, **finite), st.floats(-5e3, 5e3, **finite)),
        min_size=5,
        max_size=5,
    ),
)
def test_actuator_limits_hold_along_a_rollout(commands):
    plant = DriftPlant()
    act = plant.actuators
    u = jnp.repeat(jnp.asarray(commands), 40, axis=0)  # 5 commands held 40 ms each
    xs = _ROLLOUT(plant, plant.straight_state(10.0), u)
    steer = xs[:, 2]
    assert jnp.all(jnp.abs(steer) <= act.steer_max_rad + 1e-12)
    rate = jax.vmap(plant.package_inputs)(xs[:-1], u)[:, 0]
    assert jnp.all(jnp.abs(rate) <= act.steer_rate_max_radps + 1e-12)
    applied = jax.vmap(plant.applied_inputs)(xs[:-1], u)
    assert jnp.all(applied[:, 1] <= act.torque_max_nm + 1e-9)
    assert jnp.all(applied[:, 1] >= act.torque_min_nm - 1e-9)
    # The package's power limit: a_x ≤ a_max v_switch / V above v_switch.
    p = plant.params
    power_cap = p.mass_kg * p.wheel_radius_m * p.accel_max_mps2 * p.accel_switch_speed_mps
    assert jnp.all(applied[:, 1] * xs[:-1, 3] <= power_cap * (1 + 1e-12))


def test_torque_maps_to_the_packages_acceleration():
    plant = DriftPlant(params=bmw_320i(), actuators=Actuators(steer_rate_max_radps=0.4))
    x = plant.straight_state(5.0)
    for tau in (-1500.0, 0.0, 700.0, 2400.0):
        a = plant.package_inputs(x, jnp.asarray([0.0, tau]))[1]
        # vehicle_dynamics_std turns a_x back into wheel torque as T = m R_w a_x.
        np.testing.assert_allclose(a * P.mass_kg * P.wheel_radius_m, tau, rtol=1e-13)
    u_cr = constrained_inputs(plant.straight_state(20.0), jnp.asarray([0.0, 11.0]), P)
    np.testing.assert_allclose(u_cr[1], P.accel_max_mps2 * P.accel_switch_speed_mps / 20.0)


def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="steer_rate_max_radps"):
        DriftPlant(params=bmw_320i())  # default actuators need a drift rack (2 rad/s > 0.4)
    with pytest.raises(ValueError, match="mass_kg"):
        PlantParameters(mass_kg=-1.0)
    with pytest.raises(ValueError, match="steer_rate_max_radps"):
        drift_bmw_320i(steer_rate_max_radps=0.0)
    with pytest.raises(ValueError, match="torque_min_nm"):
        Actuators(torque_min_nm=10.0, torque_max_nm=0.0)
    with pytest.raises(ValueError, match="speed_mps"):
        DriftPlant().straight_state(-1.0)
