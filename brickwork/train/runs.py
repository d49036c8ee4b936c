"""``brickwork runs``: the runs in a folder, each with its task, best score, epochs and time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from brickwork.errors import ConfigError
from brickwork.train.run_dir import CONFIG, is_run
from brickwork.train.stopping import best_weights


def list_runs(folder: Path) -> list[dict[str, Any]]:
    """The runs in ``folder`` (itself, or the directories in it), in name order.

    Each is ``{"run", "task", "best", "epochs", "of", "seconds", "test", "state"}``: the best
    validation score, accuracy or for segmentation mean IoU (``None`` before the first epoch),
    the epochs done of those asked for, the training time, the test score of a finished run
    (else ``None``), and ``finished`` or
    ``stopped``. A run whose files cannot be read is listed as ``unreadable``.

    Raises:
        ConfigError: ``folder`` is not a directory.
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a directory of runs")
    found = [folder] if is_run(folder) else sorted(p for p in folder.iterdir() if is_run(p))
    return [_describe(run) for run in found]


def _describe(run: Path) -> dict[str, Any]:
    """One run's line (see :func:`list_runs`)."""
    row: dict[str, Any] = {"run": str(run), "task": "?", "best": None, "epochs": 0, "of": None}
    row |= {"seconds": 0.0, "test": None, "state": "unreadable"}
    try:
        config = json.loads((run / CONFIG).read_text())
        metrics = run / "metrics.jsonl"
        lines = metrics.read_text().splitlines() if metrics.is_file() else []
        rows = [json.loads(line) for line in lines]
        epochs = [r for r in rows if "epoch" in r]
        test = next((r for r in rows if "test_acc" in r), None)
        segments = any("val_miou" in r for r in epochs) or config.get("task") == "segmentation"
        row |= {
            "task": "segmentation" if segments else "classification",
            "best": max((best_weights(r)[0][0] for r in epochs), default=None),
            "epochs": len(epochs),
            "of": config.get("epochs"),
            "seconds": sum(float(r.get("seconds", 0.0)) for r in epochs),
            "test": test.get("test_miou", test["test_acc"]) if test is not None else None,
            "state": "finished" if test is not None else "stopped",
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return row


def runs_table(runs: list[dict[str, Any]]) -> list[str]:
    """:func:`list_runs`'s runs as the lines of a table."""
    header = (
        f"{'run':<30} {'task':<14} {'best val':>8} {'test':>6} {'epochs':>7} {'time':>8}  state"
    )
    lines = [header]
    for r in runs:
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        test = "-" if r["test"] is None else f"{r['test']:.4f}"
        epochs = f"{r['epochs']}/{r['of'] if r['of'] is not None else '?'}"
        lines.append(
            f"{r['run']:<30} {r['task']:<14} {best:>8} {test:>6} {epochs:>7} "
            f"{r['seconds']:>7.1f}s  {r['state']}"
        )
    return lines
