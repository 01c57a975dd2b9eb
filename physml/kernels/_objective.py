"""What the training loop (`fit`) minimises and how it transforms the gradient: the two
abstract interfaces an objective (VMC, system identification) and a preconditioner (stochastic
reconfiguration) implement."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
from jaxtyping import PyTree

from ._stats import Stats


class AbstractObjective(eqx.Module):
    """What the loop minimises. `stats.mean` (real) is the loss."""

    @abc.abstractmethod
    def value_and_grad(self, model: PyTree, key: Any) -> tuple[Stats, PyTree, dict]:
        """Return `(stats, grads, aux)` at `model`.

        `grads` is shaped like `eqx.filter(model, eqx.is_inexact_array)`; `aux` is a dict, whose
        optional entry "metrics" (a dict of scalars) is logged every step, and optional entry
        "collapsed" (a bool scalar) says that the sample batch has degenerated (e.g. every
        sample is the same configuration, far from an eigenstate), so that the estimate's zero
        variance is an artefact: the loop then stops with `StopReason.collapsed`.
        """


class AbstractPreconditioner(eqx.Module):
    """Transforms the gradient before the optimizer (e.g. stochastic reconfiguration)."""

    @abc.abstractmethod
    def init(self, params: PyTree) -> PyTree:
        """Initial preconditioner state for trainable `params`."""

    @abc.abstractmethod
    def __call__(
        self, grads: PyTree, state: PyTree, model: PyTree, aux: dict
    ) -> tuple[PyTree, PyTree]:
        """Return the preconditioned gradient and the new state."""
