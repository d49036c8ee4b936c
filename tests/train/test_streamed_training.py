"""Training on image files, exact to the step: the same weights with any number of workers, and
a run stopped in the middle of an epoch resumes to the bytes of a straight one."""

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from image_trees import make_tree, photo
from safetensors.torch import load_file

import brickwork
from brickwork.train import RunInterruptedError, TrainConfig, fit
from brickwork.train.checkpoint import read_metadata
from brickwork.train.commands import evaluate_file
from brickwork.train.data import pack
from brickwork.train.predict import predict_files

SPEC: dict[str, Any] = {
    "input": [3, 16, 16],
    "model": [
        {"conv_block": {"out": 8, "kernel_size": 3, "padding": 1, "stride": 2}},
        {"adaptiveavgpool2d": {"output_size": 1}},
        "flatten",
        {"dropout": {"p": 0.1}},
        {"linear": {"out": 3}},
    ],
}
CONFIG: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 10,
    "image_size": [16],
    "lr": 1e-2,
    "mixup": 0.2,
    "seed": 4,
}


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return brickwork.build(SPEC)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("photos"), {"a": 16, "b": 16, "c": 16}, sizes=(18, 40))


@pytest.fixture(scope="module")
def shards(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "packed"
    pack(f"folder:{photos}", out, 20_000)
    return out


def train(data: str, out: Path, workers: int, **options: Any) -> list[dict[str, Any]]:
    config = TrainConfig(data=data, workers=workers, **CONFIG)  # type: ignore[arg-type]
    return fit(model(), data, config, out=out, log=lambda _: None, **options)


@pytest.fixture(scope="module")
def straight(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("straight")
    train(f"folder:{photos}", out, workers=0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_the_same_weights_with_any_number_of_workers(
    photos: Path, straight: Path, tmp_path: Path, workers: int
) -> None:
    train(f"folder:{photos}", tmp_path, workers=workers)
    assert (tmp_path / "model.safetensors").read_bytes() == (
        straight / "model.safetensors"
    ).read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "stop"), [("folder", (0, 1)), ("shards", (1, 2))])
def test_stopped_mid_epoch_with_workers_a_run_resumes_to_the_straight_runs_bytes(
    photos: Path, shards: Path, straight: Path, tmp_path: Path, kind: str, stop: tuple[int, int]
) -> None:
    data = f"folder:{photos}" if kind == "folder" else f"shards:{shards}"
    read: list[tuple[int, int]] = []

    def interrupt(model: torch.nn.Module, epoch: int, step: int) -> None:
        read.append((epoch, step))
        if (epoch, step) == stop:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RunInterruptedError, match=rf"at epoch {stop[0] + 1}, step {stop[1] + 1}"):
        train(data, tmp_path, workers=2, on_step=interrupt)
    read.clear()
    train(data, tmp_path, 2, resume=True, on_step=lambda m, epoch, step: read.append((epoch, step)))
    assert read[0] == (stop[0], stop[1] + 1)  # the resumed run starts at the next step
    resumed, reference = tmp_path / "model.safetensors", straight / "model.safetensors"
    if kind == "folder":
        assert resumed.read_bytes() == reference.read_bytes()
    else:  # the same weights as the folder's straight run (the metadata names other data)
        ours, theirs = load_file(resumed), load_file(reference)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_the_model_file_keeps_the_eval_crop_that_evaluate_and_predict_use(
    photos: Path, straight: Path, tmp_path: Path
) -> None:
    metadata = read_metadata(straight / "model.safetensors")
    assert metadata["eval_transform"] == {"size": [16, 16], "crop_fraction": 0.875}
    assert metadata["data"] == f"folder:{photos}"
    result = evaluate_file(straight, None, None)
    test_line = (straight / "metrics.jsonl").read_text().splitlines()[-1]
    assert f'"test_acc": {result["accuracy"]}' in test_line
    assert sum(row["support"] for row in result["per_class"].values()) == round(48 * 0.2)
    phone = tmp_path / "phone.jpg"
    photo(np.random.default_rng(5), 300, 400, 120).save(phone)  # 4:3, bigger than any trained on
    [prediction] = predict_files(straight, [str(phone)])
    assert prediction["class"] in ("a", "b", "c")
    assert 0 < prediction["probability"] <= 1
