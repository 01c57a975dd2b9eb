"""A VMC step sharded over 4 (forced) CPU devices equals the unsharded step: with SR for the
symmetrised 2D Heisenberg state in Sᶻ = 0, and with the plain gradient for the 1D TFIM chain on
the single-flip path (whose `eqx.error_if` check once made the program mix NetKet's mesh with
physml's).

XLA's device count is fixed when JAX initialises, so the check runs in a fresh interpreter
with XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.flatten_util import ravel_pytree

    from quantum_testing import perturbed

    from physml.kernels import train_init, train_step
    from physml.quantum import (
        SR, ARConv1D, ARConv2D, FixedMagnetization, Symmetrized, VMCObjective, heisenberg_2d,
        lattice_group, tfim,
    )

    assert jax.device_count() == 4, jax.devices()



    def check(H, model, pre, gradient):
        opt, key = optax.sgd(0.1), jax.random.key(2)
        sharded = VMCObjective(H, 256, shard=True, gradient=gradient)
        plain = VMCObjective(H, 256, shard=False, gradient=gradient)
        _, _, aux = eqx.filter_jit(sharded.value_and_grad)(model, key)
        rows = lambda a: {sh.data.shape[0] for sh in a.addressable_shards}
        assert rows(aux["sigma"]) == {64}, aux["sigma"].sharding  # 256 samples split 4 ways
        assert rows(aux["e_loc"]) == {64}, aux["e_loc"].sharding

        # The same samples (same key) give the same update; a difference in the samples would
        # show as one far above round-off.
        updates = []
        for obj in (sharded, plain):
            state, static = train_init(model, opt, key=key, preconditioner=pre)
            new, info = train_step(state, static, obj, opt, pre)
            assert bool(info.ok)
            updates.append(ravel_pytree(new.params)[0] - ravel_pytree(state.params)[0])
        d_s, d_p = (np.asarray(u) for u in updates)
        assert np.max(np.abs(d_p)) > 1e-3, "a vacuous update"
        np.testing.assert_allclose(d_s, d_p, rtol=1e-9, atol=1e-12 * np.max(np.abs(d_p)))
        print("OK", type(model.model if hasattr(model, "model") else model).__name__,
              np.max(np.abs(d_s - d_p)), np.max(np.abs(d_p)))


    net2d = perturbed(ARConv2D((2, 4), features=4, positive=True, key=jax.random.key(0)), 1, 0.3)
    # SR from the sharded per-sample log-derivatives (no backward pass: `ground_state`'s path).
    check(
        heisenberg_2d((2, 4), pbc=False, total_sz=0),
        Symmetrized(FixedMagnetization(net2d), lattice_group((2, 4), pbc=False), spin_flip=True),
        SR(1e-3),
        False,
    )
    # The plain gradient, all-reduced over the devices (SGD: the update is −0.1 × gradient).
    net1d = perturbed(ARConv1D(8, layers=2, features=4, key=jax.random.key(0)), 1, 0.3)
    check(tfim(8, 0.9), net1d, None, True)
    """
)


def test_sharded_vmc_step_equals_unsharded():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    here = os.path.dirname(os.path.abspath(__file__))  # for `quantum_testing`
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("OK") == 2, out.stdout
