"""Parameters of the plant: CommonRoad vehicle 2 (BMW 320i) and its magic-formula tyres.

The numbers are those of the `commonroad-vehicle-models` package, version 3.0.2
(`parameters/parameters_vehicle2.yaml` and `parameters/parameters_tire.yaml`), which documents
them in Althoff & Würsching, "CommonRoad: Vehicle Models", 2020, Tab. 6 (vehicle, from the DOT
data of a BMW 320i) and Tab. 7 (tyre, from the ADAMS handbook; Pacejka 2002 coefficient names).
They were copied when the plant was ported; physml does not import the package at run time. The
test `tests/vehicle/test_plant.py` checks every number against the installed package.

Units are SI throughout: m, kg, s, rad, N. The tyre coefficients are dimensionless, as in
Pacejka, "Tire and Vehicle Dynamics", 3rd ed. (2012), Sec. 4.3.2.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx


class MagicFormulaCoefficients(eqx.Module):
    """Pacejka magic-formula coefficients used by CommonRoad's single-track drift model.

    Only the coefficients that `vehicle_dynamics_std` reaches are held: it always calls the tyre
    with zero camber (γ = 0), so the camber terms p_dx3, p_dy3, p_hy1, p_hy3, p_vy1, p_vy3 and
    r_vy3 of the package's tyre set multiply zero and drop out. Scaling factors λ are all 1 and
    turn slip is neglected (ζ = 1), as in the package. Names follow Pacejka (2012), Sec. 4.3.2.
    """

    # pure longitudinal slip
    p_cx1: float = 1.6411  # shape factor C_x
    p_dx1: float = 1.1739  # peak friction μ_x
    p_ex1: float = 0.46403  # curvature factor E_x
    p_kx1: float = 22.303  # slip stiffness K_x / F_z
    p_hx1: float = 0.0012297  # horizontal shift S_hx
    p_vx1: float = -8.8098e-06  # vertical shift S_vx / F_z
    # combined slip, longitudinal force reduced by slip angle
    r_bx1: float = 13.276
    r_bx2: float = -13.778
    r_cx1: float = 1.2568
    r_ex1: float = 0.65225
    r_hx1: float = 0.0050722
    # pure lateral slip
    p_cy1: float = 1.3507  # shape factor C_y
    p_dy1: float = 1.0489  # peak friction μ_y
    p_ey1: float = -0.0074722  # curvature factor E_y
    p_ky1: float = -21.92  # cornering stiffness K_y / F_z (negative: F_y opposes α)
    # combined slip, lateral force reduced by longitudinal slip
    r_by1: float = 7.1433
    r_by2: float = 9.1916
    r_by3: float = -0.027856
    r_cy1: float = 1.0719
    r_ey1: float = -0.27572
    r_hy1: float = 5.7448e-06
    r_vy1: float = -0.027825
    r_vy4: float = 12.12
    r_vy5: float = 1.9
    r_vy6: float = -10.704


class PlantParameters(eqx.Module):
    """Vehicle parameters of the CommonRoad single-track drift model (defaults: vehicle 2).

    Geometry and inertia (Althoff & Würsching 2020, Tab. 6):

    - `mass_kg` m, `yaw_inertia_kgm2` I_z, `wheel_inertia_kgm2` I_y,w (one wheel of an axle: the
      single-track model lumps an axle into one wheel with this inertia).
    - `cg_to_front_m` a (l_f), `cg_to_rear_m` b (l_r), `cg_height_m` h_s (sprung-mass centre
      of gravity height, used by the package for quasi-static load transfer).
    - `wheel_radius_m` R_w, effective rolling radius.
    - `brake_split_front` T_sb (share of brake torque on the front axle) and
      `drive_split_front` T_se (share of drive torque on the front axle; 0 = rear-wheel drive).

    Input constraints the package applies inside its right-hand side
    (`utils/steering_constraints.py`, `utils/acceleration_constraints.py`):

    - `steer_min_rad`, `steer_max_rad`: steering-angle range of the front wheels [rad].
    - `steer_rate_min_radps`, `steer_rate_max_radps`: steering-rate range [rad/s]. Vehicle 2 has
      ±0.4 rad/s, a production rack; a drift car needs a faster one (see `drift_bmw_320i`).
    - `accel_max_mps2` a_max, `accel_switch_speed_mps` v_switch: above v_switch the positive
      acceleration is capped at a_max·v_switch/V, i.e. a constant wheel power
      m·a_max·v_switch ≈ 92 kW for vehicle 2.
    - `speed_min_mps`, `speed_max_mps`: no further acceleration beyond these speeds.
    """

    mass_kg: float = 1093.2952334674046
    yaw_inertia_kgm2: float = 1791.5995300122856
    wheel_inertia_kgm2: float = 1.7
    cg_to_front_m: float = 1.1561957064
    cg_to_rear_m: float = 1.4227170936
    cg_height_m: float = 0.61373004
    wheel_radius_m: float = 0.344
    brake_split_front: float = 0.66
    drive_split_front: float = 0.0
    steer_min_rad: float = -1.066
    steer_max_rad: float = 1.066
    steer_rate_min_radps: float = -0.4
    steer_rate_max_radps: float = 0.4
    accel_max_mps2: float = 11.5
    accel_switch_speed_mps: float = 7.319
    speed_min_mps: float = -13.9
    speed_max_mps: float = 50.8
    tire: MagicFormulaCoefficients = eqx.field(default_factory=MagicFormulaCoefficients)

    def __check_init__(self):
        for name in (
            "mass_kg",
            "yaw_inertia_kgm2",
            "wheel_inertia_kgm2",
            "cg_to_front_m",
            "cg_to_rear_m",
            "wheel_radius_m",
            "accel_max_mps2",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"PlantParameters.{name} must be > 0, got {value!r}.")
        if not self.steer_min_rad < self.steer_max_rad:
            raise ValueError(
                "PlantParameters needs steer_min_rad < steer_max_rad, got "
                f"{self.steer_min_rad!r} and {self.steer_max_rad!r}."
            )
        if not self.steer_rate_min_radps < self.steer_rate_max_radps:
            raise ValueError(
                "PlantParameters needs steer_rate_min_radps < steer_rate_max_radps, got "
                f"{self.steer_rate_min_radps!r} and {self.steer_rate_max_radps!r}."
            )
        for name in ("brake_split_front", "drive_split_front"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PlantParameters.{name} must lie in [0, 1], got {value!r}.")

    @property
    def wheelbase_m(self) -> float:
        """a + b [m]."""
        return self.cg_to_front_m + self.cg_to_rear_m


def bmw_320i() -> PlantParameters:
    """CommonRoad vehicle 2 (BMW 320i, rear-wheel drive), exactly as in the package."""
    return PlantParameters()


def drift_bmw_320i(steer_rate_max_radps: float = 2.0) -> PlantParameters:
    """Vehicle 2 with a drift car's steering rack: |δ̇| ≤ `steer_rate_max_radps` [rad/s].

    Everything that shapes the dynamics (mass, inertia, geometry, tyres) is vehicle 2 unchanged.
    Only the package's steering-rate constraint (±0.4 rad/s, a production rack) is widened to
    the rate of a drift car's steering actuator: counter-steer must follow the yaw motion, and
    Djeumou et al. (CoRL 2024, App. A.5) allow |δ̇| ≤ 2 rad/s on their drift Supra.
    """
    if not steer_rate_max_radps > 0:
        raise ValueError(
            f"`steer_rate_max_radps` must be > 0 [rad/s], got {steer_rate_max_radps!r}."
        )
    return dataclasses.replace(
        PlantParameters(),
        steer_rate_min_radps=-float(steer_rate_max_radps),
        steer_rate_max_radps=float(steer_rate_max_radps),
    )
