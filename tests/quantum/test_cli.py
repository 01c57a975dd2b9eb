"""The `ground-state` subcommand and the quick demo."""

import argparse
import errno
import json
import math
import os

import pytest

from physml.cli import main
from physml.kernels import OutputWriteError
from physml.quantum import _cli as quantum_cli
from physml.quantum._cli import add_parser, demo, run_ground_state


def test_ground_state_subcommand_writes_result_and_plot(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "ground-state",
            "--model",
            "tfim",
            "--sites",
            "6",
            "--h",
            "0.5",
            "--steps",
            "2",
            "--samples",
            "32",
            "--layers",
            "1",
            "--features",
            "2",
            "--kernel",
            "2",
            "--dilations",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    summary = run_ground_state(args)
    printed = capsys.readouterr().out
    assert "relative error" in printed and "±" in printed
    data = json.loads((tmp_path / "tfim_N6_periodic_h0.5.json").read_text())
    assert data["summary"]["exact"] == summary["exact"]
    assert math.isclose(summary["exact"], -6.3846945636, rel_tol=1e-10)  # closed form
    assert (tmp_path / "tfim_N6_periodic_h0.5.png").stat().st_size > 0
    assert len(data["history"]) == 2
    # The V-score N·Var/E² beside the relative error, on stdout and in the JSON.
    assert "V-score" in printed
    s = data["summary"]
    assert math.isclose(s["v_score"], 6 * s["variance"] / s["energy"] ** 2, rel_tol=1e-12)


def test_demo_returns_numbers():
    out = demo(seed=0, quick=True)
    assert set(out) == {"energy", "error", "exact", "relative_error"}
    assert all(math.isfinite(v) for v in out.values())
    assert math.isclose(out["relative_error"], abs(out["energy"] - out["exact"]) / -out["exact"])


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["ground-state", *argv])


def test_square_lattice_heisenberg_sz0_symmetrised(tmp_path, capsys):
    """2×2 open Heisenberg, Sᶻ = 0, D4 × spin flip: runs, reports the exact energy and writes
    the result."""
    args = _parse(
        "--model heisenberg --lattice square --L 2 --obc --sz0 --symmetry d4+spin-flip "
        f"--steps 2 --samples 32 --features 2 --out {tmp_path}".split()
    )
    assert args.symmetry == ("d4", "spin-flip") and args.boundary == "open"
    summary = run_ground_state(args)
    assert "relative error" in capsys.readouterr().out
    # 2×2 open = 4-site ring: E₀ = −2 (spin-1/2 units, J Σ S·S) = −8 in Pauli units.
    assert math.isclose(summary["exact"], -8.0, rel_tol=1e-10)
    data = json.loads((tmp_path / "heisenberg_L2_open.json").read_text())
    assert len(data["history"]) == 2


def test_square_lattice_tfim_periodic_translations(tmp_path):
    args = _parse(
        "--lattice square --L 3 --pbc --h 3 --symmetry translations+d4 --steps 1 "
        f"--samples 16 --features 2 --out {tmp_path}".split()
    )
    summary = run_ground_state(args)
    assert summary["n_sites"] == 9 and math.isfinite(summary["energy"])
    assert (tmp_path / "tfim_L3_periodic_h3.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, error, match",
    [
        ("--lattice square --L 2 --obc --sz0 --steps 1", ValueError, "Heisenberg"),
        ("--symmetry d4 --sites 6 --steps 1", ValueError, "--lattice square"),
        ("--model heisenberg --lattice square --L 2 --pbc --steps 1", ValueError, "at least 3"),
    ],
)
def test_invalid_2d_arguments_are_reported(tmp_path, argv, error, match):
    args = _parse([*argv.split(), "--out", str(tmp_path)])
    with pytest.raises(error, match=match):
        run_ground_state(args)


@pytest.mark.parametrize("bad", ["d8", "translations", "none+d4"])
def test_invalid_symmetry_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit):
        _parse(["--symmetry", bad])
    assert "invalid symmetry" in capsys.readouterr().err


_TINY = "--sites 6 --h 0.5 --steps 2 --samples 32 --layers 1 --features 2 --kernel 2 --dilations 1"


def test_ground_state_on_a_full_disk_prints_the_energy_and_keeps_the_old_plot(
    tmp_path, monkeypatch, capsys
):
    """The disk fills after training: the energy is on stdout, each file that could not be
    written is named with ENOSPC, the exit status is 1, and the earlier plot is intact."""
    old_plot = tmp_path / "tfim_N6_periodic_h0.5.png"
    old_plot.write_bytes(b"earlier plot")

    def enospc(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", enospc)
    code = main(["ground-state", *_TINY.split(), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "E = " in captured.out and "relative error" in captured.out
    assert '"energy": ' in captured.out  # the summary, since not every file was written
    assert f"could not write {old_plot}: no space left on device (ENOSPC)" in captured.err
    assert old_plot.read_bytes() == b"earlier plot"
    assert not list(tmp_path.glob("*.tmp"))

    args = _parse([*_TINY.split(), "--out", str(tmp_path)])
    with pytest.raises(OutputWriteError) as info:
        run_ground_state(args)
    assert math.isfinite(info.value.result["energy"])  # the finished work comes with the error


def test_time_limit_stops_with_a_checkpoint_and_resume_finishes(tmp_path, capsys):
    argv = [
        "ground-state",
        *_TINY.replace("--steps 2", "--steps 3").split(),
        "--out",
        str(tmp_path),
    ]
    assert main([*argv, "--time-limit", "1e-9"]) == 0
    assert "stopped early (1 of 3 steps)" in capsys.readouterr().out
    assert (tmp_path / "tfim_N6_periodic_h0.5_state.eqx").is_file()
    assert main([*argv, "--resume"]) == 0
    assert "stopped early" not in capsys.readouterr().out
    summary = json.loads((tmp_path / "tfim_N6_periodic_h0.5.json").read_text())["summary"]
    assert summary["n_steps"] == 3 and summary["stop_reason"] is None


def test_ground_state_unwritable_out_is_refused_before_training(monkeypatch):
    def train(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(quantum_cli, "ground_state", train)
    args = _parse([*_TINY.split(), "--out", "/dev/null/runs"])
    with pytest.raises(OutputWriteError, match="/dev/null/runs"):
        run_ground_state(args)
