"""`Result`: what `ground_state` returns, and its save/load as a `.eqx` + `.json` pair written
atomically together; `v_score`, the accuracy measure of variational benchmarks."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax.numpy as jnp

from ..kernels import (
    CheckpointFormatError,
    OutputWriteError,
    Stats,
    check_writable,
    load_tree,
    write_atomic_group,
)

__all__ = ["Result", "v_score"]


def _with(path: Path, suffix: str) -> Path:
    return path.parent / (path.name + suffix)


def v_score(energy: float | int, variance: float | int, n_sites: int) -> float | None:
    """The V-score N·Var(E)/(E − E_∞)² of a variational energy estimate, with E_∞ = 0 (Wu et
    al., "Variational benchmarks for quantum many-body problems", Science 386, 296 (2024),
    eq. 1; E_∞ = 0 for Hamiltonians without a constant term, as the TFIM and Heisenberg here).

    Args:
        energy: the energy estimate E (its real part), in any units.
        variance: Var(E) = ⟨H²⟩ − ⟨H⟩², in the square of the same units (so the V-score does
            not depend on them: Pauli or spin-1/2 units give the same number).
        n_sites: N, the number of sites.

    Returns:
        The V-score (0 for an exact eigenstate), or None when E = 0 (undefined).
    """
    energy, variance = float(energy), float(variance)
    if isinstance(n_sites, bool) or not isinstance(n_sites, int) or n_sites < 1:
        raise ValueError(f"`n_sites` must be an integer >= 1, got {n_sites!r}.")
    if not (math.isfinite(energy) and math.isfinite(variance)) or variance < 0:
        raise ValueError(
            f"`energy` and `variance` must be finite and `variance` >= 0, got {energy!r}, "
            f"{variance!r}."
        )
    return None if energy == 0 else n_sites * variance / energy**2


@dataclass
class Result:
    """Outcome of `ground_state`.

    Attributes:
        energy: final energy estimate (Pauli units) from `n_eval_samples` fresh samples.
        variance: the energy variance ⟨H²⟩ − ⟨H⟩² of the state, estimated by Var(E_loc) over
            those samples. Var(E_loc) = 0 means an eigenstate only if the samples explore the
            state: when ψ has collapsed onto configurations that H connects to others on which
            ψ vanishes (`collapsed_batch`, e.g. one configuration), Var(E_loc) is 0 for any
            state. Then `info["collapsed"]` is True, `stop_reason` says so, and `variance`
            (and the energy's error) add the weight H moves out of those configurations,
            the mean of Σ_σ'≠σ |H_σ'σ|² over the samples, so that it is not 0.
        history: one dict per training step ("step", "loss" = energy, "loss_error",
            "loss_variance", ...).
        model: the trained model (last good parameters).
        stop_reason: None, or why training stopped early (a non-finite energy, a collapsed
            state).
        wall_time_s: wall-clock time of training and evaluation [s].
        info: "n_sites", "collapsed", and with a reference energy "exact" and
            "relative_error" (None when the reference is 0).
        n_steps: completed training steps, counting those before a resume (None: the number
            of `history` records).
    """

    energy: Stats
    variance: float
    history: list[dict]
    model: Any  # an AbstractAutoregressiveModel or a Symmetrized one
    stop_reason: str | None = None
    wall_time_s: float = 0.0
    info: dict = field(default_factory=dict)
    n_steps: int | None = None

    @property
    def v_score(self) -> float | None:
        """N·Var(E)/E² of the final estimate (`v_score`); None when E = 0 or N is unknown."""
        n = self.info.get("n_sites")
        return None if n is None else v_score(float(self.energy.mean.real), self.variance, n)

    def summary(self) -> dict:
        """JSON-ready numbers (no model), with the V-score beside the relative error."""
        e = self.energy.to_dict()
        return {
            "energy": e["mean"],
            "energy_error": e["error_of_mean"],
            "variance": self.variance,
            "v_score": self.v_score,
            "n_samples": e["n_samples"],
            "n_steps": len(self.history) if self.n_steps is None else self.n_steps,
            "stop_reason": self.stop_reason,
            "wall_time_s": self.wall_time_s,
            **self.info,
        }

    def save(self, path: str | Path) -> None:
        """Write `path`.eqx (model parameters) and `path`.json (summary and history).

        Both are written in full to temporary files before either replaces an earlier one,
        the `.eqx` first (`write_atomic_group`): a failed write (a full disk, a read-only
        folder) leaves an earlier pair as it was and raises `OutputWriteError`, whose `.result`
        is this `Result`.
        """
        path = Path(path)
        # Append suffixes (not `with_suffix`): stems such as "tfim_h0.5" contain dots.
        eqx_path, json_path = _with(path, ".eqx"), _with(path, ".json")
        data = {"summary": self.summary(), "energy": self.energy.to_dict(), "history": self.history}
        text = json.dumps(data, indent=1).encode("utf-8")
        try:
            check_writable(eqx_path, name="result")
            write_atomic_group(
                [
                    (eqx_path, lambda f: eqx.tree_serialise_leaves(f, self.model)),
                    (json_path, lambda f: f.write(text)),
                ]
            )
        except OutputWriteError as err:
            err.result = self
            raise

    @classmethod
    def load(cls, path: str | Path, *, like: Any) -> Result:
        """Read a `Result` written by `save`; `like` is a model of the same architecture.

        Raises:
            FileNotFoundError: a file of the pair is missing.
            CheckpointFormatError: the `.eqx` is damaged or holds NaN/inf (`load_tree`).
            CheckpointMismatchError: the `.eqx` is of another architecture than `like`.
            CheckpointFormatError: the `.json` is damaged or not a `Result` summary.
        """
        path = Path(path)
        json_path = _with(path, ".json")
        try:
            with open(json_path, encoding="utf-8") as f:
                data = json.load(f)
            s, e, history = data["summary"], data["energy"], data["history"]
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointFormatError(
                f"{str(json_path)!r} is damaged or not a physml `Result` summary: {e!r}"
            ) from None
        model = load_tree(_with(path, ".eqx"), like, what="model")
        energy = Stats(
            mean=jnp.asarray(e["mean"] + 1j * e["mean_imag"] if "mean_imag" in e else e["mean"]),
            error_of_mean=jnp.asarray(e["error_of_mean"]),
            variance=jnp.asarray(e["variance"]),
            n_samples=jnp.asarray(e["n_samples"]),
            tau_corr=jnp.asarray(e["tau_corr"]),
        )
        known = {
            "energy",
            "energy_error",
            "variance",
            "n_samples",
            "n_steps",
            "stop_reason",
            "wall_time_s",
            "v_score",
        }
        return cls(
            energy=energy,
            variance=s["variance"],
            history=history,
            model=model,
            stop_reason=s["stop_reason"],
            wall_time_s=s["wall_time_s"],
            info={k: v for k, v in s.items() if k not in known},
            n_steps=s.get("n_steps"),
        )
