"""The one variational training loop, shared by variational Monte Carlo and system
identification.

An objective supplies `value_and_grad(model, key) -> (stats, grads, aux)`. One training step is
one jitted pure function of an explicit `TrainState`: split the key, evaluate the objective,
apply an optional preconditioner (stochastic reconfiguration for VMC), apply an optax update,
and keep the previous state if anything came out non-finite. `fit` is the thin host-side driver
around it: progress bar, JSON-lines log, callbacks, atomic checkpoints and exact resumption.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optax
from jax.experimental import multihost_utils
from jaxtyping import Array, Bool, Int, PyTree

from ._callbacks import TimeLimit
from ._checkpoint import load_tree
from ._io import OutputWriteError, check_writable
from ._objective import AbstractObjective, AbstractPreconditioner
from ._outputs import Outputs, step_record
from ._progress import Progress
from ._stats import Stats, tree_all_finite
from ._stop import StopReason
from ._validate import (
    check_finite_tree,
    check_key,
    check_positive_int,
)


class TrainState(eqx.Module):
    """Everything a run needs to continue exactly: trainable parameters, optimizer and
    preconditioner states, the raw PRNG key data, and the number of completed steps."""

    params: PyTree
    opt_state: PyTree
    precond_state: PyTree
    key_data: Array
    step: Int[Array, ""]


class TrainStepInfo(eqx.Module):
    stats: Stats
    metrics: dict
    ok: Bool[Array, ""]
    failure: StopReason


def _trainable_spec(model: PyTree, trainable: PyTree | None) -> PyTree:
    if trainable is None:
        return jtu.tree_map(eqx.is_inexact_array, model)
    return trainable


def train_init(
    model: PyTree,
    optimizer: optax.GradientTransformation,
    *,
    key: Any,
    preconditioner: AbstractPreconditioner | None = None,
    trainable: PyTree | None = None,
) -> tuple[TrainState, PyTree]:
    """Split `model` into trainable parameters and the rest; return `(state, static)`."""
    key = check_key(key)
    params, static = eqx.partition(model, _trainable_spec(model, trainable))
    if not jtu.tree_leaves(params):
        raise ValueError("`model` has no trainable arrays (check `trainable`).")
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    state = TrainState(
        params=params,
        opt_state=optimizer.init(params),
        precond_state=None if preconditioner is None else preconditioner.init(params),
        key_data=jax.random.key_data(key) if typed else key,
        step=jnp.zeros((), jnp.int32),
    )
    return state, static


@eqx.filter_jit
def train_step(
    state: TrainState,
    static: PyTree,
    objective: AbstractObjective,
    optimizer: optax.GradientTransformation,
    preconditioner: AbstractPreconditioner | None = None,
) -> tuple[TrainState, TrainStepInfo]:
    """One update. If the loss, gradient or new parameters are non-finite, or the objective
    reports a collapsed sample batch (`aux["collapsed"]`), the returned state is the input
    state and `info.ok` is False with `info.failure` (a `StopReason`) saying which."""
    model = eqx.combine(state.params, static)
    key, sub = jax.random.split(jax.random.wrap_key_data(state.key_data))
    stats, grads, aux = objective.value_and_grad(model, sub)
    grads = eqx.filter(
        grads, jtu.tree_map(lambda p: p is not None, state.params, is_leaf=lambda x: x is None)
    )
    grads = jtu.tree_map(lambda p, g: g, state.params, grads)  # same structure as params
    loss_ok = jnp.isfinite(jnp.real(stats.mean)) & jnp.isfinite(stats.error_of_mean)
    grad_ok = tree_all_finite(grads)
    precond_state = state.precond_state
    if preconditioner is not None:
        grads, precond_state = preconditioner(grads, precond_state, model, aux)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = eqx.apply_updates(state.params, updates)
    update_ok = tree_all_finite(grads) & tree_all_finite(params) & tree_all_finite(opt_state)
    collapsed = jnp.asarray(aux.get("collapsed", False) if isinstance(aux, dict) else False)
    ok = loss_ok & grad_ok & update_ok & ~collapsed
    failure = StopReason.where(collapsed, StopReason.collapsed, StopReason.completed)
    failure = StopReason.where(update_ok, failure, StopReason.nonfinite_update)
    failure = StopReason.where(grad_ok, failure, StopReason.nonfinite_gradient)
    failure = StopReason.where(loss_ok, failure, StopReason.nonfinite_loss)
    new = TrainState(params, opt_state, precond_state, jax.random.key_data(key), state.step + 1)
    new_arrays, new_static = eqx.partition(new, eqx.is_array)
    old_arrays, _ = eqx.partition(state, eqx.is_array)
    kept = jtu.tree_map(lambda a, b: jnp.where(ok, a, b), new_arrays, old_arrays)
    metrics = aux.get("metrics", {}) if isinstance(aux, dict) else {}
    info = TrainStepInfo(stats=stats, metrics=metrics, ok=ok, failure=failure)
    return eqx.combine(kept, new_static), info


@dataclass
class TrainResult:
    """What `fit` returns.

    Attributes:
        model: the model with the last good (or, with `EarlyStopping(restore_best=True)`, the
            best) parameters.
        history: one dict per completed step (the same records as the JSON-lines log).
        n_steps: number of completed (accepted) updates, counting resumed ones.
        stop_reason: None if all steps ran; otherwise why the run stopped early (a sentence
            that begins with the message of `stop`).
        stop: the same as a `StopReason` (`StopReason.completed` if all steps ran or the run
            was not stopped).
        final_stats: the objective's `Stats` at the last evaluated step.
        state: the final `TrainState` (for continuing with `train_step`).
        wall_time_s: wall-clock time of this call [s].
    """

    model: PyTree
    history: list[dict] = field(default_factory=list)
    n_steps: int = 0
    stop_reason: str | None = None
    stop: StopReason = field(default_factory=lambda: StopReason.completed)
    final_stats: Stats | None = None
    state: TrainState | None = None
    wall_time_s: float = 0.0


def _check_same_on_every_process(state: TrainState) -> None:
    """Raise unless every process starts from the same parameters, key and step.

    JAX takes an array built on every process (a model, `jax.random.key(seed)`) to be one
    replicated global array without checking, so each process's own copy is compared here:
    a digest of the host values, gathered from all processes."""
    digest = hashlib.sha256()
    for leaf in jtu.tree_leaves(eqx.filter(state, eqx.is_array)):
        if isinstance(leaf, jax.Array):
            if not (leaf.is_fully_addressable or leaf.is_fully_replicated):
                continue  # sharded: each process holds different rows by design
            leaf = leaf.addressable_data(0)
        digest.update(np.ascontiguousarray(leaf).tobytes())
    try:
        multihost_utils.assert_equal(np.frombuffer(digest.digest(), np.uint32))
    except AssertionError:
        raise ValueError(
            f"Process {jax.process_index()} of {jax.process_count()} starts `fit` from a "
            "different model, key or step than the others. Every process must call `fit` with "
            "the same arguments and key; with `resume=True`, `checkpoint_path` must be the same "
            "file for every process (a shared file system)."
        ) from None


def load_params(
    path: str | os.PathLike, model: PyTree, *, trainable: PyTree | None = None
) -> PyTree:
    """`model` with the trained parameters of a `fit` checkpoint at `path`: a warm start under a
    new optimiser or schedule. Only the parameters are read (`TrainState.params`, the first
    field, so written first); the checkpoint's optimiser state, key and step count are not, so
    they need not match. `model` and `trainable` give the structure, shapes and dtypes and must
    be those of the run that wrote it.

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointFormatError: the file is damaged, not a physml checkpoint, or holds NaN/inf.
        CheckpointMismatchError: the parameters do not match `model` (a different architecture
            or `trainable`).
    """
    params, static = eqx.partition(model, _trainable_spec(model, trainable))
    # equinox reads leaves in order: the params' prefix of the checkpoint only.
    params = load_tree(path, params, exact=False, what="model (its trainable parameters)")
    return eqx.combine(params, static)


def fit(
    objective: AbstractObjective,
    model: PyTree,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    key: Any,
    preconditioner: AbstractPreconditioner | None = None,
    trainable: PyTree | None = None,
    callbacks: tuple = (),
    log_path: str | os.PathLike | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> TrainResult:
    """Minimise `objective` over the trainable arrays of `model` for up to `steps` steps.

    Args:
        objective: an `AbstractObjective`.
        model: the initial model (any PyTree, typically an equinox Module); must be finite.
        optimizer: an optax transformation.
        steps: total number of steps of the run, counting those done before a resume.
        key: PRNG key; step k uses the k-th split of it, so a run is reproducible.
        preconditioner: optional `AbstractPreconditioner`.
        trainable: filter spec (a PyTree of bools shaped like `model`, as for `eqx.partition`)
            choosing the trained arrays; default: all inexact arrays.
        callbacks: host-side callables `cb(step, record, model) -> bool | None` (see
            `EarlyStopping`, `TimeLimit`); True stops the run (`TrainResult.stop` is
            `StopReason.time_limit` if the first stopping callback is a `TimeLimit`, else
            `StopReason.callback`), and its `message`
            attribute, if it has one, is quoted in `stop_reason`.
        log_path: JSON-lines log, one line per completed step. On resume, the records after
            the checkpoint's step are dropped before the run continues, so every step has one
            record however often a run is resumed; a kill never leaves half a line.
        checkpoint_path: where to write the `TrainState` atomically: every `checkpoint_every`
            steps (if given) and at the end. Non-finite states are never written.
        resume: continue from `checkpoint_path` if it exists (bit-identical to an uninterrupted
            run with the same arguments).
        progress: show progress with the running loss and its error: a bar on a terminal, a
            line every 10 s in a non-interactive log.
        desc: progress label.

    Every argument is checked, and the log's and checkpoint's folders are checked writable,
    before the first step. A write that fails during the run (a full disk) does not stop it: a
    `RuntimeWarning` names the file and the reason, the write is retried at the next
    opportunity, and if the final checkpoint or the log still cannot be written, `fit` raises
    `OutputWriteError` ("no space left on device (ENOSPC)") with the finished `TrainResult` as
    its `.result`, so no work is lost.

    Several processes (after `jax.distributed.initialize()`): every process calls `fit` with
    the same arguments and key, and the batch of a sharding objective (`VMCObjective`) is split
    over all processes' devices. Process 0 alone writes `log_path` and the checkpoints; the
    others wait at the end until the last checkpoint is written. `resume=True` needs the
    checkpoint on a file system every process reads. Callbacks run on every process and see
    the same records.

    Returns:
        A `TrainResult`. A non-finite loss, gradient or update stops the run at that step; the
        result then holds the parameters from before the step, and `stop` / `stop_reason` say
        which. A collapsed sample batch (`aux["collapsed"]`) at step k stops the run with the
        parameters from before step k − 1, the last ones whose samples had not collapsed.

    Raises:
        OutputWriteError: an output location is not writable (before any step), or an output
            could not be written at the end (`.result` holds the `TrainResult`).
        CheckpointFormatError, CheckpointMismatchError: `resume=True` and the checkpoint is
            damaged or of another model.
    """
    if not isinstance(objective, AbstractObjective):
        raise TypeError(
            f"`objective` must be an `AbstractObjective`, got {type(objective).__name__}."
        )
    if preconditioner is not None and not isinstance(preconditioner, AbstractPreconditioner):
        raise TypeError(
            "`preconditioner` must be an `AbstractPreconditioner` or None, got "
            f"{type(preconditioner).__name__}."
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"`optimizer` must be an optax GradientTransformation, got {type(optimizer).__name__}."
        )
    steps = check_positive_int(steps, "steps")
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if resume and checkpoint_path is None:
        raise ValueError("`resume=True` needs a `checkpoint_path` to resume from.")
    check_finite_tree(model, "model")
    writes_files = jax.process_index() == 0
    if writes_files:
        if checkpoint_path is not None:
            check_writable(checkpoint_path, name="checkpoint")
        if log_path is not None:
            check_writable(log_path, name="log")

    start = time.perf_counter()
    state, static = train_init(
        model, optimizer, key=key, preconditioner=preconditioner, trainable=trainable
    )
    if resume and Path(checkpoint_path).is_file():
        state = load_tree(checkpoint_path, state, what="training state of this run")
    multi_process = jax.process_count() > 1
    if multi_process:
        _check_same_on_every_process(state)
    first = int(state.step)
    result = TrainResult(model=eqx.combine(state.params, static), n_steps=first, state=state)
    outputs = Outputs(
        checkpoint_path if writes_files else None,
        log_path if writes_files else None,
        resume_step=first if resume else None,
    )
    bar = Progress(steps, initial=first, desc=desc, enabled=progress)
    previous = None  # the state before the last accepted step (undone if the next collapses)
    try:
        for k in range(first, steps):
            new_state, info = train_step(state, static, objective, optimizer, preconditioner)
            result.final_stats = info.stats
            if not bool(info.ok):
                result.stop = info.failure
                reason = StopReason[info.failure]
                if bool(info.failure == StopReason.collapsed):
                    if previous is None:
                        how = "returning the parameters it started from"
                    else:  # the parameters of step k collapsed: undo step k − 1 as well
                        state, previous = previous, None
                        result.history.pop()
                        outputs.drop_last_record()
                        how = (
                            f"returning the parameters from before step {k - 1}, the last "
                            "whose samples had not collapsed"
                        )
                    result.stop_reason = f"{reason} at step {k}; {how}"
                else:
                    result.stop_reason = (
                        f"{reason} at step {k}; returning the parameters from before that step"
                    )
                break
            previous, state = state, new_state
            rec = step_record(k, info.stats, info.metrics)
            current = eqx.combine(state.params, static)
            stopped_by = [cb for cb in callbacks if bool(cb(k, rec, current))]  # calls them all
            result.history.append(rec)
            outputs.record(rec)
            bar.update(1, f"{rec['loss']:.6g} ± {rec['loss_error']:.2g}")
            if checkpoint_every and (k + 1) % checkpoint_every == 0:
                outputs.checkpoint(state)
            if stopped_by:
                why = "; ".join(str(m) for cb in stopped_by if (m := getattr(cb, "message", None)))
                first = stopped_by[0]
                result.stop = (
                    StopReason.time_limit if isinstance(first, TimeLimit) else StopReason.callback
                )
                result.stop_reason = (
                    f"{StopReason[result.stop]}{f' ({why})' if why else ''} after step {k}"
                )
                break
    finally:
        bar.close()
        outputs.close()
    outputs.checkpoint(state, final=True)
    if multi_process:  # no process returns before the checkpoint exists
        multihost_utils.sync_global_devices("physml.kernels.fit: final checkpoint")
    model_out = eqx.combine(state.params, static)
    for cb in callbacks:
        if hasattr(cb, "final_model"):
            model_out = cb.final_model(model_out)
    result.model = model_out
    result.state = state
    result.n_steps = int(state.step)
    result.wall_time_s = time.perf_counter() - start
    if outputs.failed:
        what, cause = next(iter(outputs.failed.items()))
        others = [f"the {w} ({e.reason})" for w, e in outputs.failed.items() if w != what]
        also = f"; also could not write {', '.join(others)}" if others else ""
        err = OutputWriteError(
            cause.path,
            f"{cause.reason}{also}. Training finished ({result.n_steps} steps): the result is "
            "attached to this error as `.result`",
            errno_=cause.errno,
        )
        err.result = result
        raise err from cause
    return result
