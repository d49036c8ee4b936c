"""Segmentation's loss and scores: pixels of 255 count for nothing; IoU and Dice as defined."""

import math

import pytest
import torch

from brickwork.errors import ConfigError
from brickwork.train.tasks import batch_sums, make_criterion, pixels, seg_scores
from brickwork.train.tasks.losses import DiceLoss


def _logits(classes: torch.Tensor, n: int = 3, sure: float = 20.0) -> torch.Tensor:
    """Score maps ``(b, n, H, W)`` that pick ``classes`` ``(b, H, W)`` with confidence."""
    return torch.nn.functional.one_hot(classes, n).movedim(-1, 1).float() * sure


def test_iou_and_dice_from_a_confusion_matrix() -> None:
    confusion = torch.tensor([[50, 10, 0], [5, 30, 0], [0, 0, 0]])  # class 2: never seen
    scores = seg_scores(confusion, ["bg", "a", "b"])
    bg, a, b = (scores["per_class"][k] for k in ("bg", "a", "b"))
    assert bg["iou"] == pytest.approx(50 / (50 + 10 + 5))
    assert a["iou"] == pytest.approx(30 / (30 + 5 + 10))
    assert a["dice"] == pytest.approx(2 * 30 / (35 + 40))
    assert b["iou"] is None
    assert b["dice"] is None
    assert scores["miou"] == pytest.approx((bg["iou"] + a["iou"]) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(80 / 95)


def test_ignored_pixels_change_neither_the_loss_nor_the_scores() -> None:
    truth = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(0))
    logits = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    masked = truth.clone()
    masked[:, :2] = 255
    criterion = make_criterion("segmentation", "ce", 0.0)
    expected = torch.nn.functional.cross_entropy(logits[:, :, 2:], truth[:, 2:])
    assert criterion(logits, masked).item() == pytest.approx(expected.item(), rel=1e-6)
    flat_logits, flat_y = pixels(logits, masked)
    assert flat_logits.shape == (2 * 4 * 6, 3)
    assert bool((flat_y != 255).all())


@pytest.mark.parametrize("loss", ["ce", "dice", "ce+dice"])
def test_a_batch_with_every_pixel_ignored_has_a_zero_loss_not_a_nan(loss: str) -> None:
    y = torch.full((2, 4, 4), 255)
    value = make_criterion("segmentation", loss, 0.1)(torch.randn(2, 3, 4, 4), y)
    assert math.isfinite(value.item())
    assert value.item() == pytest.approx(0.0, abs=1e-6)


def test_dice_is_near_zero_for_a_perfect_prediction_and_high_for_a_wrong_one() -> None:
    truth = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(2))
    dice = DiceLoss()
    assert dice(_logits(truth), truth).item() < 1e-3
    assert dice(_logits((truth + 1) % 3), truth).item() > 0.9


def test_dice_and_ce_plus_dice_train_on_gradients() -> None:
    truth = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(3))
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    make_criterion("segmentation", "ce+dice", 0.0)(logits, truth).backward()
    assert logits.grad is not None
    assert logits.grad.abs().sum() > 0


def test_batch_sums_are_per_image_means_for_masks() -> None:
    truth = torch.zeros(2, 4, 4, dtype=torch.long)
    truth[1, :2] = 255  # image 1: half ignored
    guess = truth.clamp_max(2).clone()
    guess[0, 0, 0] = 1  # image 0: one pixel of 16 wrong
    _, correct = batch_sums(_logits(guess), truth)
    assert correct.item() == pytest.approx(15 / 16 + 1.0)  # image 1: all 8 labelled pixels right


@pytest.mark.parametrize(
    ("task", "loss", "message"),
    [
        ("classification", "dice", "--loss dice is a segmentation loss"),
        ("classification", "ce+dice", "--loss ce\\+dice is a segmentation loss"),
        ("segmentation", "focal", "--loss 'focal': choose one of ce, dice, ce\\+dice"),
    ],
)
def test_a_loss_the_task_has_not_is_refused(task: str, loss: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_criterion(task, loss, 0.0)
