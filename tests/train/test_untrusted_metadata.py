"""A model file is data: its class names must fit its model, a path it names is not read, and
sizes it or the user gives are refused before anything of that size is made."""

from pathlib import Path
from typing import Any

import pytest
import torch

import brickwork
from brickwork.errors import CheckpointError, ConfigError, DataError
from brickwork.train import free_memory
from brickwork.train.commands import evaluate_file
from brickwork.train.data import load_dataset

SPEC = {"input": [1, 8, 8], "model": [{"flatten": {}}, {"linear": {"out": 10}}]}
TEN = [str(i) for i in range(10)]


def _saved(tmp_path: Path, **extra: Any) -> Path:
    return brickwork.save(brickwork.build(SPEC), tmp_path / "m.safetensors", extra=extra)


@pytest.mark.parametrize(
    ("classes", "refused"), [(TEN, False), (["a", "b", "c"], True), ([*TEN, "x"], True)]
)
def test_class_names_must_be_as_many_as_the_scores(
    tmp_path: Path, classes: list[str], refused: bool
) -> None:
    path = _saved(tmp_path, classes=classes, input_shape=[1, 8, 8])
    if not refused:
        assert brickwork.load(path)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
        return
    with pytest.raises(
        CheckpointError, match=rf"{len(classes)} class names for a model that scores 10"
    ):
        brickwork.load(path)


@pytest.mark.parametrize("data", ["folder:../../../etc/ssl", "seg:/etc", "shards:/tmp"])
def test_a_path_a_lone_model_file_names_is_not_read(tmp_path: Path, data: str) -> None:
    path = _saved(tmp_path, classes=TEN, input_shape=[1, 8, 8], data=data)
    with pytest.raises(ConfigError, match="never makes brickwork read a path it names") as caught:
        evaluate_file(path, None, None)
    assert caught.value.hint == f"pass --data {data} to evaluate on that data"


def test_a_named_built_in_set_is_still_evaluated(tmp_path: Path) -> None:
    path = _saved(tmp_path, classes=TEN, input_shape=[1, 8, 8], data="digits")
    assert evaluate_file(path, None, None)["data"] == "digits"


def test_a_synthetic_set_larger_than_free_memory_is_refused_before_it_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(free_memory, "available_memory", lambda device: 10**6)
    with pytest.raises(
        DataError, match=r"held whole: 2\.56 GB in memory, more than the 0\.001 GB free"
    ):
        load_dataset("synthetic:1,8,8,10,10000000")
    assert len(load_dataset("synthetic:1,8,8,10,100").classes) == 10


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([10**18, 4], "more than a tensor can hold"),
        ([10**9, 10**9, 4], "more than a tensor can hold"),
        ([10**4, 10**4], r"input at batch 3: 1\.2 GB in memory, more than the 1 GB free"),
    ],
)
def test_an_export_of_a_huge_input_shape_is_refused_before_it_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: list[int], message: str
) -> None:
    monkeypatch.setattr(free_memory, "available_memory", lambda device: 10**9)
    with pytest.raises(ConfigError, match=message):
        brickwork.export(torch.nn.Linear(4, 2), "onnx", tmp_path / "m.onnx", input_shape=shape)
    assert not (tmp_path / "m.onnx").exists()
