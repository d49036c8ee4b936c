"""Does the default segmentation command learn? A generated set of shapes on textured
backgrounds (3 classes and the background, 64x64), trained with ``brickwork train --data
seg:PATH`` and nothing else; prints the best validation mIoU, the test mIoU and IoU per class,
and the wall time. Target: validation mIoU >= 0.90.

    .venv/bin/python benchmarks/segmentation.py [--images 1000] [--folder /tmp/seg_bench]
        [--extra "--epochs 30"]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from brickwork.train.data.seg_shapes import write_shapes

TARGET = 0.90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/seg_bench"))
    parser.add_argument("--extra", default="", help="options added to the default command")
    args = parser.parse_args()
    data = args.folder / f"shapes-{args.images}-{args.size}"
    if not (data / "classes.txt").is_file():
        write_shapes(data, args.images, args.size, seed=0)
    out = args.folder / "run"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        str(Path(sys.executable).with_name("brickwork")),
        "train",
        "--data",
        f"seg:{data}",
        "--out",
        str(out),
        *shlex.split(args.extra),
    ]
    print("$ " + " ".join(command[1:]))
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs, test = rows[:-1], rows[-1]
    best = max(r["val_miou"] for r in epochs)
    print(
        f"\n{args.images} images of {args.size}x{args.size}, {len(epochs)} epochs, {seconds:.0f} s"
    )
    verdict = "met" if best >= TARGET else "NOT met"
    print(f"best validation mIoU {best:.4f} (target >= {TARGET}: {verdict})")
    print(f"test mIoU {test['test_miou']:.4f}, pixel accuracy {test['test_acc']:.4f}")
    print("test IoU per class: " + ", ".join(f"{k} {v:.4f}" for k, v in test["test_iou"].items()))


if __name__ == "__main__":
    main()
