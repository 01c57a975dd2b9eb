"""physml.vehicle: learned tyre models for a drifting car, the plant that generates the data,
and system identification.

Djeumou, Goh, Topcu, Balachandran, "Autonomous drifting with 3 minutes of data via learned tire
models", ICRA 2023 (arXiv:2306.06330); model equations from Djeumou et al., "One model to drift
them all", CoRL 2024, appendix A.

- the model being learned: `SingleTrackModel` (CoRL 2024 A.1) with `VehicleParams`;
- tyres behind `AbstractTireModel`: `Fiala`, `MagicFormula`, `ExpTanh`, `NeuralExpTanh`,
  `NeuralODETire`, `MLPTire`;
- the plant (CommonRoad `vehicle_dynamics_std` in JAX) with actuators and sensors, and the
  3-minute data: `DriftPlant` (state indices `IX` … `IOMEGAR`), `plant_tire_forces`,
  `Actuators`, `Sensors`, `collect`, `DriveLog`, `save_log`, `load_log`;
- a user's own log: `read_table` reads a CSV with their column names, units and rate as a
  `DriveLog`, by a `TableSchema` (a JSON column mapping; `UNITS`);
- drift references: `Donut`, `FigureEight`, `TabulatedPath` (with `pose` and `project` onto
  path coordinates), the model's steady drifts with their stability, `solve_equilibrium`
  (within the car's own input limits and top speed by default; `equilibrium_guess` for
  continuation), and the quasi-equilibrium reference along a path,
  `drift_reference` / `DriftReference` (`NoDriftEquilibriumError` where the model cannot hold
  a drift);
- control: the real-time drift MPC `DriftMPC` (`DriftMPC.from_path`, `MPCWeights`, `MPCState`,
  `MPCInfo`, `MPCStatus`, `stack_models` for posterior particles) and the closed loop on the
  plant, `simulate` (`ClosedLoopResult`, `StopReason`, `PoseSensor`, `drift_start`); the whole
  pipeline (collect → identify → closed loop, with the comparison table and plots) as
  `run_drift` (`DriftRunResult`, `format_drift_table`; `models=` for models built earlier),
  its steps `fit_model` (a label's model: nominal or identified) and `drive` (one model on
  one path);
- identification: the recipe `identify_tire` (a log and a tyre name to an identified model, the
  same from the API, the CLI and the benchmarks) over `identify`, `make_model` (with `data=`
  for an initialisation from the log's axle forces, `axle_force_estimates` /
  `fit_tires_to_forces`; `fit_drive_map` for an affine drive map), `trainable_spec`,
  `window_starts`, `identify_bayes`; held-out metrics `rollout_rmse`, `format_rmse_table`.
"""

from ._control.closed_loop import (
    ClosedLoopResult as ClosedLoopResult,
    PoseSensor as PoseSensor,
    StopReason as StopReason,
    drift_start as drift_start,
    simulate as simulate,
)
from ._control.envelope import front_slip_envelope as front_slip_envelope
from ._control.equilibria import (
    Equilibrium as Equilibrium,
    equilibrium_guess as equilibrium_guess,
    solve_equilibrium as solve_equilibrium,
)
from ._control.mpc import (
    DriftMPC as DriftMPC,
    MPCInfo as MPCInfo,
    MPCState as MPCState,
    MPCStatus as MPCStatus,
    stack_models as stack_models,
)
from ._control.paths import (
    AbstractPath as AbstractPath,
    Donut as Donut,
    FigureEight as FigureEight,
    TabulatedPath as TabulatedPath,
    sideslip_reverses as sideslip_reverses,
)
from ._control.problem import MPCWeights as MPCWeights
from ._control.reference import (
    DriftReference as DriftReference,
    drift_reference as drift_reference,
)
from ._data.collect import collect as collect
from ._data.log import (
    DriveLog as DriveLog,
    LogFormatError as LogFormatError,
    load_log as load_log,
    save_log as save_log,
    validate_log as validate_log,
)
from ._data.manoeuvres import MANOEUVRES as MANOEUVRES
from ._data.stabiliser import (
    DriftStabiliser as DriftStabiliser,
    design_drift_stabiliser as design_drift_stabiliser,
    drift_equilibrium as drift_equilibrium,
)
from ._data.table import UNITS as UNITS, TableSchema as TableSchema, read_table as read_table
from ._drift_run import (
    DriftRunResult as DriftRunResult,
    drive as drive,
    fit_model as fit_model,
    format_drift_table as format_drift_table,
    run_drift as run_drift,
)
from ._errors import NoDriftEquilibriumError as NoDriftEquilibriumError
from ._model.params import VehicleParams as VehicleParams
from ._model.single_track import (
    SingleTrackModel as SingleTrackModel,
    rollout_model as rollout_model,
    soft_floor as soft_floor,
)
from ._plant.actuators import Actuators as Actuators
from ._plant.dynamics import (
    IOMEGAF as IOMEGAF,
    IOMEGAR as IOMEGAR,
    ISIDESLIP as ISIDESLIP,
    ISPEED as ISPEED,
    ISTEER as ISTEER,
    IX as IX,
    IY as IY,
    IYAW as IYAW,
    IYAWRATE as IYAWRATE,
    DriftPlant as DriftPlant,
)
from ._plant.magic_formula import plant_tire_forces as plant_tire_forces
from ._plant.params import (
    PlantParameters as PlantParameters,
    bmw_320i as bmw_320i,
    drift_bmw_320i as drift_bmw_320i,
)
from ._plant.sensors import Sensors as Sensors
from ._sysid.bayes import BayesResult as BayesResult, identify_bayes as identify_bayes
from ._sysid.force_estimates import (
    ForceEstimates as ForceEstimates,
    axle_force_estimates as axle_force_estimates,
    fit_drive_map as fit_drive_map,
    fit_tires_to_forces as fit_tires_to_forces,
)
from ._sysid.identify import (
    IdentificationResult as IdentificationResult,
    RolloutObjective as RolloutObjective,
    identify as identify,
    make_model as make_model,
    params_from_plant as params_from_plant,
    trainable_spec as trainable_spec,
    window_starts as window_starts,
)
from ._sysid.metrics import (
    format_rmse_table as format_rmse_table,
    rollout_errors as rollout_errors,
    rollout_rmse as rollout_rmse,
)
from ._sysid.recipe import identify_tire as identify_tire
from ._tires.base import AbstractTireModel as AbstractTireModel
from ._tires.exptanh import ExpTanh as ExpTanh, NeuralExpTanh as NeuralExpTanh
from ._tires.fiala import Fiala as Fiala
from ._tires.magic_formula import MagicFormula as MagicFormula
from ._tires.mlp import MLPTire as MLPTire
from ._tires.neural_ode import NeuralODETire as NeuralODETire
from ._tires.registry import TIRES as TIRES, make_tire as make_tire
