"""``brickwork train``, ``evaluate`` and ``predict``: a run trained, scored and used."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from brickwork.cli.output import print_error
from brickwork.cli.parser import (
    add_code_argument,
    add_command,
    add_json_argument,
    add_max_pixels_argument,
    add_overwrite_argument,
    add_size_option,
    add_target_arguments,
    add_verify_argument,
    positive_count,
    shape_argument,
)
from brickwork.errors import EXIT_BAD_INPUT
from brickwork.inspect.render import parse_bytes
from brickwork.train.commands import evaluate_file, run_training
from brickwork.train.config import LOSSES, OPTIMIZERS, PRECISIONS, SCHEDULES, TASKS
from brickwork.train.data import set_pixel_limit
from brickwork.train.memory import MemoryCheck
from brickwork.train.model_choice import ModelRequest
from brickwork.train.predict import predict_files
from brickwork.train.run import Opening
from brickwork.train.runs import list_runs, runs_table

TRAIN_OPTIONS = (
    "data", "data_dir", "epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay",
    "label_smoothing", "augment", "device", "precision", "channels_last", "compile", "seed",
    "image_size", "crop_scale", "mixup", "cutmix", "workers", "max_pixels", "ema", "accumulate",
    "patience", "warmup_epochs", "tensorboard", "init", "init_strict", "freeze", "task", "loss",
)  # fmt: skip
"""The options of ``brickwork train`` that are the run's configuration."""


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model on a dataset, with checkpoints, curves and a test score.

    Train MODEL (default: the guide's classifier) on a dataset. MODEL is a spec file, a
    registered family (its arguments in --model-args), or path/to/file.py:NAME (an nn.Module
    class, a function returning one, or a module variable; --args/--kwargs), as for `brickwork
    summary`. The input shape and class count come from the data. The run directory gets
    config.json, spec.yaml (or model.json: where a file.py:NAME model came from),
    metrics.jsonl, curves.png, confusion.png, model.safetensors (best validation weights) and a
    checkpoint written every epoch, and on Ctrl-C or SIGTERM at the current step; --resume
    continues it exactly (a file.py:NAME run needs its code again: MODEL or --code). A run
    whose training memory (counted on meta tensors) exceeds the device's free memory is refused
    before a weight is allocated, with the largest batch that fits (--no-memory-check: start).
    """
    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    out = args.out or f"runs/{given.get('data', 'digits').replace(':', '-').replace('/', '-')}"
    opening = Opening(Path(out), args.resume, args.force, args.verify)
    request = ModelRequest(args.model, args.args, args.kwargs, args.model_args, args.code)
    limit = args.memory_limit
    memory = MemoryCheck(args.memory_check, parse_bytes(limit, "--memory-limit") if limit else None)
    run_training(request, given, opening, progress=sys.stdout.isatty(), log=print, memory=memory)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Accuracy, per-class precision/recall/F1 (macro and weighted averages) and confusion matrix
    of a saved model; data of another image shape or class count is refused, naming both."""
    options = _picture_options(args)
    result = evaluate_file(args.model, args.data, args.data_dir, picture=args.out, **options)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if result["task"] == "segmentation":
        _print_seg_scores(result)
        return 0
    print(f"{result['model']} on {result['data']} (test split): accuracy {result['accuracy']:.4f}")
    print(f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    rows = [*result["per_class"].items(), ("macro avg", result["macro"])]
    for name, row in [*rows, ("weighted avg", result["weighted"])]:
        support = row.get("support", sum(r["support"] for r in result["per_class"].values()))
        print(
            f"{name:<12} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} "
            f"{support:>8}"
        )
    print("confusion matrix (rows: true class, columns: predicted):")
    for row in result["confusion"]:
        print("  " + " ".join(f"{v:>4}" for v in row))
    print(f"normalised per true class: {result['confusion_png']}")
    return 0


def _picture_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the options of :func:`_add_picture_options` say to ``evaluate`` and ``predict``;
    ``--max-pixels`` is applied here, as it holds for every image opened from now on."""
    if args.max_pixels is not None:
        set_pixel_limit(args.max_pixels)
    return {"verify": args.verify, "code": args.code, "overwrite": args.overwrite}


def _print_seg_scores(result: dict[str, Any]) -> None:
    """A segmentation model's test scores: means, then IoU and Dice per class."""
    print(
        f"{result['model']} on {result['data']} (test split): mIoU {result['miou']:.4f}, "
        f"mean Dice {result['mdice']:.4f}, pixel accuracy {result['accuracy']:.4f}"
    )
    print(f"{'class':<16} {'IoU':>7} {'Dice':>7} {'pixels':>10}")
    for name, row in result["per_class"].items():
        iou, dice = (f"{row[k]:.4f}" if row[k] is not None else "-" for k in ("iou", "dice"))
        print(f"{name:<16} {iou:>7} {dice:>7} {row['pixels']:>10}")
    print(f"pixel confusion, normalised per true class: {result['confusion_png']}")


def cmd_predict(args: argparse.Namespace) -> int:
    """Top classes and their probabilities for image files and folders (walked recursively);
    for a segmentation model, a mask PNG per image (--out DIR, --overlay).

    A file that cannot be read is reported on stderr and the others are still predicted; the
    exit status is then 2.
    """
    results = predict_files(
        args.model,
        args.images,
        top=args.top,
        out=args.out,
        overlay=args.overlay,
        **_picture_options(args),
    )
    if args.json:
        print(json.dumps(results, indent=2))
    for result in results:
        if "error" in result:
            print_error(result["error"], result["hint"])
        elif args.json:
            continue
        elif "mask" in result:
            laid = f" (overlay {result['overlay']})" if "overlay" in result else ""
            print(f"{result['image']}: mask {result['mask']}{laid}")
        else:
            ranked = ", ".join(f"{t['class']} ({t['probability']:.1%})" for t in result["top"])
            print(f"{result['image']}: {ranked}")
    return EXIT_BAD_INPUT if any("error" in r for r in results) else 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs in a folder: task, best validation score, test score, epochs, time."""
    found = list_runs(Path(args.folder))
    if args.json:
        print(json.dumps(found, indent=2))
    elif not found:
        print(f"no runs in {args.folder}")
    else:
        print("\n".join(runs_table(found)))
    return 0


def add_commands(commands: Any) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``runs`` to the subparsers ``commands``."""
    _add_train(commands)
    p = add_command(commands, "runs", cmd_runs)
    p.add_argument("folder", nargs="?", default="runs", help="a folder of runs (default runs)")
    add_json_argument(p, "print JSON, one object per run")
    p = add_command(commands, "evaluate", cmd_evaluate)
    p.add_argument("model", help="a run directory or a .safetensors file")
    p.add_argument("--data", help="dataset (default: the one it was trained on)")
    p.add_argument("--data-dir", help="where the dataset's files are")
    add_json_argument(p, "print JSON, with accuracy at top level")
    p.add_argument(
        "--out",
        metavar="FILE.png",
        help="the confusion matrix picture (default confusion.png beside the model)",
    )
    _add_picture_options(p)
    p = add_command(commands, "predict", cmd_predict)
    p.add_argument("model", help="a run directory or a .safetensors file")
    p.add_argument("images", nargs="+", help="image files, or folders of them (recursively)")
    p.add_argument(
        "--top", type=positive_count, default=1, help="classes per image, best first (default 1)"
    )
    add_json_argument(p, "print JSON: a list, one object per image")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="segmentation: where each image's mask goes, as NAME.png (default predictions)",
    )
    p.add_argument(
        "--overlay",
        action="store_true",
        help="segmentation: also write NAME_overlay.png, the image with its mask laid over it",
    )
    _add_picture_options(p)


def _add_picture_options(p: argparse.ArgumentParser) -> None:
    """The options ``evaluate`` and ``predict`` share: they read a model file and images, and
    write pictures."""
    add_overwrite_argument(p, "a picture")
    add_max_pixels_argument(p)
    add_code_argument(p)
    add_verify_argument(p)


def _add_train(commands: Any) -> None:
    p = add_command(commands, "train", cmd_train)
    p.add_argument(
        "model",
        nargs="?",
        help="spec file, family name, or path/to/file.py:NAME; default the guide's CNN",
    )
    add_target_arguments(p)
    add_code_argument(p)
    p.add_argument(
        "--data",
        help="digits (default), mnist, fashion-mnist, cifar10, folder:PATH (an image tree), "
        "seg:PATH (PATH/images and PATH/masks, for segmentation), shards:DIR (brickwork "
        "pack's), synthetic:C,H,W,K,N",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        help="default: what the data is for (seg:PATH segments; the others classify)",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        help="default ce (cross-entropy); segmentation also takes dice and ce+dice (its "
        "default; mask value 255 is ignored)",
    )
    p.add_argument("--data-dir", help="where the dataset's files are (else they are downloaded)")
    p.add_argument("--epochs", type=positive_count, help="default 25")
    p.add_argument("--batch-size", type=positive_count, help="default 64; segmentation 16")
    p.add_argument("--lr", type=float, help="peak learning rate, default 3e-3")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default adamw")
    p.add_argument("--schedule", choices=SCHEDULES, help="default onecycle")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument("--label-smoothing", type=float, help="default 0.1")
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="random shifts (and flips for photos) on each batch; image files: random resized "
        "crops and flips; default on",
    )
    _add_image_options(p)
    _add_trainer_options(p)
    _add_fine_tuning_options(p)
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="default fp32; bf16 and fp16 are autocast (fp16 with a gradient scaler)",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="keep images and weights in NHWC memory order (faster convolutions, above all "
        "with bf16); default off",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="torch.compile the model for training (a slower first epoch, faster after); "
        "default off",
    )
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--out", help="run directory (default runs/<data>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its saved options (--device, --channels-last and "
        "--compile may change), or finish it if it stopped after its last epoch",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="start over in an --out that holds a run: brickwork's own files of that run are "
        "deleted, nothing else",
    )
    add_verify_argument(p)
    _add_memory_options(p)


def _add_memory_options(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` that say whether a run must fit the device's free memory."""
    p.add_argument(
        "--memory-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refuse, before a weight is allocated, a run whose training memory (counted on "
        "meta tensors) exceeds what the device has free; default on",
    )
    add_size_option(
        p, "--memory-limit", "check against SIZE (16GiB, 500MB) instead of the device's free memory"
    )


def _add_image_options(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` that say how image files become batches."""
    p.add_argument(
        "--image-size",
        type=lambda text: list(shape_argument(text)),
        help="image files: the size images are cropped to, S or H,W (default the first "
        "training image's)",
    )
    p.add_argument(
        "--crop-scale",
        type=float,
        help="image files: the smallest training crop as a share of the image's area "
        "(default 0.08)",
    )
    p.add_argument("--mixup", type=float, help="Mixup's alpha, e.g. 0.2 (default 0: off)")
    p.add_argument("--cutmix", type=float, help="CutMix's alpha, e.g. 1.0 (default 0: off)")
    add_max_pixels_argument(p)
    p.add_argument(
        "--workers",
        type=int,
        help="image files: processes decoding images (default the number of cores; 0: none)",
    )


def _add_trainer_options(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` that every trainer is expected to have."""
    p.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="keep a moving average of the weights (e.g. 0.999), validated beside them; the "
        "model file holds the better (default 0: off)",
    )
    p.add_argument(
        "--accumulate",
        type=positive_count,
        metavar="K",
        help="compute each step's --batch-size in K micro-batches (default 1)",
    )
    p.add_argument(
        "--patience",
        type=positive_count,
        metavar="N",
        help="stop when the validation score has not improved for N epochs (default: never)",
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        metavar="W",
        help="epochs of linear learning-rate warmup before the schedule (default 0)",
    )
    p.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        help="TensorBoard event files in the run directory (default: when tensorboard is "
        "installed)",
    )


def _true_false(text: str) -> bool:
    """``true``/``false`` (also ``yes``/``no``, ``1``/``0``), for an option that takes one."""
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(
        text.strip().lower()
    )
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: choose true or false")
    return value


def _add_fine_tuning_options(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` that start from saved weights and keep parts of them fixed."""
    p.add_argument(
        "--init",
        metavar="FILE",
        help="start from the weights of FILE.safetensors: a brickwork model file, or a "
        "torchvision- or timm-layout ResNet state dict (mapped by name); a head of another "
        "class count is replaced. Not read again on --resume",
    )
    p.add_argument(
        "--init-strict",
        type=_true_false,
        metavar="BOOL",
        help="--init: keys missing from the file or the model are an error (default true); "
        "false loads those that match and logs the others",
    )
    p.add_argument(
        "--freeze",
        action="append",
        metavar="PATTERN",
        help="keep the modules whose path (as model.named_modules() gives it) matches PATTERN "
        "(fnmatch, e.g. 'layer1*') fixed, their batch norms in eval mode; repeatable",
    )
