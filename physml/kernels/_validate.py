"""Checks at the public boundary: each error names the argument, what was received and what
was expected (the style of diffrax's error messages)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _describe(x: Any) -> str:
    if isinstance(x, (jax.Array, np.ndarray)):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:200]


def check_key(key: Any, name: str = "key") -> jax.Array:
    """Return `key` if it is a JAX PRNG key (typed, or legacy uint32[2]); raise otherwise."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"`{name}` must be a single PRNG key (shape ()), got a batch of keys of shape "
                f"{key.shape}. Pass one key, e.g. `jax.random.key(0)`."
            )
        return key
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return key
    raise TypeError(
        f"`{name}` must be a JAX PRNG key such as `jax.random.key(0)` (or a legacy "
        f"`jax.random.PRNGKey(0)`), got {_describe(key)}."
    )


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_finite_tree(tree: Any, name: str) -> None:
    """Raise if any inexact leaf of `tree` holds NaN or inf (host-side check, not for jit)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, (jax.Array, np.ndarray, float, complex)) and not isinstance(
            leaf, jax.core.Tracer
        ):
            arr = np.asarray(leaf)
            if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
                where = jax.tree_util.keystr(path) or "(root)"
                raise ValueError(
                    f"`{name}` must be finite, but its leaf {where} holds non-finite values "
                    f"({int(np.sum(~np.isfinite(arr)))} of {arr.size} entries)."
                )


def check_step_sizes(dt: Any, n_steps: int | None, name: str = "dt") -> jax.Array:
    """Validate a scalar step size or a per-step sequence; return it as an array."""
    if isinstance(dt, jax.core.Tracer):
        return dt
    arr = np.asarray(dt)
    if not np.issubdtype(arr.dtype, np.number) or arr.ndim > 1:
        raise ValueError(
            f"`{name}` must be a positive scalar or a 1D array of positive step sizes, got "
            f"{_describe(dt)}."
        )
    if arr.ndim == 1 and n_steps is not None and arr.shape[0] != n_steps:
        raise ValueError(
            f"`{name}` has {arr.shape[0]} step sizes but the controls have {n_steps} steps; "
            "pass one step size per control step, or a scalar."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        bad = arr if arr.ndim == 0 else arr[(~np.isfinite(arr)) | (arr <= 0)][:5]
        raise ValueError(f"`{name}` must be finite and > 0, got {bad!r}.")
    return jnp.asarray(dt)


def is_finite_scalar(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
