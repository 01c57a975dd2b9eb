"""physml.kernels: the shared numerics of physml, which know no physics.

- integrators: `rollout` (fixed-step Runge–Kutta as one `lax.scan`: explicit methods, or
  `method=ROS2(stiff=...)`, the linearly implicit Rosenbrock W-method, for stiff fields;
  `ros2_step` is its single step) and `ode_solve` (a thin diffrax adapter for adaptive or
  stiff problems);
- exact autoregressive sampling: `AbstractAutoregressiveModel`, `sample`, `log_prob`;
- Monte Carlo statistics: `Stats`, `estimate`;
- the variational training loop: `AbstractObjective`, `AbstractPreconditioner`, `fit`,
  `train_init` / `train_step`, `EarlyStopping`, `TimeLimit` (a wall-clock budget) and
  `hold_cosine_schedule` (a step-indexed learning rate, held then cosine-decayed);
- sharding over all devices (of every process under `jax.distributed`): `shard_batch`;
- atomic checkpoints: `save_tree`, `load_tree`; `load_params` (a warm start from a `fit`
  checkpoint); damaged files raise `CheckpointFormatError`, another model's
  `CheckpointMismatchError`; why a run stopped: `StopReason`;
- outputs that are never lost: `write_atomic`, `write_atomic_group`, `write_text_atomic`,
  `check_writable`, `JsonLinesLog`, `OutputWriteError`.
"""

from ._callbacks import EarlyStopping as EarlyStopping, TimeLimit as TimeLimit
from ._checkpoint import (
    CheckpointFormatError as CheckpointFormatError,
    CheckpointMismatchError as CheckpointMismatchError,
    load_tree as load_tree,
    save_tree as save_tree,
)
from ._diffrax import ode_solve as ode_solve
from ._integrate import (
    RK4 as RK4,
    Euler as Euler,
    ExplicitRK as ExplicitRK,
    Heun as Heun,
    Midpoint as Midpoint,
    rollout as rollout,
)
from ._io import (
    JsonLinesLog as JsonLinesLog,
    OutputWriteError as OutputWriteError,
    check_writable as check_writable,
    write_atomic as write_atomic,
    write_atomic_group as write_atomic_group,
    write_text_atomic as write_text_atomic,
)
from ._objective import (
    AbstractObjective as AbstractObjective,
    AbstractPreconditioner as AbstractPreconditioner,
)
from ._rosenbrock import ROS2 as ROS2, ROS2_GAMMA as ROS2_GAMMA, ros2_step as ros2_step
from ._sampler import (
    AbstractAutoregressiveModel as AbstractAutoregressiveModel,
    log_prob as log_prob,
    sample as sample,
    supports_cache as supports_cache,
)
from ._schedule import hold_cosine_schedule as hold_cosine_schedule
from ._sharding import batch_sharding as batch_sharding, shard_batch as shard_batch
from ._stats import Stats as Stats, estimate as estimate, tree_all_finite as tree_all_finite
from ._stop import StopReason as StopReason
from ._train import (
    TrainResult as TrainResult,
    TrainState as TrainState,
    fit as fit,
    load_params as load_params,
    train_init as train_init,
    train_step as train_step,
)
