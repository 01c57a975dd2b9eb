"""A physml wave function as NetKet's `(apply_fun, variables)` pair, and the Hilbert-space check.

NetKet evaluates a state as `apply_fun(variables, σ) = log ψ(σ)` with `variables["params"]` the
trainable leaves (Carleo et al., SciPost Phys. Codebases 7 (2022), §4). An equinox module is
split into

- `variables["params"]`: its inexact arrays, by path (`".model.head_w"`), trained by NetKet;
- `variables["constants"]`: its other arrays (a `Symmetrized` group's permutations), which
  NetKet passes through as model state and does not differentiate;
- the rest (sizes, flags, the activation), held by `LogPsi`, the `apply_fun`.

`LogPsi.combine(variables)` rebuilds the equinox module, so NetKet and physml's own loop train
the same parameters. σ arrives in NetKet's encoding (spin values ±1 of the Hilbert space's
dtype, int8 for `Spin(1/2)`) and is cast to the model's float dtype; `log_psi` keeps physml's
conventions (real for a positive ψ, complex otherwise, −inf where ψ = 0).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Real

from ._wavefunction import AbstractSpinState, check_spin_state

__all__ = ["HilbertMismatchError", "LogPsi", "check_hilbert"]


class HilbertMismatchError(ValueError):
    """A physml wave function and a NetKet Hilbert space do not describe the same states
    (sites, local states or the fixed-Σσᶻ sector)."""


def _named_leaves(tree: Any) -> tuple[tuple[str, ...], Any, list[Any]]:
    with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = tuple(jax.tree_util.keystr(path) for path, _ in with_path)
    return names, treedef, [leaf for _, leaf in with_path]


def _describe_model(model: AbstractSpinState | LogPsi) -> str:
    m = model.magnetization
    sector = f"Σσᶻ = {m} (Pauli units)" if m is not None else "no fixed Σσᶻ"
    name = model.model_type if isinstance(model, LogPsi) else type(model).__name__
    return f"{name} on {model.n_sites} sites, {sector}"


def check_hilbert(model: Any, hilbert: Any) -> None:
    """Raise `HilbertMismatchError` unless `model` (an `AbstractSpinState`, or the `LogPsi` of
    one) lives on `hilbert`.

    `hilbert` must be NetKet's spin-1/2 space `nk.hilbert.Spin(0.5, N)` with N = `model.n_sites`
    and the model's local states, either unconstrained or with `total_sz=S`; the latter (a
    `SumConstraint` Σᵢσᶻᵢ = 2S in Pauli units) needs a model restricted to that sector,
    `model.magnetization == 2S` (e.g. `FixedMagnetization(net, magnetization=2 * S)`). A
    fixed-Σσᶻ model on the unconstrained space is accepted: ψ = 0 off its sector.
    """
    if not isinstance(model, LogPsi):
        check_spin_state(model)
    if not isinstance(hilbert, nk.hilbert.Spin) or hilbert.local_size != 2:
        raise HilbertMismatchError(
            "physml's wave functions describe spin-1/2 sites; expected "
            f"`nk.hilbert.Spin(0.5, {model.n_sites})` (optionally with `total_sz`), got "
            f"{hilbert!r}."
        )
    if hilbert.size != model.n_sites:
        raise HilbertMismatchError(
            f"The Hilbert space {hilbert!r} has {hilbert.size} sites but the model "
            f"({_describe_model(model)}) has {model.n_sites}; build them on the same lattice."
        )
    states = sorted(float(s) for s in np.asarray(hilbert.local_states))
    if states != sorted(model.local_states):
        raise HilbertMismatchError(
            f"The Hilbert space's local states {states} differ from the model's "
            f"`local_states`={model.local_states}; build the model with local_states="
            f"{tuple(states)}."
        )
    if hilbert.constrained:
        constraint = hilbert.constraint
        if not isinstance(constraint, nk.hilbert.constraint.SumConstraint):
            raise HilbertMismatchError(
                f"The Hilbert space {hilbert!r} has the constraint {constraint!r}; physml "
                "samples exactly only in a fixed-Σσᶻ sector (`nk.hilbert.Spin(0.5, N, "
                "total_sz=S)`) or on the unconstrained space."
            )
        total = round(float(constraint.sum_value))
        if model.magnetization != total:
            raise HilbertMismatchError(
                f"The Hilbert space {hilbert!r} is the sector Σσᶻ = {total} (Pauli units; "
                f"NetKet's total_sz = {total / 2:g} in spin-1/2 units), but the model is "
                f"{_describe_model(model)}. Wrap the network in "
                f"`FixedMagnetization(net, magnetization={total})`, or use "
                f"`nk.hilbert.Spin(0.5, {model.n_sites})` without `total_sz`."
            )


class LogPsi:
    """NetKet's `apply_fun(variables, σ) -> log ψ(σ)` for the structure of one physml state.

    Build it with `physml.quantum.netket.to_netket(model)`, which also returns the variables.
    Two `LogPsi` of states with the same structure (class, sizes, flags) are equal and hash
    alike, so NetKet's jitted functions, which take it as a static argument, compile once.

    Attributes:
        n_sites, local_states, magnetization, positive: those of the wrapped state (static).
        model_type: the wrapped state's class name.
    """

    def __init__(self, model: Any):
        check_spin_state(model)
        params, rest = eqx.partition(model, eqx.is_inexact_array)
        constants, self._static = eqx.partition(rest, eqx.is_array)
        self._param_names, self._params_def, _ = _named_leaves(params)
        self._constant_names, self._constants_def, _ = _named_leaves(constants)
        self.n_sites: int = model.n_sites
        self.local_states: tuple[float, ...] = tuple(model.local_states)
        self.magnetization: int | None = model.magnetization
        self.positive: bool = model.positive
        self.model_type: str = type(model).__name__
        static_leaves, static_def = jax.tree.flatten(self._static)
        self._key = (
            self._param_names,
            self._params_def,
            self._constant_names,
            self._constants_def,
            static_def,
            tuple(static_leaves),
        )

    def variables(self, model: Any) -> dict[str, dict[str, Array]]:
        """NetKet's variables of `model`, a state with this structure: `{"params": {path:
        inexact array}}`, plus `{"constants": {path: array}}` when it has integer arrays."""
        if not isinstance(model, AbstractSpinState) or LogPsi(model) != self:
            raise ValueError(
                f"`model` ({type(model).__name__}) does not have the structure this `LogPsi` "
                f"was built for ({self.model_type}); call `to_netket(model)` for a new pair."
            )
        params, rest = eqx.partition(model, eqx.is_inexact_array)
        names, _, leaves = _named_leaves(params)
        c_names, _, c_leaves = _named_leaves(eqx.filter(rest, eqx.is_array))
        out = {"params": dict(zip(names, leaves, strict=True))}
        if c_names:
            out["constants"] = dict(zip(c_names, c_leaves, strict=True))
        return out

    def combine(self, variables: Any) -> AbstractSpinState:
        """The physml state with the parameters (and constants) in `variables`."""
        params = variables["params"]
        if set(params) != set(self._param_names):
            raise ValueError(
                f"`variables['params']` must hold the {len(self._param_names)} leaves "
                f"{list(self._param_names)} of a {self.model_type}, got keys {sorted(params)}."
            )
        constants = variables.get("constants", {}) if self._constant_names else {}
        p = jax.tree.unflatten(self._params_def, [params[n] for n in self._param_names])
        c = jax.tree.unflatten(self._constants_def, [constants[n] for n in self._constant_names])
        return eqx.combine(p, c, self._static)

    def apply(
        self, variables: Any, sigma: Real[ArrayLike, "*batch sites"], **kwargs: Any
    ) -> Inexact[Array, "*batch"]:
        """log ψ(σ) for spin configurations σ in NetKet's encoding, any leading batch shape.

        A batch of one configuration (NetKet's per-sample Jacobians `vmap` such calls) uses the
        `per_sample=True` form of `log_psi` (the same values). `mutable=False` is accepted for
        NetKet's calls; other keyword arguments are refused."""
        if kwargs and kwargs != {"mutable": False}:
            raise TypeError(
                "A physml state has no mutable state and takes no keyword options (NetKet's "
                f"`mutable=False` is accepted); got {kwargs}."
            )
        model = self.combine(variables)
        sigma = jnp.asarray(sigma)
        if sigma.ndim < 1 or sigma.shape[-1] != self.n_sites:
            raise ValueError(
                f"`σ` must have the {self.n_sites} sites of the {self.model_type} on its last "
                f"axis, got shape {sigma.shape}."
            )
        per_sample = sigma.ndim == 2 and sigma.shape[0] == 1
        return model.log_psi(sigma.astype(model.dtype), per_sample=per_sample)

    __call__ = apply

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogPsi) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"LogPsi({self.model_type}, n_sites={self.n_sites})"
