"""The files `fit` writes: one JSON-lines record per step and the atomic checkpoint of the
`TrainState`, with failed writes retried and reported rather than fatal."""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp
from jaxtyping import PyTree

from ._checkpoint import save_tree
from ._io import JsonLinesLog, OutputWriteError


def step_record(step: int, stats: Any, metrics: dict) -> dict:
    """The log record of one accepted step: the loss `Stats` and the objective's metrics."""
    rec: dict[str, Any] = {"step": step}
    d = stats.to_dict()
    rec["loss"] = d["mean"]
    if "mean_imag" in d:
        rec["loss_imag"] = d["mean_imag"]
    rec["loss_error"] = d["error_of_mean"]
    rec["loss_variance"] = d["variance"]
    for name, value in metrics.items():
        rec[name] = float(jnp.real(value))
    return rec


class Outputs:
    """The files `fit` writes (process 0 only): the checkpoint and the JSON-lines log. A failed
    write does not stop training: it is warned about once, retried at the next write (the log
    keeps the records it could not write), and, if it still fails at the end, `fit` raises it
    with the finished `TrainResult` attached."""

    def __init__(self, checkpoint_path, log_path, *, resume_step: int | None):
        self.checkpoint_path = checkpoint_path
        self.log = None
        self.failed: dict[str, OutputWriteError] = {}
        self._warned: set[str] = set()
        if log_path is not None:
            self.log = JsonLinesLog(log_path, keep_before=resume_step)

    def _fail(self, what: str, err: OutputWriteError) -> None:
        self.failed[what] = err
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(
                f"{err} Training continues and the {what} is written again later; if it still "
                "cannot be written at the end, `fit` raises `OutputWriteError` with the result "
                "attached as `.result`.",
                RuntimeWarning,
                stacklevel=4,
            )

    def record(self, rec: dict) -> None:
        if self.log is not None:
            try:
                self.log.write(rec)
                self.failed.pop("log", None)
            except OutputWriteError as err:
                self._fail("log", err)

    def drop_last_record(self) -> None:
        if self.log is not None:
            try:
                self.log.drop_last()
            except OSError as err:
                self._fail("log", OutputWriteError(self.log.path, str(err)))

    def checkpoint(self, state: PyTree, *, final: bool = False) -> None:
        if self.checkpoint_path is not None:
            try:
                save_tree(self.checkpoint_path, state)
                self.failed.pop("checkpoint", None)
            except OutputWriteError as err:
                if final:  # reported by `fit`'s error, nothing is retried
                    self.failed["checkpoint"] = err
                else:
                    self._fail("checkpoint", err)

    def close(self) -> None:
        if self.log is not None:
            try:
                self.log.flush()
                self.failed.pop("log", None)
            except OutputWriteError as err:
                self.failed["log"] = err
            self.log.close()
