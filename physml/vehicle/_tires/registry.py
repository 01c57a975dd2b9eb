"""The tyre models by name, for the command line and `make_model`."""

from __future__ import annotations

from jaxtyping import PRNGKeyArray

from ...kernels._validate import check_key
from .base import AbstractTireModel
from .exptanh import ExpTanh, NeuralExpTanh
from .fiala import Fiala
from .magic_formula import MagicFormula
from .mlp import MLPTire
from .neural_ode import NeuralODETire

TIRES = ("fiala", "magic_formula", "exptanh", "neural_exptanh", "neural_ode", "mlp")


def make_tire(name: str, *, key: PRNGKeyArray) -> AbstractTireModel:
    """A tyre model with its default initial parameters, by name (one of `TIRES`)."""
    check_key(key)
    makers = {
        "fiala": lambda: Fiala(),
        "magic_formula": lambda: MagicFormula(),
        "exptanh": lambda: ExpTanh(),
        "neural_exptanh": lambda: NeuralExpTanh(key=key),
        "neural_ode": lambda: NeuralODETire(key=key),
        "mlp": lambda: MLPTire(key=key),
    }
    if name not in makers:
        raise ValueError(f"`tire` must be one of {TIRES}, got {name!r}.")
    return makers[name]()
