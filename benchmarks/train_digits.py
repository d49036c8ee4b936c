"""`make demo`'s run, measured: the guide's classifier trained on scikit-learn's digits.

Runs `brickwork train` (the defaults: 25 epochs, AdamW, one-cycle, label smoothing, ±1 pixel
shifts) as a user would, for 3 seeds, each in its own process with its wall time, and scores
scikit-learn's SVC(gamma=0.001, C=10) on the same 450 test images in the same run. Targets: wall
time ≤ 30 s and mean test accuracy ≥ 99.5%; stretch: ≥ 99.8% in ≤ 10 s (the `--fast` row).

    .venv/bin/python benchmarks/train_digits.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = str(Path(sys.executable).with_name("brickwork"))
CONFIGS = {"default": [], "fast": ["--epochs", "8", "--batch-size", "128", "--lr", "5e-3"]}


def svc_accuracy() -> float:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return float(SVC(gamma=0.001, C=10).fit(x_train, y_train).score(x_test, y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    svc = svc_accuracy()
    print(f"{'run':<22} {'seed':>4} {'wall s':>7} {'test acc':>9} {'errors':>7}")
    for name, extra in CONFIGS.items():
        accuracies, walls = [], []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "run"
                start = time.perf_counter()
                subprocess.run(
                    [COMMAND, "train", *extra, "--seed", str(seed), "--out", str(out)],
                    check=True,
                    capture_output=True,
                )
                walls.append(time.perf_counter() - start)
                last = (out / "metrics.jsonl").read_text().splitlines()[-1]
                accuracies.append(json.loads(last)["test_acc"])
            errors = round((1 - accuracies[-1]) * 450)
            row = f"brickwork {name:<12} {seed:>4} {walls[-1]:>7.1f} {accuracies[-1]:>9.4f}"
            print(f"{row} {errors:>7}")
        mean_acc, mean_wall = statistics.mean(accuracies), statistics.mean(walls)
        print(f"brickwork {name + ' (mean)':<12} {'':>4} {mean_wall:>7.1f} {mean_acc:>9.4f}")
    print(f"{'SVC(gamma=0.001, C=10)':<22} {'':>4} {'':>7} {svc:>9.4f} {round((1 - svc) * 450):>7}")


if __name__ == "__main__":
    main()
