"""physml: physics-informed learning in JAX.

Subpackages:
    physml.kernels  shared numerics (integrators, exact autoregressive sampler, Monte Carlo
                    statistics, the variational training loop); knows no physics.
    physml.quantum  autoregressive neural quantum states and variational Monte Carlo.
    physml.vehicle  learned tire models, a drift plant, system identification and drift MPC.
"""

__version__ = "0.1.0"
