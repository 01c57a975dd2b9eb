"""Warm starts across lattice sizes: a trained network initialises the same network on a larger
lattice.

The kernels of `ARConv2D` (and of `ARConv1D`) do not depend on the lattice size, so a network
trained on L×L defines one on L'×L' with the same arrays: the iterative retraining of
Moss, Wiersema, Hibat-Allah, Carrasquilla, Melko, arXiv:2502.17144 (2025), where an L×L run
initialises the (L+2)×(L+2) one. Every array of the trained network is copied to the same place.

A conditional must still see every earlier site of the larger lattice (`ARConv2D.covers_lattice`:
D·p >= max(L₂' − 1, L₁' − 2); a chain: 1 + (k − 1)·Σ dilations >= N' − 1). `add_layers` appends
residual layers whose kernels and biases are zero: each computes activation(0) = 0 and adds it
to its input, so the network's function is exactly that of the copied layers, while the gradient
of the new weights is not zero (activation'(0) ≠ 0), so training grows the receptive field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._arconv import ARConv1D
from ._arconv2d import ARConv2D, lattice_shape
from ._constraints import FixedMagnetization
from ._symmetry import Symmetrized, lattice_group

__all__ = ["ReceptiveFieldError", "transfer"]


class ReceptiveFieldError(ValueError):
    """A network's conditionals would not see every earlier site of the target lattice."""


def transfer(
    model: Any,
    shape: Any,
    *,
    add_layers: int | None = 0,
    dilations: Sequence[int] | None = None,
    permutations: Any = None,
) -> Any:
    """`model`'s network on a larger (or any) lattice, with the same trained arrays.

    Args:
        model: an `ARConv2D` or `ARConv1D`, or one wrapped in `FixedMagnetization` and/or
            `Symmetrized` (the wrappers are rebuilt around the new network).
        shape: the target lattice: for `ARConv2D` L, (L₁, L₂) or a NetKet `Square`/`Grid`
            (as `ARConv2D`); for `ARConv1D` the number of sites N.
        add_layers: residual layers (>= 0) appended after the trained ones, with zero kernels
            and biases: the function is unchanged (needs activation(0) = 0, as GELU, tanh and
            ReLU have) and the receptive field grows by p = k // 2 per layer (2D) or
            (k − 1)·d (a chain layer of dilation d). None: the fewest that cover the target
            lattice (0 if the trained layers do).
        dilations: `ARConv1D` only: one dilation per added layer; default: doubling from the
            last trained one (d, 2d, 4d, …).
        permutations: `Symmetrized` only: the group on the target lattice ((|G|, N') ints, as
            `Symmetrized`). Default: the same kind of group as `model`'s, rebuilt with
            `lattice_group` (the identity, the point group, or the point group × translations
            of the periodic lattice); any other group must be given.

    `FixedMagnetization` keeps its Σσᶻ (Pauli units), so Sᶻ = 0 stays Sᶻ = 0; a spin flip of
    `Symmetrized` is kept.

    Returns:
        The model on the target lattice, of the same wrapper types. Its log ψ there is the
        trained network's function applied to the larger lattice (sites near the top and left
        edges see the same zero padding as before; the others see more lattice).

    Raises:
        ReceptiveFieldError: the network with `add_layers` more layers still leaves earlier
            sites of the target lattice outside a conditional's receptive field; the message
            says how many layers are needed.
        ValueError, TypeError: an argument of the wrong kind (an unknown model, a group not
            recognised without `permutations`, an impossible magnetisation, ...).
    """
    if add_layers is not None:
        if isinstance(add_layers, bool) or not isinstance(add_layers, (int, np.integer)):
            raise TypeError(f"`add_layers` must be an int >= 0 or None, got {add_layers!r}.")
        if add_layers < 0:
            raise ValueError(f"`add_layers` must be >= 0, got {add_layers}.")
        add_layers = int(add_layers)
    if dilations is not None and not isinstance(_network(model), ARConv1D):
        raise ValueError("`dilations` applies to an `ARConv1D` network only.")
    if permutations is not None and not isinstance(model, Symmetrized):
        raise ValueError("`permutations` applies to a `Symmetrized` model only.")
    return _rebuild(model, shape, add_layers, dilations, permutations)


def _network(model: Any) -> Any:
    while isinstance(model, (Symmetrized, FixedMagnetization)):
        model = model.model
    return model


def _rebuild(model, shape, add_layers, dilations, permutations):
    if isinstance(model, Symmetrized):
        inner = _rebuild(model.model, shape, add_layers, dilations, None)
        if permutations is None:
            permutations = _same_group(model, _network(model), _network(inner))
        return Symmetrized(inner, permutations, spin_flip=model.spin_flip)
    if isinstance(model, FixedMagnetization):
        inner = _rebuild(model.model, shape, add_layers, dilations, None)
        return FixedMagnetization(inner, magnetization=model.magnetization)
    if isinstance(model, ARConv2D):
        return _transfer_2d(model, shape, add_layers)
    if isinstance(model, ARConv1D):
        return _transfer_1d(model, shape, add_layers, dilations)
    raise TypeError(
        "`model` must be an ARConv2D or ARConv1D, possibly wrapped in FixedMagnetization and/or "
        f"Symmetrized, got {type(model).__name__}."
    )


def _same_group(model: Symmetrized, old: Any, new: Any) -> np.ndarray:
    """The group of `model` rebuilt on `new`'s lattice, if it is one `lattice_group` makes."""
    perms = np.asarray(model.permutations)
    candidates = {"the identity": lambda net: np.arange(net.n_sites)[None]}
    if isinstance(old, ARConv2D):
        candidates["the point group"] = lambda net: lattice_group(net.shape, pbc=False)
        candidates["the point group × translations"] = lambda net: lattice_group(
            net.shape, pbc=True
        )
    for build in candidates.values():
        if _same_rows(perms, build(old)):
            return build(new)
    raise ValueError(
        f"The group of `model` ({perms.shape[0]} permutations) is not {', '.join(candidates)} "
        "of its lattice, so it cannot be rebuilt on the target lattice: pass "
        "`permutations=` (the group on the target lattice)."
    )


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0))


def _check_zero_activation(net: Any) -> None:
    value = net.activation(jnp.zeros((4,), net.dtype))
    if not bool(jnp.all(value == 0)):
        raise ValueError(
            "`add_layers` needs an activation with activation(0) = 0 (new residual layers with "
            f"zero weights then add nothing), but this network's gives {value[0]} at 0."
        )


def _copy_arrays(old: Any, new: Any) -> Any:
    """`new` with every array that `old` has at the same place replaced by `old`'s; arrays only
    `new` has (the added layers) become zeros."""
    old_arrays = dict(jtu.tree_flatten_with_path(eqx.filter(old, eqx.is_array))[0])
    arrays, rest = eqx.partition(new, eqx.is_array)
    leaves, treedef = jtu.tree_flatten_with_path(arrays)
    out = []
    for path, leaf in leaves:
        if path not in old_arrays:
            out.append(jnp.zeros_like(leaf))
            continue
        a = old_arrays.pop(path)
        if a.shape != leaf.shape or a.dtype != leaf.dtype:  # not size-independent: no transfer
            raise ValueError(
                f"The array {jtu.keystr(path)} of `model` has shape {a.shape} ({a.dtype}), but "
                f"{leaf.shape} ({leaf.dtype}) on the target lattice: it cannot be transferred."
            )
        out.append(a)
    if old_arrays:
        raise ValueError(
            f"The arrays {[jtu.keystr(p) for p in old_arrays]} of `model` have no place in the "
            "network on the target lattice."
        )
    return eqx.combine(jtu.tree_unflatten(treedef, out), rest)


def _transfer_2d(net: ARConv2D, shape: Any, add_layers: int | None) -> ARConv2D:
    l1, l2 = lattice_shape(shape)
    p = net.kernel_size // 2
    need = max(l2 - 1, l1 - 2, 0)
    if add_layers is None:
        add_layers = max(math.ceil(need / p) - net.layers, 0)
    layers = net.layers + add_layers
    if layers * p < need:
        raise ReceptiveFieldError(
            f"The ARConv2D ({net.layers} layers, kernel {net.kernel_size}) with add_layers="
            f"{add_layers} reaches {layers * p} sites, but on a {l1}×{l2} lattice every site "
            f"must see all earlier ones (D·p >= max(L₂ − 1, L₁ − 2) = {need}): use "
            f"add_layers >= {math.ceil(need / p) - net.layers}."
        )
    if add_layers:
        _check_zero_activation(net)
    new = ARConv2D(
        (l1, l2),
        layers=layers,
        features=net.features,
        kernel_size=net.kernel_size,
        positive=net.positive,
        activation=net.activation,
        local_states=net.local_states,
        dtype=net.dtype,
        key=jax.random.key(0),  # every array is replaced below
    )
    return _copy_arrays(net, new)


def _doubling(net: ARConv1D, n: int) -> tuple[int, ...]:
    return tuple(net.dilations[-1] * 2 ** (i + 1) for i in range(n))


def _transfer_1d(
    net: ARConv1D, n_sites: Any, add_layers: int | None, dilations: Sequence[int] | None
) -> ARConv1D:
    if isinstance(n_sites, bool) or not isinstance(n_sites, (int, np.integer)) or n_sites < 1:
        raise ValueError(f"The target of an ARConv1D is a number of sites >= 1, got {n_sites!r}.")

    def seen(ds: tuple[int, ...]) -> int:  # earlier sites the last conditional sees
        return 1 + (net.kernel_size - 1) * sum(ds)

    if add_layers is None and dilations is not None:
        add_layers = len(dilations)
    elif add_layers is None:
        add_layers = 0
        while (
            net.kernel_size > 1 and seen(net.dilations + _doubling(net, add_layers)) < n_sites - 1
        ):
            add_layers += 1
    if dilations is None:
        dilations = _doubling(net, add_layers)
    dilations = tuple(dilations)
    if len(dilations) != add_layers or any(
        isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dilations
    ):
        raise ValueError(
            f"`dilations` must be {add_layers} integers >= 1 (one per added layer), got "
            f"{dilations!r}."
        )
    all_dilations = net.dilations + tuple(int(d) for d in dilations)
    if seen(all_dilations) < n_sites - 1:
        raise ReceptiveFieldError(
            f"The ARConv1D (kernel {net.kernel_size}, dilations {all_dilations}) sees "
            f"{seen(all_dilations)} earlier sites, but on {n_sites} sites the last must see "
            f"{n_sites - 1} "
            "(1 + (k − 1)·Σ dilations >= N − 1): add layers (`add_layers`, `dilations`)."
        )
    if add_layers:
        _check_zero_activation(net)
    new = ARConv1D(
        int(n_sites),
        layers=len(all_dilations),
        features=net.features,
        kernel_size=net.kernel_size,
        dilations=all_dilations,
        positive=net.positive,
        activation=net.activation,
        local_states=net.local_states,
        dtype=net.dtype,
        key=jax.random.key(0),  # every array is replaced below
    )
    return _copy_arrays(net, new)
