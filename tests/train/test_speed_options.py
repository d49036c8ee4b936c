"""The fast paths of ``fit``: no device syncs between steps, fused optimizers, channels-last and
bf16, torch.compile; each still trains the model it is given."""

import traceback
from pathlib import Path

import pytest
import torch
from small_models import small_model

import brickwork
from brickwork.train import Dataset, TrainConfig, fit
from brickwork.train.optim import make_optimizer
from brickwork.train.progress import ProgressBar
from brickwork.train.step import CHECK_EVERY

SYNCING = ("item", "tolist", "__bool__", "__int__", "__float__", "cpu", "numpy")
"""Tensor methods that make the host wait for the device."""


class SyncCounter:
    """Records where a syncing method is called while ``counting`` is true."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.counting = False


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> SyncCounter:
    counter = SyncCounter()
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args: object, _original=original, _name=name, **kwargs: object) -> object:  # fmt: skip
            if counter.counting:
                frame = traceback.extract_stack()[-2]
                counter.seen.append(f"{_name} at {frame.filename}:{frame.lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counter


@pytest.mark.parametrize("progress", [False, True])
def test_no_step_waits_for_the_device_unless_a_metric_is_shown(
    syncs: SyncCounter, digits: Dataset, progress: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ProgressBar, "REFRESH", 0.0)  # the bar shows the loss after every step

    def on_step(model: torch.nn.Module, epoch: int, step: int) -> None:
        # count from the end of step 0 to the end of step 6 (no loss check falls in between)
        syncs.counting = step < 6

    assert CHECK_EVERY > 6
    fit(small_model(), digits, TrainConfig(epochs=1, batch_size=128), log=lambda _: None, on_step=on_step, progress=progress)  # fmt: skip
    if progress:  # the bar reads the running loss: the counter sees it
        assert any("progress.py" in where for where in syncs.seen), syncs.seen
    else:
        assert syncs.seen == []


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_optimizers_are_fused_on_the_cpu(name: str) -> None:
    optimizer = make_optimizer(small_model(), TrainConfig(optimizer=name), torch.device("cpu"))
    assert optimizer.defaults["fused"] is True


@pytest.fixture(scope="module")
def fp32(digits: Dataset) -> list[dict[str, float]]:
    return fit(small_model(), digits, TrainConfig(epochs=2), log=lambda _: None)


@pytest.mark.parametrize(
    ("precision", "channels_last"), [("bf16", False), ("fp32", True), ("bf16", True)]
)
def test_bf16_and_channels_last_train_as_fp32_does_and_save_a_plain_model(
    digits: Dataset,
    fp32: list[dict[str, float]],
    tmp_path: Path,
    precision: str,
    channels_last: bool,
) -> None:
    formats = []

    def on_step(model: torch.nn.Module, epoch: int, step: int) -> None:
        *_, conv = (m for m in model.modules() if isinstance(m, torch.nn.Conv2d))  # 4 → 8 channels
        formats.append(conv.weight.is_contiguous(memory_format=torch.channels_last))

    config = TrainConfig(epochs=2, precision=precision, channels_last=channels_last)
    history = fit(small_model(), digits, config, out=tmp_path, log=lambda _: None, on_step=on_step)
    assert len(formats) == 2 * 19  # every step of 2 epochs of 1212 images, 64 a step
    assert formats == [channels_last] * len(formats)
    for ours, plain in zip(history, fp32, strict=True):
        for key in ours.keys() - {"seconds", "epoch", "lr"}:
            assert ours[key] == pytest.approx(plain[key], rel=0.02, abs=0.02), key
    saved = brickwork.load(tmp_path / "model.safetensors")
    assert saved(digits.x_test[:16]).shape == (16, 10)


@pytest.mark.slow
def test_compile_trains_the_same_model(
    digits: Dataset, fp32: list[dict[str, float]], tmp_path: Path
) -> None:
    compiled = fit(small_model(), digits, TrainConfig(epochs=2, compile=True), out=tmp_path, log=lambda _: None)  # fmt: skip
    for ours, plain in zip(compiled, fp32, strict=True):
        for key in ours.keys() - {"seconds", "epoch", "lr"}:
            assert ours[key] == pytest.approx(plain[key], rel=1e-3, abs=1e-3), key
    # the run directory holds the plain model, not the compiled wrapper
    saved = brickwork.load(tmp_path / "model.safetensors")
    assert saved.state_dict().keys() == small_model().state_dict().keys()
