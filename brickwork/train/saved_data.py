"""Which data ``evaluate`` reads when the user names none: what the model was trained on, as
far as that can be trusted.

A model file's metadata is data, never a path to read: a file handed over on its own does not
make brickwork open a folder it names (``folder:``, ``seg:``, ``shards:``, ``--data-dir``).
The run directory the file lies in is another matter: its ``config.json`` is the record of the
user's own ``brickwork train``, so a path both it and the model name is the data that run used.
The built-in sets (``digits``, ``mnist``, ``synthetic:...``) name no path and are always taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brickwork.errors import ConfigError
from brickwork.train.run_dir import run_config

PATH_KINDS = ("folder", "seg", "shards")
"""Datasets whose argument is a path."""


def saved_data(file: Path, metadata: Mapping[str, Any]) -> tuple[str, str | None]:
    """The data (and ``--data-dir``) a model was trained on, to evaluate it on the same.

    Args:
        file: the model file.
        metadata: its checked metadata.

    Raises:
        ConfigError: the metadata names no data, or a path that the run directory around the
            file does not confirm (the message says the ``--data`` to pass).
    """
    name, folder = metadata.get("data"), metadata.get("data_dir")
    if name is None:
        raise ConfigError(f"{file} does not say which data it was trained on: pass --data")
    run = _run_config(file)
    if name.split(":", 1)[0] in PATH_KINDS and run.get("data") != name:
        raise ConfigError(
            f"{file} says it was trained on {name}: a model file alone never makes brickwork "
            "read a path it names",
            hint=f"pass --data {name} to evaluate on that data",
        )
    return name, folder if folder is not None and run.get("data_dir") == folder else None


def _run_config(file: Path) -> dict[str, Any]:
    """The ``config.json`` of the brickwork run ``file`` is the model of (``{}`` for none)."""
    config = run_config(file.parent) if file.name == "model.safetensors" else None
    return config or {}
