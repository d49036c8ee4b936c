"""Model files: weights in safetensors, their spec and metadata in its header; no pickle.

``save(model, path)`` writes the weights with the model's spec, the brickwork version, a SHA-256
of the tensors and any extra metadata (normalisation, class names) in the file's JSON header.
``load(path)`` checks the metadata field by field, builds the model from the spec on the
``meta`` device, compares its tensors' shapes with the file's before a byte is allocated, then
builds it for real and loads the weights, whose digest must match. Nothing in a file is
executed, read as a path, or trusted before it is checked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from brickwork._version import __version__
from brickwork.errors import CheckpointError, ShapeError
from brickwork.files import atomic_write
from brickwork.shapes import probe_output_shape
from brickwork.spec import build
from brickwork.train.digest import tensor_digest
from brickwork.train.origin import build_from_code, check_code_file, describe
from brickwork.train.schema import check_model_metadata

METADATA_KEY = "brickwork"
"""The one key of a file's safetensors metadata: a JSON object (a single entry keeps the file's
bytes reproducible, as safetensors writes its metadata map in no fixed order)."""


def model_file(path: str | os.PathLike[str]) -> Path:
    """``RUN_DIR`` → its ``model.safetensors``; a file as it is."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
        if not path.is_file():
            raise CheckpointError(
                f"{path.parent}: no model.safetensors (has the run finished an epoch?)"
            )
    return path


def kept_names(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of a state_dict whose tensors a file keeps: each storage once, as safetensors
    refuses shared tensors (a tied weight comes back through its tie)."""
    seen: set[tuple[int, int]] = set()
    names = []
    for name, tensor in state.items():
        # the storage itself, not its address: every meta storage has address 0
        key = (int(tensor.untyped_storage()._cdata), int(tensor.storage_offset()))
        if key in seen and tensor.numel():
            continue
        seen.add(key)
        names.append(name)
    return names


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict as a file keeps it (see :func:`kept_names`), on the CPU."""
    state = model.state_dict()
    return {name: state[name].detach().to("cpu").contiguous() for name in kept_names(state)}


def _sorted_keys(value: Any) -> Any:
    """``value`` with every mapping's keys in sorted order, at every depth."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_keys(v) for v in value]
    return value


def write_tensors(path: Path, tensors: Mapping[str, torch.Tensor], content: dict[str, Any]) -> None:
    """Write ``tensors`` with ``content`` (and their digest) as the metadata, atomically."""
    content = {**content, "sha256": tensor_digest(tensors)}
    # Keys sorted, so that the file's bytes are reproducible, except the spec's: the order of a
    # graph's inputs and outputs is the order its forward takes and returns them.
    spec = content.pop("spec", None)
    ordered = _sorted_keys(content) | ({} if spec is None else {"spec": spec})
    metadata = {METADATA_KEY: json.dumps(ordered)}
    atomic_write(path, lambda tmp: save_file(dict(tensors), str(tmp), metadata=metadata))


def save(
    model: nn.Module, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s weights and spec to a ``.safetensors`` file (atomically).

    A model brickwork built (``build``, a family, ``create_model``) is saved with its spec and
    loads from the file alone; any other ``nn.Module`` is saved with where it came from (its
    ``file.py:NAME`` call, or its class) and loads when that code is handed over.

    Args:
        model: any ``nn.Module``.
        path: the file to write.
        extra: JSON-serialisable metadata to keep beside the spec (normalisation, classes).
    """
    content = {
        "format": "brickwork",
        "brickwork_version": __version__,
        **describe(model),
        **(extra or {}),
    }
    path = Path(path)
    write_tensors(path, state_tensors(model), content)
    return path


def read_header(path: Path) -> dict[str, Any]:
    """The decoded metadata of a file brickwork wrote, not yet checked.

    Raises:
        CheckpointError: a missing, truncated or corrupted file, or one brickwork did not write.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({err}); it may be truncated, corrupted, "
            "or another format (brickwork never reads pickle)"
        ) from err
    try:
        content = json.loads(raw[METADATA_KEY])
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path}: a safetensors file without brickwork's metadata (the spec it was built from)"
        ) from err
    if not isinstance(content, dict):
        raise CheckpointError(f"{path}: a safetensors file without brickwork's metadata")
    return content


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a brickwork model file, every field checked.

    Raises:
        CheckpointError: a damaged or foreign file, or a field that is not what it should be.
    """
    path = Path(path)
    content = read_header(path)
    check_model_metadata(content, path)
    return content


def file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape in a safetensors file, read from its header (no data is loaded)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read its tensors' shapes ({err})") from err


def read_tensors(path: Path, digest: str | None) -> dict[str, torch.Tensor]:
    """A file's tensors; with ``digest``, their SHA-256 must equal it.

    Raises:
        CheckpointError: unreadable tensors, or tensors whose bytes differ from when they were
            written (the file was damaged).
    """
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: cannot read its tensors ({err}); the file is damaged"
        ) from err
    if digest is not None and tensor_digest(tensors) != digest:
        raise CheckpointError(
            f"{path}: its tensors' SHA-256 differs from the one written with them: the file is "
            "damaged (flipped bytes, a bad copy)",
            hint="use another copy, or pass --no-verify to load it anyway",
        )
    return tensors


def check_shapes(model: nn.Module, path: Path) -> None:
    """The file's tensors must be exactly ``model``'s (names and shapes; tied ones once).

    Raises:
        CheckpointError: names the first tensor missing, unexpected or of another shape.
    """
    state = model.state_dict()
    ours = {name: tuple(t.shape) for name, t in state.items()}
    theirs = file_shapes(path)
    tied = set(ours) - set(kept_names(state))
    missing = [name for name in ours if name not in theirs and name not in tied]
    unexpected = [name for name in theirs if name not in ours]
    wrong = [name for name in theirs if name in ours and theirs[name] != ours[name]]
    if missing or unexpected or wrong:
        first = (
            f"{wrong[0]} is {list(theirs[wrong[0]])} in the file, {list(ours[wrong[0]])} in "
            "the model"
            if wrong
            else f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
        raise CheckpointError(f"{path}: its weights do not fit the model its spec builds ({first})")


def load_weights(model: nn.Module, path: str | os.PathLike[str], verify: bool = True) -> None:
    """Load a file's weights into ``model``, which must have the same spec.

    Args:
        model: the model to load into.
        path: a brickwork model file.
        verify: check the tensors' SHA-256 against the file's metadata. Default ``True``.

    Raises:
        CheckpointError: damaged file, or weights of another model.
    """
    path = Path(path)
    metadata = read_metadata(path)
    if "spec" in metadata and describe(model) != {"spec": metadata["spec"]}:
        raise CheckpointError(
            f"{path}: it holds weights for another model (its spec differs from this run's)",
            hint="start a new run in another --out directory, or use the spec it was trained with",
        )
    check_shapes(model, path)
    tensors = read_tensors(path, _digest(metadata, path) if verify else None)
    model.load_state_dict(tensors, strict=False)  # tied tensors come back through their tie


def _digest(metadata: Mapping[str, Any], path: Path) -> str:
    digest = metadata.get("sha256")
    if digest is None:
        raise CheckpointError(
            f"{path}: carries no SHA-256 of its tensors, so they cannot be checked",
            hint="pass --no-verify to load it without the check",
        )
    return str(digest)


def load(
    path: str | os.PathLike[str],
    device: torch.device | str | None = None,
    verify: bool = True,
    code: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """Rebuild the model a ``.safetensors`` file was saved from, with its weights.

    The model is built on ``meta`` first and its shapes compared with the file's, so a file
    whose spec asks for a huge model allocates nothing before it is refused.

    Args:
        path: a brickwork model file, or a run directory (its ``model.safetensors``).
        device: where the weights go. Default: PyTorch's default device.
        verify: check the tensors' SHA-256. Default ``True``.
        code: for a model of the user's own code (saved without a spec), the Python file that
            defines it (``"my_models.py"``); it is imported. brickwork never imports code on its
            own: without ``code``, such a file is refused, naming the file it needs.

    Raises:
        CheckpointError: a damaged file, weights that do not fit, or a code-built model without
            its ``code``.
    """
    path = model_file(path)
    metadata = read_metadata(path)
    if "spec" in metadata:
        on_meta = build(metadata["spec"], device="meta")
    else:
        on_meta = build_from_code(metadata["code"], code, path, device="meta")
    check_shapes(on_meta, path)
    check_classes(on_meta, metadata, path)
    if "spec" in metadata:
        model = build(metadata["spec"], device=device)
    else:
        origin = metadata["code"]
        assert code is not None  # build_from_code refuses a missing one
        check_code_file(origin, code, path)
        model = build_from_code(origin, code, path, device)
    load_weights(model, path, verify)
    return model


def check_classes(model: nn.Module, metadata: Mapping[str, Any], path: Path) -> None:
    """Refuse a file whose class names are not as many as the scores its model gives (on meta,
    for its saved input shape). A model that cannot be probed so (token ids, several outputs) is
    left to the command that runs it.

    Raises:
        CheckpointError: ``classes`` names another number of classes than the model scores.
    """
    classes, shape = metadata.get("classes"), metadata.get("input_shape")
    if classes is None or shape is None:
        return
    try:
        scores = probe_output_shape(model, shape, str(path))
    except ShapeError:
        return
    segmentation = metadata.get("task") == "segmentation"
    if not scores or (len(scores) != 1 and not segmentation):
        return
    if scores[0] != len(classes):
        raise CheckpointError(
            f"{path}: damaged metadata: {len(classes)} class names for a model that scores "
            f"{scores[0]} classes"
        )
