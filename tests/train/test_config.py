"""``TrainConfig``'s checks, and which options decide what a run computes."""

from dataclasses import asdict
from typing import Any

import pytest
import torch

from brickwork.errors import ConfigError
from brickwork.train.config import MACHINE_OPTIONS, TrainConfig, computed_options, resolve_device


def test_machine_options_do_not_count_as_what_a_run_computes() -> None:
    fast = asdict(TrainConfig(device="cpu", channels_last=True, compile=True, workers=3))
    assert computed_options(fast) == computed_options(asdict(TrainConfig()))
    assert not set(MACHINE_OPTIONS) & set(computed_options(fast))
    assert computed_options(asdict(TrainConfig(lr=0.1))) != computed_options(fast)
    assert computed_options(None) is None  # a checkpoint without saved options


def test_an_option_an_older_run_did_not_save_counts_as_its_default() -> None:
    saved = asdict(TrainConfig(lr=0.1))
    older = {k: v for k, v in saved.items() if k not in ("ema", "max_pixels", "accumulate")}
    assert computed_options(older) == computed_options(saved)
    assert computed_options({**older, "ema": 0.99}) != computed_options(saved)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "adagrad"}, "--optimizer 'adagrad': choose one of adamw, adam, sgd"),
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"lr": float("nan")}, "--lr must be a positive number, got nan"),
        ({"weight_decay": -1.0}, "--weight-decay must be 0 or more"),
        ({"label_smoothing": 1.0}, r"--label-smoothing must be in \[0, 1\)"),
        ({"seed": -1}, r"--seed must be in \[0, 2\*\*32\)"),
        ({"image_size": [0]}, r"--image-size must be S or H,W of positive integers, got \[0\]"),
        ({"image_size": [8, 8, 8]}, r"--image-size must be S or H,W .*, got \[8, 8, 8\]"),
        ({"crop_scale": 0.0}, r"--crop-scale must be in \(0, 1\], got 0.0"),
        ({"crop_scale": 1.5}, r"--crop-scale must be in \(0, 1\], got 1.5"),
        ({"mixup": -1.0}, r"--mixup must be 0 \(off\) or a positive alpha, got -1.0"),
        ({"cutmix": float("inf")}, r"--cutmix must be 0 \(off\) or a positive alpha, got inf"),
        ({"workers": -2}, "--workers must be 0 or more, got -2"),
        ({"max_pixels": 0}, "--max-pixels must be a positive integer, got 0"),
        ({"max_pixels": 1.5e8}, "--max-pixels must be a positive integer, got 150000000.0"),
        ({"ema": 1.5}, r"--ema must be a decay in \(0, 1\), or 0 \(off\), got 1.5"),
        ({"ema": 1.0}, r"--ema must be a decay in \(0, 1\), or 0 \(off\), got 1.0"),
        ({"ema": -0.1}, r"--ema must be a decay in \(0, 1\), or 0 \(off\), got -0.1"),
        ({"accumulate": 0}, "--accumulate must be at least 1, got 0"),
        ({"accumulate": 65}, "--accumulate 65 splits --batch-size 64 into empty micro-batches"),
        ({"patience": 0}, "--patience must be at least 1 epoch, got 0"),
        (
            {"warmup_epochs": -1},
            "--warmup-epochs must be 0 or more and less than --epochs 25, got -1",
        ),
        (
            {"warmup_epochs": 3, "epochs": 3},
            "--warmup-epochs must be .* less than --epochs 3, got 3",
        ),
    ],
)
def test_bad_options_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options).settled("classification").check()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "cuda", "mps", "message"),
    [
        ("cuda:1", 0, False, "--device cuda:1: this machine has no CUDA device"),
        ("cuda", 0, False, "--device cuda: this machine has no CUDA device"),
        ("cuda:1", 1, False, r"--device cuda:1: this machine has only 1 CUDA device \(cuda:0\)"),
        (
            "cuda:4",
            2,
            False,
            r"--device cuda:4: this machine has only 2 CUDA devices \(cuda:0 to cuda:1\)",
        ),
        ("mps", 0, False, r"--device mps: this machine has no MPS \(Apple GPU\) device"),
        ("tpu", 0, False, "--device 'tpu': choose auto, cpu, cuda, cuda:N or mps"),
        ("meta", 0, False, "--device 'meta': cannot train there"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, cuda: int, mps: bool, message: str
) -> None:
    _machine(monkeypatch, cuda, mps)
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_device(name)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "cuda", "mps", "device"),
    [
        ("cpu", 0, False, "cpu"),
        ("auto", 0, False, "cpu"),
        ("auto", 2, False, "cuda"),
        ("cuda:1", 2, False, "cuda:1"),
        ("mps", 0, True, "mps"),
    ],
)
def test_a_device_this_machine_has(
    monkeypatch: pytest.MonkeyPatch, name: str, cuda: int, mps: bool, device: str
) -> None:
    _machine(monkeypatch, cuda, mps)
    assert resolve_device(name) == torch.device(device)


@pytest.mark.parametrize(
    ("task", "given", "batch", "loss"),
    [
        ("classification", {}, 64, "ce"),
        ("segmentation", {}, 16, "ce+dice"),
        ("segmentation", {"batch_size": 32, "loss": "ce"}, 32, "ce"),
    ],
)
def test_the_task_decides_the_options_left_to_it(
    task: str, given: dict[str, Any], batch: int, loss: str
) -> None:
    settled = TrainConfig(**given).settled(task)
    assert (settled.task, settled.batch, settled.loss) == (task, batch, loss)


def test_a_run_saved_before_tasks_existed_computed_a_classifiers_options() -> None:
    old = {k: v for k, v in asdict(TrainConfig()).items() if k not in ("task", "loss")}
    old["batch_size"] = 64
    assert computed_options(old) == computed_options(
        asdict(TrainConfig().settled("classification"))
    )


def _machine(monkeypatch: pytest.MonkeyPatch, cuda: int, mps: bool) -> None:
    """Make this machine seem to have ``cuda`` CUDA devices, and an Apple GPU when ``mps``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
