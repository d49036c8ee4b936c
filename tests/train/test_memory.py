"""Never a run that cannot fit: training memory counted on meta tensors, checked against the
memory given (never the test machine's), refused before a weight or a file exists."""

import json
import time
from pathlib import Path

import pytest
import torch
from image_trees import make_tree
from small_models import small_model
from torch import nn

from brickwork.errors import ConfigError
from brickwork.train import TrainConfig, fit
from brickwork.train.commands import run_training
from brickwork.train.data import Dataset
from brickwork.train.memory import MemoryCheck, available_memory, check_run, footprint
from brickwork.train.model_choice import ModelRequest, default_model
from brickwork.train.run import Opening

GIB = 2**30
GUIDE_224 = {"model": {"cnn_classifier": {"enc_sizes": [32, 64], "dec_sizes": [1024, 512]}}}
"""The guide's classifier: on 224x224 images its first linear layer has 3.3 B parameters."""


def _linear() -> nn.Module:
    with torch.device("meta"):
        return nn.Sequential(nn.Flatten(), nn.Linear(12, 5))  # 65 parameters


@pytest.mark.parametrize(
    ("optimizer", "precision", "ema", "fixed"),
    [
        ("adamw", "fp32", False, 65 * 4 * 4),  # weights, gradients, two moments
        ("adam", "fp32", False, 65 * 4 * 4),
        ("sgd", "fp32", False, 65 * 4 * 3),  # weights, gradients, momentum
        ("adamw", "fp32", True, 65 * 4 * 5),  # and the moving average
        ("adamw", "bf16", False, 65 * 4 * 4 + 65 * 2),  # and autocast's 16-bit weights
    ],
)
def test_the_rule_counts_optimizer_precision_and_ema(
    optimizer: str, precision: str, ema: bool, fixed: int
) -> None:
    need = footprint(_linear(), (3, 2, 2), optimizer, precision, ema)
    assert need.fixed == fixed
    # the input, which the linear layer saves for backward: one storage, counted once (under
    # autocast, HALF_SHARE of it)
    assert need.per_sample == (12 * 4 if precision == "fp32" else 12 * 2)
    assert need.at(10) == fixed + 10 * need.per_sample


def test_mixed_precision_saves_less_per_sample() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 2))
    fp32 = footprint(model, (3, 16, 16), precision="fp32")
    bf16 = footprint(model, (3, 16, 16), precision="bf16")
    assert bf16.per_sample < fp32.per_sample


def test_largest_batch_is_the_last_that_fits() -> None:
    need = footprint(_linear(), (3, 2, 2))
    available = need.at(37) + need.per_sample - 1
    assert need.largest_batch(available) == 37
    assert need.largest_batch(need.fixed) == 0


def test_the_free_memory_of_the_cpu_is_read() -> None:
    free = available_memory(torch.device("cpu"))
    assert free is None or free > 0
    assert available_memory(torch.device("meta")) is None


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (8 * GIB, r"no batch fits: one sample needs 49\.\d\d GiB"),
        (50 * GIB, r"the largest batch that fits is 2\d\b"),
    ],
)
def test_an_oversized_model_is_refused_in_under_2_s_before_anything_is_written(
    limit: int, message: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    given = {"data": "synthetic:3,224,224,4,40", "epochs": 1, "batch_size": 64}
    opening = Opening(out, False, False, True)
    check = MemoryCheck(True, limit)
    with pytest.raises(ConfigError):  # once for the lazy imports a command pays at its start
        run_training(ModelRequest(GUIDE_224), given, opening, False, lambda _: None, check)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=message) as caught:
        run_training(ModelRequest(GUIDE_224), given, opening, False, lambda _: None, check)
    assert time.perf_counter() - start < 2  # the data made, the model counted on meta only
    assert "a step of 64 samples needs" in str(caught.value)
    assert "--image-size" in (caught.value.hint or "")
    assert not out.exists() or not any(out.iterdir())


def test_no_memory_check_and_an_unknown_free_memory_let_a_run_start() -> None:
    model = _linear()
    config = TrainConfig(batch_size=4)
    assert check_run(model, (3, 2, 2), config, torch.device("cpu"), MemoryCheck(False, 1)) is None
    line = check_run(model, (3, 2, 2), config, torch.device("meta"), MemoryCheck())
    assert line == "memory not checked: how much meta has free is unknown"


def test_a_micro_batch_is_what_a_step_holds_at_once() -> None:
    model = _linear()
    need = footprint(model, (3, 2, 2))
    check = MemoryCheck(True, need.at(16))
    with pytest.raises(ConfigError, match="a step of 32 samples"):
        check_run(model, (3, 2, 2), TrainConfig(batch_size=32), torch.device("cpu"), check)
    config = TrainConfig(batch_size=32, accumulate=2)
    line = check_run(model, (3, 2, 2), config, torch.device("cpu"), check)
    assert line is not None
    assert "a step of 16" in line


@pytest.mark.parametrize(
    ("shape", "family"),
    [
        ((1, 8, 8), "cnn_classifier"),  # the digits
        ((1, 28, 28), "cnn_classifier"),  # MNIST
        ((3, 32, 32), "cnn_classifier"),  # CIFAR-10
        ((3, 48, 64), "resnet18_small"),
        ((3, 224, 224), "resnet18"),
        ((3, 16, 300), "resnet18"),
    ],
)
def test_the_default_model_follows_the_image_size(shape: tuple[int, ...], family: str) -> None:
    spec, note = default_model(shape)
    assert family in json.dumps(spec)
    assert note.startswith(f"model: {'the guide' if family == 'cnn_classifier' else family}")


@pytest.mark.slow
def test_a_224_folder_trains_the_default_model_within_memory(tmp_path: Path) -> None:
    photos = make_tree(tmp_path / "photos", {"cat": 6, "dog": 6}, sizes=(224, 224))
    lines: list[str] = []
    given = {"data": f"folder:{photos}", "epochs": 1, "batch_size": 4, "workers": 0}
    opening = Opening(tmp_path / "run", False, False, True)
    check = MemoryCheck(True, 4 * GIB)
    history = run_training(ModelRequest(None), given, opening, False, lines.append, check)
    assert "test_acc" in history[-1]
    assert any(line.startswith("model: resnet18, which pools") for line in lines)
    assert any(
        line.startswith("memory: ") and "--memory-limit is 4.00 GiB" in line for line in lines
    )


def test_fit_in_python_refuses_a_step_that_cannot_fit_before_a_file_is_written(
    digits: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"a step of 64 samples needs .* the largest batch that"):
        fit(
            small_model(), digits, TrainConfig(epochs=1), out=out, log=lambda _: None,
            memory=MemoryCheck(limit=300_000),
        )  # fmt: skip
    assert not out.exists()
