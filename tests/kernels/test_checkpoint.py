"""Checkpoints: damaged files, other models' files and non-finite values are told apart, and
every message names the file (issue 21, class 5)."""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from quadratic import model as _model, optimizer as _optimizer, problem as _problem

from physml.kernels import (
    CheckpointFormatError,
    CheckpointMismatchError,
    fit,
    load_params,
    load_tree,
    save_tree,
)


def _tree():
    return {"w": jnp.arange(12.0).reshape(3, 4), "b": jnp.ones(5), "n": jnp.asarray(3)}


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) - 7])
    elif how == "zero-byte":
        path.write_bytes(b"")
    elif how == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "text":
        path.write_text("this is not a checkpoint\n")


DAMAGE = ["truncated", "zero-byte", "random-bytes", "text"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_checkpoint_is_reported_as_damaged(tmp_path, how):
    path = tmp_path / "tree.eqx"
    save_tree(path, _tree())
    _damage(path, how)
    with pytest.raises(CheckpointFormatError, match="damaged or not a physml checkpoint") as e:
        load_tree(path, _tree())
    assert str(path) in str(e.value)
    assert "different model" not in str(e.value)


def test_other_models_checkpoint_is_a_mismatch_not_damage(tmp_path):
    path = tmp_path / "tree.eqx"
    save_tree(path, _tree())
    other = {"w": jnp.zeros((4, 4)), "b": jnp.ones(5), "n": jnp.asarray(3)}
    with pytest.raises(CheckpointMismatchError, match=r"shape \(4, 4\).*shape \(3, 4\)") as e:
        load_tree(path, other)
    assert str(path) in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(CheckpointMismatchError, match="holds 3 arrays"):
        load_tree(path, (_tree(), jnp.zeros(2)))
    back = load_tree(path, _tree())  # the sound file itself loads
    np.testing.assert_array_equal(back["w"], _tree()["w"])
    shapes = eqx.filter_eval_shape(_tree)  # as equinox recommends for `like`
    np.testing.assert_array_equal(load_tree(path, shapes)["w"], _tree()["w"])


def test_non_finite_checkpoint_is_refused_on_load(tmp_path):
    path = tmp_path / "nan.eqx"
    tree = {**_tree(), "b": jnp.array([1.0, jnp.nan, 1.0, 1.0, 1.0])}
    save_tree(path, tree, check_finite=False)
    with pytest.raises(CheckpointFormatError, match=r"non-finite values.*\['b'\]") as e:
        load_tree(path, _tree())
    assert str(path) in str(e.value)
    assert np.isnan(load_tree(path, _tree(), check_finite=False)["b"][1])


def _fit_checkpoint(path, **kw):
    return fit(
        _problem(noise=0.3),
        _model(),
        optimizer=_optimizer(),
        steps=4,
        key=jax.random.key(1),
        checkpoint_path=path,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize("how", DAMAGE)
def test_load_params_and_resume_report_a_damaged_checkpoint(tmp_path, how):
    path = tmp_path / "run.eqx"
    _fit_checkpoint(path)
    _damage(path, how)
    with pytest.raises(CheckpointFormatError, match="damaged") as e:
        load_params(path, _model())
    assert str(path) in str(e.value)
    with pytest.raises(CheckpointFormatError, match="damaged"):
        _fit_checkpoint(path, resume=True)


def test_load_params_refuses_nan_parameters(tmp_path):
    path = tmp_path / "run.eqx"
    run = _fit_checkpoint(path)
    state = run.state
    bad = type(state)(
        {"x": state.params["x"].at[0].set(jnp.nan), "counter": state.params["counter"]},
        state.opt_state,
        state.precond_state,
        state.key_data,
        state.step,
    )
    save_tree(path, bad, check_finite=False)
    with pytest.raises(CheckpointFormatError, match="non-finite"):
        load_params(path, _model())
    with pytest.raises(CheckpointFormatError, match="non-finite"):
        _fit_checkpoint(path, resume=True)


def test_load_params_mismatch_names_the_leaf(tmp_path):
    path = tmp_path / "run.eqx"
    _fit_checkpoint(path)
    with pytest.raises(CheckpointMismatchError, match=r"\['x'\].*shape \(4,\)"):
        load_params(path, {"x": jnp.zeros(4), "counter": jnp.zeros(())})
    assert os.path.getsize(path) > 0
    more = fit(
        _problem(),
        load_params(path, _model()),
        optimizer=optax.sgd(0.01),
        steps=1,
        key=jax.random.key(0),
        progress=False,
    )
    assert more.n_steps == 1
