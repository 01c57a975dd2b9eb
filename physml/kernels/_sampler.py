"""Exact ancestral sampling of autoregressive models, as one `lax.scan` over sites.

A model factorises p(x) = Π_i p(x_i | x_<i) (for a neural quantum state, p = |ψ|², Sharir et al.,
PRL 124, 020503 (2020), eq. 2), so a configuration is drawn exactly, site by site: no Markov
chain, no burn-in, no autocorrelation. Two paths draw the same samples for the same key:

- plain: at site i the model is evaluated on the partial configuration (O(N) network passes of
  cost O(N·L) each: O(N²·L) per sample);
- cached: the model keeps a per-layer cache (e.g. the history of past activations) and computes
  only the new site's conditional (O(N·L) per sample).

Both paths draw site i's value by inverting the conditional CDF at one uniform number u_i, with
u taken from the same key, so they agree sample by sample.
"""

# No `from __future__ import annotations` here: equinox recognises `AbstractVar` only in
# evaluated annotations; as strings they would silently become dataclass fields.
import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from ._sharding import batch_sharding, can_shard
from ._validate import check_key, check_positive_int


class AbstractAutoregressiveModel(eqx.Module):
    """A normalised autoregressive distribution over `n_sites` sites with `local_size` states.

    Subclasses define `conditionals`; they may define `init_cache` and `conditional_step` to
    enable the cached sampler. Configurations are integer indices in [0, local_size).
    """

    n_sites: eqx.AbstractVar[int]
    local_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def conditionals(self, x: Int[Array, " sites"]) -> Float[Array, "sites local"]:
        """log p(x_i = s | x_<i) for all sites i and local states s, in one pass.

        Row i must depend on x[:i] only and satisfy logsumexp(row) == 0.
        """

    def init_cache(self) -> PyTree:
        """The empty cache for one sample (cached path). Optional."""
        raise NotImplementedError(f"{type(self).__name__} does not implement a sampling cache.")

    def conditional_step(
        self, cache: PyTree, i: Int[Array, ""], x_prev: Int[Array, ""]
    ) -> tuple[Float[Array, " local"], PyTree]:
        """log p(x_i = · | x_<i) from the cache (holding sites < i−1) and x_{i−1} = `x_prev`.

        `x_prev` is 0 and must be ignored at i == 0. Returns the log-probabilities and the cache
        updated with `x_prev`. Optional.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement a sampling cache.")


def supports_cache(model: AbstractAutoregressiveModel) -> bool:
    """Whether `model` overrides the optional cache methods."""
    cls = type(model)
    return (
        cls.init_cache is not AbstractAutoregressiveModel.init_cache
        and cls.conditional_step is not AbstractAutoregressiveModel.conditional_step
    )


def _draw(log_probs: Float[Array, "*b local"], u: Float[Array, "*b"]) -> Int[Array, "*b"]:
    """Inverse-CDF draw: the first s with u < Σ_{t≤s} p_t (clipped to the last state)."""
    n_local = log_probs.shape[-1]
    if n_local == 2:  # the same rule, without the cumulative sum (spin-1/2 models)
        return (jnp.exp(log_probs[..., 0]) <= u.astype(log_probs.dtype)).astype(jnp.int32)
    cdf = jnp.cumsum(jnp.exp(log_probs), axis=-1)
    idx = jnp.sum(cdf[..., :-1] <= u[..., None].astype(cdf.dtype), axis=-1)
    return jnp.minimum(idx, n_local - 1).astype(jnp.int32)


def _pick(log_probs: Float[Array, "*b local"], s: Int[Array, "*b"]) -> Float[Array, "*b"]:
    return jnp.take_along_axis(log_probs, s[..., None], axis=-1)[..., 0]


def _sample_plain(model, u):
    n, n_sites = u.shape

    def body(x, i):
        lp = jax.vmap(lambda xx: model.conditionals(xx)[i])(x)
        s = _draw(lp, u[:, i])
        return x.at[:, i].set(s), _pick(lp, s)

    x, lps = jax.lax.scan(body, jnp.zeros((n, n_sites), jnp.int32), jnp.arange(n_sites))
    return x, jnp.sum(lps, axis=0)


def _sample_cached(model, u):
    def one(u_row):
        def body(carry, i):
            cache, x_prev = carry
            lp, cache = model.conditional_step(cache, i, x_prev)
            s = _draw(lp, u_row[i])
            return (cache, s), (s, _pick(lp, s))

        init = (model.init_cache(), jnp.zeros((), jnp.int32))
        _, (xs, lps) = jax.lax.scan(body, init, jnp.arange(model.n_sites))
        return xs, jnp.sum(lps)

    return jax.vmap(one)(u)


@eqx.filter_jit
def _sample_impl(model, key, n_samples: int, cached: bool, sharding):
    # The uniforms are drawn inside the jitted function (an eager draw costs more than the
    # sampling itself for small models). With JAX's partitionable threefry the numbers do not
    # depend on how the batch is sharded.
    u = jax.random.uniform(key, (n_samples, model.n_sites))
    if sharding is not None:
        u = jax.lax.with_sharding_constraint(u, sharding)
    return _sample_cached(model, u) if cached else _sample_plain(model, u)


def sample(
    model: AbstractAutoregressiveModel,
    n_samples: int,
    *,
    key: Any,
    cached: bool | None = None,
    shard: bool = True,
) -> tuple[Int[Array, "batch sites"], Float[Array, " batch"]]:
    """Draw `n_samples` exact, independent samples from an autoregressive model.

    Args:
        model: an `AbstractAutoregressiveModel`.
        n_samples: number of samples (a positive int).
        key: a JAX PRNG key.
        cached: use the model's cache (O(N·L) per sample); `None` uses it when available.
        shard: split the batch over all devices (`jax.devices()`, of every process under
            `jax.distributed`) when there are several and `n_samples` is divisible by their
            number. The samples do not depend on the device count. With several processes,
            every process must call this with the same model and key; `x` and `log_prob` are
            then global arrays of which each process holds its devices' rows.

    Returns:
        `(x, log_prob)`: int32 configurations of shape (n_samples, n_sites) and the
        log-probability log p(x) of each, shape (n_samples,).
    """
    if not isinstance(model, AbstractAutoregressiveModel):
        raise TypeError(
            "`model` must be an `AbstractAutoregressiveModel` (with `conditionals`), got "
            f"{type(model).__name__}."
        )
    n_samples = check_positive_int(n_samples, "n_samples")
    key = check_key(key)
    has_cache = supports_cache(model)
    if cached is None:
        cached = has_cache
    elif cached and not has_cache:
        raise ValueError(
            f"`cached=True` but {type(model).__name__} does not implement `init_cache` and "
            "`conditional_step`; use `cached=False` or `cached=None`."
        )
    sharding = batch_sharding(2) if shard and can_shard(n_samples) else None
    return _sample_impl(model, key, n_samples, bool(cached), sharding)


@eqx.filter_jit
def log_prob(
    model: AbstractAutoregressiveModel, x: Int[Array, "batch sites"]
) -> Float[Array, " batch"]:
    """Exact log p(x) of a batch of configurations, from one pass of `conditionals` each."""
    return jax.vmap(lambda xx: jnp.sum(_pick(model.conditionals(xx), xx)))(x)
