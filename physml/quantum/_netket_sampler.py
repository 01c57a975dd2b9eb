"""`DirectSampler`: physml's exact sampling of |ψ|² as a NetKet sampler.

A physml state is sampled with no Markov chain: an autoregressive one site by site
(`physml.kernels.sample`, Sharir et al., PRL 124, 020503 (2020), eq. 2), a `FixedMagnetization`
one with its conditionals masked to the fixed-Σσᶻ sector, a `Symmetrized` one as a model sample
with a uniformly random group element applied (`draw_samples`). Every sample is exact and
independent, also on NetKet's constrained `Spin(0.5, N, total_sz=S)` spaces, which NetKet's own
`ARDirectSampler` refuses. The sampler follows NetKet's `Sampler` protocol (`_init_state`,
`_reset`, `_sample_chain`, as `ARDirectSampler` does); the state is only a PRNG key.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk

from ._netket_state import HilbertMismatchError, LogPsi, check_hilbert
from ._vmc import draw_samples

__all__ = ["DirectSampler", "DirectSamplerState"]


class DirectSamplerState(nk.sampler.SamplerState):
    """The state of a `DirectSampler`: the PRNG key of the next draw."""

    key: jax.Array

    def __init__(self, key: jax.Array):
        self.key = key
        super().__init__()


def _check_spin_half(hilbert: Any) -> None:
    if not isinstance(hilbert, nk.hilbert.Spin) or hilbert.local_size != 2:
        raise HilbertMismatchError(
            "`DirectSampler` samples physml's spin-1/2 states: `hilbert` must be "
            f"`nk.hilbert.Spin(0.5, N)` (optionally with `total_sz`), got {hilbert!r}."
        )
    if hilbert.constrained and not isinstance(
        hilbert.constraint, nk.hilbert.constraint.SumConstraint
    ):
        raise HilbertMismatchError(
            f"`DirectSampler` samples a fixed-Σσᶻ sector (`total_sz=S`) or the unconstrained "
            f"space, got the constraint {hilbert.constraint!r} of {hilbert!r}."
        )


def _log_psi_of(machine: Any) -> LogPsi:
    """The `LogPsi` NetKet passes as `machine` (its own `apply`-wrapper unwrapped)."""
    if isinstance(machine, LogPsi):
        return machine
    owner = getattr(getattr(machine, "apply", None), "__self__", None)  # `LogPsi.apply`
    if isinstance(owner, LogPsi):
        return owner
    raise TypeError(
        "`DirectSampler` draws from physml wave functions only: the model must be the "
        "`apply_fun` of `physml.quantum.netket.to_netket(model)` (or a state built by "
        f"`physml.quantum.netket.mcstate`), got {machine!r}."
    )


class DirectSampler(nk.sampler.Sampler):
    """Exact, independent samples of |ψ|² from a physml state, as a NetKet sampler.

    Use it with `nk.vqs.MCState` (see `physml.quantum.netket.mcstate`) or directly,
    `sampler.sample(apply_fun, variables, chain_length=n)` with `(apply_fun, variables) =
    to_netket(model)`. Samples have shape (n_chains, chain_length, N) (one chain per device, as
    NetKet's exact samplers), values the Hilbert space's local states in `dtype`; with
    `return_log_probabilities=True` also log |ψ(σ)|² = 2 Re log ψ(σ) (normalised: Σ_σ |ψ|² = 1
    over the sector). `machine_pow` is fixed at 2.

    Args:
        hilbert: `nk.hilbert.Spin(0.5, N)` or its sector `nk.hilbert.Spin(0.5, N, total_sz=S)`;
            the model must match it (`check_hilbert`), which is checked when a state is
            attached (`init_state`) and again when sampling.
        dtype: dtype of the samples (default: the Hilbert space's, int8 for `Spin`).
    """

    def __init__(self, hilbert: Any, *, dtype: Any = None):
        _check_spin_half(hilbert)
        super().__init__(hilbert, machine_pow=2, dtype=dtype)
        self.machine_pow = float(self.machine_pow)

    @property
    def is_exact(self) -> bool:
        """True: samples are exact and independent (no chain, no burn-in)."""
        return True

    def _check(self, machine: Any) -> LogPsi:
        log_psi = _log_psi_of(machine)
        if not isinstance(self.machine_pow, jax.core.Tracer) and self.machine_pow != 2:
            raise ValueError(
                f"`DirectSampler` samples |ψ|² (machine_pow 2), got machine_pow="
                f"{self.machine_pow!r}."
            )
        check_hilbert(log_psi, self.hilbert)
        return log_psi

    def _init_state(self, machine: Any, parameters: Any, key: Any) -> DirectSamplerState:
        self._check(machine)
        return DirectSamplerState(key=key)

    def _reset(self, machine: Any, parameters: Any, state: DirectSamplerState):
        return state

    @partial(jax.jit, static_argnames=("machine", "chain_length", "return_log_probabilities"))
    def _sample_chain(
        self,
        machine: Any,
        parameters: Any,
        state: DirectSamplerState,
        chain_length: int,
        return_log_probabilities: bool = False,
    ):
        model = self._check(machine).combine(parameters)
        new_key, key = jax.random.split(state.key)
        n = self.n_batches * chain_length
        x = draw_samples(model, n, key=key, shard=False)
        sigma = nk.jax.sharding.shard_along_axis(model.to_spins(x).astype(self.dtype), axis=0)
        out = sigma.reshape(self.n_batches, chain_length, self.hilbert.size)
        if return_log_probabilities:
            log_p = 2 * jnp.real(model.log_psi(model.to_spins(x)))
            out = (out, log_p.reshape(self.n_batches, chain_length))
        return out, state.replace(key=new_key)
