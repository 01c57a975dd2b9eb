"""Tyre family: hand-computed values (Fiala, magic formula), and properties over random
parameters and inputs (finite, bounded by the stated bound, one extremum per side, curvature sign
on each side of the inflection, saturation, finite gradients)."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from physml.vehicle import (
    TIRES,
    AbstractTireModel,
    ExpTanh,
    Fiala,
    MagicFormula,
    MLPTire,
    NeuralExpTanh,
    NeuralODETire,
    SingleTrackModel,
    VehicleParams,
    make_tire,
)
from physml.vehicle._tires.base import SLIDE_MIN, softplus
from physml.vehicle._tires.fiala import FIT_GRID, brush

FZ = 4000.0
ZEROS = jnp.zeros(4)
SLIPS = np.linspace(-1.2, 1.2, 961)  # slip angles [rad]; tan covers ±2.57


def _fiala_by_hand(alpha, c_alpha, f_max):
    z = math.tan(alpha)
    if abs(z) >= 3 * f_max / c_alpha:
        return -f_max * math.copysign(1.0, alpha)
    return (
        -c_alpha * z + c_alpha**2 / (3 * f_max) * abs(z) * z - c_alpha**3 / (27 * f_max**2) * z**3
    )


@pytest.mark.parametrize("alpha", [0.0, 0.01, -0.04, 0.08, 0.3, -0.6])
def test_fiala_matches_hand_computed(alpha):
    tire = Fiala(mu=0.9, c_alpha=10.0, c_sigma=15.0)
    expected = _fiala_by_hand(alpha, 10.0 * FZ, 0.9 * FZ)
    assert float(tire.lateral(alpha, FZ, ZEROS)) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(("alpha", "sigma"), [(0.05, 0.05), (-0.1, 0.02), (0.02, -0.1), (0.2, 0.5)])
def test_fiala_friction_circle_matches_hand_computed(alpha, sigma):
    tire = Fiala(mu=0.9, c_alpha=10.0, c_sigma=15.0, coupling="friction_circle")
    mu_fz, c_s = 0.9 * FZ, 15.0 * FZ
    if abs(sigma) >= 3 * mu_fz / c_s:
        fx = mu_fz * math.copysign(1.0, sigma)
    else:
        fx = (
            c_s * sigma
            - c_s**2 / (3 * mu_fz) * abs(sigma) * sigma
            + c_s**3 / (27 * mu_fz**2) * sigma**3
        )
    fx = max(min(fx, 0.999 * mu_fz), -0.999 * mu_fz)
    fy = _fiala_by_hand(alpha, 10.0 * FZ, math.sqrt(mu_fz**2 - fx**2))
    got_fy, got_fx = tire.combined(alpha, sigma, FZ, ZEROS)
    assert float(got_fx) == pytest.approx(fx, rel=1e-12)
    assert float(got_fy) == pytest.approx(fy, rel=1e-12)
    assert math.hypot(float(got_fx), float(got_fy)) <= mu_fz * (1 + 1e-12)


@pytest.mark.parametrize(
    ("alpha", "sigma"), [(0.05, 0.05), (-0.1, 0.02), (0.02, -0.1), (0.2, 0.5), (0.5, 1.5)]
)
def test_fiala_slip_vector_matches_hand_computed(alpha, sigma):
    tire = Fiala(mu=0.9, c_alpha=10.0, c_sigma=15.0)
    mu_fz = 0.9 * FZ
    phi_x, phi_y = 15.0 * FZ * sigma, 10.0 * FZ * math.tan(alpha)
    phi = math.hypot(phi_x, phi_y)
    if phi >= 3 * mu_fz:
        mag = mu_fz
    else:
        mag = phi - phi**2 / (3 * mu_fz) + phi**3 / (27 * mu_fz**2)
    got_fy, got_fx = tire.combined(alpha, sigma, FZ, ZEROS)
    # sqrt(φ² + ε²) per unit load, ε = 1e-4: relative error ~ (ε/φ)² / 2 < 1e-5 here
    assert float(got_fx) == pytest.approx(mag * phi_x / phi, rel=1e-5)
    assert float(got_fy) == pytest.approx(-mag * phi_y / phi, rel=1e-5)
    assert math.hypot(float(got_fx), float(got_fy)) <= mu_fz * (1 + 1e-12)


@given(alpha=st.floats(-0.6, 0.6), sigma=st.floats(-0.5, 3.0))
def test_fiala_slip_vector_reduces_to_pure_slip_and_keeps_lateral_force_under_spin(alpha, sigma):
    tire = Fiala(mu=1.0, c_alpha=12.0, c_sigma=15.0)
    fy, _ = tire.combined(alpha, 0.0, FZ, ZEROS)
    assert float(fy) == pytest.approx(float(tire.lateral(alpha, FZ, ZEROS)), rel=1e-6, abs=1e-3)
    _, fx = tire.combined(0.0, sigma, FZ, ZEROS)
    fx_pure = float(brush(jnp.asarray(-sigma), jnp.asarray(15.0 * FZ), jnp.asarray(FZ)))
    assert float(fx) == pytest.approx(fx_pure, rel=1e-6, abs=1e-3)
    # Under wheel spin a slip angle still gives a lateral force in proportion to the lateral
    # share of the weighted slip (the friction circle coupling gives ~0 there).
    fy, fx = tire.combined(0.3, 1.0, FZ, ZEROS)
    share = 12.0 * math.tan(0.3) / math.hypot(12.0 * math.tan(0.3), 15.0)
    assert float(fy) == pytest.approx(-FZ * share, rel=1e-6)


def test_fiala_rejects_unknown_coupling():
    with pytest.raises(ValueError, match="coupling"):
        Fiala(coupling="ellipse")


def _mf_by_hand(x, b, c, d, e):
    return d * math.sin(c * math.atan(b * x - e * (b * x - math.atan(b * x))))


@pytest.mark.parametrize(("alpha", "sigma"), [(0.03, 0.0), (-0.12, 0.04), (0.3, -0.2), (0.0, 0.1)])
def test_magic_formula_matches_hand_computed(alpha, sigma):
    tire = MagicFormula(
        mu=1.1,
        b_y=10.0,
        c_y=1.3,
        e_y=-0.6,
        b_x=12.0,
        c_x=1.65,
        e_x=0.1,
        b_ykappa=5.0,
        c_ykappa=1.1,
        b_xalpha=7.0,
        c_xalpha=1.05,
        b_ykappa_alpha=8.0,
        b_xalpha_sigma=12.0,
    )
    d = 1.1 * FZ
    fy0 = -_mf_by_hand(alpha, 10.0, 1.3, d, -0.6)
    fx0 = _mf_by_hand(sigma, 12.0, 1.65, d, 0.1)
    b_yk = 5.0 * math.cos(math.atan(8.0 * alpha))  # Pacejka (2012) Sec. 4.3.2, r_By1, r_By2
    b_xa = 7.0 * math.cos(math.atan(12.0 * sigma))  # r_Bx1, r_Bx2
    g_yk = math.cos(1.1 * math.atan(b_yk * sigma))
    g_xa = math.cos(1.05 * math.atan(b_xa * alpha))
    assert float(tire.lateral(alpha, FZ, ZEROS)) == pytest.approx(fy0, rel=1e-12, abs=1e-9)
    fy, fx = tire.combined(alpha, sigma, FZ, ZEROS)
    assert float(fy) == pytest.approx(g_yk * fy0, rel=1e-12, abs=1e-9)
    assert float(fx) == pytest.approx(g_xa * fx0, rel=1e-12, abs=1e-9)


@given(alpha=st.floats(0.05, 0.5))
def test_magic_formula_keeps_lateral_force_under_spin(alpha):
    """Pure slip at σ = 0, and under wheel spin (σ = 1) the lateral force still grows with the
    slip angle and keeps a share that grows with it (r_By2; with r_By2 = 0 the share is the
    same ≈ 0.16 at every α, test below)."""
    tire = MagicFormula()
    fy, fx = tire.combined(alpha, 0.0, FZ, ZEROS)
    assert float(fy) == pytest.approx(float(tire.lateral(alpha, FZ, ZEROS)), rel=1e-12)
    assert float(fx) == pytest.approx(0.0, abs=1e-9)

    def share(t, a):
        return float(t.combined(a, 1.0, FZ, ZEROS)[0] / t.lateral(a, FZ, ZEROS))

    assert share(tire, alpha + 0.05) > share(tire, alpha) > 0
    assert share(tire, 0.5) > 0.5
    flat = MagicFormula(b_ykappa_alpha=0.0)
    assert share(flat, alpha) == pytest.approx(math.cos(math.atan(6.0)), rel=1e-9)


def _extrema(values):
    """Number of sign changes of the discrete slope (flat steps below 1e-9 relative ignored)."""
    d = np.diff(values)
    d = d[np.abs(d) > 1e-9 * np.max(np.abs(values)) + 1e-12]
    return int(np.sum(np.sign(d[1:]) != np.sign(d[:-1])))


@eqx.filter_jit
def _curves_jit(tire: AbstractTireModel, features):
    prepared = tire.prepare()
    lat = jax.vmap(lambda a: prepared.lateral(a, FZ, features))(jnp.asarray(SLIPS))
    comb = jax.vmap(lambda a, s: prepared.combined(a, s, FZ, features))(
        jnp.asarray(SLIPS), jnp.asarray(SLIPS[::-1] * 0.5)
    )
    return lat, comb[0], comb[1]


def _curves(tire: AbstractTireModel, features=ZEROS):
    return tuple(np.asarray(x) for x in _curves_jit(tire, jnp.asarray(features)))


def _check_finite_and_bounded(tire, features=ZEROS):
    lat, fy, fx = _curves(tire, features)
    bound = float(tire.force_bound(FZ))
    for f in (lat, fy, fx):
        assert np.all(np.isfinite(f))
        assert np.max(np.abs(f)) <= bound * (1 + 1e-12)
    assert np.all(np.hypot(fy, fx) <= bound * (1 + 1e-12))
    return lat


def _total_force(t, a, s, features):
    fy, fx = t.combined(a, s, FZ, features)
    return t.lateral(a, FZ, features) + fy + fx


@eqx.filter_jit
def _gradients(tire, a, s, features):
    return (
        eqx.filter_grad(_total_force)(tire, a, s, features),
        jax.grad(_total_force, argnums=(1, 2))(tire, a, s, features),
    )


def _check_gradients(tire, features=ZEROS):
    for a, s in [(0.0, 0.0), (0.07, -0.03), (-0.9, 2.0)]:
        g_params, g_inputs = _gradients(tire, jnp.asarray(a), jnp.asarray(s), jnp.asarray(features))
        assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(g_params))
        assert np.all(np.isfinite(np.asarray(g_inputs)))


exptanh_raw = st.tuples(
    st.floats(-0.3, 0.3),
    st.floats(0.2, 1.5),
    st.floats(-3.0, 1.0),
    st.floats(-1.0, 4.0),
    st.floats(-0.1, 0.1),
)


@given(raw=exptanh_raw)
def test_exptanh_properties(raw):
    tire = ExpTanh(raw=jnp.asarray(raw))
    c = np.asarray(tire.coefficients)
    assert c[2] >= 0 and c[3] >= 0
    lat = _check_finite_and_bounded(tire)
    # One extremum at most on each side of c5 (module docstring), in z = tan α.
    z = np.tan(SLIPS)
    assert _extrema(lat[z < c[4]]) <= 1 and _extrema(lat[z > c[4]]) <= 1
    # Saturation with a sliding floor: F_y -> -F_z λ |c2| as tan α -> inf (λ >= SLIDE_MIN),
    # within F_z |c2| ((1 - λ) exp(-c3 u) + 1 - tanh(c4 u)), u = tan α - c5; odd about c5.
    lam = SLIDE_MIN + (1 - SLIDE_MIN) / (1 + math.exp(-c[0]))
    for z in (10.0, 1e4):
        u = z - c[4]
        far = float(tire.lateral(math.atan(z), FZ, ZEROS))
        gap = FZ * abs(c[1]) * ((1 - lam) * math.exp(-c[2] * u) + 1 - math.tanh(c[3] * u))
        assert abs(far + FZ * lam * abs(c[1])) <= gap + 1e-9 * FZ
        assert -far >= FZ * SLIDE_MIN * abs(c[1]) * math.tanh(c[3] * u) - 1e-9 * FZ
        mirror = float(tire.lateral(math.atan(2 * c[4] - z), FZ, ZEROS))
        assert abs(far + mirror) <= 1e-9 * FZ
    _check_gradients(tire)


@given(
    seed=st.integers(0, 2**16),
    feats=st.tuples(
        st.floats(-2.0, 2.0), st.floats(0.0, 30.0), st.floats(-1.0, 1.0), st.floats(0.0, 120.0)
    ),
    scale=st.floats(0.5, 5.0),
)
def test_neural_exptanh_properties(seed, feats, scale):
    tire = NeuralExpTanh(key=jax.random.key(seed))
    # Perturb the (zero-initialised) last layer so that the MLP really moves the coefficients.
    last = tire.net.layers[-1]
    w = scale * jax.random.normal(jax.random.key(seed + 1), last.weight.shape)
    tire = eqx.tree_at(lambda t: t.net.layers[-1].weight, tire, w)
    features = jnp.asarray(feats)
    c = np.asarray(tire.coefficients(features))
    assert c[2] >= 0 and c[3] >= 0
    lat = _check_finite_and_bounded(tire, features)
    z = np.tan(SLIPS)
    assert _extrema(lat[z < c[4]]) <= 1 and _extrema(lat[z > c[4]]) <= 1
    _check_gradients(tire, features)


def _spin_checks(tire, features):
    """The rear force opposes wheel spin (the free wheel is stable): at α = 0,
    F_x σ > 0 for σ ≠ 0, dF_x/dσ > 0 at σ = 0, and under spin F_x stays above the sliding level
    F_z λ_min |c2| tanh(c4 √c0 |σ|) (`_tire_exptanh` module docstring)."""

    base = tire.base if isinstance(tire, NeuralExpTanh) else tire
    c = np.asarray(
        tire.coefficients(features) if isinstance(tire, NeuralExpTanh) else tire.coefficients
    )
    c0 = float(softplus(base.raw_c0))
    sigmas = jnp.asarray(
        np.concatenate([-np.geomspace(1e-3, 5.0, 40), np.geomspace(1e-3, 5.0, 40)])
    )
    fx = np.asarray(jax.vmap(lambda s: tire.combined(0.0, s, FZ, features)[1])(sigmas))
    assert np.all(fx * np.asarray(sigmas) > 0)
    slope = float(jax.grad(lambda s: tire.combined(0.0, s, FZ, features)[1])(0.0))
    assert slope > 0
    floor = SLIDE_MIN * abs(c[1]) * np.tanh(c[3] * np.sqrt(c0) * np.abs(np.asarray(sigmas)))
    # away from σ = 0, where the smoothed direction d σ / sqrt(d²σ² + ε²) is within 1e-4 of ±1
    far = float(softplus(base.raw_d)) * np.abs(np.asarray(sigmas)) >= 1e-2
    assert np.all(np.abs(fx[far]) >= FZ * floor[far] * (1 - 1e-4))
    # With a slip angle too: the longitudinal force never pushes the wheel further into spin.
    for a in (-0.4, 0.1):
        fx_a = np.asarray(jax.vmap(lambda s, a=a: tire.combined(a, s, FZ, features)[1])(sigmas))
        assert np.all(fx_a * np.asarray(sigmas) >= 0)


@given(
    raw=st.tuples(
        st.floats(-5.0, 5.0),
        st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 1e-2),
        st.floats(-3.0, 3.0),
        st.floats(-3.0, 4.0),
        st.floats(-0.5, 0.5),
    ),
    raw_c0=st.floats(-3.0, 3.0),
    raw_d=st.floats(-3.0, 3.0),
)
def test_exptanh_rear_force_opposes_wheel_spin_for_every_parameter(raw, raw_c0, raw_d):
    """Issue 5 (neural-ExpTanh's rear wheel ran away open loop): the combined-slip magnitude is
    a magnitude for every parameter value, including c1 < 0 and c5 > 0 where the plain ExpTanh
    curve E(ρ) is negative (a force driving the spin)."""
    _spin_checks(ExpTanh(raw=jnp.asarray(raw), raw_c0=raw_c0, raw_d=raw_d), ZEROS)


@given(
    seed=st.integers(0, 2**16),
    feats=st.tuples(
        st.floats(-2.0, 2.0), st.floats(0.0, 30.0), st.floats(-1.0, 1.0), st.floats(0.0, 300.0)
    ),
    scale=st.floats(0.5, 20.0),
)
def test_neural_exptanh_wheel_mode_is_stable_at_every_state(seed, feats, scale):
    """Whatever the network outputs (large random last layer) and at any state, including a
    spinning wheel: the rear force opposes spin, so with no torque ω̇_r has the sign of −σ_r and
    ∂ω̇_r/∂ω_r < 0 at σ_r = 0 in the single-track model."""

    tire = NeuralExpTanh(key=jax.random.key(seed))
    last = tire.net.layers[-1]
    w = scale * jax.random.normal(jax.random.key(seed + 1), last.weight.shape)
    tire = eqx.tree_at(lambda t: t.net.layers[-1].weight, tire, w)
    _spin_checks(tire, jnp.asarray(feats))
    model = SingleTrackModel(VehicleParams(), ExpTanh(), tire)
    r, v, beta, _ = feats
    v = max(v, 3.0)
    radius = float(model.params.wheel_radius_m)
    omega0 = v * math.cos(beta) / radius
    u = jnp.array([0.0, 0.0])
    for ratio in (-0.5, 0.05, 1.0, 3.0):  # σ_r = ratio
        y = jnp.array([r, v, beta, omega0 * (1 + ratio)])
        assert float(model.vector_field(0.0, y, u)[3]) * ratio < 0
    d_omega = jax.grad(lambda w: model.vector_field(0.0, jnp.array([r, v, beta, w]), u)[3])
    assert float(d_omega(omega0)) < 0


def _random_node(seed, slope, inflection, log_curv, log_relax, offset, center):
    tire = NeuralODETire(key=jax.random.key(seed), slope=slope, inflection=inflection)
    net = jax.tree_util.tree_map(lambda x: 3.0 * x if eqx.is_inexact_array(x) else x, tire.net)
    return eqx.tree_at(
        lambda t: (t.net, t.log_curvature, t.log_relaxation, t.offset, t.center),
        tire,
        (
            net,
            jnp.asarray(log_curv),
            jnp.asarray(log_relax),
            jnp.asarray(offset),
            jnp.asarray(center),
        ),
    )


node_params = dict(
    seed=st.integers(0, 2**16),
    slope=st.floats(2.0, 40.0),
    inflection=st.floats(0.03, 0.6),
    log_curv=st.floats(-3.0, 4.0),
    log_relax=st.floats(-1.0, 7.0),
    offset=st.floats(-0.05, 0.05),
    center=st.floats(-0.05, 0.05),
)


@given(**node_params)
def test_neural_ode_tire_structure(seed, slope, inflection, log_curv, log_relax, offset, center):
    tire = _random_node(seed, slope, inflection, log_curv, log_relax, offset, center)
    curve = tire.solve()
    p_a, p_b = np.asarray(curve.p_a), np.asarray(curve.p_b)
    # Rising segment: concave (G' strictly decreasing), from slope C > 0 to G'(u_i) < 0.
    assert p_a[0] == pytest.approx(slope, rel=1e-9)
    assert np.all(np.diff(p_a) < 0) and p_a[-1] < 0
    # After the inflection: convex (G' increasing) and G' < 0 throughout: no second extremum.
    # (G' = G'(u_i) e^{-q} with q strictly increasing; e^{-q} may underflow to 0 for fast decay.)
    assert np.all(np.diff(np.asarray(curve.q_b)) > 0)
    assert np.all(p_b <= 0) and np.all(np.diff(p_b) >= 0)
    # Saturation: the closed-form tail converges; G(1e3) and G(1e4) agree.
    g_far = np.asarray(curve(jnp.array([1e3, 1e4])))
    assert abs(g_far[0] - g_far[1]) <= 1e-9 * max(1.0, abs(g_far[1]))
    # Sliding floor: beyond u_i the curve stays at or above SLIDE_MIN G(u_i), and still falls.
    g_i = float(curve.g_a[-1])
    u = float(curve.u_i) + np.concatenate([np.linspace(0.0, 3.0, 301), [10.0, 1e3, 1e4]])
    g = np.asarray(curve(jnp.asarray(u)))
    if g_i > 0:
        assert np.all(g >= SLIDE_MIN * g_i - 1e-9 * g_i)
    assert np.all(np.diff(g) <= 1e-12 * max(1.0, abs(g_i)))
    # Evaluated curve: bounded by the stated bound, one extremum on each side of the centre.
    lat = _check_finite_and_bounded(tire)
    z = np.tan(SLIPS)
    assert _extrema(lat[z > center]) == 1 and _extrema(lat[z < center]) == 1
    _check_gradients(tire)


def test_neural_ode_table_matches_adaptive_solve():
    """The fixed-step table agrees with an independent tight adaptive solve (kernels.ode_solve)."""
    from physml.kernels import ode_solve

    tire = _random_node(3, 12.0, 0.2, 1.0, 1.0, 0.0, 0.0)
    curve = tire.solve()
    c, u_i = softplus(tire.raw_slope), softplus(tire.raw_inflection)
    s, k = jnp.exp(tire.log_curvature), jnp.exp(tire.log_relaxation)

    def field(u, y, _u, _a):
        h = tire._h(u)
        rise = -(c / u_i + s * jnp.exp(h[0]))
        return jnp.stack([y[1], jnp.where(u < u_i, rise, -k * jnp.exp(h[1]) * y[1])])

    us = jnp.concatenate([jnp.linspace(0.0, u_i, 25), u_i + jnp.linspace(0.0, 1.5, 25)[1:]])
    ref = ode_solve(
        field, jnp.array([0.0, float(c)]), us, rtol=1e-11, atol=1e-12, max_steps=100_000
    )
    got = np.concatenate([curve.g_a, curve.g_b[1:]])
    np.testing.assert_allclose(got, ref[:, 0], rtol=0, atol=1e-6 * float(c * u_i))


@given(seed=st.integers(0, 2**16))
def test_mlp_tire_finite_with_gradients(seed):
    tire = MLPTire(key=jax.random.key(seed))
    lat, fy, fx = _curves(tire)
    assert np.all(np.isfinite(lat)) and np.all(np.isfinite(fy)) and np.all(np.isfinite(fx))
    assert float(tire.force_bound(FZ)) == math.inf
    _check_gradients(tire)


@pytest.mark.parametrize(
    "make",
    [
        Fiala,
        MagicFormula,
        ExpTanh,
        lambda: NeuralExpTanh(key=jax.random.key(0)),
        lambda: NeuralODETire(key=jax.random.key(0)),
    ],
)
def test_default_tires_are_physical(make):
    """Defaults oppose the slip angle with a stiffness of 5..30 F_z per rad and drive forward."""
    tire = make()
    stiffness = -float(jax.grad(lambda a: tire.lateral(a, FZ, ZEROS))(0.0)) / FZ
    assert 5.0 < stiffness < 30.0
    fy, fx = tire.combined(0.05, 0.05, FZ, ZEROS)
    assert float(fy) < 0 < float(fx)


# --- What identification asks of a tyre: its starts, bounds and the part that is fitted --------


def _recording_fit(calls):
    def fit(tire):
        calls.append(tire)
        return tire

    return fit


@pytest.mark.parametrize("coupling", ["slip_vector", "friction_circle"])
def test_fiala_starts_from_its_grid_with_its_own_coupling(coupling):
    tire = Fiala(0.9, 10.0, 7.0, coupling=coupling)
    rear = tire.fit_starts(combined=True)
    front = tire.fit_starts(combined=False)
    n_mu, n_ca, n_cs = (len(g) for g in FIT_GRID)
    assert len(rear) == n_mu * n_ca * n_cs and len(front) == n_mu * n_ca
    assert all(isinstance(t, Fiala) and t.coupling == coupling for t in rear + front)
    # lateral forces do not depend on C_σ: the front starts hold it at one value
    assert {float(t.c_sigma) for t in front} == {15.0}
    got = sorted((float(t.mu), float(t.c_alpha), float(t.c_sigma)) for t in rear)
    assert got == sorted(itertools.product(*FIT_GRID))
    assert set(tire.fit_bounds()) == {"mu", "c_alpha", "c_sigma"}


@pytest.mark.parametrize("name", TIRES)
def test_each_tyre_says_what_a_force_fit_changes(name):
    tire = make_tire(name, key=jax.random.key(0))
    calls = []
    fitted = tire.fitted_to_forces(_recording_fit(calls))
    if isinstance(tire, MLPTire):
        assert calls == [] and fitted is tire  # the unstructured baseline keeps its random start
    elif isinstance(tire, NeuralExpTanh):
        assert len(calls) == 1 and calls[0] is tire.base  # the base curve; the network neutral
        assert eqx.tree_equal(fitted.net, tire.net)
    else:
        assert len(calls) == 1 and calls[0] is tire
    for t in calls:
        bounds = t.fit_bounds()
        assert bounds is None or all(lo < hi for lo, hi in bounds.values())
        assert bounds is None or all(hasattr(t, f) for f in bounds)
        assert len(t.fit_starts(combined=True)) >= 1
