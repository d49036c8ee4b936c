"""The progress bar of an epoch: steps done, running loss and accuracy, images per second."""

from __future__ import annotations

import math
import time
from typing import Any

import torch


class ProgressBar:
    """A rich progress bar for one epoch (it disappears when the epoch ends).

    Args:
        epoch: the epoch, 0-based.
        epochs: the run's number of epochs.
        total: the epoch's number of steps.
    """

    REFRESH = 0.5
    """Seconds between reads of the running loss and accuracy."""

    def __init__(self, epoch: int, epochs: int, total: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.4f}"),
            TextColumn("{task.fields[speed]:.0f} img/s"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.task = self.progress.add_task("train", total=total, loss=0.0, acc=0.0, speed=0.0)
        self.began = time.perf_counter()
        self.shown = -math.inf

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def advance(self, sums: torch.Tensor, seen: int) -> None:
        """One step more; the loss and accuracy (``sums / seen``, read from the device, which
        waits for it) are refreshed every ``REFRESH`` seconds at most."""
        now = time.perf_counter()
        speed = seen / max(now - self.began, 1e-9)
        if now - self.shown < self.REFRESH:
            self.progress.update(self.task, advance=1, speed=speed)
            return
        self.shown = now
        loss, acc = (sums / max(seen, 1)).tolist()
        self.progress.update(self.task, advance=1, loss=loss, acc=acc, speed=speed)


def progress_bar(shown: bool, epoch: int, epochs: int, total: int) -> ProgressBar | None:
    """A :class:`ProgressBar` if ``shown``, else ``None``."""
    return ProgressBar(epoch, epochs, total) if shown else None
