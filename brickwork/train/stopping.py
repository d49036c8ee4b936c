"""Which epoch is best, and when a run stops early (``--patience``).

An epoch's score is its validation accuracy (for segmentation its mean IoU), ties going to the
lower validation loss (a small validation set reaches its top accuracy early, long before the
model is done); with ``--ema`` it is the better of the raw weights' score and the moving
average's.
"""

from __future__ import annotations

from typing import Any

WEIGHTS = {"raw": "", "ema": "ema_"}
"""Which weights an epoch's row scores, and the prefix of their columns (``ema_val_acc``)."""


def score_column(row: dict[str, Any]) -> str:
    """The column an epoch's row is scored by: ``val_miou`` (segmentation) or ``val_acc``."""
    return "val_miou" if "val_miou" in row else "val_acc"


def weights_score(row: dict[str, Any], weights: str) -> list[float]:
    """``[val_acc, -val_loss]`` (segmentation: ``[val_miou, -val_loss]``) of ``weights``
    (``raw`` or ``ema``) in an epoch's row."""
    prefix = WEIGHTS[weights]
    return [row[f"{prefix}{score_column(row)}"], -row[f"{prefix}val_loss"]]


def best_weights(row: dict[str, Any]) -> tuple[list[float], str]:
    """The score of an epoch's row and which weights made it (``raw`` wins a tie)."""
    scored = [(weights_score(row, w), w) for w in WEIGHTS if f"{WEIGHTS[w]}val_acc" in row]
    return max(scored, key=lambda pair: pair[0])


def best_epoch(history: list[dict[str, Any]]) -> int:
    """The 1-based epoch of the best score in ``history`` (the first of equals); 0 if none."""
    best: list[float] | None = None
    found = 0
    for row in history:
        score, _ = best_weights(row)
        if best is None or score > best:
            best, found = score, row["epoch"]
    return found


def stop_reason(history: list[dict[str, Any]], patience: int | None) -> str | None:
    """Why the run stops before its last epoch, or ``None`` while it goes on.

    Args:
        history: one row per epoch done.
        patience: epochs without a better validation score that stop the run (``None``: never).
    """
    if patience is None or not history:
        return None
    best = best_epoch(history)
    done = history[-1]["epoch"]
    if done - best < patience:
        return None
    return (
        f"stopping early after epoch {done}: the validation score has not improved for "
        f"{done - best} epoch{'s' if done - best > 1 else ''} (--patience {patience}); the best "
        f"weights, of epoch {best}, "
        "are kept"
    )
