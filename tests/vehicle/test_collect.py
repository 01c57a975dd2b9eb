"""Sensors and data collection: noise statistics, the 100-Hz log, spin-out handling, seeds."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

from physml.vehicle import (
    MANOEUVRES,
    DriftPlant,
    Sensors,
    collect,
    design_drift_stabiliser,
    drift_equilibrium,
    load_log,
    save_log,
)
from physml.vehicle._data import collect as collect_module
from physml.vehicle._data.log import FLAG_INVALID, FLAG_RESET
from physml.vehicle._plant.envelope import VALID_MAX_SIDESLIP_RAD, VALID_MIN_SPEED_MPS

MINUTES = 0.5  # one grip manoeuvre and one full drift (entry, hold, exit)


@pytest.fixture(scope="module")
def plant():
    return DriftPlant()


@pytest.fixture(scope="module")
def stabiliser(plant):
    return design_drift_stabiliser(plant)


@pytest.fixture(scope="module")
def log(plant, stabiliser):
    return collect(plant, MINUTES, key=jax.random.key(0), stabiliser=stabiliser)


def test_sensor_noise_matches_stated_std():
    # z = (measured − true) / σ is standard normal per column. With N samples the sample mean
    # has standard error 1/√N and the sample variance 1 ± √(2/N); we allow 5 standard errors.
    n = 20_000
    sensors = Sensors()
    true = jnp.broadcast_to(jnp.asarray([0.8, 10.0, -0.5, 45.0]), (n, 4))
    z = (sensors.measure(true, key=jax.random.key(3)) - true) / sensors.std(true)
    assert np.all(np.abs(np.mean(z, axis=0)) < 5 / np.sqrt(n))
    assert np.all(np.abs(np.var(z, axis=0) - 1) < 5 * np.sqrt(2 / n))
    # The wheel-speed noise is relative: 0.5 % of 45 rad/s.
    np.testing.assert_allclose(
        sensors.std(true)[0], [np.radians(0.15), 0.05, np.radians(0.2), 0.005 * 45.0]
    )


def test_drift_equilibrium_is_a_rest_point(plant):
    x, u = drift_equilibrium(plant, 10.0, np.radians(-30.0))
    f = np.asarray(plant.vector_field(0.0, jnp.asarray(x), jnp.asarray(u)))
    # r, V, β, ω_f, ω_r at rest; the servo at rest since δ_cmd = δ.
    assert np.all(np.abs(f[[2, 3, 5, 6, 7, 8]]) < 1e-7), f
    assert x[5] > 0 and u[0] < 0  # left drift: turning left with counter-steer


def test_log_rate_length_and_schema(log):
    assert log.n_samples == round(MINUTES * 60 * 100)
    np.testing.assert_allclose(np.diff(log.time_s), 0.01, rtol=1e-9)
    assert log.metadata["rate_hz"] == 100.0
    assert log.manoeuvre_names == MANOEUVRES
    assert {"grip_cornering", "drift_entry", "drift", "drift_exit"} <= {
        MANOEUVRES[i] for i in np.unique(log.manoeuvre)
    }


def test_log_drifts_and_stays_in_the_valid_range(log, plant):
    good = log.flags == 0
    beta, speed = log.state_true[:, 2], log.state_true[:, 1]
    assert np.all(np.abs(beta[good]) <= VALID_MAX_SIDESLIP_RAD)
    assert np.all(speed[good] >= VALID_MIN_SPEED_MPS)
    # One drift in 30 s holds |β| > 15° for several seconds.
    assert np.sum(good & (np.abs(beta) > np.radians(15.0))) / 100 > 5.0
    act = plant.actuators
    assert np.all(np.abs(log.control[:, 0]) <= act.steer_max_rad + 1e-9)
    assert np.all(
        (log.control[:, 1] >= act.torque_min_nm - 1e-9)
        & (log.control[:, 1] <= act.torque_max_nm + 1e-9)
    )


def test_measurements_are_truth_plus_stated_noise(log):
    z = (log.state - log.state_true) / np.asarray(Sensors().std(log.state_true))
    n = z.shape[0]
    assert np.all(np.abs(z.mean(axis=0)) < 5 / np.sqrt(n))
    assert np.all(np.abs(z.var(axis=0) - 1) < 5 * np.sqrt(2 / n))


def test_same_key_same_log_other_key_or_mix_other_log(log, plant, stabiliser):
    again = collect(plant, MINUTES, key=jax.random.key(0), stabiliser=stabiliser)
    np.testing.assert_array_equal(again.state, log.state)
    np.testing.assert_array_equal(again.control, log.control)
    other = collect(plant, MINUTES, key=jax.random.key(1), stabiliser=stabiliser)
    assert not np.allclose(other.state_true, log.state_true)
    heldout = collect(plant, MINUTES, key=jax.random.key(0), mix="heldout", stabiliser=stabiliser)
    assert not np.allclose(heldout.state_true, log.state_true)


def test_spin_outs_are_flagged_and_reset(plant, stabiliser):
    # A "stabiliser" that keeps full torque and steers into the turn spins the car every time.
    side = -jnp.sign(stabiliser.beta_grid)
    bad = eqx.tree_at(
        lambda s: (s.gains, s.u_eq),
        stabiliser,
        (jnp.zeros_like(stabiliser.gains), jnp.stack([0.3 * side, 2500.0 + 0 * side], axis=-1)),
    )
    log = collect(plant, MINUTES, key=jax.random.key(0), stabiliser=bad)
    invalid = (log.flags & FLAG_INVALID) > 0
    reset = (log.flags & FLAG_RESET) > 0
    assert invalid.any()
    # Every invalid sample is followed by a reset one; no unflagged sample is out of range.
    assert np.all(reset[1:][invalid[:-1]])
    good = log.flags == 0
    assert np.all(np.abs(log.state_true[good, 2]) <= VALID_MAX_SIDESLIP_RAD)
    assert np.all(log.state_true[good, 1] >= VALID_MIN_SPEED_MPS)
    assert log.metadata["n_invalid"] == invalid.sum()


def test_log_round_trips(log, tmp_path):
    save_log(tmp_path / "drive.npz", log)
    back = load_log(tmp_path / "drive.npz")
    np.testing.assert_array_equal(back.state, log.state)
    np.testing.assert_array_equal(back.flags, log.flags)


def test_bad_arguments_raise(plant):
    with pytest.raises(TypeError, match="DriftPlant"):
        collect("car", key=jax.random.key(0))
    with pytest.raises(ValueError, match="minutes"):
        collect(plant, -1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="mix"):
        collect(plant, key=jax.random.key(0), mix="fast")
    with pytest.raises(ValueError, match="dt_sim_s"):
        collect(plant, key=jax.random.key(0), dt_sim_s=3e-3)
    with pytest.raises(ValueError, match="dt_sim_s"):
        collect(plant, key=jax.random.key(0), dt_sim_s=float("nan"))


@pytest.fixture
def without_runtime_typecheck():
    """Users call `collect` without the test run's jaxtyping/beartype hook, which would reject a
    wrongly typed argument before the function's own checks: switch it off for one test."""
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


def test_an_int_seed_gets_the_key_error(plant, without_runtime_typecheck):
    with pytest.raises(TypeError, match=r"`key` must be a JAX PRNG key.*jax\.random\.key\(0\)"):
        collect(plant, key=0)


@pytest.mark.parametrize("speed", [-10.0, 0.0, float("nan"), float("inf"), True, "10"])
def test_bad_drift_speed_is_refused_before_any_work(
    plant, speed, monkeypatch, without_runtime_typecheck
):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(collect_module, "design_drift_stabiliser", no_work)
    monkeypatch.setattr(collect_module, "manoeuvre_programme", no_work)
    with pytest.raises(ValueError, match=r"`drift_speed_mps` must be a finite speed > 0 \[m/s\]"):
        collect(plant, key=jax.random.key(0), drift_speed_mps=speed)


@pytest.mark.slow
def test_three_minute_log_has_a_minute_of_drift(plant, stabiliser):
    for seed in (0, 1, 2):
        log = collect(plant, 3.0, key=jax.random.key(seed), stabiliser=stabiliser)
        assert log.n_samples == 18_000
        good = log.flags == 0
        drift_s = np.sum(good & (np.abs(log.state_true[:, 2]) > np.radians(15.0))) / 100
        assert drift_s >= 60.0, (seed, drift_s)
        assert np.all(np.abs(log.state_true[good, 2]) <= VALID_MAX_SIDESLIP_RAD)


def test_sensor_settings_are_validated():
    with pytest.raises(ValueError, match="speed_std_mps"):
        Sensors(speed_std_mps=-0.1)
    with pytest.raises(ValueError, match="rate_hz"):
        Sensors(rate_hz=0.0)
