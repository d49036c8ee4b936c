"""The model a run trains: a spec, a family, or the run's own when it resumes; checked on meta
tensors against the data before a weight is allocated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, accepted_kwargs
from brickwork.inspect.render import format_bytes, format_count
from brickwork.inspect.summary import summary
from brickwork.registry import MODELS
from brickwork.spec import build, load_spec, to_spec, with_input_shape
from brickwork.train.data import Data
from brickwork.train.run_dir import is_unstarted

GUIDE_SPEC: dict[str, Any] = {
    "model": {"cnn_classifier": {"enc_sizes": [32, 64], "dec_sizes": [1024, 512]}}
}
"""The default model: the guide's classifier, its input and class count taken from the data."""


def train_spec(spec_source: Any, dataset: Data, run: Path | None, resume: bool) -> dict[str, Any]:
    """The spec of the model to train: the run's own when resuming, else SPEC (or the guide's
    classifier) for the dataset's input shape and class count; checked on meta tensors."""
    if resume and run is not None and not is_unstarted(run):
        saved = load_spec(run / "spec.yaml")
        if (
            spec_source is not None
            and to_spec(build(spec_source, input_shape=dataset.input_shape, device="meta")) != saved
        ):
            raise ConfigError(f"the SPEC given differs from the run's own {run / 'spec.yaml'}")
        return saved
    spec = load_spec(spec_source) if spec_source is not None else json.loads(json.dumps(GUIDE_SPEC))
    spec = with_input_shape(spec, dataset.input_shape)  # refuses a model of several inputs
    family = spec["model"] if isinstance(spec["model"], dict) and len(spec["model"]) == 1 else None
    if family is not None:
        ((name, arguments),) = family.items()
        if name in MODELS and "n_classes" in (accepted_kwargs(MODELS.get(name)) or []):
            family[name] = {**(arguments or {}), "n_classes": dataset.n_classes}
    outputs = to_spec(build(spec, device="meta"))["output"]
    if outputs != [dataset.n_classes]:
        raise ConfigError(
            f"the model gives outputs of shape {outputs} but {dataset.name} has "
            f"{dataset.n_classes} classes",
            hint=f"end the spec with a layer of {dataset.n_classes} outputs",
        )
    return spec


def train_model(spec_source: Any, dataset: Data, run: Path | None, resume: bool) -> nn.Module:
    """The model :func:`train_spec` describes, with fresh weights."""
    return build(train_spec(spec_source, dataset, run, resume))


def summary_line(model: nn.Module, dataset: Data, batch_size: int) -> str:
    with torch.device("meta"):
        shadow = build(to_spec(model))
    s = summary(shadow, dataset.input_shape, batch_size=batch_size)
    return (
        f"{type(model).__name__}: {s.total_params:,} parameters, {format_count(s.macs)} MACs per "
        f"batch of {batch_size}, {format_bytes(s.train_memory_bytes)} to train; {dataset.name}: "
        f"{dataset.split_size('train')} train / {dataset.split_size('val')} validation / "
        f"{dataset.split_size('test')} test images of {tuple(dataset.input_shape)}, "
        f"{dataset.n_classes} classes"
    )
