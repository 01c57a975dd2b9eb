"""Reference paths and drift equilibria of the single-track model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from physml.vehicle import (
    Donut,
    Fiala,
    FigureEight,
    NoDriftEquilibriumError,
    SingleTrackModel,
    TabulatedPath,
    VehicleParams,
    drift_reference,
    equilibrium_guess,
    solve_equilibrium,
)


@pytest.fixture(scope="module")
def fiala_model():
    return SingleTrackModel(VehicleParams(), Fiala(), Fiala())


@given(st.floats(3.0, 30.0), st.floats(0.1, 0.7), st.sampled_from([1, -1]))
def test_donut_track_is_a_closed_circle(radius, beta, direction):
    path = Donut(radius, beta, direction)
    track = np.asarray(path.ground_track(2001))
    np.testing.assert_allclose(track[-1, :2], track[0, :2], atol=1e-4 * radius)
    centre = np.array([0.0, direction * radius])  # left turn: centre on the left (+y)
    np.testing.assert_allclose(np.linalg.norm(track[:, :2] - centre, axis=1), radius, rtol=1e-5)
    assert np.all(np.sign(path.sideslip(jnp.linspace(0, 50, 7))) == -direction)


@given(st.floats(5.0, 20.0), st.floats(0.2, 0.7))
def test_figure_eight_closes_and_reverses_sideslip(radius, beta):
    path = FigureEight(radius, beta, transition_m=2.0)
    track = np.asarray(path.ground_track(4001))
    np.testing.assert_allclose(track[-1, :2], track[0, :2], atol=1e-4 * radius)
    # The half-way point is the crossing: back at the origin, heading unchanged.
    np.testing.assert_allclose(track[2000, :2], [0.0, 0.0], atol=1e-4 * radius)
    quarter = path.length_m / 4
    k = path.curvature(jnp.array([quarter, 3 * quarter]))
    b = path.sideslip(jnp.array([quarter, 3 * quarter]))
    np.testing.assert_allclose(k, [1 / radius, -1 / radius])
    np.testing.assert_allclose(b, [-beta, beta], rtol=1e-6)
    # Smooth reversal: zero sideslip exactly at the crossing, bounded everywhere.
    assert abs(float(path.sideslip(0.0))) < 1e-12
    s = jnp.linspace(0, 2 * path.length_m, 997)
    assert float(jnp.max(jnp.abs(path.sideslip(s)))) <= beta + 1e-12


def test_tabulated_path_interpolates_and_wraps():
    path = TabulatedPath([0.0, 10.0, 20.0], [0.1, 0.2, 0.1], [-0.3, -0.4, -0.3], closed=True)
    np.testing.assert_allclose(path.curvature(5.0), 0.15)
    np.testing.assert_allclose(path.sideslip(25.0), path.sideslip(5.0))
    with pytest.raises(ValueError, match="increase strictly"):
        TabulatedPath([0.0, 5.0, 5.0], [0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="one length"):
        TabulatedPath([0.0, 5.0], [0, 0, 0], [0, 0, 0])


def test_paths_know_whether_they_are_closed_and_their_name():
    assert Donut(11.0, 0.5).closed and Donut(11.0, 0.5).name == "donut"
    assert FigureEight(11.0, 0.5).closed and FigureEight(11.0, 0.5).name == "figure8"
    table = TabulatedPath([0.0, 10.0], [0.1, 0.1], [-0.3, -0.3])
    assert not table.closed and table.name == "TabulatedPath"
    named = TabulatedPath([0.0, 10.0], [0.1, 0.1], [-0.3, -0.3], closed=True, name="oval")
    assert named.closed and named.name == "oval"
    with pytest.raises(ValueError, match="`name`"):
        TabulatedPath([0.0, 10.0], [0.1, 0.1], [-0.3, -0.3], name="")


def test_path_bad_input():
    with pytest.raises(ValueError, match="radius_m"):
        Donut(-1.0, 0.3)
    with pytest.raises(ValueError, match="sideslip"):
        Donut(8.0, 2.0)
    with pytest.raises(ValueError, match="transition_m"):
        FigureEight(2.0, 0.3, transition_m=10.0)


@pytest.mark.parametrize("speed", [8.0, 12.0])
@pytest.mark.parametrize("beta_deg", [-20.0, -35.0])
def test_drift_equilibrium_is_a_steady_state_and_unstable(fiala_model, speed, beta_deg):
    # The model's equilibrium itself, whatever the car's torque: at 8 m/s and 35° these textbook
    # tyres need about 2520 N·m, just over the default `Actuators()`' 2500 N·m.
    eq = solve_equilibrium(
        fiala_model, np.radians(beta_deg), speed_mps=speed, torque_limits_nm=None
    )
    f = fiala_model.prepare().vector_field(0.0, eq.state, eq.control)
    scale = np.array([1.0, 1.0, 1.0, 100.0])
    assert np.max(np.abs(np.asarray(f) / scale)) < 1e-9
    r, v, beta, omega = np.asarray(eq.state)
    delta, tau = np.asarray(eq.control)
    assert v == speed and beta == pytest.approx(np.radians(beta_deg))
    assert r > 0  # β < 0: a left-hand drift
    alpha_f = np.arctan((v * np.sin(beta) + 1.345 * r) / (v * np.cos(beta))) - delta
    assert alpha_f < 0  # the front tyre pushes into the turn (F_y = −C α > 0)
    assert delta < 0  # counter-steer: wheels point right in a left-hand drift
    assert omega * 0.368 > v * np.cos(beta) and tau > 0  # driven wheel spins
    assert eq.unstable  # a drift equilibrium has a growing mode (Voser et al. 2010)


def test_grip_cornering_equilibrium_is_stable(fiala_model):
    # Small sideslip, moderate lateral acceleration: the tyres are in their linear range.
    eq = solve_equilibrium(fiala_model, np.radians(-0.5), speed_mps=10.0)
    assert not eq.unstable
    assert np.all(np.real(np.asarray(eq.eigenvalues)) < 0)


def test_mirror_symmetry(fiala_model):
    left = solve_equilibrium(fiala_model, np.radians(-30.0), speed_mps=10.0)
    right = solve_equilibrium(fiala_model, np.radians(30.0), speed_mps=10.0)
    np.testing.assert_allclose(right.state * jnp.array([-1, 1, -1, 1]), left.state, rtol=1e-7)
    np.testing.assert_allclose(right.control * jnp.array([-1, 1]), left.control, rtol=1e-7)


def test_curvature_and_speed_forms_agree(fiala_model):
    on_circle = solve_equilibrium(fiala_model, np.radians(-30.0), curvature_per_m=1 / 10.0)
    assert on_circle.curvature_per_m == pytest.approx(0.1, rel=1e-9)
    v = float(on_circle.state[1])
    at_speed = solve_equilibrium(
        fiala_model, np.radians(-30.0), speed_mps=v, guess=equilibrium_guess(on_circle)
    )
    np.testing.assert_allclose(at_speed.state, on_circle.state, rtol=1e-6)
    np.testing.assert_allclose(at_speed.control, on_circle.control, rtol=1e-6)


def test_gradients_of_equilibrium_inputs_are_finite(fiala_model):
    """The equilibrium's feed-forward depends smoothly on the tyre parameters (used when a
    reference is rebuilt for an identified model)."""
    eq = solve_equilibrium(fiala_model, np.radians(-30.0), speed_mps=10.0)
    jac = jax.jacfwd(lambda m: m.prepare().vector_field(0.0, eq.state, eq.control))(fiala_model)
    leaves = jax.tree_util.tree_leaves(jac)
    assert leaves and all(np.all(np.isfinite(np.asarray(x))) for x in leaves)


def test_bad_input_is_reported(fiala_model):
    with pytest.raises(ValueError, match="exactly one"):
        solve_equilibrium(fiala_model, -0.5)
    with pytest.raises(ValueError, match="opposite sign"):
        solve_equilibrium(fiala_model, 0.5, curvature_per_m=0.1)
    with pytest.raises(ValueError, match="speed_mps"):
        solve_equilibrium(fiala_model, -0.5, speed_mps=1.0)
    # Where the model cannot drift: a named error (a ValueError subclass), not a bad argument.
    # A 1 m radius cannot be drifted at 30° above the model's valid speed range.
    with pytest.raises(NoDriftEquilibriumError, match=r"curvature is too tight|No drift eq"):
        solve_equilibrium(fiala_model, np.radians(-30.0), curvature_per_m=1.0)
    # An 85° drift exists in the model but needs 1.4 rad of counter-steer: beyond the lock.
    with pytest.raises(NoDriftEquilibriumError, match="beyond the limit"):
        solve_equilibrium(fiala_model, np.radians(-85.0), speed_mps=25.0, steer_limit_rad=0.6)
    with pytest.raises(NoDriftEquilibriumError, match="outside the limits"):
        solve_equilibrium(
            fiala_model, np.radians(-30.0), speed_mps=10.0, torque_limits_nm=(-50.0, 350.0)
        )


def _offset_pose(path, s, e, dphi):
    """World position e to the left of the path point at s, moving at course θ(s) + Δφ."""
    x, y, theta = (float(v) for v in path.pose(s))
    return x - e * np.sin(theta), y + e * np.cos(theta), theta + dphi


@given(
    st.floats(0.0, 200.0),
    st.floats(-1.5, 1.5),
    st.floats(-0.5, 0.5),
    st.sampled_from(["donut_left", "donut_right", "figure_eight"]),
)
def test_projection_round_trip(s, e, dphi, kind):
    path = {
        "donut_left": Donut(11.0, 0.5, 1),
        "donut_right": Donut(11.0, 0.5, -1),
        "figure_eight": FigureEight(11.0, 0.5),
    }[kind]
    x, y, course = _offset_pose(path, s, e, dphi)
    # A guess within a few metres of the true arc length, as a closed loop has.
    got = np.asarray(path.project(x, y, course, s + 2.0))
    np.testing.assert_allclose(got, [e, dphi, s], atol=1e-9 * max(1.0, s))


def test_tabulated_projection_round_trip():
    # A closed circle of radius 10 m as a table: projection by local search + tangent offset.
    n = 201
    length = 2 * np.pi * 10.0
    path = TabulatedPath(np.linspace(0, length, n), np.full(n, 0.1), np.full(n, -0.4), closed=True)
    circle = Donut(10.0, 0.4)
    for s, e, dphi in [(3.0, 0.3, 0.1), (40.0, -0.5, -0.2), (61.0, 0.1, 0.0)]:
        x, y, course = _offset_pose(circle, s, e, dphi)
        got = np.asarray(path.project(x, y, course, s - 1.0))
        # First order in the distance to the nearest table point (≤ 0.4 m apart here).
        np.testing.assert_allclose(got, [e, dphi, s], atol=2e-2)
        np.testing.assert_allclose(path.pose(s), circle.pose(s), atol=1e-3)


def test_drift_reference_donut_and_mirrored_figure_eight(fiala_model):
    donut = drift_reference(fiala_model, Donut(11.0, np.radians(30.0)))
    # κ and β_ref constant along s: two grid points, the closed flag from the path.
    assert donut.s_m.shape == (2,) and donut.closed
    y, u = donut.at(123.0)
    eq = solve_equilibrium(fiala_model, np.radians(-30.0), curvature_per_m=1 / 11.0)
    np.testing.assert_allclose(y, eq.state, rtol=1e-8)
    np.testing.assert_allclose(u, eq.control, rtol=1e-8)
    path = FigureEight(11.0, np.radians(30.0))
    ref = drift_reference(fiala_model, path, ds_m=1.0)
    half = path.length_m / 2
    # Deep in each circle, away from the blend, where the table is constant along s.
    s = np.array([17.0, half / 2, 50.0])
    y_left, u_left = (np.stack(a) for a in zip(*[ref.at(si) for si in s], strict=True))
    y_right, u_right = (np.stack(a) for a in zip(*[ref.at(si + half) for si in s], strict=True))
    # The right circle is the mirror image of the left: r, β, δ change sign.
    np.testing.assert_allclose(y_right, y_left * [-1, 1, -1, 1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(u_right, u_left * [-1, 1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(y_left[:, 2], path.sideslip(s), atol=1e-9)


def test_drift_reference_reports_where_the_path_cannot_be_held(fiala_model):
    with pytest.raises(NoDriftEquilibriumError, match=r"s = 0\.00 m .*cannot hold this drift"):
        drift_reference(fiala_model, Donut(11.0, np.radians(30.0)), torque_limits_nm=(0.0, 100.0))
    straight = TabulatedPath([0.0, 10.0, 20.0], [0.1, 0.0, 0.1], [-0.4, -0.4, -0.4])
    with pytest.raises(NoDriftEquilibriumError, match=r"straight at s = 10\.00 m"):
        drift_reference(fiala_model, straight, ds_m=10.0)


def test_drift_reference_bridges_short_stretches_without_an_equilibrium(fiala_model):
    """With τ ≥ 1500 N·m the figure-eight's reversal points (τ ≈ 930 N·m at the crossing,
    1376 N·m at β = −7°) have no admissible equilibrium: refused by default and beyond
    `bridge_m`; within it they are interpolated along s (across the lap's end at s = 0) and
    marked, and every solved point is the unbridged equilibrium."""
    path = FigureEight(11.0, np.radians(30.0))
    limits = (1500.0, 2500.0)
    with pytest.raises(ValueError, match=r"s = 68\.62 m .*outside the limits"):
        drift_reference(fiala_model, path, ds_m=1.0, torque_limits_nm=limits)
    # Two unsolved points (68.6, 69.6 m) between solved ones at 67.62 and 70.61 m: 2.98 m; the
    # crossing (s = 0 ≡ L) alone: 2 ds = 1.99 m. The message quotes the failure inside.
    stretch = (
        r"stretch of 2\.98 m of the path \(s = 67\.62 to 70\.61 m between solved points\), "
        r"longer than `bridge_m` = 2\.5 m\. The car cannot hold the reference at s = 68\.62 m"
    )
    with pytest.raises(NoDriftEquilibriumError, match=stretch):
        drift_reference(fiala_model, path, ds_m=1.0, torque_limits_nm=limits, bridge_m=2.5)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="`bridge_m`"):
            drift_reference(fiala_model, path, bridge_m=bad)
    free = drift_reference(fiala_model, path, ds_m=1.0)
    ref = drift_reference(fiala_model, path, ds_m=1.0, torque_limits_nm=limits, bridge_m=3.0)
    s, bridged = np.asarray(ref.s_m), np.asarray(ref.bridged)
    np.testing.assert_allclose(s[bridged], [0.0, 68.6178, 69.6123, path.length_m], atol=1e-4)
    assert not np.asarray(free.bridged).any() and free.bridged_fraction == 0.0
    assert ref.bridged_fraction == pytest.approx(3 / (s.size - 1), rel=1e-9)
    solved = ~bridged
    np.testing.assert_array_equal(ref.state[solved], free.state[solved])
    np.testing.assert_array_equal(ref.control[solved], free.control[solved])
    table = np.concatenate([ref.state, ref.control], axis=1)
    lo, hi = np.flatnonzero(bridged)[1] - 1, np.flatnonzero(bridged)[2] + 1  # 67.6 m, 70.6 m
    w = (s[lo + 1 : hi] - s[lo]) / (s[hi] - s[lo])
    np.testing.assert_allclose(
        table[lo + 1 : hi], (1 - w)[:, None] * table[lo] + w[:, None] * table[hi], rtol=1e-12
    )
    # s = 0 ≡ s = L: between the last point before the lap's end and the first after it
    n = s.size
    np.testing.assert_allclose(table[0], table[-1], rtol=0, atol=0)
    w0 = (path.length_m - s[n - 2]) / (path.length_m - s[n - 2] + s[1])
    # (the two sides mirror each other, so r, β and δ cancel there to rounding)
    expected = (1 - w0) * table[n - 2] + w0 * table[1]
    np.testing.assert_allclose(table[0], expected, rtol=1e-12, atol=1e-12)


def test_open_path_bridges_its_end_by_holding_the_last_equilibrium(fiala_model):
    """An open path whose sideslip fades to −3° at its end (no equilibrium with τ ≥ 1500 N·m
    there): within `bridge_m` the end holds the last solved point; beyond it, the message gives
    the stretch up to the path's end (not modulo a lap)."""
    k = 1 / 11.0
    path = TabulatedPath([0.0, 10.0, 20.0], [k, k, k], [-0.52, -0.52, -0.05])
    limits = (1500.0, 2500.0)
    ref = drift_reference(fiala_model, path, ds_m=1.0, torque_limits_nm=limits, bridge_m=10.0)
    bridged = np.asarray(ref.bridged)
    last = np.flatnonzero(~bridged)[-1]
    assert 10 < last < 19 and bridged[last + 1 :].all() and not bridged[: last + 1].any()
    np.testing.assert_array_equal(
        ref.state[last + 1 :], np.broadcast_to(ref.state[last], (20 - last, 4))
    )
    np.testing.assert_array_equal(
        ref.control[last + 1 :], np.broadcast_to(ref.control[last], (20 - last, 2))
    )
    span = 20.0 - float(ref.s_m[last])
    with pytest.raises(ValueError, match=rf"{span:.2f} m .*to 20\.00 m between solved points"):
        drift_reference(fiala_model, path, ds_m=1.0, torque_limits_nm=limits, bridge_m=1.0)
    everywhere = (3000.0, 4000.0)
    with pytest.raises(ValueError, match="No point of the path has a drift equilibrium"):
        drift_reference(fiala_model, path, ds_m=1.0, torque_limits_nm=everywhere, bridge_m=5.0)


def test_the_cars_own_limits_apply_by_default(fiala_model):
    # Without limits the model has an 86° drift at 10 m/s with 1.44 rad of counter-steer and
    # a 135 m/s drift on a 2-km circle; neither is an equilibrium the car can hold.
    unlimited = dict(steer_limit_rad=None, torque_limits_nm=None, max_speed_mps=None)
    deep = dict(speed_mps=10.0, sideslip_rad=np.radians(-86.0))
    assert abs(float(solve_equilibrium(fiala_model, **deep, **unlimited).control[0])) > 1.0
    with pytest.raises(NoDriftEquilibriumError, match=r"beyond the limit ±0\.6 rad"):
        solve_equilibrium(fiala_model, **deep)
    fast = dict(curvature_per_m=1 / 2000.0, sideslip_rad=np.radians(-30.0))
    assert float(solve_equilibrium(fiala_model, **fast, **unlimited).state[1]) > 100.0
    with pytest.raises(NoDriftEquilibriumError, match=r"above the car's top speed 50\.8 m/s"):
        solve_equilibrium(fiala_model, **fast)
    with pytest.raises(ValueError, match=r"`speed_mps` must be <= `max_speed_mps` = 50\.8"):
        solve_equilibrium(fiala_model, np.radians(-30.0), speed_mps=200.0)
    # The donut of the tests is inside the limits: same equilibrium with or without them.
    donut = dict(curvature_per_m=1 / 11.0, sideslip_rad=np.radians(-30.0))
    a = solve_equilibrium(fiala_model, **donut)
    b = solve_equilibrium(fiala_model, **donut, **unlimited)
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(a.control, b.control)


@pytest.mark.parametrize(
    "limits, name",
    [
        (dict(steer_limit_rad=-0.6), "steer_limit_rad"),
        (dict(steer_limit_rad=0.0), "steer_limit_rad"),
        (dict(steer_limit_rad=float("nan")), "steer_limit_rad"),
        (dict(steer_limit_rad=float("inf")), "steer_limit_rad"),
        (dict(torque_limits_nm=(500.0, -500.0)), "torque_limits_nm"),
        (dict(torque_limits_nm=(-500.0, float("inf"))), "torque_limits_nm"),
        (dict(torque_limits_nm=(1.0,)), "torque_limits_nm"),
        (dict(max_speed_mps=-1.0), "max_speed_mps"),
        (dict(max_speed_mps=float("nan")), "max_speed_mps"),
    ],
)
def test_invalid_limits_are_refused(fiala_model, limits, name, without_runtime_typecheck):
    with pytest.raises(ValueError, match=f"`{name}` must be None or"):
        solve_equilibrium(fiala_model, np.radians(-30.0), speed_mps=10.0, **limits)
    if name != "max_speed_mps":  # the reference passes its input limits through
        with pytest.raises(ValueError, match=f"`{name}` must be None or"):
            drift_reference(fiala_model, Donut(11.0, np.radians(30.0)), **limits)


@given(
    st.lists(st.floats(1.0, 40.0), min_size=2, max_size=25),
    st.floats(0.5, 10.0),
    st.booleans(),
    st.lists(st.booleans(), min_size=25, max_size=25),
)
def test_unreachable_speeds_leave_a_profile_within_the_acceleration_limit(
    speeds, accel, closed, holes
):
    """`accel_limit_mps2`'s filter: between any two solved points it keeps, |V_j² − V_i²| ≤
    2 a |s_j − s_i| (on a closed path also the way round the lap's end); unsolved points are
    neither dropped nor limiting; a profile that already meets this loses no point; the
    fastest point of an unreachable spike is always dropped."""
    from physml.vehicle._control.reference import _unreachable

    v = np.asarray(speeds)
    if closed:
        v = np.append(v, v[0])  # s = L is s = 0
    s = np.arange(v.size, dtype=float)  # 1 m apart
    unsolved = np.asarray(holes[: v.size])
    unsolved[0] = False  # at least one solved point
    if closed:
        unsolved[-1] = unsolved[0]  # the same point
    drop = _unreachable(s, v, unsolved, closed, accel)
    assert not (drop & unsolved).any()
    keep = np.flatnonzero(~drop & ~unsolved)
    assert keep.size >= 1
    lap = s[-1]
    for i in keep:
        for j in keep:
            gap = abs(s[j] - s[i])
            if closed:
                gap = min(gap, lap - gap)
            assert v[j] ** 2 - v[i] ** 2 <= 2 * accel * gap * (1 + 1e-9) + 1e-9
    smooth = np.sqrt(np.maximum(v[0] ** 2 + 2 * accel * 0.9 * np.sin(s), 1.0))
    assert not _unreachable(s, smooth, unsolved, False, accel).any()
    if closed:  # periodic in s: also feasible round the lap's end
        amp = 2 * accel * 0.9 * s[-1] / (2 * np.pi)  # |d(V²)/ds| ≤ 0.9 · 2a
        ring = np.sqrt(v[0] ** 2 + amp + amp * np.sin(2 * np.pi * s / s[-1]))
        assert not _unreachable(s, ring, unsolved, True, accel).any()
    spike = np.full(7, 10.0)
    spike[3] = 10.0 + 10 * accel
    assert _unreachable(np.arange(7.0), spike, np.zeros(7, bool), closed, accel)[3]


def test_drift_reference_bridges_speeds_the_car_cannot_reach(fiala_model):
    """An S-bend's inflection: where κ passes through 0 with |β| still large, the equilibria's
    speeds grow without bound. With `accel_limit_mps2` those points are bridged (the speed
    profile then changes at no more than the limit), or refused with `bridge_m` = 0 (the
    message names the limit); the other points are the same equilibria as without it."""
    s = np.linspace(0.0, 80.0, 161)
    kappa = 0.09 * np.tanh((40.3 - s) / 4.0)  # (κ = 0 off the 0.5-m grid)
    path = TabulatedPath(s, kappa, -0.45 * np.sign(kappa))
    free = drift_reference(fiala_model, path, ds_m=0.5, bridge_m=20.0)
    v_free = np.asarray(free.state[:, 1])
    assert v_free.max() > 2 * np.median(v_free)  # the spike this guards against
    accel = 3.0
    ref = drift_reference(fiala_model, path, ds_m=0.5, bridge_m=20.0, accel_limit_mps2=accel)
    v, ss = np.asarray(ref.state[:, 1]), np.asarray(ref.s_m)
    newly = np.asarray(ref.bridged) & ~np.asarray(free.bridged)
    assert newly.any() and np.all(np.abs(ss[newly] - 40.0) < 20.0)
    keep = ~np.asarray(ref.bridged)
    np.testing.assert_array_equal(ref.state[keep], free.state[keep])
    assert np.all(np.abs(np.diff(v**2)) <= 2 * accel * np.diff(ss) * (1 + 1e-9))
    with pytest.raises(NoDriftEquilibriumError, match=r"accel_limit_mps2"):
        drift_reference(fiala_model, path, ds_m=0.5, accel_limit_mps2=accel)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="`accel_limit_mps2`"):
            drift_reference(fiala_model, path, accel_limit_mps2=bad)
