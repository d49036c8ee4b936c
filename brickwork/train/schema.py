"""What the metadata of a model file and a checkpoint's training state may hold, checked field by
field before any of it is used.

A file is data: its metadata never names a path to read or code to run, and a damaged field is a
one-line :class:`~brickwork.errors.CheckpointError` naming the file and the field, never a
traceback or a run that silently goes elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from brickwork.errors import CheckpointError

SHA256 = re.compile(r"[0-9a-f]{64}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_or_inf(value: object) -> bool:
    return _number(value) or value in (-math.inf, math.inf)


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


def _text(value: object) -> bool:
    return isinstance(value, str)


def _mapping(value: object) -> bool:
    return isinstance(value, dict)


def _is_brickwork(value: object) -> bool:
    return value == "brickwork"


def _spec(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("model"), dict | list | str)


def _sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


def _names(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _numbers(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_number(v) for v in value)


def _positive_numbers(value: object) -> bool:
    return _numbers(value) and all(v > 0 for v in value)  # type: ignore[attr-defined]


def _folder_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _fraction(value: object) -> bool:
    return _number(value) and 0 <= value <= 1  # type: ignore[operator]


def _running(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and _number(value[0])
        and _count(value[1])
        and _count(value[2])
    )


def _rows(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(row, dict) for row in value)


def _score(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(map(_number_or_inf, value))


def _eval_transform(value: object) -> bool:
    if not isinstance(value, dict) or set(value) != {"size", "crop_fraction"}:
        return False
    size, fraction = value["size"], value["crop_fraction"]
    sizes_ok = isinstance(size, list) and len(size) == 2 and all(_count(v) and v > 0 for v in size)
    return sizes_ok and _number(fraction) and 0 < fraction <= 1


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _code(value: object) -> bool:
    keys = ("file", "name", "args", "kwargs", "sha256")
    if not isinstance(value, dict) or set(value) != set(keys):
        return False
    name = value["name"]
    return (
        (value["sha256"] is None or _sha256(value["sha256"]))
        and isinstance(name, str)
        and all(part.isidentifier() for part in name.split("."))
        and all(_text_or_none(value[k]) for k in ("file", "args", "kwargs"))
    )


def _shape(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_count(v) and v > 0 for v in value)


def _mapping_or_none(value: object) -> bool:
    return value is None or isinstance(value, dict)


def _scaler(value: object) -> bool:
    return isinstance(value, dict) and all(_number(v) for v in value.values())


def _which_weights(value: object) -> bool:
    return value in ("raw", "ema")


Field = tuple[Callable[[object], bool], str]
"""A field's test and what it should be (for the message)."""

FIELDS: dict[str, Field] = {
    # a model file's metadata
    "format": (_is_brickwork, "'brickwork'"),
    "brickwork_version": (_text, "a version string"),
    "spec": (_spec, "a spec mapping with 'model'"),
    "code": (_code, "{'file', 'name', 'args', 'kwargs', 'sha256'}: where the model came from"),
    "input_shape": (_shape, "a list of positive sizes (one sample's shape)"),
    "sha256": (_sha256, "64 hexadecimal digits"),
    "classes": (_names, "a non-empty list of class names"),
    "mean": (_numbers, "a non-empty list of finite numbers"),
    "std": (_positive_numbers, "a non-empty list of positive numbers"),
    "data": (_text, "a dataset name"),
    "data_dir": (_folder_or_none, "a folder or null"),
    "seed": (_count, "a non-negative integer"),
    "val_acc": (_fraction, "a number in [0, 1]"),
    "val_miou": (_fraction, "a number in [0, 1]"),
    "task": (lambda v: v in ("classification", "segmentation"), "classification or segmentation"),
    "weights": (_which_weights, "'raw' or 'ema'"),
    "eval_transform": (_eval_transform, "{'size': [H, W], 'crop_fraction': a number in (0, 1]}"),
    "training": (_mapping, "a mapping"),
    # a checkpoint's training state (its "training" field)
    "epoch": (_count, "a non-negative integer"),
    "step": (_count, "a non-negative integer"),
    "running": (_running, "[loss sum, correct, seen]"),
    "history": (_rows, "a list of metric rows"),
    "best": (_score, "[score, tie-break]"),
    "scheduler": (_mapping_or_none, "a scheduler state or null"),
    "scaler": (_scaler, "a gradient scaler's state"),
    "config": (_mapping, "the run's options"),
}
"""Every field a model file or a training state may hold: its test and what it should be."""
MODEL_REQUIRED = ("format", "brickwork_version")
STATE_REQUIRED = ("epoch", "step", "running", "history", "best", "scheduler", "config")


def check_fields(content: Mapping[str, Any], required: tuple[str, ...], where: Path | str) -> None:
    """Raise naming the first field of ``content`` that is missing or not what it should be.

    Fields not in :data:`FIELDS` are left alone (a newer brickwork may add some).
    """
    for key in required:
        if key not in content:
            raise CheckpointError(f"{where}: its metadata has no {key!r}")
    for key, (test, expected) in FIELDS.items():
        if key in content and not test(content[key]):
            raise CheckpointError(
                f"{where}: damaged metadata: {key!r} is {_shown(content[key])}, not {expected}"
            )
    mean, std = content.get("mean"), content.get("std")
    if mean is not None and std is not None and len(mean) != len(std):
        raise CheckpointError(
            f"{where}: damaged metadata: 'mean' has {len(mean)} channels but 'std' {len(std)}"
        )


def check_model_metadata(content: Mapping[str, Any], where: Path | str) -> None:
    """Check a model file's metadata (see :data:`FIELDS`): a spec, or the code it came from."""
    check_fields(content, MODEL_REQUIRED, where)
    if ("spec" in content) == ("code" in content):
        raise CheckpointError(
            f"{where}: its metadata has "
            + ("both 'spec' and 'code'" if "spec" in content else "no 'spec' (nor 'code')")
        )


def check_training_state(state: Mapping[str, Any], where: Path | str) -> None:
    """Check the types of a checkpoint's training state (see :data:`FIELDS`)."""
    check_fields(state, STATE_REQUIRED, where)


def check_position(
    state: Mapping[str, Any], epochs: int, steps_per_epoch: int, where: Path | str
) -> None:
    """Check that a checkpoint's position lies inside the run: epoch, step and counts."""
    epoch, step = state["epoch"], state["step"]
    if epoch > epochs or step > steps_per_epoch or (epoch == epochs and step):
        raise CheckpointError(
            f"{where}: damaged training state: epoch {epoch}, step {step} lies outside the run "
            f"({epochs} epochs of {steps_per_epoch} steps)"
        )
    if len(state["history"]) != epoch:
        raise CheckpointError(
            f"{where}: damaged training state: {len(state['history'])} epochs of history at "
            f"epoch {epoch}"
        )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


SCHEDULER_PROGRESS = frozenset(
    {"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial"}
)
"""Scheduler state that moves as the run goes; everything else is the schedule itself."""


def check_scheduler(
    saved: Mapping[str, Any] | None,
    fresh: Mapping[str, Any] | None,
    steps_taken: int,
    where: Path | str,
) -> None:
    """Check a checkpoint's scheduler state against this run's own schedule and position.

    Args:
        saved: the state in the checkpoint.
        fresh: the state of the scheduler this run builds from its options, before any step.
        steps_taken: how many scheduler steps the checkpoint's position means.
        where: the file, for the message.
    """
    if saved is None and fresh is None:
        return
    if saved is None or fresh is None:
        raise CheckpointError(
            f"{where}: damaged training state: the scheduler's state is not this run's"
        )
    _same_schedule(saved, fresh, where)
    if saved.get("last_epoch") != steps_taken:
        raise CheckpointError(
            f"{where}: damaged training state: the scheduler has taken "
            f"{_shown(saved.get('last_epoch'))} steps, the checkpoint's position {steps_taken}"
        )


def _same_schedule(saved: Mapping[str, Any], fresh: Mapping[str, Any], where: Path | str) -> None:
    """Check that ``saved`` is a state of the schedule ``fresh`` is, at any position; the parts
    of a warmup's sequence (``_schedulers``) one by one."""
    if set(saved) != set(fresh):
        raise CheckpointError(
            f"{where}: damaged training state: the scheduler's state is not this run's"
        )
    for key, value in fresh.items():
        if key == "_schedulers":
            parts = saved[key]
            if not isinstance(parts, list) or len(parts) != len(value):
                raise CheckpointError(
                    f"{where}: damaged training state: the scheduler's warmup is not this run's"
                )
            for part, fresh_part in zip(parts, value, strict=True):
                _same_schedule(part if isinstance(part, dict) else {}, fresh_part, where)
        elif key not in SCHEDULER_PROGRESS and saved[key] != value:
            raise CheckpointError(
                f"{where}: damaged training state: the scheduler's {key!r} is "
                f"{_shown(saved[key])}, this run's {_shown(value)}"
            )


HOW_TO_STEP = frozenset({"params", "foreach", "fused", "capturable", "differentiable"})
"""Parameter-group keys that say how a step runs (or which tensors), not what it computes: a
resumed run may set them anew (``--device``)."""


def check_param_groups(
    saved: list[dict[str, Any]],
    fresh: list[dict[str, Any]],
    scheduled: list[dict[str, Any]],
    where: Path | str,
) -> None:
    """Check a checkpoint's optimizer parameter groups against this run's.

    Args:
        saved: the groups the checkpoint loaded into the optimizer.
        fresh: the groups of the optimizer this run builds from its options.
        scheduled: what the run's schedule has set in each group (learning rate, momentum or
            betas...) at the checkpoint's position.
        where: the file, for the message.
    """
    if len(saved) != len(fresh):
        raise CheckpointError(
            f"{where}: damaged training state: {len(saved)} parameter groups, this run has "
            f"{len(fresh)}"
        )
    for index, (group, own, schedule) in enumerate(zip(saved, fresh, scheduled, strict=True)):
        expected = {k: v for k, v in own.items() if k not in HOW_TO_STEP} | schedule
        for key in sorted((set(group) | set(expected)) - HOW_TO_STEP):
            if not _same_value(group.get(key), expected.get(key)):
                raise CheckpointError(
                    f"{where}: damaged training state: parameter group {index}'s {key!r} is "
                    f"{_shown(group.get(key))}, this run's {_shown(expected.get(key))}"
                )


def _same_value(a: object, b: object) -> bool:
    """Equal, with tuples and lists alike (JSON keeps no tuples) and floats to rounding."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_same_value, a, b))
    if _number(a) and _number(b):
        return math.isclose(a, b, rel_tol=1e-9)  # type: ignore[arg-type]
    return type(a) is type(b) and a == b
