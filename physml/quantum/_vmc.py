"""Variational Monte Carlo with exact autoregressive samples: local energies, the energy
estimate and its gradient, as an objective for `physml.kernels.fit`.

For a normalised ψ with real parameters θ and exact samples σ ~ |ψ|²:

    E_loc(σ) = Σ_σ' H_σσ' ψ(σ')/ψ(σ),     E = ⟨E_loc⟩,
    ∂E/∂θ_k  = 2 Re ⟨(E_loc − E)* O_k⟩,   O_k(σ) = ∂ log ψ(σ) / ∂θ_k

(Becca & Sorella, "Quantum Monte Carlo Approaches for Correlated Systems", CUP 2017, ch. 6).
The gradient is taken as the derivative of the surrogate 2 Re ⟨stop_grad(E_loc − E)* log ψ⟩,
which has exactly this derivative; no Markov chain means no correction term.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jaxtyping import Array, Inexact, Int, Real

from ..kernels import AbstractObjective, estimate
from ..kernels._sharding import batch_sharding, can_shard
from ..kernels._validate import check_key
from ._arconv import ARConv1D
from ._collapse import collapsed_batch
from ._flips import log_psi_single_flips
from ._wavefunction import AbstractSpinState, check_spin_state

__all__ = ["VMCObjective", "check_compatible", "draw_samples", "local_energies"]

# Network passes per `lax.map` step of the full path when `max_configurations` is None, and per
# sample chunk of the incremental path (`_log_psi_incremental`).
_FULL_PASSES = 256
_INCREMENTAL_PASSES = 16_384


def draw_samples(
    model: AbstractSpinState, n_samples: int, *, key: Any, shard: bool = False
) -> Int[Array, "batch sites"]:
    """`n_samples` exact samples of |ψ|² as local-state indices (`model.sample`).

    An autoregressive state is sampled site by site (`physml.kernels.sample`), a `Symmetrized`
    one as a model sample with a uniformly random group element applied. With `shard=True` the
    batch is split over all devices (`jax.devices()`, every process's under `jax.distributed`)
    when `n_samples` divides evenly, and the result is constrained to that sharding; the samples
    themselves do not depend on the device count.
    """
    check_spin_state(model)
    x = model.sample(n_samples, key=check_key(key), shard=shard)
    if shard and can_shard(n_samples):
        x = jax.lax.with_sharding_constraint(x, batch_sharding(2))
    return x


def check_compatible(hamiltonian: Any, model: Any) -> None:
    """Raise a clear error if `model` cannot represent states of `hamiltonian`'s Hilbert space.

    `model` is an `AbstractSpinState` (`ARConv1D`, `ARConv2D`, `FixedMagnetization`,
    `Symmetrized`) on as many spin-1/2 sites, with the same local states. A constrained NetKet
    space `Spin(1/2, N, total_sz=S)` (a `SumConstraint` Σσᶻ = 2S) is accepted when the model
    is restricted to the same sector (`model.magnetization == 2S`, e.g.
    `FixedMagnetization(magnetization=2S)`; NetKet's total_sz is in spin-1/2 units, the
    model's magnetisation in Pauli units).
    """
    if not isinstance(hamiltonian, nk.operator.DiscreteJaxOperator):
        hint = ""
        if isinstance(hamiltonian, nk.operator.DiscreteOperator) and hasattr(
            hamiltonian, "to_jax_operator"
        ):
            hint = " Call `.to_jax_operator()` on it first."
        raise TypeError(
            "`hamiltonian` must be a NetKet JAX operator (`DiscreteJaxOperator`, e.g. from "
            f"`physml.quantum.tfim`), got {type(hamiltonian).__name__}.{hint}"
        )
    check_spin_state(model)
    hilbert = hamiltonian.hilbert
    if not isinstance(hilbert, nk.hilbert.Spin) or hilbert.local_size != 2:
        raise ValueError(
            "The model represents spin-1/2 sites; `hamiltonian` acts on "
            f"{hilbert!r}. Use `nk.hilbert.Spin(0.5, N)`."
        )
    if hilbert.size != model.n_sites:
        raise ValueError(
            f"Size mismatch: `hamiltonian` acts on {hilbert.size} sites but `model` has "
            f"n_sites={model.n_sites}."
        )
    if hilbert.constrained:
        # NetKet's `Spin(1/2, N, total_sz=S)` is the constraint Σσᶻ = 2S on the local states ±1.
        constraint = hilbert.constraint
        total = (
            round(float(constraint.sum_value))
            if isinstance(constraint, nk.hilbert.constraint.SumConstraint)
            else None
        )
        sector = model.magnetization
        if total is None or sector is None or sector != total:
            have = "no fixed Σσᶻ" if sector is None else f"Σσᶻ = {sector} (Pauli units)"
            raise ValueError(
                f"`hamiltonian` acts on a constrained Hilbert space {hilbert!r}, but the model "
                f"covers {have}. Wrap the model in `FixedMagnetization(model, "
                "magnetization=2 * total_sz)` (NetKet's total_sz is in spin-1/2 units), or "
                "build the operator on `nk.hilbert.Spin(0.5, N)` without `total_sz`."
            )
    states = tuple(float(s) for s in np.asarray(hilbert.local_states))
    if states != model.local_states:
        raise ValueError(
            f"The Hilbert space's local states {states} differ from the model's "
            f"`local_states`={model.local_states}; build the model with local_states={states}."
        )


def _log_psi_chunked(model: AbstractSpinState, sigma_p: Array, max_configurations: int) -> Array:
    """`model.log_psi(sigma_p)` for sigma_p of shape (batch, conn, sites), chunked over batch."""
    batch, conn = sigma_p.shape[:2]
    per_chunk = max(1, max_configurations // (conn * model.passes_per_configuration))
    log_psi = lambda s: model.log_psi(s, per_sample=True)
    if batch <= per_chunk:
        return log_psi(sigma_p)
    n_chunks = -(-batch // per_chunk)
    pad = n_chunks * per_chunk - batch
    # Padding repeats the first row (a valid configuration): no −inf or NaN from dummy rows.
    padded = jnp.concatenate([sigma_p, jnp.broadcast_to(sigma_p[:1], (pad, *sigma_p.shape[1:]))])
    out = jax.lax.map(log_psi, padded.reshape(n_chunks, per_chunk, *sigma_p.shape[1:]))
    return out.reshape(n_chunks * per_chunk, conn)[:batch]


def _log_psi_incremental(
    model: AbstractSpinState,
    sigma: Array,
    sigma_p: Array,
    active: Array,
    max_configurations: int | None,
) -> tuple[Array, Array]:
    """`model.log_psi_connected` in `lax.map` chunks of samples of about
    `_INCREMENTAL_PASSES` network passes each (bounded memory, even chunks)."""
    batch, conn = sigma_p.shape[:2]
    run = lambda s, sp, a: model.log_psi_connected(
        s, sp, active=a, max_configurations=max_configurations
    )
    n_chunks = -(-batch * conn * model.passes_per_configuration // _INCREMENTAL_PASSES)
    if n_chunks <= 1:
        return run(sigma, sigma_p, active)
    per_chunk = -(-batch // n_chunks)
    pad = n_chunks * per_chunk - batch
    # Padding repeats the first sample with every connection inactive: one reference pass each.
    padded = [
        jnp.concatenate([a, jnp.broadcast_to(fill, (pad, *a.shape[1:]))])
        for a, fill in ((sigma, sigma[:1]), (sigma_p, sigma_p[:1]), (active, False))
    ]
    chunks = [a.reshape(n_chunks, per_chunk, *a.shape[1:]) for a in padded]
    log_psi, log_psi_p = jax.lax.map(lambda c: run(*c), chunks)
    return log_psi.reshape(-1)[:batch], log_psi_p.reshape(-1, conn)[:batch]


def local_energies(
    model: AbstractSpinState,
    hamiltonian: Any,
    sigma: Real[Array, "batch sites"],
    log_psi: Inexact[Array, " batch"] | None = None,
    *,
    single_flip: bool | None = None,
    incremental: bool | None = None,
    max_configurations: int | None = None,
) -> Inexact[Array, " batch"]:
    """E_loc(σ) = Σ_σ' H_σσ' ψ(σ')/ψ(σ) for a batch of spin configurations (jit-friendly).

    Args:
        model: the wave function (an `AbstractSpinState`).
        hamiltonian: a NetKet JAX operator on the same Hilbert space.
        sigma: spin configurations (values in `model.local_states`).
        log_psi: `model.log_psi(sigma)` if already computed.
        single_flip: the operator connects σ only to σ itself and single-spin flips (TFIM):
            evaluate ψ(σ') by propagating the flip through the network's receptive field
            (`log_psi_single_flips`: the same values for ~N/R times less work). `None`: on for
            NetKet's `IsingJax` with an `ARConv1D`. A violation is reported by `eqx.error_if`
            at run time.
        incremental: evaluate ψ(σ') with the model's `log_psi_connected`, which recomputes
            only what the change from σ reaches (for `ARConv2D`, plain or wrapped in
            `FixedMagnetization` / `Symmetrized`: the rows at and below the first changed
            one), and skips connections with a zero matrix element. The same values as the
            full pass (`False`) to round-off. `None`: on where the model has such a path
            (`has_connected_path`) and `single_flip` is off; `True` on a model without one
            raises a ValueError.
        max_configurations: evaluate ψ on the connected configurations in chunks of at most
            this many network passes, one `lax.map` step each. Full path: through the
            `per_sample=True` form of `log_psi`, `model.passes_per_configuration` passes per
            configuration, at least one sample per chunk; `None` is 256. Incremental path:
            configurations of one base network per step; `None` is a cache-sized chunk
            (`ARConv2D.log_psi_connected`). Small chunks stay in cache, which is faster on a
            CPU (measurements in docs/notes/); the values do not depend on it.

    Returns:
        Local energies (complex for a complex ψ; real for a positive ψ and a real operator).
        Padding entries of `get_conn_padded` (zero matrix elements) contribute exactly 0.
    """
    _, mels, log_psi, log_psi_p = _connected(
        model,
        hamiltonian,
        sigma,
        log_psi,
        single_flip=single_flip,
        incremental=incremental,
        max_configurations=max_configurations,
    )
    return _sum_connected(mels, log_psi, log_psi_p)


def _connected(
    model: AbstractSpinState,
    hamiltonian: Any,
    sigma: Array,
    log_psi: Array | None = None,
    *,
    single_flip: bool | None = None,
    incremental: bool | None = None,
    max_configurations: int | None = None,
) -> tuple[Array, Array, Array, Array]:
    """The configurations σ' that H connects σ to, H_σσ', log ψ(σ) and log ψ(σ') (the
    arguments of `local_energies`; log ψ(σ') is log ψ(σ) where H_σσ' = 0 on the incremental
    path)."""
    if single_flip is None:
        # The receptive-field shortcut is specific to the 1D masked convolutions.
        single_flip = isinstance(hamiltonian, nk.operator.IsingJax) and isinstance(model, ARConv1D)
    has_path = bool(getattr(model, "has_connected_path", False))
    if incremental and not has_path:
        raise ValueError(
            f"`incremental=True` needs a model with an incremental `log_psi_connected` (ARConv2D, "
            f"plain or wrapped), got {type(model).__name__}; use `incremental=None` or False."
        )
    if incremental is None:
        incremental = has_path and not single_flip
    with jax.ensure_compile_time_eval():
        # NetKet builds a JAX operator's tables lazily, on first use. Built inside this trace
        # they would be tracers cached on the operator, and the next trace that uses it fails
        # (UnexpectedTracerError); flattening it here builds them from constants, eagerly.
        jax.tree_util.tree_leaves(hamiltonian)
    sigma_p, mels = hamiltonian.get_conn_padded(sigma)
    if single_flip:
        log_psi, log_psi_flips = log_psi_single_flips(model, sigma)
        changed = sigma_p != sigma[:, None, :]
        n_changed = jnp.sum(changed, axis=-1)
        flipped = jnp.take_along_axis(log_psi_flips, jnp.argmax(changed, axis=-1), axis=1)
        log_psi_p = jnp.where(n_changed == 0, log_psi[:, None], flipped)
        # The check rides on a scalar added to the result: `error_if` on the (samples ×
        # connections) array itself makes XLA gather the whole batch onto one device when it is
        # sharded ("involuntary full rematerialization").
        log_psi_p = log_psi_p + eqx.error_if(
            jnp.zeros((), log_psi_p.dtype),
            jnp.any((n_changed > 1) & (mels != 0)),
            "`single_flip=True` but the Hamiltonian connects configurations that differ in "
            "more than one site; use `single_flip=False`.",
        )
    elif incremental:
        log_psi, log_psi_p = _log_psi_incremental(
            model, sigma, sigma_p, mels != 0, max_configurations
        )
    else:
        if log_psi is None:
            log_psi = model.log_psi(sigma)
        log_psi_p = _log_psi_chunked(
            model, sigma_p, _FULL_PASSES if max_configurations is None else max_configurations
        )
    return sigma_p, mels, log_psi, log_psi_p


def _sum_connected(mels: Array, log_psi: Array, log_psi_p: Array) -> Array:
    """E_loc(σ) = Σ_σ' H_σσ' exp(log ψ(σ') − log ψ(σ))."""
    ratio = jnp.exp(log_psi_p - log_psi[:, None])
    # A zero matrix element times an overflowing ratio must give 0, not NaN.
    terms = jnp.where(mels != 0, mels * jnp.where(mels != 0, ratio, 0), 0)
    return jnp.sum(terms, axis=-1)


class VMCObjective(AbstractObjective):
    """The variational energy ⟨H⟩ of an `AbstractSpinState` (`ARConv1D`, `ARConv2D`,
    `FixedMagnetization`, `Symmetrized`) estimated from `n_samples` exact samples.

    `aux` holds the samples ("sigma", spin values), their local energies ("e_loc"), whether the
    batch has collapsed onto configurations that are not an eigenstate ("collapsed",
    `collapsed_batch`, on which `fit` stops with `StopReason.collapsed`) and the metrics logged
    each step: the imaginary part of the energy for a complex ψ, and the number of non-finite
    local energies.

    With `shard=True` (default) and several devices dividing `n_samples`, the samples, their
    local energies and per-sample gradients are split over the devices (a no-op on one
    device); the means are all-reduced by XLA, so the update equals the unsharded one to
    round-off (tested with 4 forced CPU devices). The devices are `jax.devices()`: after
    `jax.distributed.initialize()` those of every process, each process computing its own
    devices' share when all of them run the same step with the same model and key (tested
    with 2 CPU processes × 2 devices). `aux["sigma"]` and `aux["e_loc"]` are then global
    arrays that no single process can fetch whole; `stats` and the gradients are replicated.

    `gradient=False` skips the backward pass and returns zero gradients: for a preconditioner
    that builds its update from the samples and local energies alone (`SR`, which
    `ground_state` pairs with it).

    `incremental`: how the local energies evaluate ψ on the connected configurations, as in
    `local_energies` (None: the model's incremental path where it has one).
    """

    hamiltonian: Any
    n_samples: int = eqx.field(static=True)
    shard: bool = eqx.field(static=True, default=True)
    gradient: bool = eqx.field(static=True, default=True)
    incremental: bool | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int):
            raise TypeError(f"`n_samples` must be an int, got {self.n_samples!r}.")
        if self.n_samples < 2:
            raise ValueError(f"`n_samples` must be >= 2 for an error bar, got {self.n_samples}.")
        if self.incremental is not None and not isinstance(self.incremental, bool):
            raise TypeError(f"`incremental` must be None, True or False, got {self.incremental!r}.")

    def value_and_grad(self, model: AbstractSpinState, key: Any):
        sigma = model.to_spins(draw_samples(model, self.n_samples, key=key, shard=self.shard))
        sigma_p, mels, log_psi, log_psi_p = _connected(
            model, self.hamiltonian, sigma, incremental=self.incremental
        )
        e_loc = _sum_connected(mels, log_psi, log_psi_p)
        stats = estimate(e_loc)
        # From what the local energies computed: no network pass, no second `get_conn_padded`.
        collapsed = collapsed_batch(
            model,
            self.hamiltonian,
            sigma,
            e_loc,
            connected=(sigma_p, mels, log_psi_p[0] - log_psi[0]),
        )
        delta = jax.lax.stop_gradient(e_loc - stats.mean)

        def surrogate(m):
            return 2 * jnp.mean(jnp.real(jnp.conj(delta) * m.log_psi(sigma)))

        if self.gradient:
            grads = eqx.filter_grad(surrogate)(model)
        else:  # a preconditioner (SR) builds the update from aux["sigma"], aux["e_loc"] alone
            grads = jax.tree.map(jnp.zeros_like, eqx.filter(model, eqx.is_inexact_array))
        metrics = {"n_nonfinite_e_loc": jnp.sum(~jnp.isfinite(e_loc))}
        aux = {"sigma": sigma, "e_loc": e_loc, "collapsed": collapsed, "metrics": metrics}
        return stats, grads, aux
