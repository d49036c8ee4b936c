"""``fit``: the training loop behind ``brickwork train``, with nothing lost.

Every step's randomness (shuffling, augmentation, dropout) is derived from ``(seed, epoch,
step)``, so a run resumed from any checkpoint continues exactly as the uninterrupted run would
have: on the CPU the final weights are bit-identical. A checkpoint is written after every epoch,
and at the current step on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import BrickworkError, ConfigError
from brickwork.spec import save_spec, to_spec
from brickwork.train.checkpoint import (
    CheckpointError,
    atomic_write,
    has_checkpoint,
    load_training_state,
    load_weights,
    save,
    save_training_state,
)
from brickwork.train.data import Dataset, batches, load_dataset, random_flip, random_shift

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "cosine", "none")
PRECISIONS = ("fp32", "bf16", "fp16")


class TrainingError(BrickworkError, RuntimeError):
    """The run cannot go on (a non-finite loss); the last good checkpoint is kept."""


class RunInterruptedError(BrickworkError):
    """Ctrl-C or SIGTERM: a checkpoint was saved at the current step."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass
class TrainConfig:
    """Every option of a run; ``config.json`` in the run directory."""

    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    augment: bool = True
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0

    def check(self) -> None:
        for name, value, choices in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in choices:
                raise ConfigError(f"--{name} {value!r}: choose one of {', '.join(choices)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be 0 or more, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be in [0, 2**32), got {self.seed}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device here", hint="use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: choose auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ConfigError(f"--device {name!r}: cannot train there; choose auto, cpu or cuda")
    return device


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63)


@contextmanager
def _catch_signals() -> Iterator[list[int]]:
    """Turn SIGINT and SIGTERM into a flag that the loop checks after each step."""
    caught: list[int] = []
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        caught.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(ValueError):  # not the main thread: signals stay as they are
            previous[signum] = signal.signal(signum, handler)
    try:
        yield caught
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def fit(
    model: nn.Module,
    data: Dataset | str = "digits",
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = False,
    on_step: Callable[[nn.Module, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``data``; returns the metrics, one dict per epoch and a last test one.

    Args:
        model: a brickwork model (its spec goes into the checkpoints).
        data: a :class:`Dataset` or a dataset name (``"digits"``, ``"mnist"``, ...).
        config: the options; default :class:`TrainConfig()`.
        out: the run directory (spec.yaml, config.json, metrics.jsonl, model.safetensors,
            curves.png, confusion.png, the checkpoint). ``None``: nothing is written.
        resume: continue the run saved in ``out``.
        log: where one-line messages go.
        progress: show a rich progress bar per epoch.
        on_step: called as ``on_step(model, epoch, step)`` after each optimizer step (0-based
            epoch and step), before the loop looks for a stop signal.

    Raises:
        TrainingError: a non-finite loss (the last good checkpoint is kept).
        RunInterruptedError: Ctrl-C or SIGTERM (a checkpoint of the current step was saved).
    """
    config = config or TrainConfig()
    config.check()
    device = resolve_device(config.device)
    autocast = _autocast(device, config.precision)  # fp16 on a CPU: refused before any write
    dataset = (
        load_dataset(data, config.data_dir, config.seed) if isinstance(data, str) else data
    ).to(device)
    model.to(device)
    mean = torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std, device=device).view(1, -1, 1, 1)
    steps_per_epoch = math.ceil(len(dataset.y_train) / config.batch_size)
    optimizer = _optimizer(model, config)
    scheduler = _scheduler(optimizer, config, steps_per_epoch)
    run = Path(out) if out is not None else None
    history: list[dict[str, Any]] = []
    start_epoch, start_step, running = 0, 0, (0.0, 0, 0)
    best: list[float] = [-1.0, -math.inf]
    if run is not None:
        if resume:
            state = load_training_state(run, model, optimizer)
            if state.get("config") != asdict(config):
                raise CheckpointError(
                    f"{run}: its checkpoint was written by a run with other options than "
                    f"{run / 'config.json'} says",
                    hint="the run directory was edited or mixed with another one",
                )
            if state["epoch"] >= config.epochs:
                raise ConfigError(
                    f"{run}: the run is complete ({config.epochs} epochs); nothing to resume",
                    hint="start a new run in another --out to train longer",
                )
            scheduler_state = state.get("scheduler")
            if scheduler is not None and scheduler_state is not None:
                scheduler.load_state_dict(scheduler_state)
            start_epoch, start_step = state["epoch"], state["step"]
            loss0, correct0, seen0 = state["running"]
            running = (float(loss0), int(correct0), int(seen0))
            history, best = state["history"], state["best"]
            log(f"resuming {run} at epoch {start_epoch + 1}, step {start_step}")
        elif has_checkpoint(run):
            raise ConfigError(
                f"{run} already holds a run; add --resume to continue it, or choose another --out"
            )
        else:
            run.mkdir(parents=True, exist_ok=True)
            save_spec(to_spec(model), run / "spec.yaml")
            atomic_write(
                run / "config.json", lambda p: p.write_text(json.dumps(asdict(config), indent=2))
            )
    extra = {
        "classes": dataset.classes,
        "mean": dataset.mean,
        "std": dataset.std,
        "data": dataset.name,
        "data_dir": config.data_dir,
        "seed": config.seed,  # evaluate splits the data as this run did
    }
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def checkpoint(epoch: int, step: int, running: tuple[float, int, int]) -> None:
        if run is not None:
            save_training_state(
                run,
                model,
                optimizer,
                {
                    "epoch": epoch,
                    "step": step,
                    "running": list(running),
                    "history": history,
                    "best": best,
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "config": asdict(config),
                },
            )

    with _catch_signals() as caught:
        for epoch in range(start_epoch, config.epochs):
            began = time.perf_counter()
            model.train()
            loss_sum, correct, seen = running if epoch == start_epoch else (0.0, 0, 0)
            order = torch.Generator().manual_seed(_step_seed(config.seed, epoch, -1))
            epoch_batches = list(batches(len(dataset.y_train), config.batch_size, order))
            bar = _bar(progress, epoch, config.epochs, len(epoch_batches))
            with bar if bar is not None else nullcontext():
                for step, index in enumerate(epoch_batches):
                    if epoch == start_epoch and step < start_step:
                        continue
                    torch.manual_seed(_step_seed(config.seed, epoch, step))
                    x, y = dataset.x_train[index.to(device)], dataset.y_train[index.to(device)]
                    x = _augment(x, dataset, config, epoch, step)
                    with autocast:
                        logits = model((x - mean) / std)
                        loss = criterion(logits.float(), y)
                    if not torch.isfinite(loss):
                        raise TrainingError(
                            f"the loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: "
                            "training stopped; the last good checkpoint is kept",
                            hint="lower --lr, or check the data for NaN or huge values",
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    # the reported loss is plain cross-entropy, comparable with validation's
                    plain = nn.functional.cross_entropy(logits.detach().float(), y)
                    loss_sum += plain.item() * len(y)
                    correct += int((logits.argmax(1) == y).sum())
                    seen += len(y)
                    if bar is not None:
                        bar.advance(loss_sum / seen, correct / seen, seen)
                    if on_step is not None:
                        on_step(model, epoch, step)
                    if caught:
                        checkpoint(epoch, step + 1, (loss_sum, correct, seen))
                        where = f" in {run}" if run is not None else " (no --out: nothing kept)"
                        raise RunInterruptedError(
                            f"interrupted at epoch {epoch + 1}, step {step + 1}: checkpoint saved"
                            f"{where}; continue with --resume",
                            caught[0],
                        )
            val_loss, val_acc, _ = evaluate_tensors(
                model, dataset.x_val, dataset.y_val, mean, std, config.batch_size * 4
            )
            row = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - began, 3),
            }
            history.append(row)
            log(
                f"epoch {epoch + 1}/{config.epochs}  loss {row['train_loss']:.4f}  "
                f"acc {row['train_acc']:.4f}  val_loss {val_loss:.4f}  val_acc {val_acc:.4f}"
            )
            # best = highest validation accuracy, ties going to the lower validation loss: a small
            # validation set reaches its top accuracy early, long before the model is done
            score = [val_acc, -val_loss]
            if score > best:
                best = score
                if run is not None:
                    save(model, run / "model.safetensors", extra={**extra, "val_acc": val_acc})
            checkpoint(epoch + 1, 0, (0.0, 0, 0))
            if run is not None:
                _write_metrics(run, history)
            if caught:  # a signal during validation: the epoch is complete and saved
                raise RunInterruptedError(
                    f"interrupted after epoch {epoch + 1}: checkpoint saved"
                    + (f" in {run}; continue with --resume" if run is not None else ""),
                    caught[0],
                )
    if run is not None:
        load_weights(model, run / "model.safetensors")  # the best validation weights
    test_loss, test_acc, confusion = evaluate_tensors(
        model, dataset.x_test, dataset.y_test, mean, std, config.batch_size * 4
    )
    history = [*history, {"test_loss": test_loss, "test_acc": test_acc}]
    log(
        f"test accuracy {test_acc:.4f} ({len(dataset.y_test)} images)"
        + (f"; run in {run}" if run else "")
    )
    if run is not None:
        _write_metrics(run, history)
        from brickwork.train.plots import plot_confusion, plot_curves

        plot_curves(history, run / "curves.png")
        plot_confusion(confusion, dataset.classes, run / "confusion.png")
    return history


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int) -> Any:
    total = config.epochs * steps
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return None


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; on the CPU use bf16")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _augment(
    x: torch.Tensor, dataset: Dataset, config: TrainConfig, epoch: int, step: int
) -> torch.Tensor:
    if not config.augment:
        return x
    g = torch.Generator().manual_seed(_step_seed(config.seed, epoch, step) ^ 0x5EED)
    x = random_shift(x, max(1, x.shape[-1] // 8), g)  # ±1 pixel on 8×8 digits, ±4 on 32×32
    return random_flip(x, g) if dataset.flips else x


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
) -> tuple[float, float, torch.Tensor]:
    """Loss, accuracy and confusion matrix (rows: true class) of ``model`` on ``(x, y)``."""
    model.eval()
    n_classes = int(y.max()) + 1 if len(y) else 0
    loss_sum, predictions = 0.0, []
    for index in batches(len(y), batch_size, None):
        logits = model((x[index] - mean) / std).float()
        n_classes = max(n_classes, logits.shape[1])
        loss_sum += float(nn.functional.cross_entropy(logits, y[index], reduction="sum"))
        predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    confusion.index_put_((y.cpu(), predicted.cpu()), torch.ones_like(y.cpu()), accumulate=True)
    accuracy = int((predicted == y).sum()) / len(y) if len(y) else 0.0
    return loss_sum / max(len(y), 1), accuracy, confusion


def _write_metrics(run: Path, history: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write(run / "metrics.jsonl", lambda p: p.write_text(text))


class _Bar:
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

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def advance(self, loss: float, acc: float, seen: int) -> None:
        speed = seen / max(time.perf_counter() - self.began, 1e-9)
        self.progress.update(self.task, advance=1, loss=loss, acc=acc, speed=speed)


def _bar(progress: bool, epoch: int, epochs: int, total: int) -> _Bar | None:
    return _Bar(epoch, epochs, total) if progress else None
