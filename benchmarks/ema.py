"""What does --ema buy? The same run (same data, model, seed) with and without a moving average
of the weights, on the embedded digits: the best validation accuracy of the raw weights and of
the average, which the model file keeps, and its test accuracy.

    .venv/bin/python benchmarks/ema.py [--epochs 25] [--decays 0.99,0.999] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from brickwork.train import TrainConfig, fit
from brickwork.train.data import load_dataset
from brickwork.train.model_choice import train_model


def run(decay: float, seed: int, epochs: int) -> dict[str, Any]:
    data = load_dataset("digits", seed=seed)
    config = TrainConfig(epochs=epochs, seed=seed, ema=decay)
    start = time.perf_counter()
    history = fit(train_model(None, data), data, config, log=lambda _: None)
    epochs_done, test = history[:-1], history[-1]
    return {
        "raw": max(r["val_acc"] for r in epochs_done),
        "ema": max((r["ema_val_acc"] for r in epochs_done if "ema_val_acc" in r), default=None),
        "test": test["test_acc"],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--decays", default="0.99,0.999", help="EMA decays to compare with none")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    decays = [0.0] + [float(d) for d in args.decays.split(",")]
    print(f"digits, guide's classifier, {args.epochs} epochs, seeds {seeds} (means over seeds)")
    header = ("--ema", "best val (raw)", "best val (ema)", "test (kept)", "s/run")
    print("{:>7} {:>15} {:>15} {:>12} {:>7}".format(*header))
    for decay in decays:
        results = [run(decay, seed, args.epochs) for seed in seeds]
        raw = statistics.mean(r["raw"] for r in results)
        ema = [r["ema"] for r in results if r["ema"] is not None]
        ema_text = f"{statistics.mean(ema):.4f}" if ema else "-"
        test = statistics.mean(r["test"] for r in results)
        seconds = statistics.mean(r["seconds"] for r in results)
        label = f"{decay:g}" if decay else "off"
        print(f"{label:>7} {raw:>15.4f} {ema_text:>15} {test:>12.4f} {seconds:>7.1f}")


if __name__ == "__main__":
    main()
