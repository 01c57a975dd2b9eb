"""Sensor model: a dual-antenna GNSS/INS for r, V, β and a wheel-speed encoder for ω_r.

Measurements are the true values plus independent zero-mean Gaussian noise at each log sample
(100 Hz). Standard deviations (defaults) are representative of a survey-grade automotive
GNSS/INS of the OxTS RT3000 class (OxTS, "RT3000 v3 / RT500 user manual", specification
tables: velocity accuracy of the order of 0.05 km/h RMS, slip-angle accuracy of the order of
0.15° at 50 km/h, angular-rate noise of the order of 0.1 °/s) and of ABS-type wheel-speed
sensors (about 0.5 % of the reading after filtering). They are rounded *up*, i.e. the model is
somewhat noisier than such a unit: representative values, not a calibration of one device.

Not modelled: sensor biases and drift, latency, the speed dependence of the slip-angle accuracy
(it degrades as V → 0; the log stays above 4 m/s), quantisation.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ...kernels._validate import check_key


class Sensors(eqx.Module):
    """Noise levels of the measured state columns [r, V, β, ω_r] (1σ).

    Attributes:
        yaw_rate_std_radps: 0.15 °/s = 2.6e-3 rad/s (GNSS/INS gyro, filtered).
        speed_std_mps: 0.05 m/s (GNSS/INS velocity).
        sideslip_std_rad: 0.2° = 3.5e-3 rad (dual-antenna GNSS/INS slip angle).
        wheel_speed_rel_std: 0.5 % of the reading (wheel-speed encoder).
        rate_hz: logging rate [Hz], 100.
    """

    yaw_rate_std_radps: float = math.radians(0.15)
    speed_std_mps: float = 0.05
    sideslip_std_rad: float = math.radians(0.2)
    wheel_speed_rel_std: float = 0.005
    rate_hz: float = eqx.field(default=100.0, static=True)

    def __check_init__(self):
        for name in (
            "yaw_rate_std_radps",
            "speed_std_mps",
            "sideslip_std_rad",
            "wheel_speed_rel_std",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Sensors.{name} must be a finite number >= 0, got {value!r}.")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(
                f"Sensors.rate_hz must be a finite rate > 0 [Hz], got {self.rate_hz!r}."
            )

    def std(self, state_true: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch 4"]:
        """Noise standard deviation of each column at the true state [r, V, β, ω_r]."""
        state_true = jnp.asarray(state_true)
        const = jnp.asarray(
            [self.yaw_rate_std_radps, self.speed_std_mps, self.sideslip_std_rad, 0.0],
            state_true.dtype,
        )
        rel = jnp.asarray([0.0, 0.0, 0.0, self.wheel_speed_rel_std], state_true.dtype)
        return const + rel * jnp.abs(state_true)

    def measure(
        self, state_true: Float[ArrayLike, "*batch 4"], *, key: PRNGKeyArray
    ) -> Float[Array, "*batch 4"]:
        """Noisy measurement of the true state columns [r, V, β, ω_r]."""
        check_key(key)
        state_true = jnp.asarray(state_true)
        noise = jax.random.normal(key, state_true.shape, state_true.dtype)
        return state_true + self.std(state_true) * noise
