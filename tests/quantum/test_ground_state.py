"""ground_state: bad input, divergence handling, collapsed states, save/load (also on a full
disk), observables, learning."""

import errno
import json
import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax
import pytest
from quantum_testing import all_spins

from physml.kernels import CheckpointFormatError, OutputWriteError
from physml.quantum import (
    SR,
    ARConv1D,
    Result,
    correlations,
    exact_energy,
    ground_state,
    heisenberg,
    magnetization,
    pauli_to_spin_half,
    sample_spins,
    tfim,
)


def _small(n=4, positive=True, seed=0):
    return ARConv1D(
        n, layers=2, features=4, kernel_size=3, positive=positive, key=jax.random.key(seed)
    )


def _run(H, model, **kw):
    kw = {"n_samples": 64, "steps": 3, "key": jax.random.key(0), "progress": False} | kw
    return ground_state(H, model, **kw)


@pytest.mark.parametrize(
    "hamiltonian, error, match",
    [
        (lambda: nk.operator.spin.sigmaz(nk.hilbert.Spin(1.0, 4), 0), ValueError, "spin-1/2"),
        (
            lambda: nk.operator.Heisenberg(nk.hilbert.Spin(0.5, 4, total_sz=0), nk.graph.Chain(4)),
            ValueError,
            "constrained",
        ),
        (lambda: tfim(6, 1.0), ValueError, "6 sites but `model` has n_sites=4"),
        (
            lambda: nk.operator.IsingNumba(nk.hilbert.Spin(0.5, 4), nk.graph.Chain(4), h=1.0),
            TypeError,
            "to_jax_operator",
        ),
        (lambda: np.eye(16), TypeError, "NetKet JAX operator"),
    ],
)
def test_rejects_operators_the_model_cannot_represent(hamiltonian, error, match):
    with pytest.raises(error, match=match):
        _run(hamiltonian(), _small())


def test_rejects_bad_arguments():
    H, m = tfim(4, 1.0), _small()
    with pytest.raises(ValueError, match="n_samples"):
        _run(H, m, n_samples=1)
    with pytest.raises(ValueError, match="steps"):
        _run(H, m, steps=0)
    with pytest.raises(TypeError, match="key"):
        _run(H, m, key=0)
    # Our boundary check says "autoregressive wave function"; under the test run's runtime type
    # checker the annotation (AbstractAutoregressiveModel) may fire first.
    with pytest.raises(
        TypeError,
        match=r"autoregressive wave function|AbstractAutoregressiveModel|AbstractSpinState",
    ):
        _run(H, lambda s: s)
    bad = eqx.tree_at(lambda m: m.head_b, m, jnp.array([jnp.nan, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        _run(H, bad)
    # Checked before the first step, not after training (issue 21).
    with pytest.raises(ValueError, match="`n_eval_samples` must be >= 2"):
        _run(H, m, n_eval_samples=1, steps=10**9)
    with pytest.raises(ValueError, match="`exact` must be a finite"):
        _run(H, m, exact=float("nan"), steps=10**9)


def test_exact_energy_zero_has_no_relative_error():
    """A reference energy of 0 (h = 0 and J = 0) is legitimate: the relative error is None."""
    res = _run(tfim(4, 1.0), _small(), exact=0.0, steps=1)
    assert res.info["exact"] == 0.0 and res.info["relative_error"] is None
    assert json.loads(json.dumps(res.summary()))["relative_error"] is None


def test_non_finite_local_energies_stop_the_run_and_say_why():
    """An operator with a NaN coefficient: training stops at step 0 with the initial (last
    good) parameters and the final evaluation reports the non-finite local energies."""
    H = nk.operator.IsingJax(nk.hilbert.Spin(0.5, 4), nk.graph.Chain(4), h=float("nan"), J=-1.0)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 0.*local energies"):
        _run(H, _small())


def _polarised(n=4):
    """ψ on all-up alone (to round-off): a collapsed state."""
    return eqx.tree_at(lambda m: m.head_b, _small(n), jnp.array([40.0, -40.0]))


def test_collapsed_batch_tells_a_collapsed_state_from_an_eigenstate():
    from physml.quantum import collapsed_batch, local_energies

    def collapsed(H, model):
        sigma = sample_spins(model, 32, key=jax.random.key(0))
        return bool(collapsed_batch(model, H, sigma, local_energies(model, H, sigma)))

    assert collapsed(tfim(4, 1.0), _polarised())  # all-up is no eigenstate at h = 1
    assert not collapsed(tfim(4, 0.0), _polarised())  # ... but is one at h = 0
    assert not collapsed(tfim(4, 1.0), _small())  # a spread-out state
    # Close to all-up: ψ(σ')/ψ(σ) ≈ 0.05 on single flips, a fifth of the first-order value
    # h / 4 of a state near an eigenstate; not collapsed. At ≈ 0.003 (head bias 3), a hundredth
    # of it, Var(E_loc) ≈ 1e-5 while ⟨H²⟩ − ⟨H⟩² ≈ 4: collapsed.
    nearly = eqx.tree_at(lambda m: m.head_b, _small(), jnp.array([1.5, -1.5]))
    assert not collapsed(tfim(4, 1.0), nearly)
    assert collapsed(
        tfim(4, 1.0), eqx.tree_at(lambda m: m.head_b, _small(), jnp.array([3.0, -3.0]))
    )


@pytest.mark.parametrize(
    "optimizer, preconditioner",
    [(optax.sgd(1e6), SR(1e-3)), (optax.adam(1e4), None), (optax.adam(-0.1), None)],
    ids=["sgd-1e6-SR", "adam-1e4", "adam-negative-lr"],
)
def test_collapsed_state_is_reported_not_presented_as_exact(optimizer, preconditioner):
    """An absurd or negative learning rate collapses the N = 6 chain onto one configuration
    (or the Néel pair): E = ±6 with Var(E_loc) = 0 and no stop reason before issue 21. Now the
    run stops with `stop_reason` saying so, with the last parameters whose samples had not
    collapsed, and neither the variance nor the error is reported as 0."""
    H = tfim(6, 1.0)
    res = _run(
        H,
        _small(6),
        n_samples=64,
        steps=40,
        optimizer=optimizer,
        preconditioner=preconditioner,
        exact=exact_energy(H),
    )
    assert res.stop_reason is not None and res.stop_reason.startswith("collapsed sample batch")
    assert res.info["collapsed"] is True
    assert res.variance > 1e-3 and float(res.energy.error_of_mean) > 0


def test_result_save_load_round_trip(tmp_path):
    H = tfim(4, 1.0)
    res = _run(H, _small(positive=False), exact=exact_energy(H))
    res.save(tmp_path / "run")
    back = Result.load(tmp_path / "run", like=_small(positive=False, seed=5))
    assert back.summary() == res.summary()
    assert back.history == res.history
    s = jnp.ones((1, 4))
    np.testing.assert_array_equal(back.model.log_psi(s), res.model.log_psi(s))
    assert float(back.energy.mean.real) == float(res.energy.mean.real)
    assert len(res.history) == 3 and {"step", "loss", "loss_error"} <= set(res.history[0])


def test_failed_save_leaves_the_earlier_result_and_keeps_the_new_one(tmp_path, monkeypatch):
    """ENOSPC while writing the `.json` (after the `.eqx` was written in full): neither file
    is replaced, the earlier pair still loads, and the error carries the new `Result`."""
    H = tfim(4, 1.0)
    first = _run(H, _small(), steps=1)
    first.save(tmp_path / "run")
    second = _run(H, _small(), steps=2)
    fsync, calls = os.fsync, []

    def json_write_fails(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", json_write_fails)
    with pytest.raises(OutputWriteError, match=r"run\.json.*no space left on device") as e:
        second.save(tmp_path / "run")
    monkeypatch.undo()
    assert e.value.result is second
    back = Result.load(tmp_path / "run", like=_small(seed=5))
    assert back.summary() == first.summary() and len(back.history) == 1
    (tmp_path / "run.eqx").write_bytes(b"")  # damaged files are named as such
    with pytest.raises(CheckpointFormatError, match=r"run\.eqx.*empty"):
        Result.load(tmp_path / "run", like=_small())
    (tmp_path / "run.json").write_text('{"summary": ')
    with pytest.raises(CheckpointFormatError, match=r"run\.json.*damaged"):
        Result.load(tmp_path / "run", like=_small())
    s = jnp.ones((1, 4))
    np.testing.assert_array_equal(back.model.log_psi(s), first.model.log_psi(s))


def test_log_that_cannot_be_written_keeps_the_result(tmp_path, monkeypatch):
    write = os.write

    def full(fd, data):
        if bytes(data).startswith(b'{"step"'):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.warns(RuntimeWarning), pytest.raises(OutputWriteError, match="ENOSPC") as e:
        _run(tfim(4, 1.0), _small(), log_path=tmp_path / "log.jsonl")
    assert isinstance(e.value.result, Result) and len(e.value.result.history) == 3


def test_observables_of_the_uniform_state():
    """Uniform ψ: ⟨|m|⟩ = Σ_k C(N,k) 2^-N |2k−N|/N exactly, C(0) = 1, C(r>0) = 0."""
    n, n_samples = 6, 8000
    m = _small(n)
    m = eqx.tree_at(
        lambda m: (m.head_w, m.head_b), m, (jnp.zeros_like(m.head_w), jnp.zeros_like(m.head_b))
    )
    sigma = sample_spins(m, n_samples, key=jax.random.key(3))
    exact_abs_m = sum(math.comb(n, k) * abs(2 * k - n) / n for k in range(n + 1)) / 2**n
    mag = magnetization(sigma)
    assert abs(float(mag.mean) - exact_abs_m) < 5 * float(mag.error_of_mean)
    c, err = correlations(sigma)
    assert c.shape == (n,) and float(c[0]) == 1.0
    assert np.all(np.abs(c[1:]) < 5 * err[1:])
    # And the polarised state: |m| = 1 and C(r) = 1 without fluctuations.
    up = eqx.tree_at(lambda m: m.head_b, m, jnp.array([40.0, -40.0]))
    c_up, _ = correlations(sample_spins(up, 100, key=jax.random.key(4)))
    np.testing.assert_allclose(c_up, 1.0)


def test_magnetization_and_correlations_match_enumeration():
    """For random ψ, sample estimates agree with exact |ψ|²-weighted sums within 5 errors."""
    n = 5
    m = _small(n, seed=2)
    m = jax.tree.map(lambda a: a + 0.7 * jax.random.normal(jax.random.key(9), a.shape), m)
    states = all_spins(n)
    p = jnp.exp(2 * m.log_psi(states))
    sigma = sample_spins(m, 8000, key=jax.random.key(1))
    mag = magnetization(sigma, absolute=False)
    assert abs(float(mag.mean) - float(p @ states.mean(-1))) < 5 * float(mag.error_of_mean)
    c, err = correlations(sigma)
    c_exact = jnp.stack([p @ jnp.mean(states * jnp.roll(states, -r, -1), -1) for r in range(n)])
    assert np.all(np.abs(c - c_exact) < 5 * err + 1e-12)


def test_learns_small_tfim_chain():
    """N = 6 periodic TFIM at h = 1 with SR: within 3e-3 relative of the exact energy (the
    final estimate's statistical error is ≈ 3e-4 relative)."""
    H = tfim(6, 1.0)
    exact = exact_energy(H)
    res = ground_state(
        H,
        ARConv1D(6, layers=2, features=8, kernel_size=3, positive=True, key=jax.random.key(0)),
        n_samples=256,
        steps=100,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-3),
        exact=exact,
        progress=False,
    )
    assert res.stop_reason is None
    assert res.info["relative_error"] < 3e-3
    assert res.history[0]["loss"] > exact + 0.5  # it did learn: the start is far off


@pytest.mark.slow
def test_learns_tfim_chain_20():
    H = tfim(20, 1.0)
    exact = exact_energy(H)
    res = ground_state(
        H,
        ARConv1D(
            20,
            layers=3,
            dilations=(1, 2, 4),
            features=12,
            kernel_size=5,
            positive=True,
            key=jax.random.key(0),
        ),
        n_samples=1024,
        steps=600,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-3),
        exact=exact,
        progress=False,
    )
    assert res.info["relative_error"] < 1e-4


@pytest.mark.slow
def test_learns_heisenberg_chain_20():
    """Exact: −8.904386529876 in spin-1/2 units (REFERENCES.md)."""
    H = heisenberg(20)
    res = ground_state(
        H,
        ARConv1D(
            20,
            layers=3,
            dilations=(1, 2, 4),
            features=16,
            kernel_size=5,
            positive=True,
            key=jax.random.key(0),
        ),
        n_samples=1024,
        steps=800,
        key=jax.random.key(1),
        optimizer=optax.sgd(0.05),
        preconditioner=SR(1e-3),
        progress=False,
    )
    e = pauli_to_spin_half(float(res.energy.mean))
    assert abs(e - (-8.904386529876)) / 8.904386529876 < 1e-3


def test_boundary_check_says_what_model_is_expected():
    from physml.quantum import check_compatible

    with pytest.raises(
        TypeError, match=r"autoregressive wave function with `log_psi`|AbstractSpinState"
    ):
        check_compatible(tfim(4, 1.0), object())
