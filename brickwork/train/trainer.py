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

from brickwork.errors import CheckpointError, ConfigError, RunInterruptedError, TrainingError
from brickwork.files import atomic_write
from brickwork.spec import save_spec, to_spec
from brickwork.train import distributed
from brickwork.train.checkpoint import (
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
MACHINE_OPTIONS = ("device", "channels_last", "compile")
"""Options that say where and how fast to run, not what to compute: ``--resume`` may change them."""


@dataclass
class TrainConfig:
    """Every option of a run; ``config.json`` in the run directory."""

    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 25
    batch_size: int = 64
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
    """``auto``, ``cpu``, ``cuda``, ``cuda:N``...; under torchrun, ``cuda`` is the rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device here", hint="use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: choose auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ConfigError(f"--device {name!r}: cannot train there; choose auto, cpu or cuda")
    rank = distributed.local_rank()
    if device.type == "cuda" and device.index is None and rank is not None:
        device = torch.device("cuda", rank)
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


CHECK_EVERY = 50
"""Steps between looks at the loss for NaN or inf (each look waits for the device to catch up)."""


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

    Under ``torchrun`` (several processes), each rank trains on its share of every batch with
    ``DistributedDataParallel``; only rank 0 logs and writes ``out``.

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
        RankLostError: under torchrun, another process died or stopped answering.
    """
    with _flush_denormals():
        return _fit(model, data, config, out, resume, log, progress, on_step)


@contextmanager
def _flush_denormals() -> Iterator[None]:
    """Treat denormal floats (below 1.2e-38) as zero on the CPU while training.

    Adam's second moments of tiny gradients drift into that range, where x86 arithmetic is tens
    of times slower: steps that took 0.3 s took 1.5 s a few dozen steps into a run. PyTorch has
    no getter for the flag; it is off by default, and is turned off again afterwards.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def _fit(
    model: nn.Module,
    data: Dataset | str,
    config: TrainConfig | None,
    out: str | Path | None,
    resume: bool,
    log: Callable[[str], None],
    progress: bool,
    on_step: Callable[[nn.Module, int, int], None] | None,
) -> list[dict[str, Any]]:
    config = config or TrainConfig()
    config.check()
    device = resolve_device(config.device)
    autocast = _autocast(device, config.precision)  # fp16 on a CPU: refused before any write
    world = distributed.start(device)
    if config.batch_size < world.size:
        raise ConfigError(
            f"--batch-size {config.batch_size} is the whole step's batch, shared out among "
            f"{world.size} processes: it must be at least {world.size}"
        )
    if not world.main:
        log, progress = (lambda _: None), False
    dataset = (
        load_dataset(data, config.data_dir, config.seed) if isinstance(data, str) else data
    ).to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    exact = _sum_dtype(device)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=memory_format)  # type: ignore[call-overload]
    mean = torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std, device=device).view(1, -1, 1, 1)
    steps_per_epoch = math.ceil(len(dataset.y_train) / config.batch_size)
    optimizer = _optimizer(model, config, device)
    scheduler = _scheduler(optimizer, config, steps_per_epoch)
    run = Path(out) if out is not None else None
    writes = run is not None and world.main
    history: list[dict[str, Any]] = []
    start_epoch, start_step, running = 0, 0, (0.0, 0, 0)
    best: list[float] = [-1.0, -math.inf]
    if run is not None:
        if resume:
            state = distributed.from_main(lambda: _resume(run, model, optimizer, config))
            if world.size > 1:
                model.load_state_dict(state.pop("model"))
                optimizer.load_state_dict(state.pop("optimizer"))
            scheduler_state = state.get("scheduler")
            if scheduler is not None and scheduler_state is not None:
                scheduler.load_state_dict(scheduler_state)
            start_epoch, start_step = state["epoch"], state["step"]
            loss0, correct0, seen0 = state["running"]
            running = (float(loss0), int(correct0), int(seen0))
            history, best = state["history"], state["best"]
            log(f"resuming {run} at epoch {start_epoch + 1}, step {start_step}")
        else:
            distributed.from_main(lambda: _start_run(run, model, config))
    extra = {
        "classes": dataset.classes,
        "mean": dataset.mean,
        "std": dataset.std,
        "data": dataset.name,
        "data_dir": config.data_dir,
        "seed": config.seed,  # evaluate splits the data as this run did
    }
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    forward: nn.Module = model
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        distributed.broadcast_module(model)
        forward = DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    if config.compile:
        forward = torch.compile(forward)  # type: ignore[assignment]

    def checkpoint(epoch: int, step: int, running: tuple[float, int, int]) -> None:
        if writes:
            assert run is not None
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

    with _catch_signals() as caught, distributed.lost_ranks_reported():
        for epoch in range(start_epoch, config.epochs):
            began = time.perf_counter()
            model.train()
            loss0, correct0, seen = running if epoch == start_epoch else (0.0, 0, 0)
            if not world.main:  # the saved sums are the whole job's: rank 0 carries them on
                loss0, correct0 = 0.0, 0
            # the running sums stay on the device: reading them would wait for every step
            sums = torch.tensor([loss0, correct0], device=device, dtype=exact)
            seen_here = 0  # this rank's share of ``seen`` (the progress bar's denominator)
            first_bad = torch.full((2,), math.inf, device=device, dtype=exact)
            order = torch.Generator().manual_seed(_step_seed(config.seed, epoch, -1))
            epoch_batches = list(batches(len(dataset.y_train), config.batch_size, order))
            bar = _bar(progress, epoch, config.epochs, len(epoch_batches))
            with bar if bar is not None else nullcontext():
                for step, index in enumerate(epoch_batches):
                    if epoch == start_epoch and step < start_step:
                        continue
                    if len(index) < world.size:  # a last batch too small to share out
                        if scheduler is not None:
                            scheduler.step()  # the learning rate stays where one process has it
                        continue
                    seen_here += _step(
                        forward, dataset, config, epoch, step, index, mean, std,
                        memory_format, autocast, criterion, optimizer, world, sums, first_bad,
                    )  # fmt: skip
                    if scheduler is not None:
                        scheduler.step()
                    seen += len(index)
                    if bar is not None:
                        bar.advance(sums, seen_here)
                    if on_step is not None:
                        on_step(model, epoch, step)
                    if (step + 1) % CHECK_EVERY == 0:
                        _check_finite(first_bad, epoch)
                    if distributed.any_rank(bool(caught)):
                        _check_finite(first_bad, epoch)
                        loss_sum, correct = distributed.all_reduce_sum(sums.clone()).tolist()
                        checkpoint(epoch, step + 1, (loss_sum, int(correct), seen))
                        where = f" in {run}" if run is not None else " (no --out: nothing kept)"
                        raise RunInterruptedError(
                            f"interrupted at epoch {epoch + 1}, step {step + 1}: checkpoint saved"
                            f"{where}; continue with --resume",
                            caught[0] if caught else signal.SIGTERM,
                        )
            _check_finite(first_bad, epoch)
            loss_sum, correct = distributed.all_reduce_sum(sums).tolist()
            val_loss, val_acc, _ = evaluate_tensors(
                model, dataset.x_val, dataset.y_val, mean, std, config.batch_size * 4,
                dataset.n_classes,
            )  # fmt: skip
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
                if writes:
                    assert run is not None
                    save(model, run / "model.safetensors", extra={**extra, "val_acc": val_acc})
            checkpoint(epoch + 1, 0, (0.0, 0, 0))
            if writes:
                assert run is not None
                _write_metrics(run, history)
            if distributed.any_rank(bool(caught)):
                # a signal during validation: the epoch is complete and saved
                raise RunInterruptedError(
                    f"interrupted after epoch {epoch + 1}: checkpoint saved"
                    + (f" in {run}; continue with --resume" if run is not None else ""),
                    caught[0] if caught else signal.SIGTERM,
                )
    with distributed.lost_ranks_reported():
        if run is not None:
            if writes:
                load_weights(model, run / "model.safetensors")  # the best validation weights
            distributed.broadcast_module(model)
        test_loss, test_acc, confusion = evaluate_tensors(
            model, dataset.x_test, dataset.y_test, mean, std, config.batch_size * 4,
            dataset.n_classes,
        )  # fmt: skip
    history = [*history, {"test_loss": test_loss, "test_acc": test_acc}]
    log(
        f"test accuracy {test_acc:.4f} ({len(dataset.y_test)} images)"
        + (f"; run in {run}" if run else "")
    )
    if writes:
        assert run is not None
        _write_metrics(run, history)
        from brickwork.train.plots import plot_confusion, plot_curves

        plot_curves(history, run / "curves.png")
        plot_confusion(confusion, dataset.classes, run / "confusion.png")
    return history


def _step(
    forward: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    epoch: int,
    step: int,
    index: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    memory_format: torch.memory_format,
    autocast: Any,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    world: distributed.World,
    sums: torch.Tensor,
    first_bad: torch.Tensor,
) -> int:
    """One optimizer step on this rank's share of the batch ``index``; adds to ``sums`` (loss
    sum, correct count) and records the first non-finite loss in ``first_bad`` (step, loss),
    all without waiting for the device. Returns the number of samples this rank took."""
    device = sums.device
    torch.manual_seed(_step_seed(config.seed, epoch, step))
    index = index.to(device, non_blocking=True)
    # the whole batch is augmented on every rank, so each sample is shifted as it would be in
    # a single process, then each rank keeps its share
    x = _augment(dataset.x_train[index], dataset, config, epoch, step)
    mine = distributed.share(len(index))
    x, y = x[mine], dataset.y_train[index][mine]
    x = ((x - mean) / std).contiguous(memory_format=memory_format)
    with autocast:
        logits = forward(x)
        loss = criterion(logits.float(), y)
    # DDP averages the ranks' gradients; weighting each rank's mean by its share of the batch
    # makes that average the gradient of the whole batch's mean, even when the shares differ
    scaled = loss * (len(y) * world.size / len(index)) if world.size > 1 else loss
    optimizer.zero_grad(set_to_none=True)
    scaled.backward()
    optimizer.step()
    with torch.no_grad():
        detached = logits.detach().float()
        # the reported loss is plain cross-entropy, comparable with validation's
        plain = nn.functional.cross_entropy(detached, y, reduction="sum")
        correct = (detached.argmax(1) == y).sum()
        sums += torch.stack([plain.to(sums.dtype), correct.to(sums.dtype)])
        bad = ~torch.isfinite(loss) & ~torch.isfinite(first_bad[0])
        found = torch.stack([first_bad.new_tensor(step), loss.detach().to(first_bad.dtype)])
        first_bad.copy_(torch.where(bad, found, first_bad))
    return len(y)


def _sum_dtype(device: torch.device) -> torch.dtype:
    """What running sums are kept in: float64, or float32 on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_finite(first_bad: torch.Tensor, epoch: int) -> None:
    """Raise if any rank saw a non-finite loss (this waits for the device)."""
    step = distributed.all_reduce_min(first_bad[:1].clone()).item()
    if math.isfinite(step):
        value = first_bad[1].item() if math.isfinite(first_bad[0].item()) else math.nan
        raise TrainingError(
            f"the loss is {value} at epoch {epoch + 1}, step {int(step) + 1}: "
            "training stopped; the last good checkpoint is kept",
            hint="lower --lr, or check the data for NaN or huge values",
        )


def _resume(
    run: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig
) -> dict[str, Any]:
    """Load the run's training state into ``model`` and ``optimizer``; the state, with both
    (on the CPU) for the other ranks when there are several."""
    state = load_training_state(run, model, optimizer)
    if _what(state.get("config")) != _what(asdict(config)):
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
    if distributed.current().size > 1:
        state["model"] = _to_cpu(model.state_dict())
        state["optimizer"] = _to_cpu(optimizer.state_dict())
    return state


def _what(options: Any) -> Any:
    """The options that decide what a run computes (all but :data:`MACHINE_OPTIONS`)."""
    if not isinstance(options, dict):
        return options
    return {k: v for k, v in options.items() if k not in MACHINE_OPTIONS}


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def _start_run(run: Path, model: nn.Module, config: TrainConfig) -> None:
    if has_checkpoint(run):
        raise ConfigError(
            f"{run} already holds a run; add --resume to continue it, or choose another --out"
        )
    run.mkdir(parents=True, exist_ok=True)
    save_spec(to_spec(model), run / "spec.yaml")
    atomic_write(run / "config.json", lambda p: p.write_text(json.dumps(asdict(config), indent=2)))


def _optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """The optimizer, fused (one kernel for all parameters) where this PyTorch has it for the
    device, else foreach (one kernel per operation over a list of tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs: dict[str, Any]
    if config.optimizer == "sgd":
        cls: type[torch.optim.Optimizer] = torch.optim.SGD
        kwargs = {"momentum": 0.9, "nesterov": True}
    else:
        cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        kwargs = {}
    kwargs.update(lr=config.lr, weight_decay=config.weight_decay)
    try:
        return cls(params, fused=True, **kwargs)  # type: ignore[call-arg]
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or version
        return cls(params, foreach=True, **kwargs)  # type: ignore[call-arg]


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
    n_classes: int | None = None,
) -> tuple[float, float, torch.Tensor]:
    """Loss, accuracy and confusion matrix (rows: true class) of ``model`` on ``(x, y)``.

    Under torchrun each rank evaluates its share and the sums are added up (then ``n_classes``
    must be given, so that every rank's matrix has the same size).
    """
    model.eval()
    mine = distributed.share(len(y))
    x_here, y_here = x[mine], y[mine]
    exact = _sum_dtype(y.device)
    loss_sum = torch.zeros((), dtype=exact, device=y.device)
    predictions, width = [], 0
    for index in batches(len(y_here), batch_size, None):
        logits = model((x_here[index] - mean) / std).float()
        width = logits.shape[1]
        loss_sum += nn.functional.cross_entropy(logits, y_here[index], reduction="sum").to(exact)
        predictions.append(logits.argmax(1))
    if n_classes is None:
        n_classes = max(int(y.max()) + 1 if len(y) else 0, width)
    predicted = torch.cat(predictions) if predictions else y_here.new_empty(0, dtype=torch.long)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long, device=y.device)
    confusion.index_put_((y_here, predicted), torch.ones_like(y_here), accumulate=True)
    distributed.all_reduce_sum(confusion)
    distributed.all_reduce_sum(loss_sum)
    accuracy = int(confusion.trace()) / len(y) if len(y) else 0.0
    return float(loss_sum) / max(len(y), 1), accuracy, confusion.cpu()


def _write_metrics(run: Path, history: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write(run / "metrics.jsonl", lambda p: p.write_text(text))


class _Bar:
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

    def __enter__(self) -> _Bar:
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


def _bar(progress: bool, epoch: int, epochs: int, total: int) -> _Bar | None:
    return _Bar(epoch, epochs, total) if progress else None
