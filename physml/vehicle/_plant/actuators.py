"""Drift-car actuators: a rate-limited steering servo and wheel-torque limits.

The plant takes the physical input (steering command δ_cmd [rad], wheel torque τ [N·m]). The
actuators turn it into what the CommonRoad model integrates:

- Steering: a first-order servo with a rate limit,
  δ̇ = clip((clip(δ_cmd, ±δ_max) − δ) / T_servo, ±δ̇_max).
  The actual angle δ is a plant state; it approaches the clipped command without overshoot, so
  |δ| ≤ δ_max holds whenever it held initially.
- Torque: τ_applied = clip(τ, τ_min, τ_max), applied instantly (no engine or brake lag is
  modelled). τ > 0 is drive torque on the rear axle, τ < 0 brake torque (the plant splits it
  66/34 front/rear). The plant's own power limit (CommonRoad vehicle 2: a_x ≤ a_max v_switch / V,
  about 92 kW at the wheels) may lower a positive τ further at speed.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


class Actuators(eqx.Module):
    """Steering servo and torque limits of a drift car (defaults stated with reasons).

    Attributes:
        steer_max_rad: |δ| ≤ 0.6 rad. Drift cars use extended-lock steering;
            Djeumou et al. (CoRL 2024, App. A.5) allow |δ| ≤ 0.75 rad on their Supra. 0.6 rad
            leaves room for counter-steer at β ≈ 40° and stays inside vehicle 2's 1.066 rad.
        steer_rate_max_radps: |δ̇| ≤ 2 rad/s, the Supra's steering-rate bound in CoRL 2024,
            App. A.5. Needs a plant whose rack allows it (`drift_bmw_320i`).
        steer_time_constant_s: 0.05 s servo time constant (about 3 Hz bandwidth), a
            representative value for an electric steering actuator; an assumption, not a
            measured figure.
        torque_min_nm: −2000 N·m (brakes; about 5.3 m/s² of deceleration on vehicle 2).
        torque_max_nm: 2500 N·m at the rear axle: a 2.0 l BMW 320i delivers about 200 N·m at
            the crank; times a first-gear ratio of about 4 and a final drive of about 3.5 at
            90 % efficiency gives about 2500 N·m (representative, not a datasheet value). The
            plant's power limit caps it further above about 12 m/s.
    """

    steer_max_rad: float = 0.6
    steer_rate_max_radps: float = 2.0
    steer_time_constant_s: float = 0.05
    torque_min_nm: float = -2000.0
    torque_max_nm: float = 2500.0

    def __check_init__(self):
        for name in ("steer_max_rad", "steer_rate_max_radps", "steer_time_constant_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"Actuators.{name} must be > 0, got {value!r}.")
        if not self.torque_min_nm < self.torque_max_nm:
            raise ValueError(
                "Actuators needs torque_min_nm < torque_max_nm, got "
                f"{self.torque_min_nm!r} and {self.torque_max_nm!r} [N·m]."
            )

    def steer_rate(
        self, steer_rad: Float[ArrayLike, ""], steer_cmd_rad: Float[ArrayLike, ""]
    ) -> Float[Array, ""]:
        """Servo steering rate δ̇ [rad/s] at actual angle `steer_rad` under `steer_cmd_rad`."""
        target = jnp.clip(steer_cmd_rad, -self.steer_max_rad, self.steer_max_rad)
        rate = (target - steer_rad) / self.steer_time_constant_s
        return jnp.clip(rate, -self.steer_rate_max_radps, self.steer_rate_max_radps)

    def torque(self, torque_cmd_nm: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """Wheel torque [N·m] after the torque limits."""
        return jnp.clip(jnp.asarray(torque_cmd_nm), self.torque_min_nm, self.torque_max_nm)
