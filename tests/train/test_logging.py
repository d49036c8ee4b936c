"""What a run leaves to look at: curves after every epoch, TensorBoard event files, and
``brickwork runs``."""

import json
from pathlib import Path

import pytest
import torch
from small_models import smaller_model as small_model

from brickwork.cli.app import main
from brickwork.errors import ConfigError
from brickwork.train import RunInterruptedError, TrainConfig, fit, load_dataset
from brickwork.train import board as board_module
from brickwork.train.runs import list_runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of which the second is stopped: curves and events of the first are there."""
    out = tmp_path_factory.mktemp("runs") / "digits-run"

    def stop(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (1, 0):
            raise KeyboardInterrupt

    config = TrainConfig(epochs=2, batch_size=256, tensorboard=True, ema=0.5)
    with pytest.raises((KeyboardInterrupt, RunInterruptedError)):
        fit(
            small_model(), load_dataset("digits"), config, out=out, log=lambda _: None, on_step=stop
        )
    return out


def test_a_stopped_run_has_its_curves_and_event_files(trained: Path) -> None:
    assert (trained / "curves.png").stat().st_size > 1000
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "accuracy/val", "accuracy/val_ema", "learning_rate"} <= tags
    assert "speed/images_per_s" in tags
    assert [e.step for e in events.Scalars("loss/val")] == [1]
    (grid,) = events.Images("samples")  # validation digits captioned "true -> predicted"
    assert grid.step == 1
    assert grid.width >= 4 * 160


def test_tensorboard_asked_for_without_the_package_is_one_line_before_any_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board_module, "available", lambda: False)
    with pytest.raises(ConfigError, match="--tensorboard needs the tensorboard package"):
        fit(small_model(), "digits", TrainConfig(epochs=1, tensorboard=True), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    assert not board_module.wanted(None)  # by default: no event files, training goes on


def test_runs_lists_task_best_score_epochs_and_time(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (only,) = list_runs(trained.parent)
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    best = max(rows[0]["val_acc"], rows[0]["ema_val_acc"])
    assert only == {
        "run": str(trained), "task": "classification", "best": best, "epochs": 1, "of": 2,
        "seconds": rows[0]["seconds"], "test": None, "state": "stopped",
    }  # fmt: skip
    assert main(["runs", str(trained.parent)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["run", "task", "best", "val", "test", "epochs", "time", "state"]
    assert table[1].split()[1:4] == ["classification", f"{best:.4f}", "-"]
    assert table[1].split()[4:] == ["1/2", f"{rows[0]['seconds']:.1f}s", "stopped"]
    assert main(["runs", str(trained / "nothing")]) == 2
    assert "not a directory of runs" in capsys.readouterr().err
