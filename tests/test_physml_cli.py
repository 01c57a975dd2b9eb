"""The command line entry point."""

import json
import subprocess
import sys

from physml.cli import build_parser, info, main


def test_info_reports_versions_backend_and_float64():
    data = info()
    for name in ("physml", "jax", "equinox", "diffrax", "optax", "netket", "numpyro"):
        assert data[name] and data[name] != "not installed", name
    assert data["backend"] == "cpu"
    assert isinstance(data["float64"], bool) and data["devices"]


def test_info_command_runs_as_installed_script(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["physml"] == "0.1.0"


def test_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "physml", "info"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "jax" in out.stdout


def test_parser_lists_demo():
    parser = build_parser()
    assert parser.parse_args(["demo", "--quick"]).quick
