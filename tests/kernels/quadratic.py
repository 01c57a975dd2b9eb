"""A stochastic quadratic objective with a step counter, shared by the training-loop tests."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from physml.kernels import AbstractObjective, estimate


class Quadratic(eqx.Module):
    """Stochastic quadratic ½(x − x*)ᵀ H (x − x*) with additive gradient noise."""

    hessian: jax.Array
    optimum: jax.Array
    noise: float = 0.0
    nan_at_step: int = -1  # inject a NaN loss when the model's counter reaches this step

    def value_and_grad(self, model, key):
        x = model["x"]
        d = x - self.optimum
        samples = 0.5 * d @ self.hessian @ d + self.noise * jax.random.normal(key, (64,))
        grad = self.hessian @ d + self.noise * jax.random.normal(key, d.shape)
        poisoned = jnp.where(model["counter"] == self.nan_at_step, jnp.nan, 0.0)
        stats = estimate(samples + poisoned)
        grads = {"x": grad, "counter": jnp.ones_like(model["counter"])}
        return stats, grads, {"metrics": {"dist": jnp.linalg.norm(d)}}


class QuadraticObjective(Quadratic, AbstractObjective):
    pass


def problem(**kw):
    h = jnp.diag(jnp.array([1.0, 3.0, 10.0]))
    return QuadraticObjective(h, jnp.array([1.0, -2.0, 0.5]), **kw)


def model():
    # "counter" is trained by a unit gradient with SGD lr = -1: it counts steps exactly.
    return {"x": jnp.zeros(3), "counter": jnp.zeros(())}


def optimizer():
    return optax.multi_transform(
        {"x": optax.adam(0.05), "counter": optax.sgd(-1.0)},
        {"x": "x", "counter": "counter"},
    )
