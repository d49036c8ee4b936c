"""What ``brickwork train`` and ``evaluate`` do, as functions the CLI calls (``predict``:
:mod:`brickwork.train.predict`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from brickwork.errors import ConfigError
from brickwork.train import distributed
from brickwork.train.config import MACHINE_OPTIONS, TrainConfig, resolve_device
from brickwork.train.data import (
    Data,
    LoaderOptions,
    default_workers,
    load_dataset,
    open_batches,
    set_pixel_limit,
)
from brickwork.train.evaluate import class_scores, evaluate_batches
from brickwork.train.loop import fit
from brickwork.train.memory import MemoryCheck, check_run
from brickwork.train.model_choice import (
    ModelRequest,
    build_plan,
    meta_model,
    model_plan,
    summary_line,
)
from brickwork.train.pictures import check_pictures
from brickwork.train.plots import plot_confusion
from brickwork.train.predict import input_shapes
from brickwork.train.run import Opening
from brickwork.train.run_dir import check_new_run, check_resume, is_unstarted
from brickwork.train.saved_data import saved_data
from brickwork.train.tasks import data_task, seg_scores, settle
from brickwork.train.weights import load, model_file, read_metadata


def check_run_dir(opening: Opening) -> None:
    """Refuse a run directory that cannot be used, before the data is loaded."""
    if opening.out is None:
        return
    if opening.resume:
        check_resume(opening.out)
    else:
        check_new_run(opening.out, force=opening.force)


def train_config(run: Path | None, resume: bool, given: dict[str, Any]) -> TrainConfig:
    """The run's options: the saved ones when resuming. A contradicting option is an error,
    except the machine options (``--device``, ``--compile``...), which a resumed run may
    change, and a larger ``--epochs``, which extends it."""
    if not resume:
        return TrainConfig(**given)
    if run is None:
        raise ConfigError("--resume needs --out DIR, the run to continue")
    check_resume(run)
    if is_unstarted(run):  # stopped before its first files: nothing saved, the options as given
        return TrainConfig(**given)
    saved_path = run / "config.json"
    try:
        saved = json.loads(saved_path.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        raise ConfigError(f"{saved_path}: damaged ({err}); cannot resume from it") from err
    known = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    for key, value in given.items():
        if key in MACHINE_OPTIONS:  # where and how fast: a resumed run may move or speed up
            setattr(config, key, value)
        elif key == "epochs" and isinstance(value, int) and value > config.epochs:
            config.epochs = value  # an extension: the schedule is rebuilt (setup._extend)
        elif key == "epochs" and isinstance(value, int) and value < config.epochs:
            raise ConfigError(
                f"--epochs {value} is fewer than the {config.epochs} of the run in {run}: "
                "a run can be extended, not shortened"
            )
        elif getattr(config, key) != value:
            raise ConfigError(
                f"--{key.replace('_', '-')} {value} contradicts the run's saved "
                f"{key.replace('_', '-')} {getattr(config, key)}",
                hint=f"leave it out to resume with the saved options ({saved_path})",
            )
    return config


def evaluate_file(
    path: str | Path,
    data: str | None,
    data_dir: str | None,
    verify: bool = True,
    code: str | None = None,
    picture: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Accuracy, per-class precision and recall (segmentation: pixel accuracy, IoU and Dice per
    class and their means), and the confusion matrix on the test split (``code``: the Python
    file of a model built by the user's own code), whose picture, normalised per true class,
    goes to ``picture`` (default ``confusion.png`` beside the model). A file there that is not
    a picture of brickwork's is refused before anything is read, unless ``overwrite``."""
    file = model_file(path)
    metadata = read_metadata(file)  # a missing or foreign file is named first
    drawing = Path(picture) if picture is not None else file.parent / "confusion.png"
    if drawing.suffix.lower() != ".png" or not drawing.parent.is_dir():
        raise ConfigError(f"--out {drawing}: give a .png file in an existing folder")
    check_pictures([drawing], overwrite)
    model = load(file, verify=verify, code=code)
    name, saved_dir = (data, None) if data is not None else saved_data(file, metadata)
    crop = metadata.get("eval_transform")
    dataset = load_dataset(
        name,
        data_dir if data_dir is not None else saved_dir,
        metadata.get("seed", 0) if data is None else 0,
        image_size=crop["size"] if crop is not None else None,
    )
    if "mean" in metadata and "std" in metadata:
        dataset = dataset.with_stats(metadata["mean"], metadata["std"])
    classes = metadata.get("classes", dataset.classes)
    _check_fits_data(file, metadata, len(classes), dataset)
    options = LoaderOptions(batch_size=64, augment=False, workers=default_workers())
    loss, accuracy, confusion = evaluate_batches(
        model, open_batches(dataset, options).split("test"), len(classes), options.device
    )
    plot_confusion(confusion.cpu(), list(classes), drawing, title=f"{dataset.name} test")
    task = data_task(dataset)
    return {
        "model": str(file),
        "data": dataset.name,
        "task": task,
        "accuracy": accuracy,
        "loss": loss,
        **(
            seg_scores(confusion, classes)
            if task == "segmentation"
            else class_scores(confusion, classes)
        ),
        "confusion": confusion.tolist(),
        "confusion_png": str(drawing),
    }


def _check_fits_data(file: Path, metadata: dict[str, Any], n_classes: int, dataset: Data) -> None:
    """The model in ``file`` must take ``dataset``'s images and score its classes.

    Raises:
        ConfigError: naming both shapes, or both class counts.
    """
    task, data_is_for = metadata.get("task", "classification"), data_task(dataset)
    if task != data_is_for:
        raise ConfigError(
            f"{file} is a {task} model but {dataset.name} is data for {data_is_for}",
            hint="evaluate on data of the model's task",
        )
    shapes = input_shapes(metadata)
    data_shape = tuple(dataset.input_shape)
    if len(shapes) == 1 and shapes[0] and tuple(shapes[0]) != data_shape:
        raise ConfigError(
            f"{file} takes images of {tuple(shapes[0])} but {dataset.name} has {data_shape}",
            hint="evaluate on data of the model's image shape",
        )
    if dataset.n_classes != n_classes:
        raise ConfigError(
            f"{file} scores {n_classes} classes but {dataset.name} has {dataset.n_classes}",
            hint="evaluate on data with the model's classes",
        )


def run_training(
    request: ModelRequest,
    given: dict[str, Any],
    opening: Opening,
    progress: bool,
    log: Callable[[str], None],
    memory: MemoryCheck | None = None,
) -> list[dict[str, Any]]:
    """``brickwork train``: options, data, model, memory check, summary line, then :func:`fit`.

    Args:
        request: the model: a spec, a family, ``file.py:NAME`` or the default for the data.
        given: the options given on the command line (``TrainConfig``'s fields).
        opening: the run directory and how to open it (resume, force, verify).
        progress: show a progress bar.
        log: where every message goes (the summary line, each epoch's line).
        memory: whether to refuse a run that cannot fit, and in how much memory
            (default ``MemoryCheck()``: what the device has free).

    The run directory is checked before the data is loaded, and again under its lock by
    :func:`fit`. Under torchrun, rank 0 reads the options and the spec and sends them to the
    other ranks; each node's first rank loads (or downloads) the data before the others read it.
    """
    run, resume = opening.out, opening.resume
    world = distributed.start(resolve_device(given.get("device", "auto")))
    try:
        distributed.from_main(lambda: check_run_dir(opening))
        config = distributed.from_main(lambda: train_config(run, resume, given))
        config.check()
        if config.max_pixels is not None:
            set_pixel_limit(config.max_pixels)
        dataset = distributed.local_first(
            lambda: load_dataset(
                config.data,
                config.data_dir,
                config.seed,
                image_size=config.image_size,
                crop_scale=config.crop_scale,
            )
        )
        config = settle(config, dataset)
        plan = distributed.from_main(lambda: model_plan(request, dataset, run, resume))
        device, check = resolve_device(config.device), memory or MemoryCheck()
        fits = distributed.from_main(  # before a weight is allocated or a file written
            lambda: check_run(
                meta_model(plan), dataset.input_shape, config, device, check, world.size
            )
        )
        model = build_plan(plan, config.seed)
        if world.main:
            log(summary_line(model, dataset, config.batch))
            if "note" in plan:
                log(plan["note"])
            if fits is not None:
                log(fits)
            if world.size > 1:
                log(
                    f"{world.size} processes, {config.batch} images a step in all "
                    f"(about {config.batch // world.size} each)"
                )
        return fit(
            model, dataset, config, out=run, resume=resume, log=log, progress=progress,
            force=opening.force, verify=opening.verify, memory=MemoryCheck(enabled=False),
        )  # fmt: skip
    finally:
        distributed.stop()
