"""System identification of the single-track model from a driving log.

The CoRL 2024 recipe (Djeumou et al., "One model to drift them all", Sec. 4 and appendix A.3):
a multi-step rollout loss over short windows of randomised length (≈ 20 steps at 100 Hz), each
rolled out from the measured state under the logged controls, with the error of every state
normalised by that state's standard deviation over the training data. The split into training
and validation data is by time (the last `val_fraction` of the log), so the validation windows
are never seen, not even overlapping; early stopping watches the validation loss, on windows of
`val_horizon` steps (default: as long as the training windows). The defaults are the package's
identification recipe (`identify_tire`, which also builds the starting model).
Fitting goes through `physml.kernels.fit`, the loop shared with variational Monte Carlo.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from physml.kernels import AbstractObjective, EarlyStopping, estimate, fit
from physml.kernels._validate import check_key, check_positive_number

from .._data.log import DriveLog
from .._model.params import VehicleParams
from .._model.single_track import SingleTrackModel, rollout_substeps
from .._tires.registry import make_tire
from .force_estimates import axle_force_estimates, fit_tires_to_forces


def make_model(
    tire: str,
    *,
    key: PRNGKeyArray,
    params: VehicleParams | None = None,
    speed_floor_mps: float = 0.5,
    data: DriveLog | None = None,
) -> SingleTrackModel:
    """A single-track model with a fresh tyre of kind `tire` on each axle.

    With `data` (a `DriveLog`), the tyres start from a fit to the axle forces estimated from the
    log (`axle_force_estimates`, `fit_tires_to_forces`), each in the way the tyre says
    (`AbstractTireModel.fitted_to_forces`: Fiala from a grid of starts, neural-ExpTanh in its
    base curve, the neural ODE in its scalar parameters; the MLP keeps its random start).
    Without `data`, the textbook defaults of each tyre.
    """
    kf, kr = jax.random.split(check_key(key))
    params = VehicleParams() if params is None else params
    front, rear = make_tire(tire, key=kf), make_tire(tire, key=kr)
    if data is not None:
        if not isinstance(data, DriveLog):
            raise TypeError(f"`data` must be a DriveLog or None, got {type(data).__name__}.")
        est = axle_force_estimates(data, params)
        front, rear = fit_tires_to_forces(front, rear, est)
    return SingleTrackModel(params, front, rear, speed_floor_mps)


def params_from_plant(plant) -> VehicleParams:
    """Vehicle parameters taken from a plant's known mass, inertia and geometry, the height of
    its centre of mass and its brake distribution included (a `DriftPlant`, or anything with
    `.params` holding the `PlantParameters` fields): what one measures on a real car before
    identifying its tyres."""
    p = plant.params
    return VehicleParams(
        mass_kg=p.mass_kg,
        yaw_inertia_kgm2=p.yaw_inertia_kgm2,
        wheel_inertia_kgm2=p.wheel_inertia_kgm2,
        wheel_radius_m=p.wheel_radius_m,
        a_m=p.cg_to_front_m,
        b_m=p.cg_to_rear_m,
        cg_height_m=p.cg_height_m,
        brake_split_front=p.brake_split_front,
    )


def drive_map_params(model: SingleTrackModel) -> tuple[str, ...]:
    """The fields of the drive map E(τ) = k_τ τ + τ_0 in `model.params`: "torque_gain", and
    "torque_offset_nm" where the map has an offset (a command such as a throttle)."""
    offset = model.params.torque_offset_nm is not None
    return ("torque_gain", "torque_offset_nm") if offset else ("torque_gain",)


def trainable_spec(
    model: SingleTrackModel, *, tires: bool = True, params: tuple[str, ...] | None = None
) -> Any:
    """Filter spec for `fit(..., trainable=...)`: the tyres' arrays and the named vehicle
    parameters (fields of `VehicleParams`; default None: the drive map, `drive_map_params`)
    are learned, everything else is held fixed."""
    params = drive_map_params(model) if params is None else tuple(params)
    unknown = set(params) - {f.name for f in dataclasses.fields(VehicleParams)}
    if unknown:
        raise ValueError(
            f"unknown vehicle parameters {sorted(unknown)}; expected fields of "
            "VehicleParams such as 'torque_gain', 'yaw_inertia_kgm2'."
        )
    absent = [name for name in params if getattr(model.params, name) is None]
    if absent:
        raise ValueError(
            f"the model has no {absent} to learn (None); build it with "
            "VehicleParams(torque_offset_nm=0.0) for a drive map with an offset."
        )
    spec = jtu.tree_map(lambda _: False, model)
    tire_spec = lambda t: jtu.tree_map(lambda x: tires and eqx.is_inexact_array(x), t)
    spec = eqx.tree_at(
        lambda m: (m.front, m.rear), spec, (tire_spec(model.front), tire_spec(model.rear))
    )
    p_spec = jtu.tree_map(lambda _: False, model.params)
    if params:
        p_spec = eqx.tree_at(
            lambda p: [getattr(p, name) for name in params], p_spec, replace=[True] * len(params)
        )
    return eqx.tree_at(lambda m: m.params, spec, p_spec)


def window_starts(flags: np.ndarray, lo: int, hi: int, horizon: int) -> np.ndarray:
    """Starts k in [lo, hi − horizon) whose samples k..k+horizon are all unflagged."""
    bad = np.concatenate([[0], np.cumsum(np.asarray(flags) != 0)])
    k = np.arange(lo, max(lo, hi - horizon))
    return k[(bad[k + horizon + 1] - bad[k]) == 0]


def split_windows(
    data: DriveLog,
    *,
    horizon: int = 20,
    val_horizon: int | None = None,
    val_fraction: float = 0.2,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray, int]:
    """`identify`'s split of `data` by time (defaults: `identify`'s): (training window starts
    in the first 1 − `val_fraction`, validation window starts in the rest, the number of
    training samples). Raises `ValueError` if there are fewer than `batch_size` training or
    no validation windows (flagged samples never lie in a window)."""
    val_horizon = horizon if val_horizon is None else val_horizon
    n = data.n_samples
    n_train = round(n * (1.0 - val_fraction))
    train = window_starts(data.flags, 0, n_train, horizon)
    val = window_starts(data.flags, n_train, n, val_horizon)
    if train.size < batch_size or val.size < 1:
        raise ValueError(
            f"not enough unflagged data: {train.size} training windows of {horizon} steps and "
            f"{val.size} validation windows of {val_horizon} steps (need >= batch_size = "
            f"{batch_size} and >= 1)."
        )
    return train, val, n_train


class RolloutObjective(AbstractObjective):
    """Normalised multi-step rollout error over a random batch of windows of random length.

    For window k of length L (uniform in [min_horizon, horizon]):
        ℓ_k = (1 / 4L) Σ_{j=1..L} Σ_i ((ŷ_{k+j,i} − y_{k+j,i}) / scale_i)²,
    ŷ rolled out from the measured y_k under the logged controls. The loss is the batch mean;
    its `Stats` carry the spread over windows.
    """

    states: Float[Array, "T 4"]
    controls: Float[Array, "T 2"]
    starts: Int[Array, " n"]
    scale: Float[Array, "4"]
    dt: float = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    min_horizon: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    substeps: int = eqx.field(static=True)

    def window_losses(
        self, model: SingleTrackModel, starts: Int[Array, " b"], lengths: Int[Array, " b"]
    ) -> Float[Array, " b"]:
        steps = jnp.arange(self.horizon + 1)
        idx = starts[:, None] + steps[None, :]
        y_true = self.states[idx]
        u = self.controls[idx[:, :-1]]
        y_hat = rollout_substeps(model, y_true[:, 0], u, jnp.asarray(self.dt), "rk4", self.substeps)
        err = ((y_hat - y_true) / self.scale) ** 2
        mask = (steps[None, 1:] <= lengths[:, None]).astype(err.dtype)
        return jnp.sum(jnp.mean(err[:, 1:], axis=-1) * mask, axis=-1) / lengths

    def value_and_grad(self, model, key):
        k_start, k_len = jax.random.split(key)
        starts = jax.random.choice(k_start, self.starts, (self.batch_size,))
        lengths = jax.random.randint(k_len, (self.batch_size,), self.min_horizon, self.horizon + 1)

        def loss(m):
            per = self.window_losses(m, starts, lengths)
            return jnp.mean(per), per

        (_, per), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model)
        return estimate(per), grads, {}


@dataclasses.dataclass
class IdentificationResult:
    """What `identify` returns: the fitted model and a report.

    report keys: tire, train_loss (last step), val_loss (best, windows of `val_horizon`),
    best_step, steps, stop_reason, wall_time_s, cpu_time_s (CPU time of the process, all
    threads: on a shared machine a fairer measure than the wall time), n_params (trainable),
    n_train_windows, n_val_windows, val_horizon [steps], scale (per-state normalisation).
    """

    model: SingleTrackModel
    report: dict
    history: list


def _count(model, spec) -> int:
    params = eqx.filter(eqx.filter(model, spec), eqx.is_inexact_array)
    return int(sum(np.size(x) for x in jtu.tree_leaves(params)))


def identify(
    data: DriveLog,
    model: SingleTrackModel,
    *,
    key: PRNGKeyArray,
    steps: int = 3000,
    trainable: Any = None,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 3e-3,
    batch_size: int = 64,
    horizon: int = 20,
    min_horizon: int = 5,
    val_horizon: int | None = None,
    val_fraction: float = 0.2,
    val_every: int = 50,
    patience: int = 500,
    max_val_windows: int = 256,
    substeps: int = 2,
    progress: bool = True,
    log_path: str | None = None,
) -> IdentificationResult:
    """Fit `model` to a driving log by the multi-step rollout loss (see module docstring).

    Args:
        data: a `DriveLog` (100 Hz; flagged samples are never used in a window).
        model: the initial `SingleTrackModel` (e.g. `make_model("neural_exptanh", key=...)`).
        key: PRNG key (window sampling).
        steps: maximum number of optimizer steps.
        trainable: filter spec of learned arrays (default `trainable_spec(model)`: both tyres
            and the torque gain).
        optimizer: optax transform (default: Adam(learning_rate) after global-norm clipping 1).
        learning_rate: Adam's step size for the default optimizer (a finite number > 0).
        batch_size, horizon, min_horizon: windows per step and their length range [steps].
        val_horizon: length of the validation windows [steps] (default `horizon`). Longer than
            the training windows (e.g. 100 = 1 s) lets early stopping see open-loop behaviour
            that short windows miss, such as a slowly diverging wheel speed.
        val_fraction: last fraction of the log (by time) held out for validation.
        val_every, patience: validation period and early-stopping patience [steps].
        max_val_windows: number of evenly spaced full-length validation windows.
        substeps: RK4 substeps per 10-ms control step (see `rollout_model`).
        progress, log_path: progress bar and JSON-lines log of `physml.kernels.fit`.

    Returns:
        An `IdentificationResult` with the model of the best validation loss.
    """
    if not isinstance(data, DriveLog):
        raise TypeError(f"`data` must be a DriveLog, got {type(data).__name__}.")
    if not isinstance(model, SingleTrackModel):
        raise TypeError(f"`model` must be a SingleTrackModel, got {type(model).__name__}.")
    check_key(key)
    check_positive_number(learning_rate, "learning_rate")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must lie in (0, 1), got {val_fraction!r}.")
    if not 1 <= min_horizon <= horizon:
        raise ValueError(f"need 1 <= min_horizon <= horizon, got {min_horizon}, {horizon}.")
    val_horizon = horizon if val_horizon is None else val_horizon
    if not (isinstance(val_horizon, int) and val_horizon >= 1):
        raise ValueError(f"`val_horizon` must be a positive integer, got {val_horizon!r}.")
    dts = np.diff(data.time_s)
    dt = float(np.median(dts))
    if not np.allclose(dts, dt, rtol=1e-6, atol=1e-9):
        raise ValueError(
            "`data.time_s` must be uniformly sampled; got steps between "
            f"{dts.min()!r} and {dts.max()!r} s."
        )
    train, val, n_train = split_windows(
        data,
        horizon=horizon,
        val_horizon=val_horizon,
        val_fraction=val_fraction,
        batch_size=batch_size,
    )
    val = val[np.linspace(0, val.size - 1, min(max_val_windows, val.size)).astype(int)]
    states = jnp.asarray(data.state, float)
    good = np.asarray(data.flags[:n_train] == 0)
    scale = jnp.asarray(np.std(np.asarray(data.state)[:n_train][good], axis=0) + 1e-6)
    objective = RolloutObjective(
        states,
        jnp.asarray(data.control, float),
        jnp.asarray(train),
        scale,
        dt,
        horizon,
        min_horizon,
        batch_size,
        substeps,
    )
    val_objective = dataclasses.replace(objective, horizon=val_horizon, min_horizon=val_horizon)
    val_starts = jnp.asarray(val)
    val_lengths = jnp.full(val.shape, val_horizon)
    val_loss = eqx.filter_jit(
        lambda m: jnp.mean(val_objective.window_losses(m, val_starts, val_lengths))
    )
    stopper = EarlyStopping(
        lambda step, rec, m: float(val_loss(m)),
        patience=patience,
        every=val_every,
        name="val_loss",
        restore_best=True,
    )
    spec = trainable_spec(model) if trainable is None else trainable
    if optimizer is None:
        optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fit(
        objective,
        model,
        optimizer=optimizer,
        steps=steps,
        key=key,
        trainable=spec,
        callbacks=(stopper,),
        progress=progress,
        log_path=log_path,
        desc="identify",
    )
    fitted = result.model
    report = {
        "train_loss": result.history[-1]["loss"] if result.history else float("nan"),
        "val_loss": float(val_loss(fitted)),
        "best_step": stopper.best_step,
        "steps": result.n_steps,
        "stop_reason": result.stop_reason,
        "wall_time_s": time.perf_counter() - start,
        "cpu_time_s": time.process_time() - start_cpu,
        "n_params": _count(model, spec),
        "n_train_windows": int(train.size),
        "n_val_windows": int(val.size),
        "val_horizon": val_horizon,
        "scale": np.asarray(scale).tolist(),
    }
    return IdentificationResult(fitted, report, result.history)
