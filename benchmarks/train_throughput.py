"""Training throughput: brickwork's trainer against the canonical loop and Lightning.

The same model (same initial weights), the same random images, the same batch size and AdamW,
images per second of:

  (a) the canonical PyTorch loop: DataLoader(TensorDataset(...), shuffle=True), then
      zero_grad / backward / step, with AdamW as it comes;
  (b) brickwork's trainer (``brickwork.train.fit``) in fp32;
  (c) brickwork with ``--precision bf16 --channels-last``;
  (d) Lightning's ``Trainer`` on a LightningModule holding the same model;
  (e) with ``--compile``: brickwork with ``--compile`` too;
  (f) a hand-tuned loop doing what brickwork does (tensors batched by index, fused AdamW,
      denormals flushed to zero): the trainer's own cost is (b)/(f).

Each is timed on its second epoch (the first warms caches and allocators), from the end of that
epoch's first step to the end of its last, validation excluded; the variants take turns, in
rounds, and the ratios are the medians of each round's ratios. Augmentation and schedules are
off everywhere, so every variant does the same work. Targets on the CPU: (b)/(a) >= 1.0,
(c)/(a) >= 1.8, (b)/(d) >= 1.0.

    .venv/bin/python benchmarks/train_throughput.py [--models guide resnet] [--rounds 5]
        [--images 512] [--batch-size 64] [--device cpu] [--compile]
    .venv/bin/python benchmarks/train_throughput.py --models resnet50 --device cuda \\
        --batch-size 256 --variants c   # the GPU row: ResNet-50 at 224×224, bf16
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

import brickwork
from brickwork.train import Dataset, TrainConfig, fit

TARGETS = {"b/a": 1.0, "c/a": 1.8, "b/d": 1.0, "b/f": None}
"""Each ratio's target; b/f (the trainer's own cost against a hand-tuned loop) has none."""
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "guide": (
        lambda: brickwork.CNNClassifier(1, [32, 64], [1024, 512], 10, input_shape=(28, 28)),
        (1, 28, 28),
    ),
    "resnet": (lambda: brickwork.create_model("resnet18_small", n_classes=10), (3, 32, 32)),
    "resnet50": (lambda: brickwork.create_model("resnet50", n_classes=1000), (3, 224, 224)),
}
LR, WEIGHT_DECAY = 1e-3, 5e-4


class StepClock:
    """Times the steps of the second epoch: images per second from its first step's end."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.marks: list[tuple[float, int]] = []

    def tick(self, epoch: int, images: int) -> None:
        if epoch == 1:
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), images))

    def images_per_second(self) -> float:
        (start, _), *rest = self.marks
        return sum(n for _, n in rest) / (self.marks[-1][0] - start)


def canonical(
    make: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    device: torch.device,
) -> float:
    from torch.utils.data import DataLoader, TensorDataset

    model = make().to(device)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    criterion = nn.CrossEntropyLoss()
    clock = StepClock(device)
    for epoch in range(2):
        model.train()
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            clock.tick(epoch, len(labels))
    return clock.images_per_second()


def tuned(
    make: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    device: torch.device,
) -> float:
    """A hand-tuned loop: what brickwork does, written out (the cost of the trainer itself)."""
    model = make().to(device)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, fused=True)
    criterion = nn.CrossEntropyLoss()
    clock = StepClock(device)
    torch.set_flush_denormal(True)
    try:
        for epoch in range(2):
            model.train()
            for index in torch.randperm(len(y), device=device).split(batch):
                optimizer.zero_grad()
                loss = criterion(model(x[index]), y[index])
                loss.backward()
                optimizer.step()
                clock.tick(epoch, len(index))
    finally:
        torch.set_flush_denormal(False)
    return clock.images_per_second()


def brickwork_fit(
    make: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    device: torch.device,
    **options: object,
) -> float:
    model = make()
    n_val = 64
    data = Dataset(
        "bench", [str(i) for i in range(int(y.max()) + 1)], x, y, *(x[:n_val], y[:n_val]) * 2
    )
    config = TrainConfig(
        epochs=2, batch_size=batch, lr=LR, weight_decay=WEIGHT_DECAY, schedule="none",
        label_smoothing=0.0, augment=False, device=str(device), **options,  # type: ignore[arg-type]
    )  # fmt: skip
    clock = StepClock(device)
    sizes = [len(i) for i in torch.arange(len(y)).split(batch)]
    fit(model, data, config, log=lambda _: None, on_step=lambda _m, e, s: clock.tick(e, sizes[s]))
    return clock.images_per_second()


def lightning(
    make: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    device: torch.device,
) -> float:
    import lightning as L  # noqa: N812 (Lightning's own spelling)
    from torch.utils.data import DataLoader, TensorDataset

    clock = StepClock(device)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = make()
            self.criterion = nn.CrossEntropyLoss()

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            images, labels = batch
            return self.criterion(self.model(images), labels)  # type: ignore[no-any-return]

        def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
            clock.tick(self.current_epoch, len(batch[1]))  # type: ignore[index]

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)

    trainer = L.Trainer(
        max_epochs=2, accelerator=device.type, devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0,
    )  # fmt: skip
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    trainer.fit(Module(), loader)
    return clock.images_per_second()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["guide", "resnet"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=512, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="add (e): brickwork --compile")
    parser.add_argument("--variants", default="abcdf", help="which of a, b, c, d, e, f to run")
    args = parser.parse_args()
    device = torch.device(args.device)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    variants: dict[str, Callable[..., float]] = {
        "a": canonical,
        "b": brickwork_fit,
        "c": lambda *a: brickwork_fit(*a, precision="bf16", channels_last=True),
        "d": lightning,
        "e": lambda *a: brickwork_fit(*a, compile=True),
        "f": tuned,
    }
    chosen = [v for v in args.variants + ("e" if args.compile else "") if v in variants]
    names = {
        "a": "canonical loop",
        "b": "brickwork fp32",
        "c": "brickwork bf16+channels_last",
        "d": "Lightning Trainer",
        "e": "brickwork --compile",
        "f": "hand-tuned loop",
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; "
        f"{args.images} images a epoch, batch {args.batch_size}, {args.rounds} rounds"
    )
    for model_name in args.models:
        make, shape = MODELS[model_name]

        def seeded(make: Callable[[], nn.Module] = make) -> nn.Module:
            torch.manual_seed(0)
            return make()

        generator = torch.Generator().manual_seed(0)
        # standardised images: brickwork normalises by the data's mean and std, the other loops
        # take the tensors as they are; this way every variant sees the same numbers
        x = torch.randn(args.images, *shape, generator=generator)
        y = torch.randint(0, 10, (args.images,), generator=generator)
        speeds: dict[str, list[float]] = {v: [] for v in chosen}
        for round_ in range(args.rounds):
            order = chosen if round_ % 2 == 0 else list(reversed(chosen))
            for v in order:
                speeds[v].append(variants[v](seeded, x, y, args.batch_size, device))
                print(f"  round {round_ + 1} ({v}) {speeds[v][-1]:.1f} images/s", flush=True)
        print(f"\n{model_name} {shape}:")
        for v in chosen:
            print(f"  ({v}) {names[v]:<30} {statistics.median(speeds[v]):8.1f} images/s")
        for ratio, target in TARGETS.items():
            top, bottom = ratio.split("/")
            if top in speeds and bottom in speeds:
                paired = [t / b for t, b in zip(speeds[top], speeds[bottom], strict=True)]
                value = statistics.median(paired)
                if target is None:
                    print(f"  ({ratio}) {value:.2f}")
                    continue
                verdict = "meets" if value >= target else "misses"
                print(f"  ({ratio}) {value:.2f}  [{verdict} target >= {target}]")


if __name__ == "__main__":
    main()
