"""physml vs NetKet, same process, same architecture size, float64 on CPU.

(a) exact-sampling throughput: `physml.kernels.sample` (cached ARConv1D) vs NetKet's
    `FastARNNConv1D` + `ARDirectSampler`;
(b) one full VMC step (sample + local energies + gradient + Adam update) on the TFIM chain:
    `physml.kernels.fit` with `VMCObjective` vs `nk.driver.VMC`.

Same size: NetKet's `layers` counts the output convolution (features → 2, kernel k) as a layer,
so NetKet `layers=L+1` is compared with physml `layers=L` hidden layers plus its 1×1 output head
(N=20, k=5, 10 features: 662 vs 592 parameters; physml does slightly less work per site). Both
have real parameters and a real positive wave function. Each timing is the median of `repeats`
after a warm-up (compilation excluded), the two sides timed in alternation.

    python benchmarks/quantum_vs_netket.py   # N=20, NetKet 3 layers = physml 2 + head, F=10, k=5
    python benchmarks/quantum_vs_netket.py --samples 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import netket as nk  # noqa: E402
import optax  # noqa: E402

from physml.kernels import fit, sample, train_init, train_step  # noqa: E402
from physml.quantum import ARConv1D, VMCObjective, tfim  # noqa: E402


def _interleaved_medians(fns, repeats):
    """Median wall time of each function, timed in alternation (a, b, a, b, …) after one
    warm-up call each, so that a load change on a shared machine hits both sides alike."""
    for fn in fns:
        fn()  # warm-up / compile
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def main(n_sites=20, layers=2, features=10, kernel=5, n_samples=1024, repeats=21, vmc_steps=10):
    hi = nk.hilbert.Spin(0.5, n_sites)
    H = tfim(n_sites, 1.0)
    print(
        f"N={n_sites} layers={layers} features={features} kernel={kernel} "
        f"samples={n_samples} float64, devices={jax.devices()}"
    )

    # --- NetKet -------------------------------------------------------------------------------
    nk_model = nk.models.FastARNNConv1D(
        hilbert=hi,
        layers=layers + 1,
        features=features,
        kernel_size=kernel,
        param_dtype=jnp.float64,
    )
    vs = nk.vqs.MCState(
        nk.sampler.ARDirectSampler(hi), nk_model, n_samples=n_samples, seed=0, sampler_seed=1
    )
    print(f"NetKet parameters: {vs.n_parameters}")
    driver = nk.driver.VMC(H, optax.adam(1e-3, b2=0.9), variational_state=vs)

    def nk_steps():
        driver.run(n_iter=vmc_steps, out=None, show_progress=False)
        jax.block_until_ready(vs.parameters)

    # --- physml -------------------------------------------------------------------------------
    model = ARConv1D(
        n_sites,
        layers=layers,
        features=features,
        kernel_size=kernel,
        positive=True,
        key=jax.random.key(0),
    )
    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_array)))
    print(f"physml parameters: {n_params}")
    keys = iter(jax.random.split(jax.random.key(1), 10_000))
    t_nk_sample, t_pm_sample = _interleaved_medians(
        [
            lambda: vs.sample().block_until_ready(),
            lambda: sample(model, n_samples, key=next(keys))[0].block_until_ready(),
        ],
        repeats,
    )
    objective = VMCObjective(H, n_samples)
    optimizer = optax.adam(1e-3, b2=0.9)
    state, static = train_init(model, optimizer, key=jax.random.key(2))

    def pm_raw_steps():
        nonlocal state
        for _ in range(vmc_steps):
            state, _info = train_step(state, static, objective, optimizer)
        jax.block_until_ready(state.params)

    def pm_fit():
        fit(
            objective,
            model,
            optimizer=optimizer,
            steps=vmc_steps,
            key=jax.random.key(3),
            progress=False,
        )

    t_nk_vmc, t_pm_vmc_raw, t_pm_vmc_fit = (
        t / vmc_steps
        for t in _interleaved_medians([nk_steps, pm_raw_steps, pm_fit], max(1, repeats // 2))
    )

    rows = [
        ("sampling [samples/s]", n_samples / t_nk_sample, n_samples / t_pm_sample),
        ("VMC step [s] (fit loop)", t_nk_vmc, t_pm_vmc_fit),
        ("VMC step [s] (train_step)", t_nk_vmc, t_pm_vmc_raw),
    ]
    print(f"{'':28s}{'NetKet':>14s}{'physml':>14s}{'ratio':>10s}")
    out = {}
    for name, a, b in rows:
        ratio = b / a if "samples/s" in name else a / b
        print(f"{name:28s}{a:14.4g}{b:14.4g}{ratio:9.2f}x")
        out[name] = {"netket": a, "physml": b, "speedup": ratio}
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites", type=int, default=20)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--features", type=int, default=10)
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--vmc-steps", type=int, default=10)
    a = p.parse_args()
    main(a.sites, a.layers, a.features, a.kernel, a.samples, a.repeats, a.vmc_steps)
