"""Nothing lost: interrupted, killed or resumed runs end bit-identical to straight ones."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from small_models import small_model

import brickwork
from brickwork.errors import ConfigError
from brickwork.train import (
    CheckpointError,
    RunInterruptedError,
    TrainConfig,
    TrainingError,
    fit,
)

CONFIG = TrainConfig(epochs=3, batch_size=128, lr=1e-2)  # 10 steps an epoch on digits


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory, digits: brickwork.train.Dataset) -> Path:
    run = tmp_path_factory.mktemp("straight")
    fit(small_model(), digits, CONFIG, out=run, log=lambda _: None)
    return run


@pytest.fixture(scope="module")
def straight(straight_run: Path) -> bytes:
    return (straight_run / "model.safetensors").read_bytes()


@pytest.mark.parametrize(("stop_epoch", "stop_step"), [(0, 0), (0, 5), (1, 9), (2, 3)])
def test_sigint_at_any_step_then_resume_is_bit_identical(
    tmp_path: Path,
    digits: brickwork.train.Dataset,
    straight: bytes,
    stop_epoch: int,
    stop_step: int,
) -> None:
    def interrupt(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (stop_epoch, stop_step):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(
        RunInterruptedError,
        match=rf"interrupted at epoch {stop_epoch + 1}, step {stop_step + 1}: checkpoint saved",
    ):
        fit(small_model(), digits, CONFIG, out=tmp_path, log=lambda _: None, on_step=interrupt)
    assert (tmp_path / "checkpoint.json").is_file()
    fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, log=lambda _: None)
    assert (tmp_path / "model.safetensors").read_bytes() == straight


def test_sigterm_is_caught_too(tmp_path: Path, digits: brickwork.train.Dataset) -> None:
    def terminate(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (1, 2):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunInterruptedError) as info:
        fit(small_model(), digits, CONFIG, out=tmp_path, log=lambda _: None, on_step=terminate)
    assert info.value.signum == signal.SIGTERM


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import torch, brickwork
    from brickwork.train import TrainConfig, fit

    run, mode, when = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.manual_seed(1)
    model = brickwork.CNNClassifier(1, [4, 8], [16], 10, input_shape=(8, 8))
    if mode == "after-epoch":
        def on_step(model, epoch, step):
            if (epoch, step) == (when, 0):
                os.kill(os.getpid(), signal.SIGKILL)
    else:  # die in the middle of writing a checkpoint: right before its pointer is renamed
        real_replace, count = os.replace, [0]
        def dying_replace(src, dst):
            if str(dst).endswith("checkpoint.json"):
                count[0] += 1
                if count[0] == when:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst)
        os.replace = dying_replace  # every atomic write renames through it
        on_step = None
    fit(model, "digits", TrainConfig(epochs=3, batch_size=128, lr=1e-2), out=run, log=lambda _: None, on_step=on_step)
    """
)


@pytest.mark.parametrize(
    ("mode", "when"), [("after-epoch", 1), ("after-epoch", 2), ("mid-checkpoint", 2)]
)
def test_kill_9_leaves_a_whole_checkpoint_and_resume_is_bit_identical(
    tmp_path: Path, digits: brickwork.train.Dataset, straight: bytes, mode: str, when: int
) -> None:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(script), str(run), mode, str(when)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    fit(small_model(), digits, CONFIG, out=run, resume=True, log=lambda _: None)
    assert (run / "model.safetensors").read_bytes() == straight
    assert len(list(run.glob("checkpoint-*.safetensors"))) == 2  # the pair; no leftovers
    assert not list(run.glob(".*.tmp"))


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    def poison(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (1, 2):
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    with pytest.raises(
        TrainingError,
        match="the loss is nan at epoch 2, step 4: training stopped; the last good checkpoint is kept",
    ):
        fit(small_model(), digits, CONFIG, out=tmp_path, log=lambda _: None, on_step=poison)
    saved = brickwork.load(tmp_path / "model.safetensors")
    assert all(torch.isfinite(p).all() for p in saved.parameters())
    metadata = brickwork.train.checkpoint.read_metadata(tmp_path / "checkpoint-1.safetensors")
    assert metadata["training"]["epoch"] == 1


def test_a_run_directory_is_not_overwritten_without_resume(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    fit(
        small_model(),
        digits,
        TrainConfig(epochs=1, batch_size=128),
        out=tmp_path,
        log=lambda _: None,
    )
    with pytest.raises(ValueError, match="already holds a run; add --resume"):
        fit(
            small_model(),
            digits,
            TrainConfig(epochs=1, batch_size=128),
            out=tmp_path,
            log=lambda _: None,
        )


def test_weights_of_another_model_are_refused(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    fit(
        small_model(),
        digits,
        TrainConfig(epochs=1, batch_size=128),
        out=tmp_path,
        log=lambda _: None,
    )
    other = brickwork.CNNClassifier(1, [4], [16], 10, input_shape=(8, 8))
    with pytest.raises(CheckpointError, match="it holds weights for another model"):
        fit(
            other,
            digits,
            TrainConfig(epochs=2, batch_size=128),
            out=tmp_path,
            resume=True,
            log=lambda _: None,
        )


def test_run_files_are_written_with_the_usual_permissions(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    old = os.umask(0o022)
    try:
        fit(small_model(), digits, TrainConfig(epochs=1), out=tmp_path, log=lambda _: None)
    finally:
        os.umask(old)
    modes = {str(p): oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*") if p.is_file()}
    assert set(modes.values()) == {"0o644"}, modes  # not mkstemp's 0600
    folders = {str(p): oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*") if p.is_dir()}
    assert set(folders.values()) <= {"0o755"}, folders  # the TensorBoard events' folder


SHORT = TrainConfig(epochs=2, batch_size=128, lr=1e-2)


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory, digits: brickwork.train.Dataset) -> Path:
    """A finished 2-epoch run, extended to 3 without a stop."""
    run = tmp_path_factory.mktemp("extended")
    fit(small_model(), digits, SHORT, out=run, log=lambda _: None)
    lines: list[str] = []
    fit(small_model(), digits, CONFIG, out=run, resume=True, log=lines.append)
    assert f"extending {run} from 2 to 3 epochs" in lines
    return run


def metrics(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_finished_run_extended_has_every_epoch_and_one_test_line(
    extended: Path, straight_run: Path
) -> None:
    rows = metrics(extended)
    assert [row.get("epoch") for row in rows] == [1, 2, 3, None]
    assert "test_acc" in rows[-1]
    assert json.loads((extended / "config.json").read_text())["epochs"] == 3
    # the extension's learning rate is the straight 3-epoch run's at the same step (onecycle)
    assert rows[2]["lr"] == metrics(straight_run)[2]["lr"]
    assert rows[1]["lr"] != metrics(straight_run)[1]["lr"]


@pytest.mark.parametrize("stop_step", [0, 6])
def test_an_extension_stopped_and_resumed_is_bit_identical(
    tmp_path: Path, digits: brickwork.train.Dataset, extended: Path, stop_step: int
) -> None:
    def interrupt(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (2, stop_step):
            os.kill(os.getpid(), signal.SIGINT)

    fit(small_model(), digits, SHORT, out=tmp_path, log=lambda _: None)
    with pytest.raises(RunInterruptedError):
        fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, log=lambda _: None, on_step=interrupt)  # fmt: skip
    lines: list[str] = []
    fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, log=lines.append)
    assert f"resuming {tmp_path} at epoch 3, step {stop_step + 1}" in lines
    expected = (extended / "model.safetensors").read_bytes()
    assert (tmp_path / "model.safetensors").read_bytes() == expected


def test_an_extension_to_fewer_epochs_is_one_line(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    fit(small_model(), digits, SHORT, out=tmp_path, log=lambda _: None)
    with pytest.raises(ConfigError, match="--epochs 1 is fewer than the 2 of the run"):
        fit(small_model(), digits, TrainConfig(epochs=1, batch_size=128, lr=1e-2), out=tmp_path, resume=True, log=lambda _: None)  # fmt: skip
