"""Neural-ODE tyre: the force curve solves a second-order ODE in the slip.

After Djeumou et al., ICRA 2023 (arXiv:2306.06330). The one-sided curve G(u), u ≥ 0 (distance
from the curve's centre in z = tan α), solves

    G(0) = 0,  G'(0) = C = softplus(Ĉ)                     (slope ≈ cornering stiffness / F_z)
    0 < u < u_i:  G'' = −(C / u_i + s exp(h₀(u)))           (concave: rises to the peak)
    u > u_i:      G'' = −k exp(h₁(u)) G'                    (relaxes to the sliding force)

with u_i = softplus(û_i), h = M tanh(NN(u)) (M static), s, k > 0. For every parameter value:
on (0, u_i) G'' ≤ −C/u_i < 0, so G' falls from C to G'(u_i) < 0 and G has one peak u_p < u_i;
on (u_i, ∞) G' = G'(u_i) exp(−∫ k e^{h₁}) stays negative and → 0 (k e^{h₁} ≥ k e^{−M} > 0):
convex, monotone, saturating; |G| ≤ C u_i + u_i s e^{2M} / k. The relaxation's drop
D(u) = G(u_i) − G(u) ≥ 0 is then mapped to A (1 − e^{−D/A}), A = (1 − λ_min) G(u_i): the same
value and slope at u_i, still monotone and convex, and a sliding force G ≥ λ_min G(u_i) for every
parameter value (λ_min = `SLIDE_MIN`, the least sliding-to-peak friction ratio of real tyres),
so the curve cannot fall away beyond the data.
Axle forces: F_y = −F_z (f₀ + sgn(w) G(|w|)), w = tan α − z_c (front); rear: magnitude F_z G(ρ),
ρ = sqrt(tan²α + c0 σ²), direction (−tan α, d σ)/|(tan α, d σ)| (as the ExpTanh tyre).
`prepare()` solves the ODE once per parameter set (diffrax Tsit5, fixed steps) and tabulates
it (`TabulatedCurve`), so a rollout does not solve it per force evaluation; gradients flow
through the solve. A fit to axle forces moves the curve-shape scalars within `FIT_BOUNDS`.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ...kernels._validate import check_key
from .base import (
    SLIDE_MIN,
    AbstractTireModel,
    Features,
    FitBounds,
    Scalar,
    float_array,
    inverse_softplus,
    smooth_norm,
    softplus,
)

#: Box bounds of a fit to axle forces: the curve-shape scalars only (the network, offset and
#: centre keep their neutral start), bounded so that the fit cannot reach rates where the
#: tabulated solution is poorly resolved.
FIT_BOUNDS = {
    "raw_slope": (0.5, 60.0),
    "raw_inflection": (-4.0, 0.5),
    "log_curvature": (-3.0, 4.0),
    "log_relaxation": (-3.0, 4.0),
    "raw_c0": (-3.0, 3.0),
    "raw_d": (-3.0, 3.0),
}


class TabulatedCurve(eqx.Module):
    """The solved one-sided curve G: the rise on [0, u_i] (G, G' at n + 1 nodes, cubic Hermite
    between them), the relaxation on [u_i, u_i + span] (G and q at the nodes, G' = G'(u_i) e^{−q};
    between nodes G follows the exponential profile of a constant rate, which is monotone like
    the ODE solution, where a cubic could overshoot a fast decay), and the closed-form tail."""

    u_i: Array
    span: Array
    g_a: Float[Array, " n"]
    p_a: Float[Array, " n"]
    g_b: Float[Array, " n"]
    q_b: Float[Array, " n"]
    rate_end: Array

    @property
    def p_b(self) -> Float[Array, " n"]:
        """G' at the relaxation nodes."""
        return self.p_a[-1] * jnp.exp(-self.q_b)

    def __call__(self, u: Array) -> Array:
        n = self.g_a.shape[0] - 1
        u_end = self.u_i + self.span
        # Rise: cubic Hermite.
        h_a = self.u_i / n
        x = jnp.clip(u / h_a, 0.0, float(n))
        j = jnp.clip(jnp.floor(x).astype(int), 0, n - 1)
        t = x - j
        t2, t3 = t * t, t * t * t
        rise = (
            (2 * t3 - 3 * t2 + 1) * self.g_a[j]
            + (t3 - 2 * t2 + t) * h_a * self.p_a[j]
            + (-2 * t3 + 3 * t2) * self.g_a[j + 1]
            + (t3 - t2) * h_a * self.p_a[j + 1]
        )
        # Relaxation: G_j + (G_{j+1} − G_j) (1 − e^{−r τ}) / (1 − e^{−r h}), r = Δq / h.
        h_b = self.span / n
        x = jnp.clip((u - self.u_i) / h_b, 0.0, float(n))
        j = jnp.clip(jnp.floor(x).astype(int), 0, n - 1)
        t = x - j
        dq = jnp.maximum(self.q_b[j + 1] - self.q_b[j], 1e-12)
        frac = jnp.expm1(-dq * t) / jnp.expm1(-dq)
        relax = self.g_b[j] + (self.g_b[j + 1] - self.g_b[j]) * frac
        du = jnp.maximum(u - u_end, 0.0)
        p_end = self.p_a[-1] * jnp.exp(-self.q_b[-1])
        tail = self.g_b[-1] + p_end * (-jnp.expm1(-self.rate_end * du)) / self.rate_end
        return jnp.where(u <= self.u_i, rise, self._floored(jnp.where(u > u_end, tail, relax)))

    def _floored(self, g: Array) -> Array:
        """The relaxation with its drop D = G(u_i) − G mapped to A (1 − e^{−D/A}),
        A = (1 − λ_min) G(u_i)⁺: same value and slope at u_i, still monotone and convex, and
        G ≥ λ_min G(u_i) everywhere beyond u_i (λ_min = `SLIDE_MIN`)."""
        g_i = self.g_a[-1]
        scale = (1.0 - SLIDE_MIN) * jnp.maximum(g_i, 1e-6)
        return g_i + scale * jnp.expm1(-(g_i - g) / scale)


def _h(net, u, log_range):
    return log_range * jnp.tanh(net(jnp.reshape(u, (1,))))


def _field(t, y, args):
    """Both segments as one system on t ∈ [0, 1]: the rise (G, G') at u = t u_i and the
    relaxation's (I, q) at u = u_i + t span, with q' = k e^{h₁} and I' = e^{−q}, so that
    G = G(u_i) + G'(u_i) I there. The relaxation in this form does not depend on the rise, so
    one solve serves both (the rise's end values only scale and shift I)."""
    (net, slope, u_i, s, k, span), log_range = args
    u = jnp.stack([t * u_i, u_i + t * span])
    h = log_range * jnp.tanh(jax.vmap(lambda x: net(jnp.reshape(x, (1,))))(u))
    _, p, _, q = y
    d2 = -(slope / u_i + s * jnp.exp(h[0, 0]))
    return (p * u_i, d2 * u_i, jnp.exp(-q) * span, k * jnp.exp(h[1, 1]) * span)


@eqx.filter_jit
def _integrate(y0, args, n, log_range):
    # Module-level field and one jitted entry: repeated solves (and new parameter values) reuse
    # one compilation instead of retracing diffrax for every new closure. Fixed steps: the
    # reverse pass keeps every step (checkpoints = steps) instead of recomputing forward.
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_field),
        diffrax.Tsit5(),
        0.0,
        1.0,
        1.0 / n,
        y0,
        (args, log_range),
        saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, 1.0, n + 1)),
        stepsize_controller=diffrax.ConstantStepSize(),
        adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=n + 1),
        max_steps=n + 1,
    )
    return sol.ys


class NeuralODETire(AbstractTireModel):
    """Neural-ODE tyre (per axle). See the module docstring for the construction and its proofs.

    Attributes:
        net: MLP u -> (h₀, h₁) before the bound M tanh(·).
        raw_slope, raw_inflection: Ĉ, û_i (C, u_i = softplus).
        log_curvature, log_relaxation: log s, log k.
        offset, center: f₀ (per unit load), z_c (lateral only).
        raw_c0, raw_d: combined-slip weight and direction (rear).
        n_nodes: grid points per segment; span: tabulated range beyond u_i [tan units];
        log_range: M.
    """

    net: eqx.nn.MLP
    raw_slope: Float[Array, ""]
    raw_inflection: Float[Array, ""]
    log_curvature: Float[Array, ""]
    log_relaxation: Float[Array, ""]
    offset: Float[Array, ""]
    center: Float[Array, ""]
    raw_c0: Float[Array, ""]
    raw_d: Float[Array, ""]
    n_nodes: int = eqx.field(static=True)
    span: float = eqx.field(static=True)
    log_range: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        key: PRNGKeyArray,
        width: int = 16,
        depth: int = 2,
        slope: float = 12.0,
        inflection: float = 0.17,
        curvature: float = 2.0,
        relaxation: float = 4.0,
        n_nodes: int = 24,
        span: float = 1.5,
        log_range: float = 2.0,
    ):
        check_key(key)
        if n_nodes < 2 or span <= 0 or log_range <= 0:
            raise ValueError(
                f"need n_nodes >= 2, span > 0, log_range > 0; got n_nodes={n_nodes}, "
                f"span={span}, log_range={log_range}."
            )
        net = eqx.nn.MLP(1, 2, width, depth, activation=jax.nn.tanh, key=key)
        last = net.layers[-1]
        self.net = eqx.tree_at(lambda n: n.layers[-1].weight, net, 0.1 * last.weight)
        self.raw_slope = float_array(inverse_softplus(slope))
        self.raw_inflection = float_array(inverse_softplus(inflection))
        self.log_curvature = float_array(jnp.log(curvature))
        self.log_relaxation = float_array(jnp.log(relaxation))
        self.offset = float_array(0.0)
        self.center = float_array(0.0)
        self.raw_c0 = float_array(inverse_softplus(1.0))
        self.raw_d = float_array(inverse_softplus(1.0))
        self.n_nodes, self.span, self.log_range = int(n_nodes), float(span), float(log_range)

    def _h(self, u: Array) -> Float[Array, "2"]:
        return _h(self.net, u, self.log_range)

    def solve(self) -> TabulatedCurve:
        """Solve the curve ODE once (diffrax) and tabulate G, G' on the two segments.

        The grid is aligned with u_i, so the switch of the right-hand side falls on a step
        boundary. The relaxation is solved in log form, G' = G'(u_i) e^{−q}, q' = k e^{h₁}
        (not stiff however fast the learned decay), and G = G(u_i) + G'(u_i) I, I' = e^{−q}
        does not depend on the rise: both segments are one 4-dimensional system, one solve.
        Beyond the grid the closed-form tail of the relaxation with h₁ frozen at the last node.
        """
        slope, u_i = softplus(self.raw_slope), softplus(self.raw_inflection)
        s, k = jnp.exp(self.log_curvature), jnp.exp(self.log_relaxation)
        span = jnp.asarray(self.span, float)
        n = self.n_nodes

        zero = jnp.zeros((), slope.dtype)
        args = (self.net, slope, u_i, s, k, span)
        g_a, p_a, i_b, q_b = _integrate((zero, slope, zero, zero), args, n, self.log_range)
        g_b = g_a[-1] + p_a[-1] * i_b
        rate_end = k * jnp.exp(self._h(u_i + span)[1])
        return TabulatedCurve(u_i, span, g_a, p_a, g_b, q_b, rate_end)

    def prepare(self) -> PreparedODETire:
        return PreparedODETire(
            self.solve(),
            self.offset,
            self.center,
            softplus(self.raw_c0),
            softplus(self.raw_d),
            self.force_bound(1.0),
        )

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        return self.prepare().lateral(slip_angle, normal_load, features)

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        return self.prepare().combined(slip_angle, slip_ratio, normal_load, features)

    def fit_bounds(self) -> FitBounds:
        return FIT_BOUNDS

    def force_bound(self, normal_load: Scalar) -> Array:
        slope, u_i = softplus(self.raw_slope), softplus(self.raw_inflection)
        s, k = jnp.exp(self.log_curvature), jnp.exp(self.log_relaxation)
        m = self.log_range
        return normal_load * (jnp.abs(self.offset) + slope * u_i + u_i * s * jnp.exp(2 * m) / k)


class PreparedODETire(AbstractTireModel):
    """A `NeuralODETire` with its curve solved: what `NeuralODETire.prepare()` returns."""

    curve: TabulatedCurve
    offset: Array
    center: Array
    c0: Array
    d: Array
    unit_bound: Array

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        w = jnp.tan(slip_angle) - self.center
        odd = jnp.where(w >= 0, self.curve(w), -self.curve(-w))
        return -normal_load * (self.offset + odd)

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        tan_a = jnp.tan(slip_angle)
        sigma = jnp.asarray(slip_ratio, float)
        magnitude = normal_load * self.curve(smooth_norm(tan_a, jnp.sqrt(self.c0) * sigma))
        norm = smooth_norm(tan_a, self.d * sigma)
        return -magnitude * tan_a / norm, magnitude * self.d * sigma / norm

    def force_bound(self, normal_load: Scalar) -> Array:
        return normal_load * self.unit_bound
