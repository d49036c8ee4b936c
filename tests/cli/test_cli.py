"""Drives the installed ``brickwork`` command, as a user would."""

import subprocess
import sys
from pathlib import Path

import pytest

import brickwork

COMMAND = Path(sys.executable).with_name("brickwork")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_command_is_installed() -> None:
    assert COMMAND.exists(), "pip install -e . should install the brickwork command"


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"brickwork {brickwork.__version__}"


@pytest.mark.parametrize("args", [("--help",), ()])
def test_help(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: brickwork")
    assert "--version" in result.stdout


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "brickwork", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == f"brickwork {brickwork.__version__}"


def test_unknown_option_is_bad_input() -> None:
    result = run("--frobnicate")
    assert result.returncode == 2
    assert "unrecognized arguments: --frobnicate" in result.stderr
