"""A run directory loses nothing and trusts nothing: its owner's files, its pointer, its ending."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from small_models import smaller_model as small_model

import brickwork
from brickwork.errors import CheckpointError, ConfigError
from brickwork.train import TrainConfig, board, fit
from brickwork.train import loop as loop_module
from brickwork.train import plots as plots_module

CONFIG = TrainConfig(epochs=2, batch_size=256, lr=1e-2)  # 6 steps an epoch on digits
QUIET: dict[str, Any] = {"log": lambda _: None}


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, digits: brickwork.train.Dataset) -> Path:
    run = tmp_path_factory.mktemp("straight")
    fit(small_model(), digits, CONFIG, out=run, **QUIET)
    return run


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_directory_of_someone_elses_files_is_refused_untouched(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    (tmp_path / "config.json").write_text('{"mine": true}')
    (tmp_path / "model.safetensors").write_bytes(b"my weights")
    before = files(tmp_path)
    for force in (False, True):
        with pytest.raises(ConfigError, match="is not empty and is not a brickwork run"):
            fit(small_model(), digits, CONFIG, out=tmp_path, force=force, **QUIET)
    assert files(tmp_path) == before


def test_resume_and_force_delete_only_brickworks_own_files(
    tmp_path: Path, digits: brickwork.train.Dataset, straight: Path
) -> None:
    def stop(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (0, 2):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(brickwork.train.RunInterruptedError):
        fit(small_model(), digits, CONFIG, out=tmp_path, on_step=stop, **QUIET)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["n"] == 1
    mine = {
        "checkpoint-2.safetensors": b"a copy of mine, named like the next checkpoint",
        "checkpoint-9.safetensors": b"a copy of mine",
        ".notes.tmp": b"my editor's file",
        "notes.txt": b"my notes",
        "checkpoint-best.safetensors": b"another copy",
        "tensorboard/events.out.tfevents.mine": b"my own event file",
    }
    (tmp_path / "tensorboard").mkdir(exist_ok=True)
    for name, data in mine.items():
        (tmp_path / name).write_bytes(data)
    fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, **QUIET)
    assert {name: (tmp_path / name).read_bytes() for name in mine} == mine
    assert (tmp_path / "model.safetensors").read_bytes() == (
        straight / "model.safetensors"
    ).read_bytes()
    with pytest.raises(ConfigError, match="already holds a run; add --resume"):
        fit(small_model(), digits, CONFIG, out=tmp_path, **QUIET)
    fit(small_model(), digits, CONFIG, out=tmp_path, force=True, **QUIET)
    assert {name: (tmp_path / name).read_bytes() for name in mine} == mine
    events = {p.name for p in (tmp_path / "tensorboard").iterdir()} - {"events.out.tfevents.mine"}
    assert len(events) == (1 if board.available() else 0)  # the earlier runs' files went
    assert (tmp_path / "model.safetensors").read_bytes() == (
        straight / "model.safetensors"
    ).read_bytes()


def _edit_pointer(run: Path) -> str:
    pointer = json.loads((run / "checkpoint.json").read_text())
    pointer["weights"] = "../other-run/" + pointer["weights"]
    (run / "checkpoint.json").write_text(json.dumps(pointer))
    return r"names '\.\./other-run/checkpoint-\d+\.safetensors'"


def _link_pair(run: Path) -> str:
    pointer = json.loads((run / "checkpoint.json").read_text())
    for key in ("weights", "state"):
        (run / pointer[key]).unlink()
        (run / pointer[key]).symlink_to(run.parent / "other-run" / pointer[key])
    return r"checkpoint-\d+\.safetensors is a link to .*other-run.*, outside the run directory"


@pytest.mark.parametrize("lead_out", [_edit_pointer, _link_pair])
def test_a_pointer_into_another_run_reads_and_deletes_nothing(
    tmp_path: Path, digits: brickwork.train.Dataset, lead_out: Callable[[Path], str]
) -> None:
    other, run = tmp_path / "other-run", tmp_path / "run"
    for folder in (other, run):
        fit(small_model(), digits, CONFIG.__class__(epochs=3, batch_size=256), out=folder, **QUIET)
    before = files(other)
    message = lead_out(run)
    links = sorted(p.name for p in run.iterdir() if p.is_symlink())
    for force in (False, True):
        with pytest.raises(CheckpointError, match=message):
            fit(
                small_model(),
                digits,
                TrainConfig(epochs=4, batch_size=256),
                out=run,
                resume=not force,
                force=force,
                **QUIET,
            )
    assert files(other) == before
    assert sorted(p.name for p in run.iterdir() if p.is_symlink()) == links


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (only `finally` blocks, which write nothing)."""


def _die(*args: object, **kwargs: object) -> None:
    raise Killed


END_STAGES: dict[str, tuple[Any, str]] = {
    "before the best weights are reloaded": (loop_module, "reload_best"),
    "before the test": (loop_module, "test_scores"),
    "before the curves": (plots_module, "plot_curves"),
    "before the confusion matrix": (plots_module, "plot_confusion"),
    "before the test line": (loop_module, "write_metrics"),
}


@pytest.mark.parametrize("stage", list(END_STAGES))
def test_a_run_stopped_at_any_stage_of_its_end_is_finished_by_resume(
    tmp_path: Path,
    digits: brickwork.train.Dataset,
    straight: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
) -> None:
    module, name = END_STAGES[stage]
    original: Callable[..., Any] = getattr(module, name)
    calls = [0]

    def stage_function(*args: Any, **kwargs: Any) -> Any:
        # write_metrics also runs after every epoch: die only where the end of the run calls it
        calls[0] += 1
        if name != "write_metrics" or len(args[1]) > CONFIG.epochs:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, stage_function)
    with pytest.raises(Killed):
        fit(small_model(), digits, CONFIG, out=tmp_path, **QUIET)
    monkeypatch.setattr(module, name, original)
    fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, **QUIET)
    ours, theirs = files(tmp_path), files(straight)
    assert ours.keys() == theirs.keys()
    for name_ in ("metrics.jsonl", "model.safetensors", "curves.png", "confusion.png"):
        if name_ == "metrics.jsonl":  # the epochs' wall times differ; everything else is equal
            ours_rows = [_no_seconds(row) for row in ours[name_].decode().splitlines()]
            assert ours_rows == [_no_seconds(row) for row in theirs[name_].decode().splitlines()]
        elif name_ == "model.safetensors":
            assert ours[name_] == theirs[name_]
    with pytest.raises(ConfigError, match="the run is complete"):
        fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, **QUIET)


def _no_seconds(line: str) -> dict[str, Any]:
    row = json.loads(line)
    row.pop("seconds", None)
    return dict(row)


def _rewrite_metadata(path: Path, field: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Change one field of a file's brickwork metadata (its tensors and their SHA-256 kept)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        content = json.loads((f.metadata() or {})["brickwork"])
    change(content[field])
    save_file(load_file(str(path)), str(path), metadata={"brickwork": json.dumps(content)})


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda state: state.__setitem__(key, value)


DAMAGED_STATES: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_set("step", 10**9), r"step 1000000000 lies outside the run"),
    (_set("epoch", 99), r"epoch 99, step \d+ lies outside the run"),
    (_set("epoch", -1), r"'epoch' is -1"),
    (_set("step", "3"), r"'step' is '3'"),
    (_set("running", None), r"'running' is None"),
    (_set("running", [1.0, -4, 2]), r"'running' is \[1\.0, -4, 2\]"),
    (_set("history", "none"), r"'history' is 'none'"),
    (_set("best", [0.5]), r"'best' is \[0\.5\]"),
    (_set("scheduler", {"bogus": 1}), r"the scheduler's state is not this run's"),
    (lambda s: s["scheduler"].__setitem__("total_steps", 3), r"the scheduler's 'total_steps' is 3"),
    (lambda s: s["scheduler"].__setitem__("last_epoch", 1), r"the scheduler has taken 1 steps"),
    (_set("config", None), r"'config' is None"),
    (lambda s: s.pop("history"), r"its metadata has no 'history'"),
]


def _stopped_in_epoch_two(out: Path, digits: brickwork.train.Dataset) -> int:
    """Train into ``out`` and stop at epoch 2, step 1 (Ctrl-C); the checkpoint's number."""

    def stop(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (1, 1):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(brickwork.train.RunInterruptedError):
        fit(small_model(), digits, CONFIG, out=out, on_step=stop, **QUIET)
    return int(json.loads((out / "checkpoint.json").read_text())["n"])


def _group(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda optimizer: optimizer["param_groups"][0].__setitem__(key, value)


DAMAGED_OPTIMIZERS: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_group("lr", "x"), r"parameter group 0's 'lr' is 'x', this run's 0\.\d+"),
    (_group("lr", 1e30), r"parameter group 0's 'lr' is 1e\+30"),
    (_group("betas", "ab"), r"parameter group 0's 'betas' is 'ab'"),
    (_group("weight_decay", 0.5), r"parameter group 0's 'weight_decay' is 0\.5"),
    (
        _group("evil", "/etc/passwd"),
        r"parameter group 0's 'evil' is '/etc/passwd', this run's None",
    ),
    (lambda optimizer: optimizer.__setitem__("param_groups", []), r"the optimizer .* is damaged"),
]


DAMAGED_FIELDS = [
    *(("checkpoint-{n}.safetensors", "training", *case) for case in DAMAGED_STATES),
    *(("checkpoint-{n}-state.safetensors", "optimizer", *case) for case in DAMAGED_OPTIMIZERS),
]


@pytest.mark.parametrize(("file", "field", "change", "message"), DAMAGED_FIELDS)
def test_damaged_checkpoint_fields_are_one_line_each_before_a_step(
    tmp_path: Path,
    digits: brickwork.train.Dataset,
    file: str,
    field: str,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    n = _stopped_in_epoch_two(tmp_path, digits)
    _rewrite_metadata(tmp_path / file.format(n=n), field, change)
    with pytest.raises(CheckpointError, match=message):
        fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, **QUIET)


TWO_WRITERS = textwrap.dedent(
    """
    import sys, time, brickwork
    from brickwork.train import TrainConfig, fit
    print("started", flush=True)
    def slow(model, epoch, step):
        time.sleep(0.5)
    model = brickwork.CNNClassifier(1, [4], [8], 10, input_shape=(8, 8))
    fit(model, "digits", TrainConfig(epochs=50), out=sys.argv[1], log=lambda _: None, on_step=slow)
    """
)


@pytest.mark.slow
def test_a_second_train_on_the_same_directory_is_refused_with_the_firsts_pid(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    script = tmp_path / "first.py"
    script.write_text(TWO_WRITERS)
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, str(script), str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (run / "spec.yaml").exists():  # the first has claimed the directory
            assert first.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for resume in (False, True):
            with pytest.raises(
                ConfigError, match=rf"in use by another brickwork train \(pid {first.pid}\)"
            ):
                fit(small_model(), digits, CONFIG, out=run, resume=resume, **QUIET)
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("left", [("lock",), ("lock", "config")])
def test_a_run_stopped_before_its_first_files_is_started_by_resume(
    tmp_path: Path, digits: brickwork.train.Dataset, straight: Path, left: tuple[str, ...]
) -> None:
    (tmp_path / ".brickwork.lock").write_text("99999\n")  # the dead writer's PID
    if "config" in left:
        (tmp_path / "config.json").write_text(json.dumps({"brickwork": "0.1.0", "epochs": 2}))
    lines: list[str] = []
    fit(small_model(), digits, CONFIG, out=tmp_path, resume=True, log=lines.append)
    assert lines[0].startswith("memory: a step of")  # fit's check, before the directory
    assert "holds no run yet (it stopped before its first files): starting it" in lines[1]
    assert (tmp_path / "model.safetensors").read_bytes() == (
        straight / "model.safetensors"
    ).read_bytes()


def test_resume_of_a_directory_that_was_never_made_is_an_error(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    with pytest.raises(
        ConfigError, match=r"missing: no config\.json, so there is no run to resume"
    ):
        fit(small_model(), digits, CONFIG, out=tmp_path / "missing", resume=True, **QUIET)
