"""TensorBoard event files in the run directory: each epoch's losses, metrics, learning rate and
images per second, beside ``metrics.jsonl``, and a segmentation run's sample grid.

PyTorch writes them (``torch.utils.tensorboard``), which needs the ``tensorboard`` package:
``pip install 'brickwork[tensorboard]'``. Without it a run trains and writes everything else;
only ``--tensorboard`` asked for explicitly is refused, before anything is written.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from brickwork.errors import ConfigError
from brickwork.train.owned import record_new_events
from brickwork.train.run_dir import BOARD

TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "ema_val_loss": "loss/val_ema",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "ema_val_acc": "accuracy/val_ema",
    "val_miou": "miou/val",
    "ema_val_miou": "miou/val_ema",
    "val_dice": "dice/val",
    "ema_val_dice": "dice/val_ema",
    "lr": "learning_rate",
}
"""An epoch row's columns and their TensorBoard tags (the others are left out)."""


def available() -> bool:
    """Whether the ``tensorboard`` package is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def wanted(option: bool | None) -> bool:
    """Whether a run writes event files: ``--tensorboard`` (``True``), ``--no-tensorboard``
    (``False``), or by default (``None``) when the package is installed.

    Raises:
        ConfigError: ``--tensorboard`` without the package.
    """
    if option is None:
        return available()
    if option and not available():
        raise ConfigError(
            "--tensorboard needs the tensorboard package, which is not installed",
            hint="pip install 'brickwork[tensorboard]', or leave --tensorboard out",
        )
    return option


class Board:
    """The event files of one run directory, written after each epoch.

    Args:
        run: the run directory; files go into its ``tensorboard`` folder (a resumed run adds
            a file there, its epochs following the saved ones).
    """

    def __init__(self, run: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = run / BOARD
        before = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        self._writer = SummaryWriter(log_dir=str(folder))
        record_new_events(run, before)  # the name is TensorBoard's: recorded once it exists

    def epoch(self, row: dict[str, Any], images_per_s: float) -> None:
        """Write an epoch's row (its ``epoch`` is the step) and its speed; flush to disk."""
        step = row["epoch"]
        for key, tag in TAGS.items():
            if key in row:
                self._writer.add_scalar(tag, row[key], step)
        self._writer.add_scalar("speed/images_per_s", images_per_s, step)
        self._writer.flush()

    def image(self, tag: str, picture: Any, step: int) -> None:
        """Write a picture, ``(H, W, 3)`` ``uint8`` (a segmentation run's sample grid)."""
        self._writer.add_image(tag, picture, step, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
