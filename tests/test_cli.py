"""CLI frame: help, exit codes, one-line errors."""

import subprocess
import sys

import pytest

from nas_recon.cli.main import build_parser, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "data" in capsys.readouterr().out


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "nas_recon.cli.main", *args], capture_output=True, text=True)


def test_input_error_is_one_line_exit_2(tmp_path):
    r = run_cli("data", "check", str(tmp_path / "missing"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert str(tmp_path / "missing") in r.stderr


def test_verbose_shows_traceback(tmp_path):
    r = run_cli("data", "check", str(tmp_path / "missing"), "--verbose")
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_usage_error_is_one_line_exit_2():
    r = run_cli("data", "demo")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--out" in r.stderr
    r = run_cli("frobnicate")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0


def test_data_demo_and_check(tmp_path, nifti_file):
    out = tmp_path / "d"
    assert main(["data", "demo", "--out", str(out), "--source", str(nifti_file), "--size", "48", "--slices", "20"]) == 0
    assert main(["data", "check", str(out / "train"), "--size", "48"]) == 0
    assert main(["data", "demo", "--out", str(out), "--source", str(nifti_file), "--size", "48"]) == 2
