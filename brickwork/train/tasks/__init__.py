"""What differs between a run that classifies images and one that segments them: the loss
(:mod:`.losses`), the running sums and scores (:mod:`.scores`) and the pictures
(:mod:`.samples`). The rest of training (the loop, checkpoints, resume, the loader) is the same
for both; the data says which task a run is (a ``seg:PATH`` dataset segments).
"""

from typing import Any

from brickwork.errors import ConfigError
from brickwork.train.config import LOSSES, TASKS, TrainConfig
from brickwork.train.data.masks import IGNORE
from brickwork.train.tasks.losses import make_criterion
from brickwork.train.tasks.scores import batch_sums, pixels, seg_columns, seg_scores


def data_task(data: Any) -> str:
    """The task ``data`` is for: ``segmentation`` for images with masks, else classification."""
    return str(getattr(data, "task", "classification"))


def check_task(asked: str | None, data: Any) -> str:
    """The run's task: the data's, which ``--task`` (``asked``), when given, must agree with.

    Raises:
        ConfigError: an unknown task, or one the data is not for.
    """
    found = data_task(data)
    if asked is None or asked == found:
        return found
    if asked not in TASKS:
        raise ConfigError(f"--task {asked!r}: choose one of {', '.join(TASKS)}")
    wants = "seg:PATH (images/ and masks/)" if asked == "segmentation" else "class labels"
    raise ConfigError(
        f"--task {asked}, but {data.name} is data for {found}",
        hint=f"{asked} needs {wants}; leave --task out to take the data's task",
    )


def settle(config: TrainConfig, data: Any) -> TrainConfig:
    """``config`` for the task of ``data`` (:meth:`TrainConfig.settled`), with the options that
    only one task takes checked against it.

    Raises:
        ConfigError: ``--task`` against the data, Mixup or CutMix for segmentation, or a
            segmentation loss for classification.
    """
    config = config.settled(check_task(config.task, data))
    config.check()  # the options the task filled in, against the others
    if config.task == "segmentation" and (config.mixup or config.cutmix):
        raise ConfigError(
            "--mixup and --cutmix mix the labels of whole images; segmentation has a mask per "
            "image: leave them out"
        )
    make_criterion(data_task(data), config.loss, config.label_smoothing)  # dice: segmentation
    return config


__all__ = [
    "IGNORE",
    "LOSSES",
    "TASKS",
    "batch_sums",
    "check_task",
    "data_task",
    "make_criterion",
    "pixels",
    "seg_columns",
    "seg_scores",
    "settle",
]
