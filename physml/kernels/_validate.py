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
    """Return `key` if it is one JAX PRNG key: a typed key (`jax.random.key(0)`, any
    implementation) or legacy raw key data (`jax.random.PRNGKey(0)`: uint32 of shape (2,), or
    (4,) for the "rbg" implementations). Raise a `TypeError` (`ValueError` for a batch of keys)
    that names `name`, says what was received and how to make a key, for anything else: an
    int seed, a string, a float array, None. Safe on traced keys (under `jit`/`vmap`)."""
    dtype = getattr(key, "dtype", None)
    shape = tuple(getattr(key, "shape", ()) or ())
    if isinstance(key, jax.Array) and dtype is not None:
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            if shape != ():
                raise ValueError(
                    f"`{name}` must be a single PRNG key (shape ()), got a batch of keys of "
                    f"shape {shape}. Pass one key, e.g. `jax.random.key(0)`."
                )
            return key
    if isinstance(key, (jax.Array, np.ndarray)) and dtype == np.uint32:
        if shape in ((2,), (4,)):
            return key
        if len(shape) > 1 and shape[-1] in (2, 4):
            raise ValueError(
                f"`{name}` must be a single PRNG key, got a batch of legacy keys of shape "
                f"{shape}. Pass one key, e.g. `jax.random.key(0)`."
            )
    hint = ""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        hint = f" To seed with {int(key)}, pass `jax.random.key({int(key)})`."
    raise TypeError(
        f"`{name}` must be a JAX PRNG key such as `jax.random.key(0)` (or a legacy "
        f"`jax.random.PRNGKey(0)`), got {_describe(key)}.{hint}"
    )


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_positive_number(value: Any, name: str) -> float:
    """Return `value` as a float if it is a finite real number > 0 (a learning rate, a step
    size, a tolerance); raise a `ValueError` naming `name` otherwise."""
    if isinstance(value, (bool, str, bytes, complex)) or not is_finite_scalar(value):
        raise ValueError(f"`{name}` must be a finite number > 0, got {_describe(value)}.")
    if float(value) <= 0:
        raise ValueError(f"`{name}` must be > 0, got {float(value)!r}.")
    return float(value)


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
