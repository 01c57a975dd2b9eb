"""`ground_state`: the one high-level VMC workflow, and the energy estimates it ends with.

Copy and edit it rather than subclass it: it is `VMCObjective` (which reports a sample batch
collapsed onto configurations that are not an eigenstate) + `physml.kernels.fit` with a
step-indexed learning rate (`hold_cosine_schedule`), an optional wall-clock budget (`TimeLimit`)
and checkpoints to resume from + a final energy estimate with more samples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..kernels import (
    AbstractPreconditioner,
    OutputWriteError,
    Stats,
    StopReason,
    TimeLimit,
    estimate,
    fit,
    hold_cosine_schedule,
)
from ..kernels._validate import (
    check_finite_tree,
    check_key,
    check_positive_int,
    check_positive_number,
    is_finite_scalar,
)
from ._collapse import collapsed_batch, off_diagonal
from ._result import Result
from ._sr import SR
from ._vmc import VMCObjective, check_compatible, draw_samples, local_energies

__all__ = [
    "evaluate_energy",
    "full_sum_energy",
    "ground_state",
]


def ground_state(
    hamiltonian: Any,
    model: Any,
    *,
    n_samples: int,
    steps: int,
    key: Any,
    optimizer: optax.GradientTransformation | None = None,
    preconditioner: AbstractPreconditioner | None = None,
    learning_rate: float | int | None = None,
    final_learning_rate: float | int | None = None,
    hold_fraction: float | int = 0.5,
    time_limit_s: float | int | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    n_eval_samples: int | None = None,
    exact: float | None = None,
    progress: bool = True,
    log_path: str | Path | None = None,
    callbacks: tuple = (),
) -> Result:
    """Variational ground state of `hamiltonian` with exact-sampling VMC.

    Args:
        hamiltonian: NetKet JAX operator on `Spin(1/2, N)` (e.g. `tfim(N, h)`), Pauli units.
        model: an autoregressive model with `n_sites == N` (`ARConv1D`, `ARConv2D`,
            `FixedMagnetization`) or a `Symmetrized` one (see `check_compatible`); a warm start
            is a trained model, e.g. one `transfer`red from a smaller lattice.
        n_samples: samples per step (>= 2).
        steps: optimisation steps of the whole run (counting those before a resume).
        key: PRNG key (training uses one split, the final estimate the other).
        optimizer: an optax transform, or None for the default recipe: SGD with the step
            `hold_cosine_schedule(learning_rate, steps, final_learning_rate=...,
            hold_fraction=...)` when there is a preconditioner (SR), Adam (b2 = 0.9, as in the
            NAQS paper's code) with that schedule otherwise.
        preconditioner: e.g. `SR(diag_shift=1e-3)`.
        learning_rate: the default recipe's initial step; default 0.05 with a preconditioner,
            1e-3 without. Not with `optimizer`.
        final_learning_rate: if given, the step is held for `hold_fraction` of `steps` and then
            cosine-decayed to this by the last step (SR: the imaginary-time step shrinks as
            the state converges, lowering the noise floor of the updates). Not with `optimizer`.
        hold_fraction: fraction of `steps` at the initial step, in [0, 1].
        time_limit_s: wall-clock budget of the training [s] (`TimeLimit`; the final estimate
            comes on top): training stops after the last step that fits, `stop_reason` says
            so, and with `checkpoint_path` a call with `resume=True` and the same arguments
            continues the same step-indexed schedule.
        checkpoint_path: where `fit` writes the training state (every `checkpoint_every`
            steps if given, and at the end).
        checkpoint_every: steps between checkpoints.
        resume: continue from `checkpoint_path` if it exists (as `fit`).
        n_eval_samples: samples for the final estimate (>= 2; default 4 × n_samples).
        exact: a finite reference energy; if given, `info` gets the relative error (None when
            `exact` is 0, where it is undefined).
        progress: show progress (running energy ± error).
        log_path: JSON-lines training log.
        callbacks: passed to `fit`.

    Every argument is checked, and `log_path` checked writable, before the first step. A
    batch of samples that collapses onto one configuration (`collapsed_batch`; an absurd or
    negative learning rate does this) stops training with the last parameters that had not
    collapsed and `stop_reason` saying so.

    Returns:
        A `Result` (with the V-score of its estimate, `Result.v_score`).

    Raises:
        OutputWriteError: the log could not be written at the end of training; the finished
            `Result` is attached as `.result`.
    """
    check_compatible(hamiltonian, model)
    check_finite_tree(model, "model")
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples < 2:
        raise ValueError(f"`n_samples` must be >= 2, got {n_samples}.")
    steps = check_positive_int(steps, "steps")
    n_eval = 4 * n_samples if n_eval_samples is None else n_eval_samples
    n_eval = check_positive_int(n_eval, "n_eval_samples")
    if n_eval < 2:
        raise ValueError(f"`n_eval_samples` must be >= 2 for an error bar, got {n_eval}.")
    if exact is not None and (isinstance(exact, (bool, str)) or not is_finite_scalar(exact)):
        raise ValueError(f"`exact` must be a finite reference energy or None, got {exact!r}.")
    key = check_key(key)
    if optimizer is None:
        default = 1e-3 if preconditioner is None else 0.05
        schedule = hold_cosine_schedule(
            default if learning_rate is None else learning_rate,
            steps,
            final_learning_rate=final_learning_rate,
            hold_fraction=hold_fraction,
        )
        optimizer = optax.adam(schedule, b2=0.9) if preconditioner is None else optax.sgd(schedule)
    elif learning_rate is not None or final_learning_rate is not None or hold_fraction != 0.5:
        raise ValueError(
            "Give the learning rate either through `optimizer` or through `learning_rate`, "
            "`final_learning_rate` and `hold_fraction` (the default recipe), not both."
        )
    callbacks = tuple(callbacks)
    if time_limit_s is not None:
        callbacks += (TimeLimit(check_positive_number(time_limit_s, "time_limit_s")),)
    train_key, eval_key = jax.random.split(key)
    # SR builds its update from the per-sample log-derivatives; the plain gradient is not used.
    objective = VMCObjective(hamiltonian, n_samples, gradient=not isinstance(preconditioner, SR))
    try:
        run = fit(
            objective,
            model,
            optimizer=optimizer,
            steps=steps,
            key=train_key,
            preconditioner=preconditioner,
            callbacks=callbacks,
            log_path=log_path,
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
            desc="VMC energy",
        )
    except OutputWriteError as err:
        if err.result is None:
            raise
        err.result = _result(hamiltonian, model.n_sites, err.result, n_eval, eval_key, exact)
        raise
    return _result(hamiltonian, model.n_sites, run, n_eval, eval_key, exact)


def _result(hamiltonian, n_sites, run, n_eval, eval_key, exact) -> Result:
    """The final estimate of a finished `fit` run, as a `Result`."""
    try:
        energy, spread = _evaluate(hamiltonian, run.model, n_eval, key=eval_key, chunk=4096)
    except FloatingPointError as err:
        if run.stop_reason is None:
            raise
        raise FloatingPointError(f"Training stopped early ({run.stop_reason}); {err}") from err
    stop_reason = run.stop_reason
    info: dict = {"n_sites": n_sites, "collapsed": bool(run.stop == StopReason.collapsed)}
    if spread is not None:  # a collapsed state: Var(E_loc) misses the weight H moves out of it
        info["collapsed"] = True
        var = energy.variance + spread
        energy = eqx.tree_at(
            lambda e: (e.variance, e.error_of_mean),
            energy,
            (var, jnp.sqrt(var * energy.tau_corr / energy.n_samples).astype(var.dtype)),
        )
        if stop_reason is None:
            stop_reason = (
                f"{StopReason[StopReason.collapsed]} in the final estimate: the state sits on "
                "configurations that are not an eigenstate"
            )
    if exact is not None:
        info["exact"] = float(exact)
        info["relative_error"] = (
            None if exact == 0 else abs((float(energy.mean.real) - exact) / exact)
        )
    return Result(
        energy=energy,
        variance=float(energy.variance),
        history=run.history,
        model=run.model,
        stop_reason=stop_reason,
        wall_time_s=run.wall_time_s,
        info=info,
        n_steps=run.n_steps,
    )


@eqx.filter_jit
def _energy_batch(model, hamiltonian, n, key):
    sigma = model.to_spins(draw_samples(model, n, key=key))
    e_loc = local_energies(model, hamiltonian, sigma)
    spread = jnp.mean(off_diagonal(hamiltonian, sigma)[2])
    return e_loc, collapsed_batch(model, hamiltonian, sigma, e_loc), spread


def evaluate_energy(
    hamiltonian: Any,
    model: Any,
    n_samples: int,
    *,
    key: Any,
    chunk: int = 4096,
) -> Stats:
    """⟨H⟩ from `n_samples` exact samples, in chunks of `chunk` (bounded memory).

    Raises:
        FloatingPointError: some local energies are non-finite (say how many).
    """
    return _evaluate(hamiltonian, model, n_samples, key=key, chunk=chunk)[0]


def _evaluate(hamiltonian, model, n_samples, *, key, chunk) -> tuple[Stats, float | None]:
    """`evaluate_energy`, and, if every chunk of samples has collapsed (`collapsed_batch`),
    the mean over the samples of Σ_σ'≠σ |H_σ'σ|² (else None): the variance that E_loc misses
    when ψ vanishes on every configuration H connects the samples to."""
    check_compatible(hamiltonian, model)
    n_samples = check_positive_int(n_samples, "n_samples")
    sizes = [chunk] * (n_samples // chunk) + ([n_samples % chunk] if n_samples % chunk else [])
    keys = jax.random.split(check_key(key), len(sizes))
    batches = [_energy_batch(model, hamiltonian, s, k) for s, k in zip(sizes, keys, strict=True)]
    e_loc = np.concatenate([np.asarray(b[0]) for b in batches])
    collapsed = all(bool(b[1]) for b in batches)
    spread = float(np.average([float(b[2]) for b in batches], weights=sizes))
    bad = int(np.sum(~np.isfinite(e_loc)))
    if bad:
        raise FloatingPointError(
            f"{bad} of {n_samples} local energies are non-finite: the model assigns ψ ≈ 0 to "
            "configurations connected by the Hamiltonian, or its parameters are not finite."
        )
    out = estimate(e_loc)
    if not math.isfinite(float(out.error_of_mean)):
        raise FloatingPointError("The energy estimate's error is non-finite.")
    return out, (spread if collapsed else None)


@eqx.filter_jit
def _log_psi(model, sigma):
    return model.log_psi(sigma)


def full_sum_energy(
    hamiltonian: Any,
    model: Any,
    *,
    max_states: int = 1 << 20,
    chunk: int = 4096,
) -> float:
    """The exact variational energy ⟨ψ|H|ψ⟩ / ⟨ψ|ψ⟩ of `model`, summed over every basis state
    of `hamiltonian`'s Hilbert space (NetKet's "full sum"; Pauli units).

    No sampling error, so it settles what an `evaluate_energy` error bar cannot, on systems
    small enough to enumerate: `hilbert.n_states` configurations (12870 for the 4×4
    Heisenberg model in Sᶻ = 0, 65536 for the 4×4 TFIM), each costing one network pass per
    symmetry image, and H as a scipy sparse matrix. ψ is rescaled by its largest modulus
    before the sum, and the quotient does not assume ψ is normalised.

    Raises:
        ValueError: the Hilbert space has more than `max_states` states.
        FloatingPointError: ψ is non-finite (NaN or +inf) on some configuration.
    """
    check_compatible(hamiltonian, model)
    max_states = check_positive_int(max_states, "max_states")
    chunk = check_positive_int(chunk, "chunk")
    hilbert = hamiltonian.hilbert
    if hilbert.n_states > max_states:
        raise ValueError(
            f"The Hilbert space has {hilbert.n_states} states, more than `max_states`="
            f"{max_states}; raise it (time and memory grow with the count) or estimate the "
            "energy by sampling (`evaluate_energy`)."
        )
    states = np.asarray(hilbert.all_states(), dtype=float)
    n, chunk = len(states), min(chunk, len(states))
    # The last chunk padded to full size: one compiled program for every chunk.
    padded = np.concatenate([states, np.repeat(states[-1:], -n % chunk, axis=0)])
    log_psi = np.concatenate(
        [np.asarray(_log_psi(model, jnp.asarray(padded[i : i + chunk])))
         for i in range(0, n, chunk)]
    )[:n]  # fmt: skip
    bad = np.isnan(log_psi) | (np.real(log_psi) == np.inf)
    if bad.any():
        raise FloatingPointError(f"log ψ is NaN or +inf on {int(bad.sum())} of {n} states.")
    psi = np.exp(log_psi - np.max(np.real(log_psi)))
    h_psi = hamiltonian.to_sparse() @ psi
    return float(np.real(np.vdot(psi, h_psi)) / np.real(np.vdot(psi, psi)))
