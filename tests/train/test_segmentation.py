"""Segmentation trained end to end on a generated set: the default U-Net, mIoU chosen weights,
pictures, exact resume with workers, evaluate and predict, and the options it refuses."""

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from small_models import small_model

import brickwork
from brickwork.cli.app import main
from brickwork.errors import ConfigError
from brickwork.train import RunInterruptedError, TrainConfig, fit
from brickwork.train.commands import evaluate_file
from brickwork.train.data import load_dataset
from brickwork.train.data.seg_shapes import SHAPE_CLASSES, write_shapes
from brickwork.train.model_choice import default_model, train_model, train_spec
from brickwork.train.predict import predict_files
from brickwork.train.runs import list_runs
from brickwork.train.weights import read_metadata

CONFIG: dict[str, Any] = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "seed": 2}
UNET = {"model": {"unet": {"widths": [4, 8], "pad": True}}}
"""A U-Net small enough for a test (the default one is chosen in test_the_default_model...)."""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes"), 40, size=24, seed=5)


def train(shapes: Path, out: Path | None, workers: int = 0, **options: Any) -> list[dict[str, Any]]:
    data = load_dataset(f"seg:{shapes}", seed=CONFIG["seed"])
    config = TrainConfig(data=f"seg:{shapes}", workers=workers, **CONFIG)
    lines: list[str] = options.pop("lines", [])
    return fit(train_model(UNET, data), data, config, out=out, log=lines.append, **options)


@pytest.fixture(scope="module")
def straight(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    out, lines = tmp_path_factory.mktemp("straight"), []
    train(shapes, out, lines=lines)
    return out, lines


def test_a_run_reports_miou_and_keeps_the_best_by_it(straight: tuple[Path, list[str]]) -> None:
    out, lines = straight
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs, test = rows[:-1], rows[-1]
    assert all({"val_miou", "val_dice", "val_acc", "val_loss"} <= set(r) for r in epochs)
    assert {"test_miou", "test_dice", "test_acc"} <= set(test)
    assert set(test["test_iou"]) == set(SHAPE_CLASSES)
    assert set(epochs[-1]["val_iou"]) == set(SHAPE_CLASSES)
    assert any("val_miou" in line for line in lines if line.startswith("epoch 1/2"))
    assert lines[-1].startswith("test mIoU ")
    metadata = read_metadata(out / "model.safetensors")
    assert metadata["task"] == "segmentation"
    assert metadata["val_miou"] == max(r["val_miou"] for r in epochs)


def test_the_pictures_of_a_segmentation_run(straight: tuple[Path, list[str]], shapes: Path) -> None:
    out, _ = straight
    for name in ("curves.png", "confusion.png", "samples.png"):
        assert (out / name).is_file(), name
    shown = min(6, load_dataset(f"seg:{shapes}", seed=CONFIG["seed"]).split_size("val"))
    with Image.open(out / "samples.png") as grid:
        width, height = grid.size
    assert width >= 3 * 160
    assert height >= shown * 160


@pytest.mark.slow
def test_stopped_mid_epoch_with_workers_the_run_resumes_to_the_straight_bytes(
    shapes: Path, straight: tuple[Path, list[str]], tmp_path: Path
) -> None:
    def interrupt(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (0, 1):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RunInterruptedError, match="at epoch 1, step 2"):
        train(shapes, tmp_path, workers=2, on_step=interrupt)
    train(shapes, tmp_path, workers=2, resume=True)
    reference = straight[0] / "model.safetensors"
    assert (tmp_path / "model.safetensors").read_bytes() == reference.read_bytes()


def test_evaluate_gives_iou_per_class_and_their_mean(
    straight: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out, _ = straight
    result = evaluate_file(out, None, None, picture=tmp_path / "pixels.png")
    assert result["task"] == "segmentation"
    assert set(result["per_class"]) == set(SHAPE_CLASSES)
    scored = [r["iou"] for r in result["per_class"].values() if r["iou"] is not None]
    assert result["miou"] == pytest.approx(sum(scored) / len(scored))
    test = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["miou"] == pytest.approx(test["test_miou"])  # the run's own test split


def test_predict_writes_a_mask_of_each_images_own_size(
    straight: tuple[Path, list[str]], shapes: Path, tmp_path: Path
) -> None:
    big = tmp_path / "inputs"
    big.mkdir()
    Image.open(shapes / "images" / "00001.png").resize((50, 40)).save(big / "wide.png")  # not 24x24
    (big / "broken.png").write_bytes(b"not a png")
    results = predict_files(straight[0], [str(big)], out=tmp_path / "masks", overlay=True)
    by_name = {Path(r["image"]).name: r for r in results}
    assert "cannot read it as an image" in by_name["broken.png"]["error"]
    made = by_name["wide.png"]
    with Image.open(made["mask"]) as mask:
        assert mask.size == (50, 40)
        assert mask.mode == "P"
        assert np.asarray(mask).max() < len(SHAPE_CLASSES)
    assert Path(made["overlay"]).is_file()
    assert sum(made["pixels"].values()) == pytest.approx(1.0)
    before = (big / "wide.png").read_bytes()
    with pytest.raises(
        ConfigError, match=r"inputs/broken\.png exists and is not a brickwork picture"
    ):
        predict_files(straight[0], [str(big)], out=big)  # its masks would replace the images
    assert (big / "wide.png").read_bytes() == before
    assert not (big / "wide_overlay.png").exists()
    again = predict_files(straight[0], [str(big)], out=tmp_path / "masks", overlay=True)
    assert [r.get("mask") for r in again] == [r.get("mask") for r in results]  # its own: replaced


def test_the_cli_predicts_masks_and_evaluates_with_iou(
    straight: tuple[Path, list[str]],
    shapes: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = shapes / "images" / "00002.png"
    assert main(["predict", str(straight[0]), str(image), "--out", str(tmp_path), "--overlay"]) == 0
    assert f"mask {tmp_path / '00002.png'} (overlay" in capsys.readouterr().out
    assert main(["evaluate", str(straight[0]), "--out", str(tmp_path / "c.png")]) == 0
    text = capsys.readouterr().out
    assert "mIoU" in text
    assert "circle" in text
    assert "IoU" in text


def test_runs_lists_a_segmentation_run_with_its_best_miou(straight: tuple[Path, list[str]]) -> None:
    (found,) = list_runs(straight[0])
    rows = [json.loads(line) for line in (straight[0] / "metrics.jsonl").read_text().splitlines()]
    assert found["task"] == "segmentation"
    assert found["best"] == max(r["val_miou"] for r in rows[:-1])
    assert found["test"] == rows[-1]["test_miou"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"task": "classification"}, "--task classification, but seg:.* is data for segmentation"),
        ({"mixup": 0.2}, "--mixup and --cutmix mix the labels of whole images"),
        ({"loss": "focal"}, "--loss 'focal'"),
    ],
)
def test_options_segmentation_cannot_take_are_refused_before_a_file_is_written(
    shapes: Path, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    data = load_dataset(f"seg:{shapes}")
    config = TrainConfig(**{**CONFIG, **options})
    with pytest.raises(ConfigError, match=message):
        fit(train_model(UNET, data), data, config, out=tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_a_classifier_on_masks_is_refused_naming_the_shape_it_should_give(shapes: Path) -> None:
    data = load_dataset(f"seg:{shapes}")
    model = brickwork.CNNClassifier(3, [4], [8], 4, input_shape=(24, 24))
    with pytest.raises(ConfigError, match=r"outputs of shape \[4\] but seg:.* wants \[4, 24, 24\]"):
        fit(model, data, TrainConfig(**CONFIG), log=lambda _: None)


def test_segmentation_asked_of_class_folders_is_refused(digits: Any) -> None:
    with pytest.raises(ConfigError, match="--task segmentation, but digits is data for"):
        fit(small_model(), digits, TrainConfig(task="segmentation"), log=lambda _: None)


@pytest.mark.parametrize(
    ("shape", "widths"),
    [((3, 64, 64), [16, 32, 64, 128]), ((1, 256, 320), [32, 64, 128, 256, 512])],
)
def test_the_default_model_for_masks_is_a_unet_sized_for_the_images(
    shape: tuple[int, ...], widths: list[int]
) -> None:
    spec, note = default_model(shape, "segmentation")
    assert spec == {"model": {"unet": {"widths": widths, "pad": True}}}
    assert note.startswith(f"model: unet with widths {widths}")
    model = brickwork.build(train_spec(spec, _FakeData(shape)), device="meta")
    assert model(torch.empty(2, *shape, device="meta")).shape == (2, 5, *shape[1:])


class _FakeData:
    """What train_spec reads of a dataset: its shape, classes, task and name."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.input_shape, self.n_classes, self.task, self.name = shape, 5, "segmentation", "seg:x"


def test_tensorboard_gets_the_sample_grid_of_each_epoch(shapes: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = load_dataset(f"seg:{shapes}", seed=CONFIG["seed"])
    config = TrainConfig(**{**CONFIG, "epochs": 1}, tensorboard=True)
    fit(train_model(UNET, data), data, config, out=tmp_path, log=lambda _: None)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"miou/val", "dice/val"} <= set(events.Tags()["scalars"])
    assert [image.step for image in events.Images("samples")] == [1]
