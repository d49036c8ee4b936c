"""The model a run trains: a spec, a family, ``file.py:NAME``, or the run's own when it resumes;
checked on meta tensors against the data before a weight is allocated."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import CheckpointError, ConfigError, ShapeError, accepted_kwargs
from brickwork.inspect.render import format_bytes, format_count
from brickwork.inspect.summary import summary
from brickwork.inspect.target import build_target, is_target, model_argument, resolve_target
from brickwork.registry import MODELS
from brickwork.shapes import OutputsError, probe_output_shape
from brickwork.spec import build, load_spec, to_spec, with_input_shape
from brickwork.train.data import Data
from brickwork.train.origin import check_code_file, code_needed, describe
from brickwork.train.run_dir import MODEL_ORIGIN, is_unstarted
from brickwork.train.schema import check_model_metadata
from brickwork.train.tasks import data_task

Plan = dict[str, Any]
"""What a run builds: ``{"spec": spec}``, or ``{"code": {"target", "args", "kwargs"}}``."""

GUIDE_SPEC: dict[str, Any] = {
    "model": {"cnn_classifier": {"enc_sizes": [32, 64], "dec_sizes": [1024, 512]}}
}
"""The default model for small images: the guide's classifier, its input and class count taken
from the data."""
GUIDE_MAX_PIXELS = 32 * 32
"""The largest images the default model is the guide's classifier for: it flattens 64 channels
of every pixel into a 1024-wide layer (67 M parameters at 32x32, 3.3 B at 224x224)."""
SMALL_STEM_MAX_SIDE = 64
"""The largest images the default pooled model keeps at full size in its stem
(``resnet18_small``); larger ones go through ``resnet18``'s stride-4 stem."""


UNET_SMALL = (16, 32, 64, 128)
"""The default U-Net's widths for images of up to :data:`UNET_SMALL_MAX_SIDE` pixels a side."""
UNET_SMALL_MAX_SIDE = 128
UNET_LARGE = (32, 64, 128, 256, 512)
"""The default U-Net's widths for larger images: one level deeper, for a wider field of view."""


@dataclass(frozen=True)
class ModelRequest:
    """The model ``train`` is asked for, as the command line names it.

    Attributes:
        source: a spec (file, text or mapping), a registered family's name,
            ``path/to/file.py:NAME``, or ``None``: the default model for the data.
        args: ``--args``: positional arguments for ``NAME``, as literal text.
        kwargs: ``--kwargs``: keyword arguments for ``NAME`` (or a family), as literal text.
        model_args: ``--model-args``: a family's arguments, as a YAML mapping.
        code: ``--code``: the Python file a run of a code-built model needs to resume.
    """

    source: Any = None
    args: str | None = None
    kwargs: str | None = None
    model_args: str | None = None
    code: str | None = None

    def target(self) -> Any:
        """``source`` as :func:`model_argument` reads it (a family with arguments: a spec)."""
        if not isinstance(self.source, str):
            if self.args or self.kwargs or self.model_args is not None:
                raise ConfigError("--args, --kwargs and --model-args need a MODEL to apply to")
            return self.source
        return model_argument(self.source, self.args, self.kwargs, self.model_args)


def model_plan(request: ModelRequest, dataset: Data, run: Path | None, resume: bool) -> Plan:
    """What to build: ``{"spec": ...}``, or ``{"code": ...}`` (a ``file.py:NAME`` call), for
    the data's input shape and class count, checked on meta tensors; the run's own model when
    it resumes."""
    if resume and run is not None and not is_unstarted(run):
        return _saved_plan(request, dataset, run)
    source = request.target()
    if isinstance(source, str) and is_target(source):
        call = {"target": source, "args": request.args, "kwargs": request.kwargs}
        check_outputs(_build_code(call, "meta"), dataset, "the model")
        return {"code": call}
    if request.code is not None:
        raise ConfigError("--code goes with --resume, for a run of a file.py:NAME model")
    if source is None:
        source, note = default_model(dataset.input_shape, data_task(dataset))
        return {"spec": train_spec(source, dataset), "note": note}
    return {"spec": train_spec(source, dataset)}


def default_model(input_shape: Any, task: str = "classification") -> tuple[dict[str, Any], str]:
    """The model ``train`` chooses for images of ``input_shape`` ``(C, H, W)``, and a line that
    names it and says why: the guide's classifier while its flatten stays small, else a ResNet
    that pools to a fixed size whatever the image size; for segmentation a U-Net sized for the
    images."""
    height, width = input_shape[-2:]
    size = f"{height}x{width}"
    if task == "segmentation":
        widths = UNET_SMALL if max(height, width) <= UNET_SMALL_MAX_SIDE else UNET_LARGE
        return {"model": {"unet": {"widths": list(widths), "pad": True}}}, (
            f"model: unet with widths {list(widths)} (halving {len(widths) - 1} times), for "
            f"{size} images and masks"
        )
    if height * width <= GUIDE_MAX_PIXELS:
        guide = json.loads(json.dumps(GUIDE_SPEC))  # a copy the caller may change
        return guide, f"model: the guide's classifier, for {size} images"
    name = "resnet18_small" if max(height, width) <= SMALL_STEM_MAX_SIDE else "resnet18"
    return {"model": name}, (
        f"model: {name}, which pools to a fixed size, for {size} images (the guide's classifier "
        f"would flatten {64 * height * width:,} features into its first layer; name it to "
        "train it anyway)"
    )


def build_plan(plan: Plan, seed: int) -> nn.Module:
    """The model ``plan`` describes, with the fresh weights that ``seed`` gives (set after the
    user's file is imported, so that what the file does on import does not change them)."""
    if "spec" in plan:
        torch.manual_seed(seed)  # the initial weights are part of the run
        return build(plan["spec"])
    return _build_code(plan["code"], None, seed)


def meta_model(plan: Plan) -> nn.Module:
    """The model ``plan`` describes, on meta tensors: its shapes and sizes, no memory."""
    if "spec" in plan:
        return build(plan["spec"], device="meta")
    return _build_code(plan["code"], "meta")


def _build_code(call: dict[str, Any], device: str | None, seed: int | None = None) -> nn.Module:
    obj = resolve_target(call["target"])
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device) if device is not None else nullcontext():
        return build_target(call["target"], obj, call["args"], call["kwargs"])


def _saved_plan(request: ModelRequest, dataset: Data, run: Path) -> Plan:
    """The model of the run in ``run``; a MODEL given must be that one."""
    if (run / MODEL_ORIGIN).is_file():
        return {"code": _saved_call(request, run)}
    saved = load_spec(run / "spec.yaml")
    source = request.target()
    if isinstance(source, str) and is_target(source):
        raise ConfigError(f"{request.source} is not the model of {run}: it was built from a spec")
    if (
        source is not None
        and to_spec(build(source, input_shape=dataset.input_shape, device="meta")) != saved
    ):
        raise ConfigError(f"the SPEC given differs from the run's own {run / 'spec.yaml'}")
    return {"spec": saved}


def _saved_call(request: ModelRequest, run: Path) -> dict[str, Any]:
    """The ``file.py:NAME`` call of a code-built run, with the code the caller hands over
    (``--code``, or the file of MODEL)."""
    where = run / MODEL_ORIGIN
    try:
        origin = json.loads(where.read_text())
    except ValueError as err:
        raise CheckpointError(f"{where}: damaged ({err}); cannot resume from it") from err
    check_model_metadata({"format": "brickwork", "brickwork_version": "", "code": origin}, where)
    code = request.code
    if isinstance(request.source, str) and is_target(request.source):
        path, _, name = request.source.rpartition(":")
        given = (name, request.args or "", request.kwargs or "")
        if given != (origin["name"], origin["args"], origin["kwargs"]):
            raise ConfigError(
                f"{request.source} contradicts the run's model, {origin['name']} called with "
                f"({origin['args']}) and ({origin['kwargs']}) ({where})",
                hint="leave out the arguments, or give the same ones",
            )
        code = code or path
    if code is None:
        raise code_needed(origin, run)
    check_code_file(origin, code, run)
    return {
        "target": f"{code}:{origin['name']}",
        "args": origin["args"],
        "kwargs": origin["kwargs"],
    }


_ONE_OUTPUT = (
    "train fits a model of one input and one output (a score per class, or per class and pixel); "
    "a model of several heads needs a loss of its own: train it with your own loop (`brickwork "
    "doctor --loss` checks its step)"
)


def check_outputs(model: nn.Module, dataset: Data, what: str) -> None:
    """``model`` must give one score per class of ``dataset`` for its images, or for
    segmentation one per class at each pixel (on meta: no compute, and the model's own tensors
    are left alone).

    Raises:
        ConfigError: the model cannot take the images, or gives another shape of outputs.
    """
    try:
        outputs = list(probe_output_shape(model, dataset.input_shape, what))
    except OutputsError as err:
        raise ConfigError(f"{err} (the images of {dataset.name})", hint=_ONE_OUTPUT) from err
    except ShapeError as err:
        raise ConfigError(f"{err} (the images of {dataset.name})") from err
    n = dataset.n_classes
    if data_task(dataset) == "segmentation":
        height, width = dataset.input_shape[-2:]
        if outputs != [n, height, width]:
            raise ConfigError(
                f"the model gives outputs of shape {outputs} but {dataset.name} wants "
                f"[{n}, {height}, {width}]: a score for each of its {n} classes at each pixel",
                hint=f"a segmentation model keeps the image's {height}x{width} and ends with "
                f"{n} channels (unet does)",
            )
    elif outputs != [n]:
        raise ConfigError(
            f"the model gives outputs of shape {outputs} but {dataset.name} has {n} classes",
            hint=f"end the model with a layer of {n} outputs",
        )


def train_spec(source: Any, dataset: Data) -> dict[str, Any]:
    """The spec of the model to train: SPEC (or the guide's classifier) for the dataset's input
    shape and class count; checked on meta tensors."""
    if isinstance(source, str) and source in MODELS:
        source = {"model": source}
    if source is None:
        source = default_model(dataset.input_shape, data_task(dataset))[0]
    spec = load_spec(source)
    spec = with_input_shape(spec, dataset.input_shape)  # refuses a model of several inputs
    family = spec["model"] if isinstance(spec["model"], dict) and len(spec["model"]) == 1 else None
    if isinstance(spec["model"], str):
        family = spec["model"] = {spec["model"]: {}}
    if family is not None:
        ((name, arguments),) = family.items()
        if name in MODELS and "n_classes" in (accepted_kwargs(MODELS.get(name)) or []):
            family[name] = {**(arguments or {}), "n_classes": dataset.n_classes}
    check_outputs(build(spec, device="meta"), dataset, "the model")
    return spec


def train_model(
    source: Any, dataset: Data, run: Path | None = None, resume: bool = False
) -> nn.Module:
    """The model that ``source`` (see :class:`ModelRequest`) names for ``dataset``, with fresh
    weights."""
    return build_plan(model_plan(ModelRequest(source), dataset, run, resume), 0)


def summary_line(model: nn.Module, dataset: Data, batch_size: int) -> str:
    """The model's size, cost and training memory, and the data's splits, in one line."""
    described = describe(model)
    if "spec" in described:
        with torch.device("meta"):
            model = build(described["spec"])
    s = summary(model, dataset.input_shape, batch_size=batch_size)  # leaves the model as it was
    return (
        f"{type(model).__name__}: {s.total_params:,} parameters, {format_count(s.macs)} MACs per "
        f"batch of {batch_size}, {format_bytes(s.train_memory_bytes)} to train (fp32, Adam); "
        f"{dataset.name}: "
        f"{dataset.split_size('train')} train / {dataset.split_size('val')} validation / "
        f"{dataset.split_size('test')} test images of {tuple(dataset.input_shape)}, "
        f"{dataset.n_classes} classes"
    )
