"""Type aliases shared across physml (the one place they live, as in diffrax's `_custom_types`)."""

from typing import Any, TypeAlias

from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree

#: Any PyTree of arrays: a state, a parameter set, a control.
Y: TypeAlias = PyTree[Array]
#: A step size or a per-step sequence of step sizes [s].
StepSize: TypeAlias = float | Float[ArrayLike, ""] | Float[ArrayLike, " steps"]
#: A configuration of an autoregressive model as local-state indices in [0, local_size).
Configuration: TypeAlias = Int[Array, " sites"]
#: A batch of configurations.
Configurations: TypeAlias = Int[Array, "batch sites"]
#: A PRNG key: a typed key (`jax.random.key`) or a legacy uint32[2] key (`jax.random.PRNGKey`).
Key: TypeAlias = PRNGKeyArray
Args: TypeAlias = Any

__all__ = [
    "Args",
    "Array",
    "ArrayLike",
    "Configuration",
    "Configurations",
    "Float",
    "Int",
    "Key",
    "PyTree",
    "StepSize",
    "Y",
]
