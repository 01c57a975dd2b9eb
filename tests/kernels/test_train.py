"""The variational training loop: convergence, NaN stop, checkpoints, logs, callbacks."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physml.kernels import (
    AbstractObjective,
    AbstractPreconditioner,
    EarlyStopping,
    estimate,
    fit,
    load_params,
    load_tree,
)


class Quadratic(eqx.Module):
    """Stochastic quadratic ½(x − x*)ᵀ H (x − x*) with additive gradient noise."""

    hessian: jax.Array
    optimum: jax.Array
    noise: float = 0.0
    nan_at_step: int = -1  # inject a NaN loss when the model's counter reaches this step

    def value_and_grad(self, model, key):
        x = model["x"]
        d = x - self.optimum
        samples = 0.5 * d @ self.hessian @ d + self.noise * jax.random.normal(key, (64,))
        grad = self.hessian @ d + self.noise * jax.random.normal(key, d.shape)
        poisoned = jnp.where(model["counter"] == self.nan_at_step, jnp.nan, 0.0)
        stats = estimate(samples + poisoned)
        grads = {"x": grad, "counter": jnp.ones_like(model["counter"])}
        return stats, grads, {"metrics": {"dist": jnp.linalg.norm(d)}}


class QuadraticObjective(Quadratic, AbstractObjective):
    pass


def _problem(**kw):
    h = jnp.diag(jnp.array([1.0, 3.0, 10.0]))
    return QuadraticObjective(h, jnp.array([1.0, -2.0, 0.5]), **kw)


def _model():
    # "counter" is trained by a unit gradient with SGD lr = -1: it counts steps exactly.
    return {"x": jnp.zeros(3), "counter": jnp.zeros(())}


def _optimizer():
    return optax.multi_transform(
        {"x": optax.adam(0.05), "counter": optax.sgd(-1.0)},
        {"x": "x", "counter": "counter"},
    )


def test_minimises_quadratic_to_known_optimum():
    res = fit(
        _problem(),
        _model(),
        optimizer=_optimizer(),
        steps=600,
        key=jax.random.key(0),
        progress=False,
    )
    np.testing.assert_allclose(res.model["x"], [1.0, -2.0, 0.5], atol=1e-3)
    assert res.stop_reason is None and res.n_steps == 600
    assert res.history[-1]["dist"] < 1e-3 and len(res.history) == 600


def test_nan_at_step_k_stops_with_step_k_minus_1_parameters():
    k = 7
    ref = fit(
        _problem(), _model(), optimizer=_optimizer(), steps=k, key=jax.random.key(0), progress=False
    )
    res = fit(
        _problem(nan_at_step=k),
        _model(),
        optimizer=_optimizer(),
        steps=50,
        key=jax.random.key(0),
        progress=False,
    )
    assert res.stop_reason is not None and f"step {k}" in res.stop_reason
    assert "non-finite loss" in res.stop_reason
    assert res.n_steps == k and len(res.history) == k
    np.testing.assert_array_equal(res.model["x"], ref.model["x"])
    assert float(res.model["counter"]) == k


def test_nan_never_reaches_a_checkpoint(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    res = fit(
        _problem(nan_at_step=5),
        _model(),
        optimizer=_optimizer(),
        steps=20,
        key=jax.random.key(0),
        checkpoint_path=ckpt,
        checkpoint_every=1,
        progress=False,
    )
    assert res.n_steps == 5
    state = load_tree(ckpt, res.state)
    assert np.all(np.isfinite(state.params["x"])) and int(state.step) == 5


def test_load_params_warm_starts_under_another_optimizer(tmp_path):
    """The parameters of an adam run's checkpoint (adam's state has arrays of its own) come back
    bit for bit, and continue under plain SGD, whose state structure differs from adam's."""
    ckpt = tmp_path / "adam.eqx"
    run = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=7,
        key=jax.random.key(2),
        checkpoint_path=ckpt,
        checkpoint_every=7,
        progress=False,
    )
    warm = load_params(ckpt, _model())
    for name in ("x", "counter"):
        assert warm[name].tobytes() == run.model[name].tobytes()
    assert float(warm["counter"]) == 7.0 and not np.allclose(warm["x"], 0.0)
    more = fit(
        _problem(), warm, optimizer=optax.sgd(0.05), steps=3, key=jax.random.key(3), progress=False
    )
    assert more.n_steps == 3 and np.isfinite(more.history[-1]["loss"])

    with pytest.raises(ValueError, match="do not match the model"):
        load_params(ckpt, {"x": jnp.zeros(4), "counter": jnp.zeros(())})
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_params(tmp_path / "missing.eqx", _model())


def test_checkpoint_resume_is_bit_identical(tmp_path):
    n = 25
    full = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=2 * n,
        key=jax.random.key(1),
        progress=False,
    )
    ckpt = tmp_path / "ckpt" / "state.eqx"
    log = tmp_path / "log.jsonl"
    first = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=n,
        key=jax.random.key(1),
        checkpoint_path=ckpt,
        log_path=log,
        progress=False,
    )
    assert first.n_steps == n and ckpt.exists()
    second = fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=2 * n,
        key=jax.random.key(1),
        checkpoint_path=ckpt,
        log_path=log,
        resume=True,
        progress=False,
    )
    assert second.n_steps == 2 * n
    np.testing.assert_array_equal(second.model["x"], full.model["x"])
    assert second.model["x"].tobytes() == full.model["x"].tobytes()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(2 * n))
    assert [r["loss"] for r in lines] == [r["loss"] for r in full.history]
    assert list(tmp_path.glob("ckpt/*.tmp")) == []  # no temporary file left behind


def test_json_log_has_one_line_per_step(tmp_path):
    log = tmp_path / "log.jsonl"
    fit(
        _problem(),
        _model(),
        optimizer=_optimizer(),
        steps=13,
        key=jax.random.key(0),
        log_path=log,
        progress=False,
    )
    lines = log.read_text().splitlines()
    assert len(lines) == 13
    rec = json.loads(lines[-1])
    assert {"step", "loss", "loss_error", "loss_variance", "dist"} <= set(rec)


def test_early_stopping_restores_best():
    calls = []

    def val_loss(step, record, model):
        calls.append(step)
        return float(jnp.abs(model["x"][0] - 0.3))  # best when x[0] passes 0.3

    stopper = EarlyStopping(val_loss, patience=5, name="val_loss")
    res = fit(
        _problem(),
        _model(),
        optimizer=_optimizer(),
        steps=500,
        key=jax.random.key(0),
        callbacks=(stopper,),
        progress=False,
    )
    assert res.stop_reason is not None and "callback" in res.stop_reason
    assert res.n_steps < 500
    assert abs(float(res.model["x"][0]) - 0.3) == pytest.approx(stopper.best)
    assert "val_loss" in res.history[-1]


def test_preconditioner_is_applied():
    class Newton(AbstractPreconditioner):
        inverse_hessian: jax.Array

        def init(self, params):
            return jnp.zeros(())

        def __call__(self, grads, state, model, aux):
            return {"x": self.inverse_hessian @ grads["x"], "counter": grads["counter"]}, state + 1

    prob = _problem()
    opt = optax.multi_transform(
        {"x": optax.sgd(1.0), "counter": optax.sgd(-1.0)}, {"x": "x", "counter": "counter"}
    )
    res = fit(
        prob,
        _model(),
        optimizer=opt,
        steps=1,
        key=jax.random.key(0),
        preconditioner=Newton(jnp.linalg.inv(prob.hessian)),
        progress=False,
    )
    # One exact Newton step lands on the optimum.
    np.testing.assert_allclose(res.model["x"], prob.optimum, atol=1e-12)
    assert int(res.state.precond_state) == 1


def test_trainable_filter_freezes_parameters():
    model = {"x": jnp.zeros(3), "counter": jnp.zeros(())}
    spec = {"x": False, "counter": True}
    res = fit(
        _problem(),
        model,
        optimizer=optax.sgd(-1.0),
        steps=4,
        key=jax.random.key(0),
        trainable=spec,
        progress=False,
    )
    np.testing.assert_array_equal(res.model["x"], jnp.zeros(3))
    assert float(res.model["counter"]) == 4


def test_bad_input():
    with pytest.raises(TypeError, match="objective"):
        fit(lambda m, k: None, _model(), optimizer=_optimizer(), steps=3, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key"):
        fit(_problem(), _model(), optimizer=_optimizer(), steps=3, key=123)
    with pytest.raises(ValueError, match="steps"):
        fit(_problem(), _model(), optimizer=_optimizer(), steps=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="resume"):
        fit(
            _problem(),
            _model(),
            optimizer=_optimizer(),
            steps=3,
            key=jax.random.key(0),
            resume=True,
        )
    with pytest.raises(TypeError, match="optax"):
        fit(_problem(), _model(), optimizer="adam", steps=3, key=jax.random.key(0))
