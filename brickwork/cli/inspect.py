"""``brickwork summary`` and ``doctor``: a spec, a family or a user's ``file.py:NAME`` inspected."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from brickwork.cli.parser import (
    add_command,
    add_json_argument,
    add_model_arguments,
    add_size_option,
    positive_count,
)
from brickwork.errors import EXIT_FAILED, ConfigError, UserCodeError
from brickwork.inspect import Finding, Report, doctor, summary
from brickwork.inspect.inputs import load_input_data, named_input
from brickwork.inspect.render import format_bytes, parse_bytes
from brickwork.inspect.static_checks import missing_forward
from brickwork.inspect.summary import resolve_model
from brickwork.inspect.target import (
    call_target,
    is_target,
    load_target,
    model_argument,
    resolve_target,
)
from brickwork.inspect.training_setup import LOSSES, OPTIMIZERS, setup_arguments
from brickwork.shapes import parse_dtype
from brickwork.train.config import OPTIMIZERS as TRAIN_OPTIMIZERS
from brickwork.train.config import PRECISIONS
from brickwork.train.memory import footprint


def cmd_summary(args: argparse.Namespace) -> int:
    """Shapes, parameters, MACs and training memory, on meta tensors first.

    Summarise a model on meta tensors: no real compute, no activation memory; when an op needs
    real values (.item(), nonzero, .cpu()...), it runs again on the model's own weights (--run).
    The model is left as it was. MODEL is a spec file, a registered family, or
    path/to/file.py:NAME where NAME is an nn.Module class, a function returning a module, or a
    module variable. Exit status 1 when the forward pass fails (the rows up to the failing module
    are shown).
    """
    model = _model(args)
    if _is_code(model):
        model = load_target(model, args.args, args.kwargs)
    inputs, batch, fit = _inputs(args), args.batch_size, None
    if args.device_memory is not None:
        fit = _largest_batch(model, inputs, args)
        batch = fit["largest_batch"] if args.fit and fit["largest_batch"] else batch
    result = summary(model, batch_size=batch, depth=args.depth, run=args.run_mode, **inputs)
    if args.json:
        print(json.dumps({**result.to_dict(), **({"device_memory": fit} if fit else {})}, indent=2))
    else:
        print(result, end="")  # the table ends with the error line when the forward failed
        if fit is not None:
            print(fit["line"])
    return EXIT_FAILED if result.error else 0


def _largest_batch(model: Any, inputs: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``--device-memory``: the largest batch whose training step fits, by :func:`footprint`
    (the rule ``train`` checks a run with)."""
    available = parse_bytes(args.device_memory, "--device-memory")
    if inputs.get("input_data") is not None:
        raise ConfigError(
            "--device-memory needs one --input-shape (or a spec's input), not tensors"
        )
    module, shape, _ = resolve_model(model, inputs["input_shape"], inputs["input_dtype"])
    if shape is None:
        raise ConfigError("--device-memory needs the input: --input-shape C,H,W")
    need = footprint(module, shape, args.optimizer, args.precision)
    largest = need.largest_batch(available)
    told = (
        f"the largest batch that trains in {format_bytes(available)} ({need.what}) is {largest}: "
        f"{format_bytes(need.at(largest))}"
        if largest
        else f"no batch trains in {format_bytes(available)} ({need.what}): one sample needs "
        f"{format_bytes(need.at(1))}"
    )
    return {
        "bytes": available,
        "optimizer": args.optimizer,
        "precision": args.precision,
        "largest_batch": largest,
        "fixed_bytes": need.fixed,
        "bytes_per_sample": need.per_sample,
        "line": told,
    }


def cmd_doctor(args: argparse.Namespace) -> int:
    """Find the classic nn.Module bugs before training, and with --loss those of its training step.

    Run a model on meta tensors (no real compute; real ones when an op needs values; the model
    left unchanged) and report each problem with where it is, what is wrong, how to fix it and
    how to silence it (--ignore, --select). MODEL is a spec file, a registered family, or
    path/to/file.py:NAME as for `brickwork summary`; NAME may also be a function that returns
    your training script's dict: {'model': ..., 'optimizer': ..., 'loss': ..., 'batch': (x, y)}.
    With a loss (--loss, or the dict's), a few optimizer steps on a copy, on the CPU, check the
    training step: the loss, the target, the optimizer, the activations and the gradients.
    Exit status: 0 when no error was found (warnings allowed), 1 when one was, 2 for bad input.
    """
    model = _model(args)
    report = _doctor_target(args) if _is_code(model) else doctor(model, **_doctor_options(args))
    print(
        json.dumps(report.to_dict(), indent=2) if args.json else report,
        end="\n" if args.json else "",
    )
    return 0 if report.ok else EXIT_FAILED


def _model(args: argparse.Namespace) -> Any:
    """MODEL as :func:`model_argument` reads it: a file.py:NAME target's text, a spec file, a
    family name, or a family's spec with its arguments."""
    return model_argument(args.model, args.args, args.kwargs, args.model_args)


def _is_code(model: Any) -> bool:
    return isinstance(model, str) and is_target(model)


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    """summary/doctor keyword arguments for the input: one --input-shape, or several for a
    forward that takes several tensors (each with its --input-dtype); named --input shapes; or
    the real tensors of --input-data."""
    given = [name for name in ("input_shape", "input", "input_data") if getattr(args, name)]
    if len(given) > 1:
        raise ConfigError(
            f"--{given[0].replace('_', '-')} and --{given[1].replace('_', '-')} both give the "
            "inputs; use one"
        )
    if args.input_data:
        return {"input_data": load_input_data(args.input_data)}
    if args.input:
        return {"input_data": dict(named_input(text) for text in args.input)}
    shapes = args.input_shape or []
    dtypes = [parse_dtype(d) for d in args.input_dtype or []]
    if len(dtypes) > max(len(shapes), 1):
        raise ConfigError(
            f"{len(dtypes)} --input-dtype for {len(shapes)} --input-shape: give one per input, "
            "in the same order"
        )
    if len(shapes) <= 1:
        return {
            "input_shape": shapes[0] if shapes else None,
            "input_dtype": dtypes[0] if dtypes else None,
        }
    dtypes += [torch.float32] * (len(shapes) - len(dtypes))  # the rest: float32
    batch = args.batch_size or 1
    pairs = zip(shapes, dtypes, strict=True)
    return {"input_data": tuple(torch.empty((batch, *s), dtype=d, device="meta") for s, d in pairs)}


def _doctor_options(args: argparse.Namespace) -> dict[str, Any]:
    """doctor's keyword arguments from the command line."""
    return {
        "batch_size": args.batch_size,
        "run": args.run_mode,
        "ignore": args.ignore or (),
        "select": args.select,
        "loss": _named_or_code(args.loss, "--loss"),
        "optimizer": _named_or_code(args.optimizer, "--optimizer"),
        "steps": args.steps,
        **_inputs(args),
    }


def _named_or_code(text: str | None, option: str) -> Any:
    """A name as it is, or the function or class that path/to/file.py:FN names."""
    if text is None or not is_target(text):
        return text
    try:
        found = resolve_target(text)
    except ConfigError as err:
        raise ConfigError(f"{option}: {err}", hint=err.hint) from None
    if not callable(found):
        raise ConfigError(
            f"{option}: {text} is a {type(found).__name__}, not a function or a class",
            hint="--loss file.py:FN takes FN(output, target); --optimizer file.py:FN takes "
            "FN(model) and returns the optimizer",
        )
    return found


KEPT_WHEN_UNSET = ("loss", "optimizer", "steps", "input_shape", "input_dtype")
"""Options that, left unset on the command line, leave a training script's dict's values."""


def _doctor_target(args: argparse.Namespace) -> Report:
    """Doctor a file.py:NAME target; a failure of the user's own code is a finding, not a crash."""
    name = args.model.rpartition(":")[2]
    obj = None
    try:
        obj = resolve_target(args.model)
        built = call_target(args.model, obj, args.args, args.kwargs)
    except UserCodeError as err:
        report = Report(name, [Finding("construction-error", "error", "", str(err))])
        if (
            isinstance(obj, type)
            and issubclass(obj, nn.Module)
            and obj.forward is nn.Module.forward
        ):
            report.findings.append(missing_forward(obj))
        report.not_run = ["every check that needs the model"]
        report.not_run_reason = "the model could not be built"
        return report
    options = _doctor_options(args)
    if isinstance(built, Mapping):
        setup = setup_arguments(built, f"{args.model}()")
        given = {k: v for k, v in options.items() if v is not None or k not in KEPT_WHEN_UNSET}
        return doctor(**{**setup, **given})
    if not isinstance(built, nn.Module):
        raise ConfigError(
            f"{args.model}(...) returned {type(built).__name__}, not an nn.Module or a training "
            "script's dict with 'model'"
        )
    return doctor(built, **options)


def add_commands(commands: Any) -> None:
    """Add ``summary`` and ``doctor`` to the subparsers ``commands``."""
    p = add_command(commands, "summary", cmd_summary)
    add_model_arguments(p, batch_size=None)
    p.add_argument("--depth", type=int, default=3, help="deepest nesting shown (default 3)")
    add_json_argument(p, "print the summary as JSON")
    add_size_option(
        p,
        "--device-memory",
        "say the largest batch that trains in SIZE (16GiB, 500MB), as train counts it",
    )
    p.add_argument(
        "--fit", action="store_true", help="with --device-memory: summarise at that batch"
    )
    p.add_argument(
        "--optimizer",
        choices=TRAIN_OPTIMIZERS,
        default="adamw",
        help="with --device-memory: its states per parameter (default adamw)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="with --device-memory: bf16/fp16 autocast (default fp32)",
    )
    p = add_command(commands, "doctor", cmd_doctor)
    add_model_arguments(p, batch_size=3)
    p.add_argument(
        "--ignore",
        action="append",
        metavar="CODE[,CODE]",
        help="leave these finding codes out (unused-module,no-grad-param...); repeatable",
    )
    p.add_argument(
        "--select",
        action="append",
        metavar="CODE[,CODE]",
        help="report only these finding codes; repeatable",
    )
    add_json_argument(p, "print the report as JSON")
    _add_training_arguments(p)


def _add_training_arguments(p: argparse.ArgumentParser) -> None:
    """``--loss``, ``--optimizer`` and ``--steps``: the doctor's training checks."""
    p.add_argument(
        "--loss",
        metavar="NAME|FILE.py:FN",
        help=f"run the training checks with this loss: {', '.join(LOSSES.names())}, or "
        "path/to/file.py:FN with FN(output, target) (a class is built with no arguments)",
    )
    p.add_argument(
        "--optimizer",
        metavar="NAME|FILE.py:FN",
        help=f"what the training checks step a copy of: {', '.join(OPTIMIZERS.names())} "
        "(PyTorch's defaults), or path/to/file.py:FN with FN(model) returning it; default "
        "Adam(lr=1e-3)",
    )
    p.add_argument(
        "--steps",
        type=positive_count,
        help="optimizer steps on one fixed batch (default 5, fewer when the loss is near its "
        "floor); from 10 on, the loss must also get near its floor",
    )
