"""``brickwork predict``: image files and folders (walked recursively) read as the model's
validation images were, their top classes; a file that cannot be read is reported, the others
still predicted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brickwork.errors import CheckpointError, DataError, positive_int
from brickwork.spec import spec_inputs
from brickwork.train.data import model_input
from brickwork.train.data.images import IMAGE_SUFFIXES
from brickwork.train.weights import load, model_file, read_metadata


def image_paths(images: list[str]) -> list[Path]:
    """The image files ``images`` names: files as given, folders walked recursively for
    :data:`IMAGE_SUFFIXES` files (sorted).

    Raises:
        DataError: a path that does not exist, or a folder without an image.
    """
    paths: list[Path] = []
    for text in images:
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise DataError(f"{path}: a folder with no images ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif path.exists():
            paths.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    return paths


def predict_files(
    path: str | Path,
    images: list[str],
    verify: bool = True,
    code: str | None = None,
    top: int = 1,
    out: str | Path | None = None,
    overlay: bool = False,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """The ``top`` classes and their probabilities for each image, read, cropped and normalised
    as the validation images of its training run were; for a segmentation model, a mask per
    image written into ``out`` (:func:`~brickwork.train.predict_masks.segment_files`).

    Args:
        path: a run directory or its model file.
        images: image files and folders (walked recursively).
        verify: check the model file's SHA-256.
        code: the Python file of a model built by the user's own code.
        top: classes per image, most probable first (at most the class count).
        out: segmentation: the folder the masks go to (default ``predictions``).
        overlay: segmentation: also write each image with its mask laid over it.
        overwrite: segmentation: replace files in the way that brickwork did not write.

    Returns:
        One dict per image: ``image``, ``class`` and ``probability`` (the best), ``top`` (a list
        of ``{"class", "probability"}``); or, for a file that cannot be read, ``image``,
        ``error`` and ``hint``.

    Raises:
        CheckpointError: a model file that does not say how its images were normalised.
        DataError: a path that does not exist, or a folder without images.
        ConfigError: a mask would replace a file brickwork did not write (without
            ``overwrite``).
    """
    top = positive_int(top, "--top")
    file = model_file(path)
    metadata = read_metadata(file)
    model = load(file, verify=verify, code=code).eval()
    shape, mean, std = _normalisation(file, metadata)
    classes = metadata["classes"]
    crop = metadata.get("eval_transform")
    if metadata.get("task") == "segmentation":
        from brickwork.train.predict_masks import segment_files

        folder = Path(out) if out is not None else Path("predictions")
        normalise = lambda x: (x - mean) / std  # noqa: E731
        paths = image_paths(images)
        return segment_files(model, paths, shape, normalise, classes, folder, overlay, overwrite)
    results: list[dict[str, Any]] = []
    for image in image_paths(images):
        try:
            x = model_input(image, shape, crop)
        except (DataError, OSError) as err:
            results.append({"image": str(image), "error": str(err), "hint": _hint(err)})
            continue
        with torch.no_grad():
            probabilities = model((x - mean) / std).softmax(1)[0]
        values, indices = probabilities.topk(min(top, len(classes)))
        ranked = [
            {"class": classes[int(i)], "probability": float(v)}
            for v, i in zip(values, indices, strict=True)
        ]
        results.append({"image": str(image), **ranked[0], "top": ranked})
    return results


def _normalisation(
    file: Path, metadata: dict[str, Any]
) -> tuple[tuple[int, int, int], torch.Tensor, torch.Tensor]:
    """The model's ``(C, H, W)`` and the mean and std its training run normalised with."""
    shapes = input_shapes(metadata)
    if not {"mean", "std", "classes"} <= set(metadata) or [len(s) for s in shapes] != [3]:
        raise CheckpointError(
            f"{file}: it does not say how its images were normalised, or it takes no images "
            "(saved by brickwork.save, not by a training run)",
            hint="predict from a run directory or its model.safetensors",
        )
    channels, height, width = shapes[0]
    mean = torch.tensor(metadata["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(metadata["std"]).view(1, -1, 1, 1)
    return (channels, height, width), mean, std


def input_shapes(metadata: dict[str, Any]) -> list[tuple[int, ...]]:
    """The shapes of one sample of each input a model file's model takes (its spec's
    ``input``, or a code-built model's recorded ``input_shape``; ``[()]``: unknown)."""
    if "spec" in metadata:
        return [tuple(i.shape) for i in spec_inputs(metadata["spec"])]
    return [tuple(metadata.get("input_shape", ()))]


def _hint(err: Exception) -> str | None:
    return getattr(err, "hint", None)
