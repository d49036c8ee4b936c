"""Model-file metadata and training state are checked field by field: one line per damage."""

import copy
import math
from typing import Any

import pytest
import torch

from brickwork.errors import CheckpointError
from brickwork.train.digest import tensor_digest
from brickwork.train.schema import (
    check_model_metadata,
    check_position,
    check_scheduler,
    check_training_state,
)

GOOD_MODEL: dict[str, Any] = {
    "format": "brickwork",
    "brickwork_version": "0.1.0",
    "spec": {"input": [1, 8, 8], "model": [{"flatten": {}}]},
    "sha256": "0" * 64,
    "classes": ["0", "1"],
    "mean": [0.5],
    "std": [0.25],
    "data": "digits",
    "data_dir": None,
    "seed": 0,
    "val_acc": 0.9,
    "eval_transform": {"size": [8, 8], "crop_fraction": 0.875},
}
GOOD_STATE: dict[str, Any] = {
    "epoch": 1,
    "step": 3,
    "running": [1.5, 4, 10],
    "history": [{"epoch": 1, "val_acc": 0.5}],
    "best": [0.5, -math.inf],
    "scheduler": {"last_epoch": 13},
    "config": {"epochs": 3},
}


CODE = {"file": "m.py", "name": "Net", "args": "", "kwargs": "width=2", "sha256": "0" * 64}


def test_good_metadata_and_state_pass() -> None:
    check_model_metadata(GOOD_MODEL, "m.safetensors")
    check_training_state(GOOD_STATE, "c.safetensors")
    check_position(GOOD_STATE, epochs=3, steps_per_epoch=10, where="c.safetensors")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("spec", "/etc/passwd", r"'spec' is '/etc/passwd', not a spec mapping"),
        ("spec", {"input": [1]}, r"'spec' is .*, not a spec mapping with 'model'"),
        ("format", "pickle", r"'format' is 'pickle', not 'brickwork'"),
        ("code", {"file": "m.py"}, r"'code' is \{'file': 'm.py'\}, not \{'file', 'name'"),
        ("code", {**CODE, "name": "os.system('x')"}, r"'code' is .*, not \{'file', 'name'"),
        ("code", {**CODE, "sha256": "abc"}, r"'code' is .*, not \{'file', 'name'"),
        ("input_shape", [1, 0], r"'input_shape' is \[1, 0\], not a list of positive sizes"),
        ("sha256", "abc", r"'sha256' is 'abc', not 64 hexadecimal digits"),
        ("classes", [], r"'classes' is \[\], not a non-empty list of class names"),
        ("classes", [1, 2], r"'classes' is \[1, 2\]"),
        ("std", [0], r"'std' is \[0\], not a non-empty list of positive numbers"),
        ("std", "abc", r"'std' is 'abc'"),
        ("mean", [float("nan")], r"'mean' is \[nan\], not a non-empty list of finite numbers"),
        ("std", [0.2, 0.3], r"'mean' has 1 channels but 'std' 2"),
        ("seed", -1, r"'seed' is -1, not a non-negative integer"),
        ("seed", True, r"'seed' is True"),
        ("val_acc", 7, r"'val_acc' is 7, not a number in \[0, 1\]"),
        ("data_dir", ["x"], r"'data_dir' is \['x'\], not a folder or null"),
        ("brickwork_version", 1, r"'brickwork_version' is 1, not a version string"),
        (
            "eval_transform",
            {"size": [8, 8]},
            r"'eval_transform' is \{'size': \[8, 8\]\}, not \{'size': \[H, W\], 'crop_fraction'",
        ),
        (
            "eval_transform",
            {"size": [8, 0], "crop_fraction": 0.875},
            r"'eval_transform' is .*, not \{'size'",
        ),
        (
            "eval_transform",
            {"size": [8, 8], "crop_fraction": 1.5},
            r"'eval_transform' is .*, not \{'size'",
        ),
        (
            "eval_transform",
            {"size": "8", "crop_fraction": 0.5},
            r"'eval_transform' is .*, not \{'size'",
        ),
    ],
)
def test_damaged_model_metadata(key: str, value: object, message: str) -> None:
    content = {**GOOD_MODEL, key: value}
    with pytest.raises(CheckpointError, match=rf"^m\.safetensors: damaged metadata: {message}"):
        check_model_metadata(content, "m.safetensors")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("format", "no 'format'"),
        ("brickwork_version", "no 'brickwork_version'"),
        ("spec", r"no 'spec' \(nor 'code'\)"),
    ],
)
def test_required_metadata(key: str, message: str) -> None:
    content = {k: v for k, v in GOOD_MODEL.items() if k != key}
    with pytest.raises(CheckpointError, match=rf"^m: its metadata has {message}$"):
        check_model_metadata(content, "m")


def test_a_code_models_metadata_has_code_instead_of_a_spec() -> None:
    code_model = {k: v for k, v in GOOD_MODEL.items() if k != "spec"}
    check_model_metadata({**code_model, "code": CODE}, "m")
    with pytest.raises(CheckpointError, match=r"^m: its metadata has both 'spec' and 'code'$"):
        check_model_metadata({**GOOD_MODEL, "code": CODE}, "m")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epoch", -1, r"'epoch' is -1"),
        ("epoch", 1.5, r"'epoch' is 1\.5"),
        ("step", "3", r"'step' is '3'"),
        ("running", [1.0, 2], r"'running' is \[1\.0, 2\], not \[loss sum, correct, seen\]"),
        ("running", [float("inf"), 1, 2], r"'running' is \[inf, 1, 2\]"),
        ("history", {"epoch": 1}, r"'history' is \{'epoch': 1\}, not a list of metric rows"),
        ("best", [0.5], r"'best' is \[0\.5\]"),
        ("best", ["a", 1], r"'best' is \['a', 1\]"),
        ("scheduler", [1], r"'scheduler' is \[1\]"),
        ("config", None, r"'config' is None"),
    ],
)
def test_damaged_training_state(key: str, value: object, message: str) -> None:
    state = {**GOOD_STATE, key: value}
    with pytest.raises(CheckpointError, match=rf"^c: damaged metadata: {message}"):
        check_training_state(state, "c")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"step": 10**9},
            r"epoch 1, step 1000000000 lies outside the run \(3 epochs of 10 steps\)",
        ),
        ({"epoch": 4, "history": [{}] * 4}, r"epoch 4, step 3 lies outside the run"),
        ({"epoch": 3, "step": 1, "history": [{}] * 3}, r"epoch 3, step 1 lies outside the run"),
        ({"history": []}, r"0 epochs of history at epoch 1"),
    ],
)
def test_positions_outside_the_run(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        check_position({**GOOD_STATE, **changes}, epochs=3, steps_per_epoch=10, where="c")


def _onecycle(total: int) -> dict[str, Any]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total)
    return scheduler.state_dict()


def test_the_scheduler_must_be_this_runs_at_the_checkpoints_position() -> None:
    fresh = _onecycle(30)
    saved = copy.deepcopy(fresh)
    saved["last_epoch"] = 13
    check_scheduler(saved, fresh, 13, "c")
    with pytest.raises(CheckpointError, match="has taken 13 steps, the checkpoint's position 12"):
        check_scheduler(saved, fresh, 12, "c")
    with pytest.raises(
        CheckpointError, match="the scheduler's 'total_steps' is 300, this run's 30"
    ):
        check_scheduler({**saved, "total_steps": 300}, fresh, 13, "c")
    with pytest.raises(CheckpointError, match="the scheduler's state is not this run's"):
        check_scheduler({"bogus": 1}, fresh, 13, "c")
    with pytest.raises(CheckpointError, match="the scheduler's state is not this run's"):
        check_scheduler(None, fresh, 13, "c")
    check_scheduler(None, None, 13, "c")


def test_the_digest_sees_every_byte_name_dtype_and_shape() -> None:
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    digest = tensor_digest(tensors)
    assert digest == tensor_digest(
        {"b": torch.zeros(3), "w": torch.arange(6.0).reshape(3, 2).t().t().reshape(2, 3)}
    )
    assert digest == tensor_digest(
        {k: v.t().contiguous().t() if v.dim() == 2 else v for k, v in tensors.items()}
    )
    flipped = tensors["w"].clone()
    flipped.view(torch.int32)[0, 0] ^= 1  # one bit
    for other in (
        {**tensors, "w": flipped},
        {**tensors, "w": tensors["w"].reshape(3, 2)},
        {**tensors, "w": tensors["w"].double()},
        {"v": tensors["w"], "b": tensors["b"]},
    ):
        assert tensor_digest(other) != digest
