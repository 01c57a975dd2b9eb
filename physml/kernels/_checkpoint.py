"""Atomic checkpoints of PyTrees, and their checked loading.

A checkpoint is equinox's leaf serialisation: one NumPy `.npy` record per array leaf, in leaf
order, written atomically (`write_atomic`: a temporary file in the same folder, flushed to disk,
renamed over the target). Loading first reads the record headers alone, so a file that is
empty, cut short or not made of `.npy` records is reported as damaged (`CheckpointFormatError`),
apart from a well-formed checkpoint of another model (`CheckpointMismatchError`, naming the first
leaf that differs); non-finite values, which `save_tree` never writes, are refused too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._io import write_atomic
from ._validate import check_finite_tree


class CheckpointFormatError(ValueError):
    """A checkpoint file is damaged (empty, cut short, garbage, non-finite values) or is not a
    physml checkpoint at all."""


class CheckpointMismatchError(ValueError):
    """A well-formed checkpoint holds another structure than the one it is loaded into (a
    different model, optimiser or preconditioner)."""


def save_tree(path: str | os.PathLike, tree: Any, *, check_finite: bool = True) -> Path:
    """Write `tree` to `path` atomically (`write_atomic`). Refuses to write non-finite values;
    raises `OutputWriteError` if the file cannot be written."""
    path = Path(path)
    if check_finite:
        check_finite_tree(tree, "checkpoint")
    return write_atomic(path, lambda f: eqx.tree_serialise_leaves(f, tree))


def _read_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    return shape, dtype


def checkpoint_records(path: str | os.PathLike) -> list[tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of every array record of the checkpoint at `path`, from their headers.

    Raises:
        FileNotFoundError: there is no file at `path`.
        CheckpointFormatError: the file is empty, cut short, or not a sequence of `.npy` records.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}.")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointFormatError(
            f"The checkpoint {str(path)!r} is empty (0 bytes): it is damaged or not a physml "
            "checkpoint (`save_tree` never leaves an empty file; was it written by another "
            "program?)."
        )
    records = []
    with open(path, "rb") as f:
        while f.tell() < size:
            start = f.tell()
            try:
                shape, dtype = _read_header(f)
            except Exception as e:
                raise CheckpointFormatError(
                    f"The checkpoint {str(path)!r} is damaged or not a physml checkpoint: "
                    f"byte {start} of {size} does not start an array record ({e})."
                ) from None
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if dtype.hasobject or f.tell() + nbytes > size:
                what = "holds Python objects" if dtype.hasobject else "is cut short"
                raise CheckpointFormatError(
                    f"The checkpoint {str(path)!r} is damaged or not a physml checkpoint: it "
                    f"{what} (array record {len(records)} at byte {start}, {size} bytes in all)."
                )
            f.seek(nbytes, os.SEEK_CUR)
            records.append((tuple(shape), dtype))
    return records


def _stored(leaf: Any) -> bool:
    """Whether equinox's default serialisation writes a record for `leaf` (and reads one)."""
    return eqx.is_array_like(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)


def _check_structure(path: Path, tree: Any, records: list, *, exact: bool, what: str) -> None:
    leaves = [(p, leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(tree) if _stored(leaf)]
    for i, (p, leaf) in enumerate(leaves):
        where = jax.tree_util.keystr(p) or "(root)"
        if i >= len(records):
            raise CheckpointMismatchError(
                f"The checkpoint {str(path)!r} holds {len(records)} arrays, fewer than the "
                f"{len(leaves)} of the {what} it is loaded into (leaf {where} has no record): "
                "a different model, optimizer or preconditioner?"
            )
        if tuple(np.shape(leaf)) != records[i][0]:
            raise CheckpointMismatchError(
                f"The checkpoint {str(path)!r} does not match the {what} it is loaded into: "
                f"leaf {where} has shape {tuple(np.shape(leaf))} but the file's record {i} has "
                f"shape {records[i][0]} (a different model, optimizer or preconditioner?)."
            )
    if exact and len(records) != len(leaves):
        raise CheckpointMismatchError(
            f"The checkpoint {str(path)!r} holds {len(records)} arrays but the {what} it is "
            f"loaded into has {len(leaves)} (a different model, optimizer or preconditioner?)."
        )


def load_tree(
    path: str | os.PathLike,
    like: Any,
    *,
    check_finite: bool = True,
    exact: bool = True,
    what: str = "structure",
) -> Any:
    """Read a tree written by `save_tree`, using `like` for its structure, shapes and dtypes.

    `exact=False` reads only the first leaves (a prefix of a longer checkpoint, as `load_params`
    does); `what` names `like` in error messages.

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointFormatError: the file is damaged or not a physml checkpoint, or (with
            `check_finite`) holds NaN or inf.
        CheckpointMismatchError: a sound checkpoint of a different structure.
    """
    path = Path(path)
    records = checkpoint_records(path)
    _check_structure(path, like, records, exact=exact, what=what)
    try:
        tree = eqx.tree_deserialise_leaves(path, like)
    except Exception as e:
        raise CheckpointMismatchError(
            f"The checkpoint {str(path)!r} does not match the {what} it is loaded into "
            f"(a different model, optimizer or preconditioner?): {e}"
        ) from e
    if check_finite:
        try:
            check_finite_tree(tree, "checkpoint")
        except ValueError as e:
            raise CheckpointFormatError(
                f"The checkpoint {str(path)!r} holds non-finite values, which physml never "
                f"writes: it is damaged or was not written by `save_tree`. {e}"
            ) from None
    return tree
