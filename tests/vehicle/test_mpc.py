"""The drift MPC: its discrete predictor, its Jacobian, and its behaviour on the model itself."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from physml.kernels import rollout
from physml.vehicle import (
    TIRES,
    Actuators,
    Donut,
    DriftMPC,
    DriftPlant,
    Fiala,
    FigureEight,
    MagicFormula,
    MPCStatus,
    MPCWeights,
    NoDriftEquilibriumError,
    SingleTrackModel,
    TabulatedPath,
    drift_reference,
    make_model,
    params_from_plant,
    solve_equilibrium,
    stack_models,
)

# Private numerics: the predictor's ROS2 steps against fine RK4 rollouts, the box solver.
from physml.vehicle._control.mpc import check_mpc_options
from physml.vehicle._control.problem import predict
from physml.vehicle._control.solver import solve_box_least_squares

PATH = Donut(11.0, np.radians(30.0))
# The friction-circle coupling pinned: the predictor checks and tunings below were made with it.
FIALA = Fiala(coupling="friction_circle")


@pytest.fixture(scope="module")
def model():
    # The nominal model of the plant: its measured mass, inertias and geometry, Fiala tyres.
    return SingleTrackModel(params_from_plant(DriftPlant()), FIALA, FIALA)


@pytest.fixture(scope="module")
def mpc(model):
    return DriftMPC.from_path(model, PATH, max_iterations=6)


@pytest.fixture(scope="module")
def static_model(model):
    # CoRL 2024 A.1's static load split (no load transfer): its drift on the donut is open-loop
    # unstable (eigenvalue ≈ +2.2 1/s), so every state moves over a horizon and the predictor's
    # error can be judged against that motion. (With the plant's load transfer the same drift
    # is a lightly damped oscillation, 0.04 ± 0.85j 1/s: r moves by 0.009 rad/s in 1.25 s.)
    return eqx.tree_at(lambda m: m.params.cg_height_m, model, jnp.asarray(0.0))


@pytest.fixture(scope="module")
def static_mpc(static_model):
    return DriftMPC.from_path(static_model, PATH, max_iterations=6)


def _start(mpc, de=0.0, dbeta=0.0, dv=0.0):
    y, u = mpc.reference.at(0.0)
    x = jnp.concatenate([y, jnp.zeros(3)])
    return x.at[4].add(de).at[2].add(dbeta).at[1].add(dv), u


def _fine(model, x0, controls, dt_s, dt_fine=1e-3):
    """RK4 at 1 ms on the path vector field, sampled at the grid points."""
    reps = [round(float(h) / dt_fine) for h in dt_s]
    fine_u = jnp.concatenate(
        [jnp.repeat(c[None], n, 0) for c, n in zip(controls, reps, strict=True)]
    )
    f = lambda t, y, u, a: model.path_vector_field(t, y, u, PATH.curvature)
    ys = rollout(f, x0, fine_u, dt_fine, check=False)
    return ys[np.concatenate([[0], np.cumsum(reps)])]


def test_predictor_matches_fine_rollout(static_mpc):
    mpc = static_mpc
    x0, u_eq = _start(mpc, de=0.2, dbeta=0.02)
    k = jnp.arange(30.0)[:, None]
    controls = u_eq + jnp.asarray([0.01, 50.0]) * jnp.sin(0.7 * k)
    xs = predict(mpc.model, x0, controls, mpc.dt_s, PATH.curvature)
    ref = _fine(mpc.model, x0, controls, mpc.dt_s)
    err = np.abs(np.asarray(xs - ref))
    # The open-loop drift is unstable (eigenvalue ≈ +2 1/s), so any difference grows ~e^{2t}:
    # the check is relative to how far each state moved over the uniform 0.05-s part (1.25 s):
    # the prediction is within 10% of the motion; the 0.15-s tail within 25% at its first step.
    moved = np.max(np.abs(np.asarray(ref[:26] - x0)), axis=0)
    assert np.all(err[:26].max(0) <= 0.1 * moved), (err[:26].max(0), moved)


def test_predictor_over_the_whole_grid_on_a_stable_manoeuvre(static_model, mpc):
    model = static_model
    # Grip cornering (a stable equilibrium) under a steering and torque wobble over the whole
    # default grid, where differences are not amplified by an unstable mode.
    eq = solve_equilibrium(model, np.radians(-0.5), speed_mps=10.0)
    x0 = jnp.concatenate([eq.state, jnp.zeros(3)])
    k = jnp.arange(30.0)[:, None]
    controls = eq.control + jnp.asarray([0.01, 100.0]) * jnp.sin(0.5 * k)
    dt = mpc.dt_s  # the default grid
    xs = predict(model.prepare(), x0, controls, dt, PATH.curvature)
    ref = _fine(model.prepare(), x0, controls, dt)
    moved = np.max(np.abs(np.asarray(ref - x0)), axis=0)
    err = np.max(np.abs(np.asarray(xs - ref)), axis=0)
    # Within 10% of the motion, or of the order of the sensors' noise where a state hardly
    # moves: 1e-3 in r [rad/s], V [m/s], β [rad], e [m], Δφ [rad], s [m]; 1e-2 in ω_r [rad/s].
    floor = np.array([1e-3, 1e-3, 1e-3, 1e-2, 1e-3, 1e-3, 1e-3])
    assert np.all(err <= 0.1 * moved + floor), (err, moved)


@pytest.mark.slow  # ~75 s on a loaded 2-core box: several grids, each its own compilation
def test_predictor_is_second_order_and_stable_where_rk4_is_not(mpc):
    x0, u_eq = _start(mpc)
    controls = jnp.tile(u_eq + jnp.asarray([0.02, 100.0]), (8, 1))
    ref = _fine(mpc.model, x0, controls, jnp.full(8, 0.05), dt_fine=2.5e-4)[-1]
    errs = []
    for h in (0.05, 0.025):
        n = round(0.4 / h)
        xs = predict(mpc.model, x0, jnp.repeat(controls, n // 8, 0), jnp.full(n, h), PATH.curvature)
        errs.append(float(jnp.max(jnp.abs(xs[-1, :4] - ref[:4]) / jnp.asarray([1, 1, 1, 30]))))
    order = np.log2(errs[0] / errs[1])
    assert 1.6 < order < 2.6, (errs, order)
    # The stiff wheel mode: classical RK4 at the 0.05-s step rings on ω_r (hλ far outside its
    # stability region while the tyre is in its linear range); ROS2 follows the fine solution.
    f = lambda t, y, u, a: mpc.model.path_vector_field(t, y, u, PATH.curvature)
    fine = _fine(mpc.model, x0, controls, jnp.full(8, 0.05))
    rk4 = rollout(f, x0, controls, 0.05, check=False)
    ros = predict(mpc.model, x0, controls, jnp.full(8, 0.05), PATH.curvature)
    err_rk4 = float(jnp.max(jnp.abs(rk4[:, 3] - fine[:, 3])))
    err_ros = float(jnp.max(jnp.abs(ros[:, 3] - fine[:, 3])))
    assert err_rk4 > 10 * err_ros, (err_rk4, err_ros)


@pytest.mark.parametrize("envelope", [False, True])
def test_condensed_jacobian_matches_autodiff(mpc, envelope):
    # Directional derivatives J v against forward-mode autodiff of the residuals along four
    # random directions v (cheaper than the full 60-column autodiff Jacobian, and a wrong
    # column shows in every direction that has a component along it, i.e. almost surely).
    # With `envelope`, a tight front-slip envelope (2°) makes ρ_α active over much of the
    # horizon, so its Jacobian through the predicted states and the inputs is checked too.
    if envelope:
        mpc = eqx.tree_at(
            lambda m: m.problem.weights, mpc, MPCWeights(front_slip_limit_rad=np.radians(2.0))
        )
    x0, u_eq = _start(mpc, de=0.3, dbeta=0.05)
    kz, kv = jax.random.split(jax.random.key(0))
    z = jax.random.uniform(kz, (30, 2), minval=-1.0, maxval=1.0)
    vs = jax.random.normal(kv, (4, 60))

    @eqx.filter_jit
    def both(m):
        rho, jac = m.linearise(z, x0, u_eq)
        f = lambda zz: m.residuals(zz.reshape(30, 2), x0, u_eq)
        jvps = jax.vmap(lambda v: jax.jvp(f, (z.ravel(),), (v,))[1])(vs)
        return rho, jac, f(z.ravel()), jvps

    rho, jac, rho_ad, jvps = both(mpc)
    active = np.asarray(rho[: 30 * 5]).reshape(30, 5)[:, 4]
    assert np.count_nonzero(active) >= (5 if envelope else 0)  # the term is really exercised
    np.testing.assert_allclose(rho, rho_ad, rtol=1e-10, atol=1e-12)
    expect = np.asarray(jvps)
    got = np.asarray(vs @ jac.T)
    np.testing.assert_allclose(got, expect, rtol=1e-7, atol=1e-8 * float(np.max(np.abs(expect))))


def _closed_loop_on_model(mpc, x, u, steps):
    """The model itself as the plant (RK4 at 1 ms), the MPC at 20 Hz."""
    f = lambda t, y, uu, a: mpc.model.path_vector_field(t, y, uu, PATH.curvature)
    advance = jax.jit(
        lambda y, uu: rollout(f, y, jnp.broadcast_to(uu, (50, 2)), 1e-3, check=False)[-1]
    )
    state = mpc.init(x, u)
    infos, xs = [], [x]
    for _ in range(steps):
        u, state, info = mpc.step(state, x)
        x = advance(x, u)
        infos.append(info)
        xs.append(x)
    return jnp.stack(xs), infos, state


def test_mpc_drives_the_model_back_to_the_reference(mpc):
    x, u = _start(mpc, de=0.8, dbeta=np.radians(5.0), dv=0.5)
    xs, infos, _ = _closed_loop_on_model(mpc, x, u, 60)
    beta_ref = float(PATH.sideslip(0.0))
    assert abs(float(xs[0, 4])) == pytest.approx(0.8)
    assert abs(float(xs[-1, 4])) < 0.05, xs[-1]
    assert abs(float(xs[-1, 2]) - beta_ref) < np.radians(1.0), xs[-1]
    assert abs(float(xs[-1, 5])) < np.radians(1.0)
    # Constraints hold at every step, nothing fell back, the cost fell from the first solve.
    assert max(float(i.violation) for i in infos) <= 1e-9
    assert not any(bool(i.failed) for i in infos)
    assert float(infos[-1].cost) < 1e-2 * float(infos[0].cost_initial)
    plans = np.stack([np.asarray(i.plan[0]) for i in infos])
    assert np.all(np.abs(plans[:, 0]) <= mpc.steer_max_rad + 1e-12)
    rates = np.diff(plans, axis=0) / 0.05
    assert np.all(np.abs(rates[:, 0]) <= mpc.steer_rate_max_radps + 1e-9)
    assert np.all(np.abs(rates[:, 1]) <= mpc.torque_rate_max_nmps + 1e-6)


@pytest.mark.slow  # a second controller: one more compilation (~30 s on a loaded 2-core box)
def test_tight_limits_are_respected(model):
    tight = Actuators(steer_max_rad=0.4, steer_rate_max_radps=0.5, torque_max_nm=1300.0)
    mpc = DriftMPC.from_path(
        model, PATH, actuators=tight, torque_rate_max_nmps=2000.0, max_iterations=4
    )
    x, u = _start(mpc, de=1.0, dbeta=np.radians(8.0))
    _, infos, _ = _closed_loop_on_model(mpc, x, u, 10)
    for info in infos:
        plan = np.asarray(info.plan)
        assert np.all(np.abs(plan[:, 0]) <= 0.4 + 1e-12)
        assert np.all(plan[:, 1] <= 1300.0 + 1e-9)
        assert float(info.violation) <= 1e-9


def test_warm_start_needs_fewer_iterations(mpc):
    x, u = _start(mpc, de=0.5, dbeta=np.radians(3.0))
    xs, infos, _ = _closed_loop_on_model(mpc, x, u, 8)
    warm = [int(i.iterations) for i in infos[1:]]
    cold = []
    for k in range(1, 8):
        state = mpc.init(xs[k], infos[k - 1].plan[0])
        cold.append(int(mpc.step(state, xs[k])[2].iterations))
    assert sum(warm) < sum(cold), (warm, cold)
    assert all(w <= c for w, c in zip(warm, cold, strict=True)), (warm, cold)


def test_nonfinite_measurement_falls_back_to_the_previous_plan(mpc):
    x, u = _start(mpc)
    state = mpc.init(x, u)
    command, new_state, info = mpc.step(state, x.at[1].set(jnp.nan))
    assert bool(info.status == MPCStatus.nonfinite_fallback)
    assert MPCStatus[info.status].startswith("nonfinite_fallback")
    assert info.failed
    assert bool(jnp.all(jnp.isfinite(command)))
    np.testing.assert_allclose(command, mpc.inputs(state.rates, state.last_command)[0])
    assert bool(jnp.all(jnp.isfinite(new_state.rates)))


@pytest.mark.slow  # three more controllers to compile
def test_other_tyre_and_ensemble(model):
    # Any tyre model: the reference of a Fiala model, a magic-formula tyre in the predictor.
    ref = drift_reference(model, PATH)
    mf = SingleTrackModel(model.params, MagicFormula(), MagicFormula())
    mpc = DriftMPC(mf, PATH, ref, max_iterations=3)
    x, u = _start(mpc, de=0.2)
    command, _, info = mpc.step(mpc.init(x, u), x)
    assert bool(jnp.all(jnp.isfinite(command))) and not bool(info.failed)
    # Robust variant: two particles (μ = 0.95, 1.05); residuals of both are stacked.
    c = "friction_circle"
    particles = stack_models(
        [
            SingleTrackModel(model.params, Fiala(mu=m, coupling=c), Fiala(mu=m, coupling=c))
            for m in (0.95, 1.05)
        ]
    )
    robust = DriftMPC.from_path(particles, PATH, ensemble=True, max_iterations=3)
    single = DriftMPC(model, PATH, robust.reference, max_iterations=3)
    state = robust.init(x, u)
    assert robust.residuals(state.rates, x, u).shape[0] == 2 * 30 * 4 + 30 * 2
    assert single.residuals(state.rates, x, u).shape[0] == 30 * 4 + 30 * 2
    command, _, info = robust.step(state, x)
    assert bool(jnp.all(jnp.isfinite(command))) and not bool(info.failed)


def test_bad_input_is_reported(model, mpc):
    x, u = _start(mpc)
    # (Under the test run's runtime type checks the annotation rejects it first.)
    with pytest.raises((ValueError, TypeError), match="7"):
        mpc.step(mpc.init(x, u), x[:4])
    ref = mpc.reference
    with pytest.raises(ValueError, match="grid_s"):
        DriftMPC(model, PATH, ref, grid_s=[0.05, -0.1])
    with pytest.raises(ValueError, match="max_iterations"):
        DriftMPC(model, PATH, ref, max_iterations=0)
    with pytest.raises(ValueError, match="max_iterations"):
        DriftMPC.from_path(model, PATH, max_iterations=0)
    with pytest.raises(ValueError, match="ensemble"):
        DriftMPC(model, PATH, ref, ensemble=True)
    with pytest.raises(ValueError, match="wheel_speed"):
        DriftMPC(model, PATH, ref, wheel_speed="estimated")
    with pytest.raises(TypeError, match="AbstractPath"):
        DriftMPC.from_path(model, "donut")
    with pytest.raises(TypeError, match="DriftReference"):
        DriftMPC(model, PATH, "donut")
    with pytest.raises(ValueError, match="is not the reference of `path`"):
        DriftMPC(model, FigureEight(11.0, 0.5), ref)
    # Too tight: below the model's valid speed. A named error, still a ValueError.
    with pytest.raises(NoDriftEquilibriumError, match="cannot hold"):
        DriftMPC.from_path(model, Donut(0.5, np.radians(30.0)))


# The network tyres compile for ~15-25 s each on a loaded 2-core box: kept with the slow runs.
_HEAVY_TIRES = ("neural_exptanh", "neural_ode", "mlp")


@pytest.mark.parametrize(
    "tire", [pytest.param(t, marks=pytest.mark.slow) if t in _HEAVY_TIRES else t for t in TIRES]
)
def test_every_tyre_runs_in_the_mpc(model, mpc, tire):
    # Each tyre family of `make_model` (default parameters, not identified) inside the
    # predictor, its Jacobians and the quasi-steady wheel speed: one solve, finite and within
    # the boxes. A short grid and one iteration keep the compilation small; the reference is the
    # nominal model's (an untrained tyre need not have a drift equilibrium).
    tyred = make_model(tire, key=jax.random.key(3), params=model.params)
    ctrl = DriftMPC(
        tyred,
        PATH,
        mpc.reference,
        grid_s=(0.05,) * 6,
        max_iterations=1,
        wheel_speed="quasi_steady",
    )
    x, u = _start(ctrl, de=0.2)
    command, state, info = ctrl.step(ctrl.init(x, u), x)
    assert bool(jnp.all(jnp.isfinite(command))), (tire, command)
    assert not bool(info.failed), tire
    assert bool(jnp.all(jnp.isfinite(info.predicted))) and bool(jnp.all(jnp.isfinite(state.rates)))
    assert float(info.violation) <= 1e-9
    assert float(info.cost) <= float(info.cost_initial) * (1 + 1e-12), tire


def test_soft_speed_floor_is_off_by_default_and_one_sided(mpc):
    # Off by default (m_V = inf): the speed residual is the plain (V − V_ref) / σ_V.
    h = mpc.dt_s[0]
    x, _ = _start(mpc, dv=-3.0)
    v_ref = mpc.reference.at(x[6])[0][1]
    plain = (x[1] - v_ref) / mpc.weights.speed_mps * jnp.sqrt(h)
    problem = mpc.problem
    np.testing.assert_allclose(problem.step_residual(x, h)[3], plain, rtol=1e-12)
    floored = eqx.tree_at(
        lambda p: p.weights, problem, MPCWeights(speed_floor_margin_mps=2.0, speed_floor_mps=0.25)
    )
    # 3 m/s below the reference: 1 m/s below the floor adds 1 / 0.25 to the residual.
    np.testing.assert_allclose(floored.step_residual(x, h)[3], plain - 4.0 * jnp.sqrt(h), rtol=1e-9)
    # Within the margin or above the reference: unchanged.
    for dv in (-1.0, 2.0):
        y, _ = _start(mpc, dv=dv)
        np.testing.assert_allclose(
            floored.step_residual(y, h), problem.step_residual(y, h), rtol=1e-12
        )
    with pytest.raises(ValueError, match="speed_floor_margin_mps"):
        MPCWeights(speed_floor_margin_mps=-1.0)


def test_reference_clock_is_validated_and_neutral_on_a_donut(model, mpc):
    with pytest.raises(ValueError, match="reference_clock"):
        DriftMPC(model, PATH, mpc.reference, reference_clock="lap")
    timed = DriftMPC(model, PATH, mpc.reference, reference_clock="time")
    x0, u_eq = _start(mpc, de=0.3, dbeta=0.05, dv=0.4)
    z = jax.random.uniform(jax.random.key(3), (30, 2), minval=-1.0, maxval=1.0)
    # β_ref and V_ref are constant on a donut: where along it a step is scored cannot matter.
    np.testing.assert_allclose(timed.cost(z, x0, u_eq), mpc.cost(z, x0, u_eq), rtol=1e-12, atol=0.0)


def test_time_clock_scores_each_step_where_the_reference_has_advanced(model, mpc):
    # A path whose β_ref varies (a figure-8's reversal at s = 0): each horizon step k must be
    # scored at s_0 + V_ref t_k with the "time" clock, at its own predicted s_k with "path".
    eight = FigureEight(11.0, np.radians(30.0), transition_m=12.0)
    x0, _ = _start(mpc, de=0.1)
    x0 = x0.at[6].set(-5.0)  # 5 m before the crossing: β_ref changes within the horizon
    for clock in ("path", "time"):
        m = DriftMPC(model, PATH, mpc.reference, reference_clock=clock).problem
        m = eqx.tree_at(lambda c: c.path, m, eight)
        xs = x0 + jnp.zeros((30, 7)).at[:, 6].set(jnp.linspace(0.5, 12.0, 30))  # any states
        s_time = m.reference_arc_lengths(x0)
        v_ref = float(mpc.reference.at(0.0)[0][1])  # constant on the donut reference
        np.testing.assert_allclose(s_time, -5.0 + v_ref * np.cumsum(mpc.dt_s), rtol=1e-12)
        res = jax.vmap(m.step_residual)(xs, m.dt_s, s_time)
        s_scored = s_time if clock == "time" else xs[:, 6]
        expect = (xs[:, 2] - eight.sideslip(s_scored)) / m.weights.sideslip_rad * jnp.sqrt(m.dt_s)
        np.testing.assert_allclose(res[:, 0], expect, rtol=1e-12, atol=1e-12)
    # The two clocks disagree here (else the test above could not tell them apart).
    assert not np.allclose(eight.sideslip(s_time), eight.sideslip(xs[:, 6]))


def test_box_solver_on_a_linear_least_squares_problem():
    # The solver knows nothing of the MPC: on min ½ |A z − b|² over [−1, 1]^5 (three bounds
    # active at the solution) it reaches scipy's bounded least-squares solution.
    rng = np.random.default_rng(0)
    a, b = jnp.asarray(rng.normal(size=(12, 5))), jnp.asarray(3.0 * rng.normal(size=12))
    linearise = lambda z, _: (a @ z - b, a)
    cost = lambda z: (0.5 * jnp.sum((a @ z - b) ** 2), None)
    solve = jax.jit(
        lambda z0: solve_box_least_squares(linearise, cost, z0, max_iterations=50, tol=1e-14)
    )
    sol = solve(jnp.zeros(5))
    ref = scipy.optimize.lsq_linear(np.asarray(a), np.asarray(b), bounds=(-1.0, 1.0))
    assert int(sol.iterations) < 50 and bool(sol.stopped)
    np.testing.assert_allclose(sol.z, ref.x, atol=1e-5)
    assert float(sol.cost) == pytest.approx(ref.cost, rel=1e-10)
    assert float(sol.cost_initial) == pytest.approx(0.5 * float(jnp.sum(b**2)), rel=1e-12)


def test_front_slip_envelope_term_is_off_by_default_and_one_sided(mpc):
    # ρ_α = √h max(|α_f| − α_max, 0) / σ_α: zero with the default α_max = inf; with a finite
    # α_max, zero inside the envelope and the hand value outside it.
    h = mpc.dt_s[0]
    x, u = _start(mpc)
    problem = mpc.problem
    alpha_f = float(mpc.model.slips(x[:4], u)[0])
    assert float(problem.envelope_residual(mpc.model, x, u, h)[0]) == 0.0
    for limit in (abs(alpha_f) + 0.01, abs(alpha_f) - 0.02):
        w = MPCWeights(front_slip_limit_rad=limit, front_slip_rad=np.radians(1.0))
        p = eqx.tree_at(lambda q: q.weights, problem, w)
        expect = max(abs(alpha_f) - limit, 0.0) / np.radians(1.0) * np.sqrt(float(h))
        got = float(p.envelope_residual(mpc.model, x, u, h)[0])
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=0.0)
    with pytest.raises(ValueError, match="front_slip_limit_rad"):
        MPCWeights(front_slip_limit_rad=-0.1)


def test_front_slip_envelope_of_a_log(model):
    # Straight driving (r = 0, β = 0): α_f = −δ, so the envelope is the quantile of |δ| over
    # the good samples; flagged samples do not count.
    from physml.vehicle import DriveLog, front_slip_envelope

    n = 1000
    delta = np.linspace(-0.2, 0.1, n)
    state = np.column_stack([np.zeros(n), np.full(n, 10.0), np.zeros(n), np.full(n, 30.0)])
    flags = np.zeros(n, np.int64)
    flags[:100] = 1  # the largest |δ| (δ < −0.17) flagged out
    log = DriveLog(np.arange(n) * 0.01, state, np.column_stack([delta, np.zeros(n)]), flags=flags)
    expect = np.quantile(np.abs(delta[100:]), 0.9)
    np.testing.assert_allclose(front_slip_envelope(model, log, quantile=0.9), expect, rtol=1e-9)
    assert front_slip_envelope(model, log, quantile=1.0) == pytest.approx(np.abs(delta[100]))
    with pytest.raises(ValueError, match="quantile"):
        front_slip_envelope(model, log, quantile=0.0)


def test_integral_action_solves_from_the_shifted_lateral_error(model, mpc):
    """k_I > 0: the step integrates the measured e (I = e h_0 after one step) and solves as
    the plain MPC would from the measurement with e shifted by k_I I (the same plan);
    the prediction it reports is in the car's own e. |k_I I| stays within the limit."""
    gain, limit = 2.0, 0.05
    integral_mpc = DriftMPC(
        model,
        PATH,
        mpc.reference,
        max_iterations=6,
        lateral_integral_gain=gain,
        lateral_integral_limit_m=limit,
    )
    x, u = _start(mpc, de=0.3)
    command, state, info = integral_mpc.step(integral_mpc.init(x, u), x)
    h0 = float(mpc.dt_s[0])
    assert float(state.lateral_integral) == pytest.approx(0.3 * h0, rel=1e-12)
    shifted = x.at[4].add(gain * (float(x[4]) * h0))
    plain_command, _, plain_info = mpc.step(mpc.init(shifted, u), shifted)
    np.testing.assert_allclose(command, plain_command, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(info.plan, plain_info.plan, rtol=1e-9, atol=1e-9)
    assert float(info.predicted[0, 4]) == pytest.approx(0.3, abs=1e-12)
    # Anti-windup: a large error for many steps saturates the shift at the limit.
    far = x.at[4].set(0.8)
    for _ in range(5):
        _, state, _ = integral_mpc.step(state, far)
    assert gain * float(state.lateral_integral) == pytest.approx(limit, rel=1e-12)
    # Off by default: the plain MPC keeps no integral.
    assert float(mpc.step(mpc.init(x, u), x)[1].lateral_integral) == 0.0
    for bad, match in (
        ({"lateral_integral_gain": -0.1}, "lateral_integral_gain"),
        ({"lateral_integral_gain": float("nan")}, "lateral_integral_gain"),
        ({"lateral_integral_limit_m": 0.0}, "lateral_integral_limit_m"),
    ):
        with pytest.raises(ValueError, match=match):
            DriftMPC(model, PATH, mpc.reference, **bad)
        with pytest.raises(ValueError, match=match):
            check_mpc_options(bad)


def test_reference_acceleration_limit_is_an_option_checked_up_front(model):
    """`reference_accel_limit_mps2` reaches `drift_reference`: on an S-bend-like path (κ
    through 0 with |β| = 26°, whose equilibria's speeds spike there) it bridges more of the
    reference; a donut's constant reference is unchanged. Refused before any work when not a
    positive number."""
    s = np.linspace(0.0, 80.0, 161)
    kappa = 0.09 * np.tanh((40.3 - s) / 4.0)
    bend = TabulatedPath(s, kappa, -0.45 * np.sign(kappa))
    plain = DriftMPC.from_path(model, bend, bridge_m=20.0)
    limited = DriftMPC.from_path(model, bend, bridge_m=20.0, reference_accel_limit_mps2=3.0)
    assert np.sum(limited.reference.bridged) > np.sum(plain.reference.bridged)
    donut = DriftMPC.from_path(model, PATH, reference_accel_limit_mps2=3.0)
    plain_donut = DriftMPC.from_path(model, PATH)
    np.testing.assert_array_equal(plain_donut.reference.state, donut.reference.state)
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="reference_accel_limit_mps2"):
            check_mpc_options({"reference_accel_limit_mps2": bad})
        with pytest.raises(ValueError, match="reference_accel_limit_mps2"):
            DriftMPC.from_path(model, PATH, reference_accel_limit_mps2=bad)
