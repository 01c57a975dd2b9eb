"""physml's states and exact samplers inside NetKet: `nk.vqs.MCState`, `VMC`, `VMC_SR`, `expect`.

    import netket as nk
    from physml.quantum import ARConv2D, FixedMagnetization, heisenberg_2d
    from physml.quantum.netket import mcstate, to_model

    H = heisenberg_2d(4, total_sz=0)                     # on nk.hilbert.Spin(0.5, 16, total_sz=0)
    net = FixedMagnetization(ARConv2D(4, positive=True, key=jax.random.key(0)))
    vs = mcstate(net, H.hilbert, n_samples=1024, key=jax.random.key(1))
    nk.driver.VMC_SR(H, optax.sgd(0.05), diag_shift=1e-2, variational_state=vs).run(300)
    trained = to_model(vs)                               # a physml FixedMagnetization again

- `DirectSampler`: exact, independent samples of |ψ|² (no Markov chain), also in the fixed
  Sᶻ sectors NetKet's `ARDirectSampler` refuses; log-probabilities on request.
- `to_netket(model)`: the `(apply_fun, variables)` pair NetKet's states and samplers take
  (`LogPsi`; `variables["params"]` are the model's inexact arrays by path).
- `mcstate(model, hilbert, ...)`: an `nk.vqs.MCState` of any physml state (`ARConv1D`,
  `ARConv2D`, `FixedMagnetization`, `Symmetrized`) sampled by `DirectSampler`.
- `to_model(state)`: the physml state with a NetKet state's current parameters.
- `check_hilbert`, `HilbertMismatchError`: a state and a Hilbert space must agree on sites,
  local states and the Σσᶻ sector; every entry here checks it.

Conventions are NetKet's: spin values ±1 (Pauli units), energies in Pauli units (physml's
`heisenberg`/`heisenberg_2d` are 4× the spin-1/2-unit Hamiltonian).
"""

from __future__ import annotations

from typing import Any

import jax
import netket as nk

from ..kernels._validate import check_finite_tree, check_key, check_positive_int
from ._netket_sampler import (
    DirectSampler as DirectSampler,
    DirectSamplerState as DirectSamplerState,
)
from ._netket_state import (
    HilbertMismatchError as HilbertMismatchError,
    LogPsi as LogPsi,
    check_hilbert as check_hilbert,
)
from ._wavefunction import AbstractSpinState, check_spin_state

__all__ = [
    "DirectSampler",
    "DirectSamplerState",
    "HilbertMismatchError",
    "LogPsi",
    "check_hilbert",
    "mcstate",
    "to_model",
    "to_netket",
]


def to_netket(model: Any) -> tuple[LogPsi, dict[str, Any]]:
    """NetKet's `(apply_fun, variables)` for a physml state.

    Args:
        model: an `AbstractSpinState` (`ARConv1D`, `ARConv2D`, `FixedMagnetization`,
            `Symmetrized`) with finite parameters.

    Returns:
        `(log_psi, variables)`: `log_psi(variables, σ)` = `model.log_psi(σ)` for σ in NetKet's
        encoding; `variables = {"params": {path: array}}` (+ `"constants"` for integer arrays).
        `log_psi.combine(variables)` is `model` again.
    """
    check_spin_state(model)
    check_finite_tree(model, "model")
    log_psi = LogPsi(model)
    return log_psi, log_psi.variables(model)


def mcstate(
    model: Any,
    hilbert: Any,
    *,
    n_samples: int,
    key: Any,
    chunk_size: int | None = None,
) -> nk.vqs.MCState:
    """An `nk.vqs.MCState` of a physml state, sampled exactly by `DirectSampler`.

    NetKet's drivers (`nk.driver.VMC`, `VMC_SR`), `expect`, `expect_and_grad` and observables
    then act on it as on any NetKet state; `to_model(state)` returns the trained physml model.

    Args:
        model: an `AbstractSpinState` on `hilbert` (`check_hilbert`): for `total_sz=S`, a state
            restricted to Σσᶻ = 2S, e.g. `FixedMagnetization(net, magnetization=2 * S)`.
        hilbert: `nk.hilbert.Spin(0.5, N)` or `nk.hilbert.Spin(0.5, N, total_sz=S)` (an
            operator's `.hilbert`).
        n_samples: exact samples per step (a positive int).
        key: JAX PRNG key of the sampler.
        chunk_size: NetKet's chunk size for network evaluations (None: no chunking).

    Raises:
        HilbertMismatchError: `model` does not live on `hilbert`.
    """
    if isinstance(hilbert, nk.operator.AbstractOperator):
        raise TypeError(
            f"`hilbert` must be a NetKet Hilbert space, got the operator {hilbert!r}; pass its "
            "`.hilbert`."
        )
    check_spin_state(model)
    check_hilbert(model, hilbert)
    n_samples = check_positive_int(n_samples, "n_samples")
    key = check_key(key)
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    log_psi, variables = to_netket(model)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return nk.vqs.MCState(
        DirectSampler(hilbert),
        apply_fun=log_psi,
        variables=variables,
        n_samples=n_samples,
        sampler_seed=key,
        chunk_size=chunk_size,
    )


def to_model(state: Any) -> AbstractSpinState:
    """The physml state with the current parameters of a NetKet variational state (an
    `MCState` from `mcstate`, or any `nk.vqs` state built on `to_netket`'s `apply_fun`)."""
    log_psi = getattr(state, "_model", None)
    if not isinstance(log_psi, LogPsi) or not hasattr(state, "variables"):
        raise TypeError(
            "`state` must be a NetKet variational state of a physml model (from "
            f"`physml.quantum.netket.mcstate` or `to_netket`), got {type(state).__name__}."
        )
    return log_psi.combine(state.variables)
