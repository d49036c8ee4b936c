"""The command itself: installed, its version and help, and one exit status per failure."""

import io
import signal
import subprocess
import sys
import time

import pytest
from command_line import COMMAND, run

import brickwork
from brickwork.cli import main
from brickwork.cli import train as train_command
from brickwork.errors import (
    ConfigError,
    PeerError,
    RankLostError,
    RunInterruptedError,
    SpecError,
    TrainingError,
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


def test_every_command_says_what_it_does_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["--help"])
    assert "    build     build a model from a spec and show its tree and output shape\n" in (
        capsys.readouterr().out
    )
    with pytest.raises(SystemExit, match="0"):
        main(["build", "--help"])
    assert "Build a model from a YAML/JSON spec on the meta device" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="0"):
        main(["predict", "--help"])  # the usage, what it does with unreadable files, the arguments
    shown = capsys.readouterr().out
    assert "model images [images ...]\n\nA file that cannot be read is reported" in shown
    assert "positional arguments:" in shown


def fail_training_with(monkeypatch: pytest.MonkeyPatch, err: BaseException) -> None:
    """`brickwork train` raises ``err`` where training would start."""

    def run_training(*args: object, **kwargs: object) -> None:
        raise err

    monkeypatch.setattr(train_command, "run_training", run_training)


LOST = "rank 1 of 2 lost contact with another rank"
STOPPED = "interrupted at step 3: checkpoint saved; continue with --resume"

# (error, exit status, stderr on the only process, stderr on rank 1 of 2 under torchrun)
FAILURES: list[tuple[BaseException, int, str, str]] = [
    (ConfigError("bad option", hint="fix it"), 2, "error: bad option\nhint: fix it\n", ""),
    (PeerError("rank 0 failed: bad data"), 2, "error: rank 0 failed: bad data\n", ""),
    (TrainingError("the loss is nan"), 1, "error: the loss is nan\n", ""),
    (
        RankLostError(LOST, hint="resume"),
        1,
        f"error: {LOST}\nhint: resume\n",
        f"rank 1: error: {LOST}\nrank 1: hint: resume\n",
    ),
    (
        SpecError("model[0]: no such brick"),
        2,
        "error: model[0]: no such brick\n",
        "rank 1: error: model[0]: no such brick\n",
    ),
    (
        OSError(28, "No space left on device"),
        2,
        "error: [Errno 28] No space left on device\n",
        "rank 1: error: [Errno 28] No space left on device\n",
    ),
    (RunInterruptedError(STOPPED, signal.SIGTERM), 128 + signal.SIGTERM, f"{STOPPED}\n", ""),
    (KeyboardInterrupt(), 130, "interrupted\n", ""),
]


@pytest.mark.parametrize(("err", "status", "alone", "rank_1"), FAILURES)
def test_each_failure_has_its_exit_status_and_its_lines(
    err: BaseException,
    status: int,
    alone: str,
    rank_1: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fail_training_with(monkeypatch, err)
    assert main(["train"]) == status
    assert capsys.readouterr().err == alone
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun, rank 0 speaks for every rank
    monkeypatch.setenv("RANK", "0")
    assert main(["train"]) == status
    assert capsys.readouterr().err == alone
    monkeypatch.setenv("RANK", "1")  # the other ranks tell only their own failures
    assert main(["train"]) == status
    assert capsys.readouterr().err == rank_1


def test_bad_arguments_are_told_once_under_torchrun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, told in (("0", "error: unrecognized arguments: --frobnicate\n"), ("1", "")):
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(SystemExit, match="2"):
            main(["--frobnicate"])
        err = capsys.readouterr().err
        assert err == (told + "hint: brickwork --help\n" if told else "")


@pytest.mark.parametrize(
    "err",
    [
        ConfigError("bad option"),
        TrainingError("the loss is nan"),
        OSError(2, "gone"),
        KeyboardInterrupt(),
    ],
)
def test_debug_shows_the_traceback_instead(
    err: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_training_with(monkeypatch, err)
    with pytest.raises(type(err)):
        main(["--debug", "train"])


def test_debug_leaves_a_stopped_run_as_it_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_training_with(monkeypatch, RunInterruptedError(STOPPED, signal.SIGINT))
    assert main(["--debug", "train"]) == 128 + signal.SIGINT
    assert capsys.readouterr().err == f"{STOPPED}\n"


def test_a_reader_that_has_gone_is_no_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fail_training_with(monkeypatch, BrokenPipeError())
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["train"]) == 0
    assert stderr.closed  # nothing more is said on a pipe that nobody reads


def test_the_package_and_the_command_load_no_torch_until_used() -> None:
    script = (
        "import sys, brickwork, brickwork.cli\n"
        "print('torch' in sys.modules)\n"
        "print(brickwork.export.__name__, brickwork.build.__module__, len(brickwork.BRICKS) > 10)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["False", "export brickwork.spec.builder True"]


def _wait_until_torch_loads(process: subprocess.Popen[str]) -> None:
    """Return once the process has begun loading PyTorch's library (or has ended).

    Waiting for that, not for a fixed time, keeps the test about what brickwork controls: on a
    loaded machine the interpreter's own start-up can take longer than any fixed delay, and a
    Ctrl-C then is Python's to report, before any of brickwork's code has run.
    """
    maps = f"/proc/{process.pid}/maps"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with open(maps) as f:
                if "libtorch" in f.read():
                    return
        except OSError:
            return
        time.sleep(0.002)


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.4, 0.6])
def test_ctrl_c_while_the_command_starts_is_one_line(delay: float) -> None:
    # delay 0 is inside PyTorch's import; about a second later `bricks` is done
    process = subprocess.Popen(
        [str(COMMAND), "bricks"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_until_torch_loads(process)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode in (0, 130), err
    if process.returncode == 130:
        assert err == "interrupted\n"
    assert "Traceback" not in err
