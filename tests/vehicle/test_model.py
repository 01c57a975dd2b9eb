"""Single-track drift model: the equations of CoRL 2024 A.1 recomputed by hand, the low-speed
regularisation (finite values and gradients at V = 0, exact above it), path states, rollouts."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from physml.vehicle import (
    ExpTanh,
    Fiala,
    MagicFormula,
    MLPTire,
    NeuralExpTanh,
    NeuralODETire,
    SingleTrackModel,
    VehicleParams,
    rollout_model,
    soft_floor,
)


def _model(front=None, rear=None, cg_height_m=0.0, brake_split_front=0.0):
    params = VehicleParams(cg_height_m=cg_height_m, brake_split_front=brake_split_front)
    return SingleTrackModel(params, front or Fiala(), rear or Fiala(c_alpha=14.0))


def _by_hand(state, control, h=0.0, bf=0.0):
    """CoRL 2024 A.1 with the Fiala tyres, in plain floats (no regularisation: V cos β ≫ 0.5),
    with the load transfer h τ / (R L) of a centre of mass at height h [m] (Gillespie 1992,
    eq. 2-5, with m a_x = τ / R), and a brake torque τ < 0 split b_f to the front axle:
    F_xf = max(b_f τ / R, −μ F_zf) (Fiala's force bound μ F_z), (1 − b_f) τ on the rear wheel."""
    r, v, beta, omega = state
    delta, tau = control
    m, iz, iw, rw, a, b, g = 2048.0, 3675.0, 6.0, 0.368, 1.345, 1.522, 9.81
    shift = h * tau / (rw * (a + b))
    fzf, fzr = m * g * b / (a + b) - shift, m * g * a / (a + b) + shift
    vx = v * math.cos(beta)
    af = math.atan((v * math.sin(beta) + a * r) / vx) - delta
    ar = math.atan((v * math.sin(beta) - b * r) / vx)
    sr = (rw * omega - vx) / vx
    fyf = float(Fiala().lateral(af, fzf, jnp.zeros(4)))
    fyr, fxr = (float(x) for x in Fiala(c_alpha=14.0).combined(ar, sr, fzr, jnp.zeros(4)))
    t_front = bf * min(tau, 0.0)
    fxf = max(t_front / rw, -Fiala().mu * fzf)
    r_dot = (a * fyf * math.cos(delta) + a * fxf * math.sin(delta) - b * fyr) / iz
    v_dot = (
        -fyf * math.sin(delta - beta)
        + fxf * math.cos(delta - beta)
        + fyr * math.sin(beta)
        + fxr * math.cos(beta)
    ) / m
    b_dot = (
        fyf * math.cos(delta - beta)
        + fxf * math.sin(delta - beta)
        + fyr * math.cos(beta)
        - fxr * math.sin(beta)
    ) / (m * v) - r
    w_dot = (tau - t_front - fxr * rw) / iw
    return np.array([r_dot, v_dot, b_dot, w_dot])


@pytest.mark.parametrize(("h", "bf"), [(0.0, 0.0), (0.55, 0.0), (0.55, 0.66)])
@pytest.mark.parametrize(
    ("state", "control"),
    [
        ((0.3, 12.0, 0.05, 12.0 / 0.368), (0.05, 100.0)),
        ((0.9, 8.0, -0.5, 30.0), (0.3, 2300.0)),  # counter-steered drift at high torque
        ((-0.2, 20.0, 0.1, 50.0), (-0.1, -1500.0)),  # braking
        ((0.4, 15.0, -0.2, 30.0), (0.2, -9000.0)),  # braking beyond the front tyre's bound
    ],
)
def test_vector_field_matches_hand_computed(state, control, h, bf):
    model = _model(cg_height_m=h, brake_split_front=bf)
    got = model.vector_field(0.0, jnp.asarray(state), jnp.asarray(control))
    # The soft floor differs from V cos β by v_f e^{1 - V cos β / v_f} < 2e-6 relative here.
    np.testing.assert_allclose(got, _by_hand(state, control, h, bf), rtol=1e-5, atol=1e-8)


@given(
    tau=st.floats(-3000.0, 3000.0),
    bf=st.floats(0.0, 0.95),
    gain=st.floats(0.5, 2.0),
    offset=st.floats(-200.0, 200.0),
)
def test_axle_torques_split_only_a_brake_torque(tau, bf, gain, offset):
    """T_f + T_r = E(τ) always; T_f = b_f E ≤ 0 for E < 0 and 0 for a drive torque E ≥ 0."""
    p = VehicleParams(brake_split_front=bf, torque_gain=gain, torque_offset_nm=offset)
    front, rear = (float(x) for x in p.axle_torques(tau))
    wheel = gain * tau + offset
    assert front + rear == pytest.approx(wheel, rel=1e-12, abs=1e-9)
    assert front == pytest.approx(bf * min(wheel, 0.0), rel=1e-12, abs=1e-12)
    assert front <= 0.0


@given(
    h=st.floats(0.0, 1.0),
    tau=st.floats(-3000.0, 3000.0),
    gain=st.floats(0.5, 2.0),
    offset=st.floats(-200.0, 200.0),
)
def test_load_transfer_keeps_the_weight_and_moves_h_times_the_drive_force_over_l(
    h, tau, gain, offset
):
    """F_zf + F_zr = m g for every input; F_zr − m g a / L = h E(τ) / (R L) (Gillespie 1992,
    eq. 2-5), which is zero at h = 0 and grows with the drive torque."""
    p = VehicleParams(cg_height_m=h, torque_gain=gain, torque_offset_nm=offset)
    front, rear = (float(x) for x in p.normal_loads(tau))
    weight = 2048.0 * 9.81
    assert front + rear == pytest.approx(weight, rel=1e-12)
    expected = h * (gain * tau + offset) / (0.368 * (1.345 + 1.522))
    assert rear - weight * 1.345 / 2.867 == pytest.approx(expected, rel=1e-9, abs=1e-8)
    static_rear = p.normal_loads()[1]
    assert float(static_rear) == pytest.approx(weight * 1.345 / 2.867, rel=1e-12)


def test_traction_limit_is_the_fixed_point_of_the_transferred_load():
    """With F_max = μ F_z (Fiala), τ = μ R (m g a / L + h τ / (R L)) / k has the closed form
    τ = μ R m g a / (L k (1 − μ h / L)); h = 0 gives the static-load limit."""
    from physml.vehicle._control.problem import traction_torque_limit_nm

    mu, r, m, g, a, length = 1.1, 0.368, 2048.0, 9.81, 1.345, 2.867
    for h in (0.0, 0.6):
        model = SingleTrackModel(VehicleParams(cg_height_m=h), Fiala(mu=mu), Fiala(mu=mu))
        expected = mu * r * m * g * a / (length * (1 - mu * h / length))
        assert traction_torque_limit_nm(model) == pytest.approx(expected, rel=1e-7)
    # With a drive map E(τ) = k τ + τ_0 the wheel torque E takes that value: τ = (E − τ_0) / k.
    params = VehicleParams(cg_height_m=0.6, torque_gain=1.3, torque_offset_nm=120.0)
    model = SingleTrackModel(params, Fiala(mu=mu), Fiala(mu=mu))
    wheel = mu * r * m * g * a / (length * (1 - mu * 0.6 / length))
    assert traction_torque_limit_nm(model) == pytest.approx((wheel - 120.0) / 1.3, rel=1e-7)


def test_traction_limit_without_a_force_bound_or_a_fixed_point():
    """A rear tyre without a finite force bound (the MLP) imposes no limit (inf); a transfer
    μ h / L ≥ 1 has no fixed point (the load grows faster than the torque): refused."""
    from physml.vehicle._control.problem import traction_torque_limit_nm

    model = SingleTrackModel(VehicleParams(), Fiala(), MLPTire(key=jax.random.key(0)))
    assert traction_torque_limit_nm(model) == math.inf
    tall = SingleTrackModel(VehicleParams(cg_height_m=3.0), Fiala(mu=1.1), Fiala(mu=1.1))
    with pytest.raises(ValueError, match="did not converge"):
        traction_torque_limit_nm(tall)


def test_soft_floor_is_exact_above_threshold_and_positive_below():
    x = jnp.linspace(-5.0, 30.0, 701)
    y = soft_floor(x, 0.5)
    assert np.all(y >= 0.5) and np.all(y >= x)
    above = x > 10.0
    np.testing.assert_allclose(y[above], x[above], rtol=0, atol=0.5 * math.exp(1 - 20) * 1.01)
    np.testing.assert_allclose(y[x < -3.0], 0.5, rtol=0, atol=0.5 * math.exp(-5.0))


@given(
    v=st.floats(0.0, 1.0),
    beta=st.floats(-3.1, 3.1),
    r=st.floats(-2.0, 2.0),
    omega=st.floats(0.0, 20.0),
    delta=st.floats(-0.6, 0.6),
    tau=st.floats(-200, 400),
)
def test_low_speed_values_and_gradients_finite(v, beta, r, omega, delta, tau):
    model = _model()
    y, u = jnp.array([r, v, beta, omega]), jnp.array([delta, tau])
    assert np.all(np.isfinite(model.vector_field(0.0, y, u)))
    jac = jax.jacfwd(lambda y: model.vector_field(0.0, y, u))(y)
    assert np.all(np.isfinite(jac))
    g = eqx.filter_grad(lambda m: jnp.sum(m.vector_field(0.0, y, u) ** 2))(model)
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(g))


def test_wheel_accelerates_with_torque_when_no_slip():
    model = _model()
    v = 10.0
    y = jnp.array([0.0, v, 0.0, v / 0.368])  # rolling straight, σ = 0: no tyre force
    dy = model.vector_field(0.0, y, jnp.array([0.0, 120.0]))
    np.testing.assert_allclose(dy, [0.0, 0.0, 0.0, 120.0 / 6.0], atol=1e-9)


def test_path_states_on_straight_and_circle():
    model = _model()
    y = jnp.array([0.0, 10.0, 0.0, 10.0 / 0.368, 0.5, 0.1, 3.0])
    dy = model.path_vector_field(0.0, y, jnp.zeros(2))
    np.testing.assert_allclose(dy[4], 10.0 * math.sin(0.1), rtol=1e-12)
    np.testing.assert_allclose(dy[6], 10.0 * math.cos(0.1), rtol=1e-12)
    kappa = 0.05
    dyc = model.path_vector_field(0.0, y, jnp.zeros(2), lambda s: kappa + 0 * s)
    s_dot = 10.0 * math.cos(0.1) / (1 - 0.5 * kappa)
    np.testing.assert_allclose(dyc[6], s_dot, rtol=1e-12)
    np.testing.assert_allclose(dyc[5], dyc[2] + y[0] - kappa * s_dot, rtol=1e-12)


@pytest.mark.parametrize("tire", ["fiala", "magic", "exptanh", "neural_exptanh", "node", "mlp"])
def test_every_tire_swaps_into_a_batched_rollout(tire):
    key = jax.random.key(0)
    make = {
        "fiala": Fiala,
        "magic": MagicFormula,
        "exptanh": ExpTanh,
        "neural_exptanh": lambda: NeuralExpTanh(key=key),
        "node": lambda: NeuralODETire(key=key),
        "mlp": lambda: MLPTire(key=key),
    }[tire]
    model = SingleTrackModel(VehicleParams(), make(), make())
    y0 = jnp.array([[0.2, 10.0, 0.05, 28.0], [0.8, 9.0, -0.4, 40.0]])
    controls = jnp.tile(jnp.array([0.1, 150.0]), (2, 20, 1))
    ys = rollout_model(model, y0, controls, 0.01)
    assert ys.shape == (2, 21, 4)
    np.testing.assert_array_equal(ys[:, 0], y0)
    assert np.all(np.isfinite(ys))
    # Gradients through rollouts of the learned tyres: tests/vehicle/test_identify.py.


def test_rollout_validates_shapes():
    with pytest.raises(ValueError, match="y0 of shape"):
        rollout_model(_model(), jnp.zeros(3), jnp.zeros((5, 2)), 0.01)


def test_params_validation():
    with pytest.raises(ValueError, match="mass_kg"):
        VehicleParams(mass_kg=-1.0)
    with pytest.raises(ValueError, match=r"cg_height_m.*≥ 0"):
        VehicleParams(cg_height_m=-0.1)
    with pytest.raises(ValueError, match="brake_split_front"):
        VehicleParams(brake_split_front=1.0)
    fzf, fzr = VehicleParams().normal_loads()
    assert float(fzf + fzr) == pytest.approx(2048.0 * 9.81, rel=1e-12)
