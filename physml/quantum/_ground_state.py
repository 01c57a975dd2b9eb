"""`ground_state`: the one high-level VMC workflow, and its `Result`.

Copy and edit it rather than subclass it: it is `VMCObjective` + `physml.kernels.fit` + a final
energy estimate with more samples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..kernels import AbstractPreconditioner, Stats, estimate, fit
from ..kernels._validate import check_finite_tree, check_key, check_positive_int
from ._sr import SR
from ._vmc import VMCObjective, check_compatible, draw_samples, local_energies

__all__ = ["Result", "evaluate_energy", "full_sum_energy", "ground_state"]


def _with(path: Path, suffix: str) -> Path:
    return path.parent / (path.name + suffix)


@dataclass
class Result:
    """Outcome of `ground_state`.

    Attributes:
        energy: final energy estimate (Pauli units) from `n_eval_samples` fresh samples.
        variance: Var(E_loc) of that estimate (0 for an exact eigenstate).
        history: one dict per training step ("step", "loss" = energy, "loss_error",
            "loss_variance", ...).
        model: the trained model (last good parameters).
        stop_reason: None, or why training stopped early (e.g. a non-finite energy).
        wall_time_s: wall-clock time of training and evaluation [s].
    """

    energy: Stats
    variance: float
    history: list[dict]
    model: Any  # an AbstractAutoregressiveModel or a Symmetrized one
    stop_reason: str | None = None
    wall_time_s: float = 0.0
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready numbers (no model)."""
        e = self.energy.to_dict()
        return {
            "energy": e["mean"],
            "energy_error": e["error_of_mean"],
            "variance": self.variance,
            "n_samples": e["n_samples"],
            "n_steps": len(self.history),
            "stop_reason": self.stop_reason,
            "wall_time_s": self.wall_time_s,
            **self.info,
        }

    def save(self, path: str | Path) -> None:
        """Write `path`.json (summary and history) and `path`.eqx (model parameters)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Append suffixes (not `with_suffix`): stems such as "tfim_h0.5" contain dots.
        data = {"summary": self.summary(), "energy": self.energy.to_dict(), "history": self.history}
        with open(_with(path, ".json"), "w") as f:
            json.dump(data, f, indent=1)
        eqx.tree_serialise_leaves(_with(path, ".eqx"), self.model)

    @classmethod
    def load(cls, path: str | Path, *, like: Any) -> Result:
        """Read a `Result` written by `save`; `like` is a model of the same architecture."""
        path = Path(path)
        with open(_with(path, ".json")) as f:
            data = json.load(f)
        model = eqx.tree_deserialise_leaves(_with(path, ".eqx"), like)
        e = data["energy"]
        energy = Stats(
            mean=jnp.asarray(e["mean"] + 1j * e["mean_imag"] if "mean_imag" in e else e["mean"]),
            error_of_mean=jnp.asarray(e["error_of_mean"]),
            variance=jnp.asarray(e["variance"]),
            n_samples=jnp.asarray(e["n_samples"]),
            tau_corr=jnp.asarray(e["tau_corr"]),
        )
        s = data["summary"]
        known = {
            "energy",
            "energy_error",
            "variance",
            "n_samples",
            "n_steps",
            "stop_reason",
            "wall_time_s",
        }
        return cls(
            energy=energy,
            variance=s["variance"],
            history=data["history"],
            model=model,
            stop_reason=s["stop_reason"],
            wall_time_s=s["wall_time_s"],
            info={k: v for k, v in s.items() if k not in known},
        )


def ground_state(
    hamiltonian: Any,
    model: Any,
    *,
    n_samples: int,
    steps: int,
    key: Any,
    optimizer: optax.GradientTransformation | None = None,
    preconditioner: AbstractPreconditioner | None = None,
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
            `FixedMagnetization`) or a `Symmetrized` one (see `check_compatible`).
        n_samples: samples per step.
        steps: optimisation steps.
        key: PRNG key (training uses one split, the final estimate the other).
        optimizer: optax transform; default Adam(1e-3, b2=0.9) as in the NAQS paper's code.
        preconditioner: e.g. `SR(diag_shift=1e-3)` (then use `optax.sgd`).
        n_eval_samples: samples for the final estimate (default 4 × n_samples).
        exact: a reference energy; if given, `info` gets the relative error.
        progress: show the progress bar (running energy ± error).
        log_path: JSON-lines training log.
        callbacks: passed to `fit`.

    Returns:
        A `Result`.
    """
    check_compatible(hamiltonian, model)
    check_finite_tree(model, "model")
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples < 2:
        raise ValueError(f"`n_samples` must be >= 2, got {n_samples}.")
    steps = check_positive_int(steps, "steps")
    n_eval = 4 * n_samples if n_eval_samples is None else n_eval_samples
    n_eval = check_positive_int(n_eval, "n_eval_samples")
    key = check_key(key)
    if optimizer is None:
        optimizer = optax.adam(1e-3, b2=0.9)
    train_key, eval_key = jax.random.split(key)
    # SR builds its update from the per-sample log-derivatives; the plain gradient is not used.
    objective = VMCObjective(hamiltonian, n_samples, gradient=not isinstance(preconditioner, SR))
    run = fit(
        objective,
        model,
        optimizer=optimizer,
        steps=steps,
        key=train_key,
        preconditioner=preconditioner,
        callbacks=callbacks,
        log_path=log_path,
        progress=progress,
        desc="VMC energy",
    )
    try:
        energy = evaluate_energy(hamiltonian, run.model, n_eval, key=eval_key)
    except FloatingPointError as err:
        if run.stop_reason is None:
            raise
        raise FloatingPointError(f"Training stopped early ({run.stop_reason}); {err}") from err
    info: dict = {"n_sites": model.n_sites}
    if exact is not None:
        info["exact"] = float(exact)
        info["relative_error"] = abs((float(energy.mean.real) - exact) / exact)
    return Result(
        energy=energy,
        variance=float(energy.variance),
        history=run.history,
        model=run.model,
        stop_reason=run.stop_reason,
        wall_time_s=run.wall_time_s,
        info=info,
    )


@eqx.filter_jit
def _energy_batch(model, hamiltonian, n, key):
    x = draw_samples(model, n, key=key)
    return local_energies(model, hamiltonian, model.to_spins(x))


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
    check_compatible(hamiltonian, model)
    n_samples = check_positive_int(n_samples, "n_samples")
    sizes = [chunk] * (n_samples // chunk) + ([n_samples % chunk] if n_samples % chunk else [])
    keys = jax.random.split(check_key(key), len(sizes))
    e_loc = np.concatenate(
        [
            np.asarray(_energy_batch(model, hamiltonian, s, k))
            for s, k in zip(sizes, keys, strict=False)
        ]
    )
    bad = int(np.sum(~np.isfinite(e_loc)))
    if bad:
        raise FloatingPointError(
            f"{bad} of {n_samples} local energies are non-finite: the model assigns ψ ≈ 0 to "
            "configurations connected by the Hamiltonian, or its parameters are not finite."
        )
    out = estimate(e_loc)
    if not math.isfinite(float(out.error_of_mean)):
        raise FloatingPointError("The energy estimate's error is non-finite.")
    return out


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
