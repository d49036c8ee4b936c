"""``TrainConfig``: every option of a run, the checks on them, and the device they name."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from brickwork.errors import ConfigError, positive_int
from brickwork.train import distributed

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "cosine", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
TASKS = ("classification", "segmentation")
LOSSES = ("ce", "dice", "ce+dice")
"""``--loss``: cross-entropy, Dice or their sum (Dice: segmentation only)."""
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"batch_size": 64, "loss": "ce"},
    "segmentation": {"batch_size": 16, "loss": "ce+dice"},
}
"""The options a task decides when they are not given: a U-Net learns from more and smaller
steps than a classifier, and Dice keeps small classes from being drowned by the background."""
MACHINE_OPTIONS = ("device", "channels_last", "compile", "workers", "tensorboard")
"""Options that say where and how fast to run, or what is logged, not what to compute:
``--resume`` may change them."""


@dataclass
class TrainConfig:
    """Every option of a run; ``config.json`` in the run directory."""

    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 25
    batch_size: int | None = None
    """Images a step, over every process; ``None``: the task's (:data:`TASK_DEFAULTS`)."""
    lr: float = 3e-3
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    augment: bool = True
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    image_size: list[int] | None = None
    """Image files: the size they are cropped to, ``[S]`` or ``[H, W]``; default the first
    training image's."""
    crop_scale: float | None = None
    """Image files: the smallest training crop, as a share of the image's area (default 0.08)."""
    mixup: float = 0.0
    """Mixup's alpha (0: off)."""
    cutmix: float = 0.0
    """CutMix's alpha (0: off)."""
    max_pixels: int | None = None
    """Image files: open images of up to this many pixels (default Pillow's limit, 89.5 M):
    larger ones are refused as possible decompression bombs."""
    workers: int | None = None
    """Image files: DataLoader worker processes (0: none); default the cores, shared among
    torchrun's processes on a machine."""
    ema: float = 0.0
    """The decay of an exponential moving average of the weights, in ``(0, 1)`` (0: off)."""
    accumulate: int = 1
    """Micro-batches a step's batch is computed in (gradients accumulated, one optimizer step)."""
    patience: int | None = None
    """Stop when the validation score has not improved for this many epochs (``None``: never)."""
    warmup_epochs: int = 0
    """Epochs of linear learning-rate warmup before the schedule."""
    tensorboard: bool | None = None
    """TensorBoard event files in the run directory: ``None`` when the package is installed."""
    init: str | None = None
    """A ``.safetensors`` file of the first weights (a brickwork model file, or a torchvision- or
    timm-layout ResNet state dict), mapped by name; not read again when the run resumes."""
    init_strict: bool = True
    """``--init``: a key missing from the file or the model is an error (``False``: logged)."""
    freeze: list[str] | None = None
    """``fnmatch`` patterns of module paths whose parameters stay fixed, batch norms in eval."""
    task: str | None = None
    """``classification`` or ``segmentation``; ``None``: what the data is for."""
    loss: str | None = None
    """The training loss: ``ce``, or for segmentation also ``dice`` or ``ce+dice``; ``None``:
    the task's (:data:`TASK_DEFAULTS`)."""

    @property
    def batch(self) -> int:
        """The batch size of a settled config (:meth:`settled`)."""
        if self.batch_size is None:
            raise ConfigError("the batch size is the task's until the config is settled")
        return self.batch_size

    def settled(self, task: str) -> TrainConfig:
        """This config for ``task``: ``task`` set, and the options left to it
        (``batch_size``, ``loss``) given the task's defaults."""
        unset = {k: v for k, v in TASK_DEFAULTS[task].items() if getattr(self, k) is None}
        return replace(self, task=task, **unset)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first option out of its range."""
        for name, value, choices in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
            ("loss", self.loss or LOSSES[0], LOSSES),
            ("task", self.task or TASKS[0], TASKS),
        ):
            if value not in choices:
                raise ConfigError(f"--{name} {value!r}: choose one of {', '.join(choices)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be 0 or more, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be in [0, 2**32), got {self.seed}")
        self._check_trainer_options()
        self._check_data_options()
        self._check_fine_tuning()

    def _check_trainer_options(self) -> None:
        if not (math.isfinite(self.ema) and 0 <= self.ema < 1):
            raise ConfigError(f"--ema must be a decay in (0, 1), or 0 (off), got {self.ema}")
        if self.accumulate < 1:
            raise ConfigError(f"--accumulate must be at least 1, got {self.accumulate}")
        if self.batch_size is not None and self.accumulate > self.batch_size:
            raise ConfigError(
                f"--accumulate {self.accumulate} splits --batch-size {self.batch_size} into "
                "empty micro-batches: it must be at most the batch size"
            )
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"--patience must be at least 1 epoch, got {self.patience}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(
                f"--warmup-epochs must be 0 or more and less than --epochs {self.epochs}, "
                f"got {self.warmup_epochs}"
            )

    def _check_data_options(self) -> None:
        size = self.image_size
        if size is not None and (
            not 1 <= len(size) <= 2 or any(isinstance(v, bool) or v < 1 for v in size)
        ):
            raise ConfigError(f"--image-size must be S or H,W of positive integers, got {size}")
        if self.crop_scale is not None and not 0 < self.crop_scale <= 1:
            raise ConfigError(f"--crop-scale must be in (0, 1], got {self.crop_scale}")
        for name in ("mixup", "cutmix"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"--{name} must be 0 (off) or a positive alpha, got {value}")
        if self.max_pixels is not None:
            positive_int(self.max_pixels, "--max-pixels")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be 0 or more, got {self.workers}")

    def _check_fine_tuning(self) -> None:
        if self.init is not None and (not isinstance(self.init, str) or not self.init.strip()):
            raise ConfigError(f"--init must name a .safetensors file, got {self.init!r}")
        if not isinstance(self.init_strict, bool):
            raise ConfigError(f"--init-strict must be true or false, got {self.init_strict!r}")
        for pattern in self.freeze or ():
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigError(f"--freeze takes module path patterns, got {pattern!r}")


def computed_options(options: Any) -> Any:
    """The options that decide what a run computes: all but :data:`MACHINE_OPTIONS`.

    An option missing from ``options`` has its default: a run saved by an earlier version, before
    the option existed, computed what the default computes (a run saved before tasks existed
    classified); an option left to the task has the task's.

    Args:
        options: a config as a dict (``asdict(config)``, a saved ``config.json``); anything
            else is returned as it is.
    """
    if not isinstance(options, dict):
        return options
    every = {**asdict(TrainConfig()), **options}
    task = every["task"] if every["task"] in TASK_DEFAULTS else "classification"  # before tasks
    for key, value in TASK_DEFAULTS[task].items():
        every[key] = value if every[key] is None else every[key]
    every["task"] = task
    return {k: v for k, v in every.items() if k not in MACHINE_OPTIONS}


def resolve_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``...; under torchrun, ``cuda`` is the rank's
    GPU.

    Raises:
        ConfigError: a name that is no device, or a device this machine lacks (one line, before
            anything is written).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: choose auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ConfigError(f"--device {name!r}: cannot train there; choose auto, cpu, cuda or mps")
    _check_present(name, device)
    rank = distributed.local_rank()
    if device.type == "cuda" and device.index is None and rank is not None:
        device = torch.device("cuda", rank)
    return device


def _check_present(name: str, device: torch.device) -> None:
    """Raise :class:`ConfigError` when this machine lacks ``device``."""
    hint = "use --device cpu or auto"
    if device.type in ("cuda", "xpu"):
        backend, kind = (torch.cuda, "CUDA") if device.type == "cuda" else (torch.xpu, "XPU")
        count = backend.device_count() if backend.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {name}: this machine has no {kind} device", hint=hint)
        if device.index is not None and device.index >= count:
            which = f"{device.type}:0" + (f" to {device.type}:{count - 1}" if count > 1 else "")
            plural = "s" if count > 1 else ""
            raise ConfigError(
                f"--device {name}: this machine has only {count} {kind} device{plural} ({which})",
                hint=hint,
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: this machine has no MPS (Apple GPU) device", hint=hint)
