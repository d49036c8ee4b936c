"""The image-file pipeline: brickwork's streamed folders against the loop a user writes.

On a generated folder of JPEGs of mixed sizes (200-1000 px a side, 10 classes):

  1. images per second of the training pipeline alone (decode, augment, collate, normalise; no
     model), at 224 and at 64 px: brickwork's ``StreamBatches`` against the canonical
     ``Dataset.__getitem__`` (PIL open, ``convert('RGB')``, random resized crop and flip, to a
     float tensor, normalise) in a ``DataLoader`` with the same workers and batch size and the
     default collate, each timed over ``--batches`` batches from a fresh DataLoader (its
     workers' start included). The two take turns, ``--rounds`` times, each going first every
     other round, after every file has been read once; the ratio is the median of each round's
     ratio. Target: >= 1.5 at both sizes.
  2. one training epoch of a small CNN (with validation and test passes, as ``fit`` does):
     ``brickwork.train.fit`` (reading the folder and its normalisation sample included) against
     the canonical loop with the same model, optimizer, workers and batch size, on the same
     split; each twice, in ABBA order. Target: brickwork's time / canonical's <= 1.0.
  3. peak resident memory (the process and its workers) while reading ``--memory-batches``
     batches of the folder and of the folder four times over (hard links): growth <= 100 MB.

    .venv/bin/python benchmarks/data_pipeline.py [--images 5000] [--workers 2]
        [--batch-size 64] [--batches 20] [--rounds 3] [--folder DIR] [--skip-epoch]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

import brickwork
from brickwork.train import TrainConfig, fit
from brickwork.train.data import ImageDataset, LoaderOptions, load_dataset, open_batches
from measure import status_kib

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLASSES = 10


# ----------------------------------------------------------------------------- the folder


def _write_photo(args: tuple[Path, int]) -> None:
    path, seed = args
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(200, 1001, 2))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    f1, f2, f3 = rng.uniform(0.005, 0.05, 3)
    picture = np.stack(
        [
            127 + 100 * np.sin(x * f1 + y * f2),
            127 + 100 * np.cos(y * f3 + seed),
            127 + 100 * np.sin((x + y) * f2),
        ],
        -1,
    ) + rng.normal(0, 5, (height, width, 3))  # a little sensor noise: about 1.5 bits a pixel
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_folder(root: Path, images: int) -> Path:
    """``root/c<k>/<i>.jpg``: ``images`` photo-like JPEGs (made once; kept for later runs)."""
    marker = root / f".complete-{images}"
    if marker.exists():
        return root
    jobs = []
    for i in range(images):
        folder = root / f"c{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((folder / f"{i:06d}.jpg", i))
    with Pool(os.cpu_count()) as pool:
        pool.map(_write_photo, jobs, chunksize=32)
    marker.write_text("")
    return root


def warm(root: Path) -> None:
    """Read every file once, so that no variant pays for the disk (the folder fits in memory)."""
    for path in root.glob("c*/*.jpg"):
        path.read_bytes()


# ----------------------------------------------------------------------------- the canonical loop


def crop_box(width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params`` (scale 0.08-1, ratio 3/4-4/3)."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            top, left = rng.randint(0, height - h), rng.randint(0, width - w)
            return left, top, left + w, top + h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2


class CanonicalFolder(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """What a user writes: open, convert, crop, resize, flip, to float, normalise."""

    def __init__(self, files: list[tuple[str, int]], size: int, train: bool) -> None:
        self.files, self.size, self.train = files, size, train
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        image = Image.open(path).convert("RGB")
        if self.train:
            box = crop_box(image.width, image.height, random.Random())
            image = image.crop(box).resize((self.size, self.size), Image.Resampling.BILINEAR)
            if random.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:  # resize the shorter side to size / 0.875, then the centre crop
            scale = round(self.size / 0.875) / min(image.size)
            image = image.resize(
                (round(image.width * scale), round(image.height * scale)),
                Image.Resampling.BILINEAR,
            )
            left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
        return (x - self.mean) / self.std, label


def canonical_loader(
    files: list[tuple[str, int]], size: int, args: argparse.Namespace, train: bool = True
) -> DataLoader[tuple[torch.Tensor, int]]:
    return DataLoader(
        CanonicalFolder(files, size, train),
        batch_size=args.batch_size,
        shuffle=train,
        num_workers=args.workers,
    )


def split_files(data: ImageDataset, split: str) -> list[tuple[str, int]]:
    records = data.splits[split]
    return [(records.where(i), int(records.labels[i])) for i in range(len(records))]


# ----------------------------------------------------------------------------- 1. the pipeline


def images_per_second(batches: object, count: int) -> float:
    start, seen = time.perf_counter(), 0
    for number, batch in enumerate(batches):  # type: ignore[call-overload]
        seen += len(batch.y) if hasattr(batch, "y") else len(batch[0])
        if number + 1 == count:
            break
    return seen / (time.perf_counter() - start)


def pipeline(root: Path, size: int, args: argparse.Namespace) -> dict[str, float]:
    data = load_dataset(f"folder:{root}", image_size=[size])
    assert isinstance(data, ImageDataset)
    data = data.with_stats(MEAN, STD)
    files = split_files(data, "train")
    ours = open_batches(data, LoaderOptions(args.batch_size, workers=args.workers))
    ratios, theirs_rate, ours_rate = [], [], []
    for round_ in range(args.rounds):
        theirs_rate.append(images_per_second(canonical_loader(files, size, args), args.batches))
        ours_rate.append(images_per_second(ours.epoch(round_), args.batches))
        ratios.append(ours_rate[-1] / theirs_rate[-1])
    return {
        "canonical": statistics.median(theirs_rate),
        "brickwork": statistics.median(ours_rate),
        "ratio": statistics.median(ratios),
    }


# ----------------------------------------------------------------------------- 2. an epoch


def small_cnn(size: int) -> nn.Module:
    spec = {
        "input": [3, size, size],
        "model": [
            {"conv_block": {"out": 16, "kernel_size": 3, "padding": 1, "stride": 2}},
            {"conv_block": {"out": 32, "kernel_size": 3, "padding": 1, "stride": 2}},
            {"conv_block": {"out": 64, "kernel_size": 3, "padding": 1, "stride": 2}},
            {"adaptiveavgpool2d": {"output_size": 1}},
            "flatten",
            {"linear": {"out": CLASSES}},
        ],
    }
    torch.manual_seed(0)
    return brickwork.build(spec)


def canonical_epoch(data: ImageDataset, size: int, args: argparse.Namespace) -> None:
    model = small_cnn(size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for x, y in canonical_loader(split_files(data, "train"), size, args):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for split in ("val", "test"):
            for x, _ in canonical_loader(split_files(data, split), size, args, train=False):
                model(x)


def epoch(root: Path, size: int, args: argparse.Namespace) -> dict[str, float]:
    """Each loop's epoch twice, in the order canonical, brickwork, brickwork, canonical, so
    that a load on the machine that rises or falls steadily weighs on both alike."""
    config = TrainConfig(
        data=f"folder:{root}", epochs=1, batch_size=args.batch_size, image_size=[size],
        schedule="none", weight_decay=0.01, lr=1e-3, label_smoothing=0.0, workers=args.workers,
        device="cpu",
    )  # fmt: skip
    data = load_dataset(config.data, image_size=[size])
    assert isinstance(data, ImageDataset)
    seconds: dict[str, float] = {"canonical": 0.0, "brickwork": 0.0}
    for name in ("canonical", "brickwork", "brickwork", "canonical"):
        start = time.perf_counter()
        if name == "canonical":
            canonical_epoch(data, size, args)
        else:
            fit(small_cnn(size), config.data, config, log=lambda _: None)  # loads the folder too
        seconds[name] += (time.perf_counter() - start) / 2
    return {
        "canonical_s": seconds["canonical"],
        "brickwork_s": seconds["brickwork"],
        "ratio": seconds["brickwork"] / seconds["canonical"],
    }


# ----------------------------------------------------------------------------- 3. memory


def read_batches(root: str, batches: int, workers: int, batch_size: int) -> None:
    """In a fresh process: read ``batches`` batches; print the peak resident memory (MiB)."""
    data = load_dataset(f"folder:{root}", image_size=[224])
    assert isinstance(data, ImageDataset)
    stream = open_batches(data.with_stats(MEAN, STD), LoaderOptions(batch_size, workers=workers))
    for number, _ in enumerate(stream.epoch(0)):
        if number + 1 == batches:
            break
    own = status_kib("VmHWM") / 1024  # not ru_maxrss: that keeps the parent's peak across exec
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"images": data.split_size("train"), "main_mib": own, "worker_mib": children}))


def quadrupled(root: Path) -> Path:
    """The folder four times over, as hard links (made once)."""
    target = root.parent / f"{root.name}-x4"
    if not target.exists():
        for copy in range(4):
            for image in root.glob("c*/*.jpg"):
                folder = target / image.parent.name
                folder.mkdir(parents=True, exist_ok=True)
                os.link(image, folder / f"{copy}-{image.name}")
    return target


def memory(root: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    rows = []
    for folder in (root, quadrupled(root)):
        command = [sys.executable, __file__, "--read", str(folder), "--workers", str(args.workers)]
        command += ["--memory-batches", str(args.memory_batches)]
        command += ["--batch-size", str(args.batch_size)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(result.stdout.splitlines()[-1]))
    return rows


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/brickwork-bench/photos"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20, help="batches timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-batches", type=int, default=30)
    parser.add_argument("--epoch-size", type=int, default=224)
    parser.add_argument("--skip-epoch", action="store_true")
    parser.add_argument("--read", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.read:
        read_batches(args.read, args.memory_batches, args.workers, args.batch_size)
        return
    root = make_folder(args.folder / str(args.images), args.images)
    warm(root)
    print(f"{args.images} JPEGs of 200-1000 px in {root}; {args.workers} workers, batch "
          f"{args.batch_size}, torch {torch.__version__}, {os.cpu_count()} cores")  # fmt: skip
    print("\n| size | canonical img/s | brickwork img/s | ratio (median of rounds) |")
    print("|---|---|---|---|")
    for size in (224, 64):
        row = pipeline(root, size, args)
        print(f"| {size} | {row['canonical']:.0f} | {row['brickwork']:.0f} | {row['ratio']:.2f} |")
    if not args.skip_epoch:
        row = epoch(root, args.epoch_size, args)
        print(f"\nepoch of a small CNN at {args.epoch_size}: canonical {row['canonical_s']:.1f} s, "
              f"brickwork {row['brickwork_s']:.1f} s, ratio {row['ratio']:.2f}")  # fmt: skip
    rows = memory(root, args)
    print("\n| images (train split) | peak MiB, main process | peak MiB, largest worker |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['main_mib']:.0f} | {r['worker_mib']:.0f} |")
    growth = rows[1]["main_mib"] - rows[0]["main_mib"]
    print(f"growth of the main process at 4x the images: {growth:.1f} MiB")


if __name__ == "__main__":
    main()
