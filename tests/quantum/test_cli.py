"""The `ground-state` subcommand and the quick demo."""

import argparse
import json
import math

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


def test_demo_returns_numbers():
    out = demo(seed=0, quick=True)
    assert set(out) == {"energy", "error", "exact", "relative_error"}
    assert all(math.isfinite(v) for v in out.values())
    assert math.isclose(out["relative_error"], abs(out["energy"] - out["exact"]) / -out["exact"])
