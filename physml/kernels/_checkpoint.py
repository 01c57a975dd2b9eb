"""Atomic checkpoints of PyTrees (equinox's leaf serialisation, written to a temporary file in
the same folder, flushed to disk, then renamed over the target, so a crash mid-write never
leaves a truncated checkpoint)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import equinox as eqx

from ._io import write_atomic
from ._validate import check_finite_tree


def save_tree(path: str | os.PathLike, tree: Any, *, check_finite: bool = True) -> Path:
    """Write `tree` to `path` atomically (`write_atomic`). Refuses to write non-finite values;
    raises `OutputWriteError` if the file cannot be written."""
    path = Path(path)
    if check_finite:
        check_finite_tree(tree, "checkpoint")
    return write_atomic(path, lambda f: eqx.tree_serialise_leaves(f, tree))


def load_tree(path: str | os.PathLike, like: Any) -> Any:
    """Read a tree written by `save_tree`, using `like` for its structure, shapes and dtypes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}.")
    try:
        return eqx.tree_deserialise_leaves(path, like)
    except Exception as e:
        raise ValueError(
            f"The checkpoint {str(path)!r} does not match the structure it is loaded into "
            f"(a different model, optimizer or preconditioner?): {e}"
        ) from e
