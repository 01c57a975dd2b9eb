"""System identification on synthetic data from a known model: the loss and the fit recover
it; trainable specs, splits and metrics behave as documented."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physml.vehicle import (
    TIRES,
    DriveLog,
    ExpTanh,
    Fiala,
    NeuralExpTanh,
    NeuralODETire,
    RolloutObjective,
    SingleTrackModel,
    VehicleParams,
    axle_force_estimates,
    fit_tires_to_forces,
    format_rmse_table,
    identify,
    identify_bayes,
    make_model,
    rollout_model,
    rollout_rmse,
    trainable_spec,
    window_starts,
)
from physml.vehicle._sysid import recipe
from physml.vehicle._sysid.recipe import FORCE_FIT_START, start_model


def _synthetic_log(model, seconds=40.0, seed=0, base_nm=150.0):
    """Noise-free 100 Hz log of `model` under smooth random steering and a torque of `base_nm`
    [N m] plus smooth waves (grip driving)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 100)) * 0.01
    delta = sum(
        a * np.sin(2 * np.pi * f * t + p)
        for a, f, p in zip(
            rng.uniform(0.02, 0.06, 4), rng.uniform(0.1, 0.8, 4), rng.uniform(0, 6, 4), strict=True
        )
    )
    tau = base_nm + sum(
        a * np.sin(2 * np.pi * f * t + p)
        for a, f, p in zip(
            rng.uniform(50, 150, 3), rng.uniform(0.05, 0.5, 3), rng.uniform(0, 6, 3), strict=True
        )
    )
    u = np.stack([delta, tau], -1)
    ys = rollout_model(model, jnp.array([0.0, 12.0, 0.0, 12.0 / 0.368]), jnp.asarray(u[:-1]), 0.01)
    return DriveLog(time_s=t, state=np.asarray(ys), control=u)


@pytest.fixture(scope="module")
def exptanh_truth():
    # c3 = softplus(-0.5) ≈ 0.47, c4 = softplus(11) ≈ 11 / softplus(13) ≈ 13 [per unit load]
    true = SingleTrackModel(
        VehicleParams(),
        ExpTanh(raw=jnp.array([0.0, 0.95, -0.5, 11.0, 0.0])),
        ExpTanh(raw=jnp.array([0.0, 0.85, -0.5, 13.0, 0.0])),
    )
    return true, _synthetic_log(true)


def test_loss_is_zero_at_the_true_model_and_positive_elsewhere(exptanh_truth):
    true, log = exptanh_truth
    starts = jnp.asarray(window_starts(log.flags, 0, log.n_samples, 20)[::50])
    obj = RolloutObjective(
        jnp.asarray(log.state), jnp.asarray(log.control), starts, jnp.ones(4), 0.01, 20, 5, 8, 2
    )
    lengths = jnp.full(starts.shape, 20)
    assert float(jnp.max(obj.window_losses(true, starts, lengths))) < 1e-20
    other = eqx.tree_at(lambda m: m.front.raw, true, true.front.raw.at[1].set(0.7))
    assert float(jnp.mean(obj.window_losses(other, starts, lengths))) > 1e-6


def test_window_starts_avoid_flags_and_split():
    flags = np.zeros(100, np.int64)
    flags[50] = 1
    starts = window_starts(flags, 0, 80, 10)
    assert starts.min() == 0 and starts.max() == 69
    assert not np.any((starts <= 50) & (starts + 10 >= 50))


def test_trainable_spec_selects_tires_and_named_params():
    model = make_model("exptanh", key=jax.random.key(0))
    spec = trainable_spec(model, params=("torque_gain", "yaw_inertia_kgm2"))
    assert spec.params.torque_gain is True and spec.params.yaw_inertia_kgm2 is True
    assert spec.params.mass_kg is False
    assert bool(spec.front.raw) and bool(spec.rear.raw_c0)
    with pytest.raises(ValueError, match="unknown vehicle parameters"):
        trainable_spec(model, params=("mass",))


def _normalised_rmse(model, log):
    """Mean over states of the 1-s rollout RMSE / the state's standard deviation in the log."""
    rmse = rollout_rmse(model, log, horizons_s=(1.0,))[1.0]
    return float(np.mean(rmse / np.std(log.state, axis=0)))


def test_identify_learns_exptanh_quickly(exptanh_truth):
    """Fast learning check (same model class as the data, noise-free), with early stopping on
    0.5-s validation windows (all 750 of them in the last 20% of the 40-s log): 150 Adam steps
    cut the validation loss 5x from its value at step 0 and the normalised 1-s rollout error
    2x."""
    _, log = exptanh_truth
    start = make_model("exptanh", key=jax.random.key(0))
    res = identify(
        log,
        start,
        key=jax.random.key(1),
        steps=150,
        val_every=50,
        batch_size=32,
        val_horizon=50,
        max_val_windows=10_000,
        progress=False,
    )
    assert res.report["val_horizon"] == 50
    assert res.report["n_val_windows"] == 800 - 50  # 20-step windows would give 780
    first = res.history[0]["val_loss"]
    assert np.isfinite(first) and res.report["val_loss"] < 0.2 * first
    assert _normalised_rmse(res.model, log) < 0.5 * _normalised_rmse(start, log)


@pytest.mark.slow
def test_identify_recovers_exptanh_from_a_perturbed_start(exptanh_truth):
    """Same model class as the data, noise-free: 400 Adam steps cut the validation loss 10× and
    the normalised 1-s rollout error 3x. (Not every state: V starts at 0.004 m/s RMSE, where
    the loss, which weights states by their spread, does not push it.)"""
    _, log = exptanh_truth
    start = make_model("exptanh", key=jax.random.key(0))
    before = rollout_rmse(start, log, horizons_s=(1.0,))[1.0]
    res = identify(log, start, key=jax.random.key(1), steps=400, val_every=50, progress=False)
    after = rollout_rmse(res.model, log, horizons_s=(1.0,))[1.0]
    assert np.all(np.isfinite(after))
    assert res.report["n_params"] == 2 * 7 + 1
    assert res.report["val_loss"] < 0.1 * float(
        identify(log, start, key=jax.random.key(1), steps=1, progress=False).report["val_loss"]
    )
    scale = np.std(log.state, axis=0)
    assert np.mean(after / scale) < np.mean(before / scale) / 3
    table = format_rmse_table({"exptanh": {1.0: after}})
    assert "exptanh" in table and "beta [deg]" in table


def test_identify_learned_tires_take_finite_steps(exptanh_truth):
    """Neural-ExpTanh front and neural-ODE rear in one model (one compilation): finite steps."""

    _, log = exptanh_truth
    model = SingleTrackModel(
        VehicleParams(), NeuralExpTanh(key=jax.random.key(2)), NeuralODETire(key=jax.random.key(3))
    )
    res = identify(
        log,
        model,
        key=jax.random.key(3),
        steps=5,
        val_every=5,
        progress=False,
        batch_size=8,
        horizon=10,
    )
    assert res.report["stop_reason"] is None and res.report["steps"] == 5
    assert np.isfinite(res.report["val_loss"])
    moved = jax.tree_util.tree_leaves(eqx.filter(res.model, eqx.is_inexact_array))
    before = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    assert any(not np.array_equal(a, b) for a, b in zip(moved, before, strict=True))


def test_identify_validates_inputs(exptanh_truth):
    _, log = exptanh_truth
    model = make_model("fiala", key=jax.random.key(0))
    with pytest.raises(TypeError, match="DriveLog"):
        identify(np.zeros((10, 4)), model, key=jax.random.key(0))
    with pytest.raises(ValueError, match="val_fraction"):
        identify(log, model, key=jax.random.key(0), val_fraction=1.5)
    with pytest.raises(ValueError, match="val_horizon"):
        identify(log, model, key=jax.random.key(0), val_horizon=0)
    with pytest.raises(ValueError, match="validation windows of 5000 steps"):
        identify(log, model, key=jax.random.key(0), val_horizon=5000)
    with pytest.raises(ValueError, match="`tire` must be one of"):
        make_model("pacejka", key=jax.random.key(0))


def test_bayes_smoke_shapes_and_bands(exptanh_truth):
    """Tiny NUTS run: every sample finite, bands of shape (3, T + 1, 4) and ordered."""

    _, log = exptanh_truth
    res = identify_bayes(
        log,
        key=jax.random.key(0),
        num_warmup=4,
        num_samples=3,
        n_windows=4,
        horizon=5,
        max_tree_depth=3,
        progress=False,
    )
    assert res.n_samples == 3
    assert all(np.all(np.isfinite(v)) for v in res.samples.values())
    bands = np.asarray(res.predict(log.state[0], log.control[:10], 0.01))
    assert bands.shape == (3, 11, 4)
    assert np.all(np.diff(bands, axis=0) >= -1e-12)
    with pytest.raises(TypeError, match="ExpTanh tyres"):
        identify_bayes(log, make_model("fiala", key=jax.random.key(0)), key=jax.random.key(0))


@pytest.mark.slow
def test_bayes_posterior_predicts_better_than_its_prior_centre(exptanh_truth):
    """A short NUTS run on noise-free ExpTanh data with the prior centred on a model whose front
    ĉ4 is 30% low: the posterior-predictive median of a 0.3-s rollout is 5x closer (normalised
    RMSE) to the data than the prior centre's rollout."""

    true, log = exptanh_truth
    centre = eqx.tree_at(lambda m: m.front.raw, true, true.front.raw.at[3].set(11.0 * 0.7))
    res = identify_bayes(
        log,
        centre,
        key=jax.random.key(0),
        num_warmup=30,
        num_samples=15,
        n_windows=6,
        horizon=8,
        max_tree_depth=5,
        progress=False,
    )
    assert res.report["divergences"] == 0
    k = 1000
    bands = np.asarray(res.predict(log.state[k], log.control[k : k + 30], 0.01))
    prior = np.asarray(rollout_model(res.model, log.state[k], log.control[k : k + 30], 0.01))
    data = log.state[k : k + 31]
    scale = np.std(log.state, axis=0)
    err_post = np.sqrt(np.mean(((bands[1] - data) / scale) ** 2))
    err_prior = np.sqrt(np.mean(((prior - data) / scale) ** 2))
    assert err_post < 0.2 * err_prior


@pytest.fixture(scope="module")
def fiala_truth():
    true = SingleTrackModel(
        VehicleParams(), Fiala(mu=0.9, c_alpha=14.0), Fiala(mu=1.0, c_alpha=18.0, c_sigma=20.0)
    )
    return true, _synthetic_log(true, seconds=30.0, seed=1)


def test_axle_force_estimates_match_the_model_forces(fiala_truth):
    """Inverse dynamics on a noise-free log gives the model's own axle forces (smoothing error
    of the 0.15-s Savitzky-Golay derivative only)."""
    true, log = fiala_truth
    est = axle_force_estimates(log, true.params, max_samples=500)
    y = jnp.asarray(log.state)
    f_yf, f_yr, f_xr = jax.vmap(true.forces)(y, jnp.asarray(log.control))
    fz_f, fz_r = (fz[::25] for fz in est.normal_loads)
    idx = est.index[::25]
    np.testing.assert_allclose(est.fy_f[::25], np.asarray(f_yf)[idx] / fz_f, atol=0.02)
    np.testing.assert_allclose(est.fy_r[::25], np.asarray(f_yr)[idx] / fz_r, atol=0.02)
    np.testing.assert_allclose(est.fx_r[::25], np.asarray(f_xr)[idx] / fz_r, atol=0.02)


def test_axle_force_estimates_include_the_front_brake_force():
    """A car that brakes 66 % at the front, driven with a brake torque on about half the
    samples: the inverse dynamics with F_xf = b_f E / R give the model's own axle forces; left
    out (b_f = 0 in the estimate), the rear's longitudinal force is off by the front's."""
    params = VehicleParams(brake_split_front=0.66)
    true = SingleTrackModel(params, Fiala(mu=0.9, c_alpha=14.0), Fiala(mu=1.0, c_alpha=18.0))
    log = _synthetic_log(true, seconds=20.0, seed=3, base_nm=0.0)
    assert 0.3 < np.mean(log.control[:, 1] < 0) < 0.7
    y, u = jnp.asarray(log.state), jnp.asarray(log.control)
    f_yf, f_yr, f_xr = (np.asarray(f) for f in jax.vmap(true.forces)(y, u))
    est = axle_force_estimates(log, params, max_samples=500)
    idx, (fz_f, fz_r) = est.index, est.normal_loads
    np.testing.assert_allclose(est.fy_f, f_yf[idx] / fz_f, atol=0.02)
    np.testing.assert_allclose(est.fy_r, f_yr[idx] / fz_r, atol=0.02)
    np.testing.assert_allclose(est.fx_r, f_xr[idx] / fz_r, atol=0.02)
    blind = axle_force_estimates(log, VehicleParams(), max_samples=500)
    front = 0.66 * np.minimum(log.control[idx, 1], 0.0) / 0.368
    assert np.max(np.abs(blind.fx_r - est.fx_r) * fz_r) > 0.5 * np.max(np.abs(front))


def test_make_model_from_data_recovers_the_stiffness_and_beats_the_default(fiala_truth):
    true, log = fiala_truth
    start = make_model("fiala", key=jax.random.key(0), params=true.params, data=log)
    # grip driving: the cornering stiffness is identifiable from the forces (not the peak)
    assert float(start.front.c_alpha) == pytest.approx(14.0, rel=0.1)
    assert float(start.rear.c_alpha) == pytest.approx(18.0, rel=0.1)
    default = make_model("fiala", key=jax.random.key(0), params=true.params)
    objective = RolloutObjective(
        jnp.asarray(log.state),
        jnp.asarray(log.control),
        jnp.asarray(window_starts(np.zeros(log.n_samples), 0, log.n_samples, 20)),
        jnp.asarray(np.std(log.state, axis=0)),
        0.01,
        20,
        20,
        64,
        2,
    )
    starts = jnp.arange(0, log.n_samples - 21, 50)
    lengths = jnp.full(starts.shape, 20)
    loss = lambda m: float(jnp.mean(objective.window_losses(m, starts, lengths)))
    assert loss(start) < 0.2 * loss(default)
    with pytest.raises(TypeError, match="DriveLog"):
        make_model("fiala", key=jax.random.key(0), data=np.zeros((10, 4)))


def test_make_model_from_data_fits_what_each_tyre_says(fiala_truth):
    """The neural-ExpTanh starts from a fit of its base curve with a neutral network; the MLP
    keeps its random start; a friction-circle Fiala keeps its coupling."""
    true, log = fiala_truth
    key = jax.random.key(0)
    for name in ("neural_exptanh", "mlp"):
        fitted = make_model(name, key=key, params=true.params, data=log)
        default = make_model(name, key=key, params=true.params)
        if name == "mlp":
            assert eqx.tree_equal(fitted, default)
        else:
            assert eqx.tree_equal(fitted.front.net, default.front.net)
            assert eqx.tree_equal(fitted.rear.net, default.rear.net)
            assert not np.allclose(fitted.front.base.raw, default.front.base.raw)
    est = axle_force_estimates(log, true.params, max_samples=300)
    circle = Fiala(coupling="friction_circle")
    front, rear = fit_tires_to_forces(circle, circle, est)
    assert front.coupling == rear.coupling == "friction_circle"
    with pytest.raises(TypeError, match="rear"):  # the boundary check, or the type hook in tests
        fit_tires_to_forces(circle, "fiala", est)


def test_the_recipe_starts_the_neural_ode_from_the_forces_and_the_others_from_the_textbook(
    monkeypatch, without_runtime_typecheck
):
    """`identify_tire`'s start (`start_model`): `make_model` with the log for the tyres of
    `FORCE_FIT_START` (the neural ODE), without it (the textbook defaults) for the rest."""
    given = {}

    def make(tire, *, key, params, data=None):
        given[tire] = data
        return tire

    monkeypatch.setattr(recipe, "make_model", make)
    log, params = object(), VehicleParams()
    assert FORCE_FIT_START == {"neural_ode"}
    for tire in TIRES:
        assert start_model(log, tire, key=jax.random.key(0), params=params) == tire
        assert given[tire] is (log if tire == "neural_ode" else None), tire
