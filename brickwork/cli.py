"""The ``brickwork`` command. Thin: parses arguments and calls the library.

Bad input exits with status 2 and one line ``error: ...`` (plus a ``hint:`` line when one is
known), without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import torch
from torch import nn

from brickwork._version import __version__
from brickwork.errors import (
    REQUIRED,
    BrickworkError,
    ConfigError,
    ExportError,
    PeerError,
    RankLostError,
    RunInterruptedError,
    TrainingError,
    UserCodeError,
    arguments_of,
    positive_int,
)
from brickwork.inspect import Finding, Report, count_params, doctor, summary, tree
from brickwork.inspect.static_checks import missing_forward
from brickwork.inspect.target import (
    build_target,
    is_target,
    load_target,
    resolve_target,
)
from brickwork.layers import ACTIVATIONS, NORMS
from brickwork.models import create_model, list_models
from brickwork.registry import BRICKS, MODELS, Registry, closest_entry, normalize_name
from brickwork.shapes import parse_dtype, parse_shape
from brickwork.spec import CONTAINERS, build, describe_ranks, save_spec, to_spec
from brickwork.train import distributed
from brickwork.train.commands import evaluate_file, predict_files, run_training
from brickwork.train.config import OPTIMIZERS, PRECISIONS, SCHEDULES

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
KINDS: dict[str, Registry[Any]] = {
    "bricks": BRICKS,
    "families": MODELS,
    "activations": ACTIVATIONS,
    "norms": NORMS,
}
SINGULAR = {"bricks": "brick", "families": "family", "activations": "activation", "norms": "norm"}


def shape_argument(text: str) -> tuple[int, ...]:
    """``"1,28,28"`` → ``(1, 28, 28)``; an argparse type (see :func:`parse_shape`)."""
    try:
        return parse_shape(text, what=None)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_count(text: str) -> int:
    """An argparse type: a positive integer (see :func:`positive_int`)."""
    try:
        return positive_int(int(text), "the value")
    except ValueError:  # not a whole number (int() says so), or not positive (ConfigError)
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def cmd_build(args: argparse.Namespace) -> int:
    model = build(args.spec, input_shape=args.input_shape, device="meta")  # no memory needed
    spec = to_spec(model)
    print(tree(model))
    print(
        f"\ninput {tuple(spec['input'])} -> output {tuple(spec['output'])}, "
        f"{count_params(model):,} parameters"
    )
    if args.out:
        save_spec(spec, args.out)
        print(f"normalised spec written to {args.out}")
    return 0


def _check_model_argument(args: argparse.Namespace) -> bool:
    """Whether MODEL is a path/to/file.py:NAME target; refuses arguments that cannot apply."""
    if is_target(args.model):
        return True
    if args.model.endswith(".py"):
        raise ConfigError(
            f"{args.model} is a Python file: name the model in it, path/to/file.py:NAME",
            hint=f"e.g. {args.model}:MyModel",
        )
    if args.args or args.kwargs:
        raise ConfigError("--args and --kwargs go with a path/to/file.py:NAME target")
    return False


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    """summary/doctor keyword arguments for the input: one --input-shape, or several for a
    forward that takes several tensors."""
    dtype = parse_dtype(args.input_dtype)
    shapes = args.input_shape or []
    if len(shapes) <= 1:
        return {"input_shape": shapes[0] if shapes else None, "input_dtype": dtype}
    data = tuple(torch.empty((args.batch_size, *s), dtype=dtype, device="meta") for s in shapes)
    return {"input_data": data}


def cmd_summary(args: argparse.Namespace) -> int:
    model: Any = args.model
    if _check_model_argument(args):
        model = load_target(args.model, args.args, args.kwargs)
    result = summary(model, batch_size=args.batch_size, depth=args.depth, **_inputs(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result, end="")  # the table ends with the error line when the forward failed
    return EXIT_FINDINGS if result.error else 0


def cmd_models(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise ConfigError(
            f"no registered model matches {args.pattern!r}",
            hint="`brickwork models` lists them all; patterns are globs such as 'resnet*'",
        )
    print(f"{'model':<18} {'class':<16} {'parameters':>14}")
    for name in names:
        with torch.device("meta"):  # counted without allocating a single weight
            model = create_model(name)
        print(f"{name:<18} {type(model).__name__:<16} {count_params(model):>14,}")
    return 0


TRAIN_OPTIONS = (
    "data", "data_dir", "epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay",
    "label_smoothing", "augment", "device", "precision", "channels_last", "compile", "seed",
)  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    out = args.out or f"runs/{given.get('data', 'digits').replace(':', '-').replace('/', '-')}"
    rank = distributed.launch_rank()
    try:
        run_training(args.spec, given, out, args.resume, progress=sys.stdout.isatty(), log=print)
    except RunInterruptedError as stop:
        if rank == 0:
            print(stop, file=sys.stderr)
        return 128 + stop.signum
    except (TrainingError, RankLostError) as err:
        if rank == 0 or isinstance(err, RankLostError):
            _print_error(err)
        return EXIT_FINDINGS
    except (PeerError, ConfigError) as err:
        if args.debug:
            raise
        if rank == 0:  # the others stop with it, quietly: rank 0 says why
            _print_error(err)
        return EXIT_BAD_INPUT
    return 0  # other errors: main's handler, as for every command


def _print_error(err: BaseException) -> None:
    """``error: ...`` and ``hint: ...`` lines on stderr (prefixed ``rank N:`` under torchrun)."""
    rank = distributed.launch_rank()
    prefix = f"rank {rank}: " if rank else ""
    print(f"{prefix}error: {err}", file=sys.stderr)
    hint = getattr(err, "hint", None)
    if hint:
        print(f"{prefix}hint: {hint}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> int:
    result = evaluate_file(args.model, args.data, args.data_dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']} on {result['data']} (test split): accuracy {result['accuracy']:.4f}")
    print(f"{'class':<12} {'precision':>9} {'recall':>7} {'support':>8}")
    for name, row in result["per_class"].items():
        print(f"{name:<12} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['support']:>8}")
    print("confusion matrix (rows: true class, columns: predicted):")
    for row in result["confusion"]:
        print("  " + " ".join(f"{v:>4}" for v in row))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    for result in predict_files(args.model, args.images):
        print(f"{result['image']}: {result['class']} ({result['probability']:.1%})")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    if _check_model_argument(args):
        report = _doctor_target(args)
    else:
        report = doctor(args.model, batch_size=args.batch_size, **_inputs(args))
    print(
        json.dumps(report.to_dict(), indent=2) if args.json else report,
        end="\n" if args.json else "",
    )
    return 0 if report.ok else EXIT_FINDINGS


def _doctor_target(args: argparse.Namespace) -> Report:
    """Doctor a file.py:NAME target; a failure of the user's own code is a finding, not a crash."""
    name = args.model.rpartition(":")[2]
    obj = None
    try:
        obj = resolve_target(args.model)
        model = build_target(args.model, obj, args.args, args.kwargs)
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
    return doctor(model, batch_size=args.batch_size, **_inputs(args))


def _summary_line(factory: Callable[..., Any]) -> str:
    """The first line of a docstring, without reStructuredText markup."""
    doc = (inspect.getdoc(factory) or "").strip()
    line = doc.splitlines()[0] if doc else ""
    line = re.sub(r":\w+:`~?([^`]+)`", r"\1", line)  # :class:`CNNClassifier` → CNNClassifier
    return line.replace("``", "")


def cmd_bricks(args: argparse.Namespace) -> int:
    if args.name is None:
        for kind, registry in KINDS.items():
            print(f"{kind}:")
            for name in registry.names():
                aliases = registry.aliases(name)
                label = name + (f" ({', '.join(aliases)})" if aliases else "")
                print(f"  {label:<28} {_summary_line(registry.get(name))[:70]}")
        print(f"containers:\n  {', '.join(CONTAINERS)}  (see README: residual, repeat, sequential)")
        return 0
    for kind, registry in KINDS.items():
        if args.name in registry:
            _describe(kind, registry, registry.canonical(args.name))
            return 0
    every = {normalize_name(n): n for registry in KINDS.values() for n in registry.names()}
    match = closest_entry(args.name, every)
    suggestion = f"; did you mean {match!r}?" if match else ""
    raise ConfigError(
        f"unknown brick, family, activation or norm {args.name!r}{suggestion}",
        hint="`brickwork bricks` lists them all",
    )


def _describe(kind: str, registry: Registry[Any], name: str) -> None:
    factory = registry.get(name)
    rule = registry.size_rule(name)
    aliases = registry.aliases(name)
    print(f"{name} ({SINGULAR[kind]})" + (f", also: {', '.join(aliases)}" if aliases else ""))
    if _summary_line(factory):
        print(f"  {_summary_line(factory)}")
    inferred = {
        rule.in_arg: "inferred: the incoming "
        + ("channels (dimension 0)" if rule.in_dim == 0 else "last dimension"),
        rule.shape_arg: "inferred: the incoming spatial shape",
        rule.dims_arg: "inferred: 1-d, 2-d or 3-d from the incoming rank",
    }
    if rule.ranks:
        print(f"  takes per-sample input {describe_ranks(rule.ranks)}")
    if rule.int_input:
        print("  takes integer ids (set input_dtype: long)")
    arguments = arguments_of(factory)
    if arguments is None:
        print("  arguments: any")
        return
    print("  arguments:")
    for arg, default in arguments:
        if arg in inferred:
            note = inferred[arg]
        elif arg == rule.out_arg:
            note = "required; `out:` in a spec" if default is REQUIRED else f"{default!r} (`out:`)"
        else:
            note = "required" if default is REQUIRED else repr(default)
        print(f"    {arg:<22} {note}")


def add_model_arguments(p: argparse.ArgumentParser, batch_size: int) -> None:
    """MODEL and the options that build it, shared by `summary` and `doctor`."""
    p.add_argument("model", help="spec file, family name, or path/to/file.py:NAME")
    p.add_argument(
        "--args", help="positional arguments for NAME as Python literals: '1, [32, 64], 10'"
    )
    p.add_argument(
        "--kwargs", help="keyword arguments for NAME as literals: \"activation='lrelu'\""
    )
    p.add_argument(
        "--input-shape",
        type=shape_argument,
        action="append",
        help="per-sample input shape, e.g. 1,28,28; repeat it for a forward with several inputs",
    )
    p.add_argument(
        "--input-dtype",
        default="float32",
        help="dtype of the input: float32 (default) or long for token ids",
    )
    p.add_argument(
        "--batch-size",
        type=positive_count,
        default=batch_size,
        help=f"batch size (default {batch_size})",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with bad input reported like every other error: one line and a hint."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        print(f"hint: {self.prog} --help", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="brickwork",
        description="Build, inspect and train PyTorch models made of reusable bricks.",
    )
    parser.add_argument("--version", action="version", version=f"brickwork {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    p = commands.add_parser(
        "build",
        help="build a model from a spec and show its tree and output shape",
        description="Build a model from a YAML/JSON spec on the meta device (no memory), print "
        "its module tree with parameter counts and its inferred output shape.",
    )
    p.add_argument("spec", help="spec file (.yaml, .yml or .json)")
    p.add_argument(
        "--input-shape",
        type=shape_argument,
        help="per-sample input shape, e.g. 1,28,28 (overrides the spec)",
    )
    p.add_argument("--out", help="write the normalised spec (every size written out) here")
    p.set_defaults(run=cmd_build)

    p = commands.add_parser(
        "bricks",
        help="list bricks, families, activations and norms, or describe one",
        description="Without NAME, list everything a spec can name. With NAME, show that "
        "entry's arguments, their defaults and which ones brickwork infers.",
    )
    p.add_argument("name", nargs="?", help="a brick, family, activation or norm")
    p.set_defaults(run=cmd_bricks)

    p = commands.add_parser(
        "models",
        help="list the registered models with their parameter counts",
        description="List registered models (families and their variants) with the parameter "
        "count at their default arguments, counted on the meta device.",
    )
    p.add_argument("pattern", nargs="?", help="a glob such as 'resnet*'")
    p.set_defaults(run=cmd_models)

    p = commands.add_parser(
        "summary",
        help="shapes, parameters, MACs and training memory, without running the model",
        description="Summarise a model on meta tensors: no real compute, no activation memory. "
        "MODEL is a spec file, a registered family, or path/to/file.py:NAME where NAME is an "
        "nn.Module class, a function returning a module, or a module variable. Exit status 1 "
        "when the forward pass fails (the rows up to the failing module are shown).",
    )
    add_model_arguments(p, batch_size=1)
    p.add_argument("--depth", type=int, default=3, help="deepest nesting shown (default 3)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=cmd_summary)

    p = commands.add_parser(
        "doctor",
        help="find the classic nn.Module bugs before training",
        description="Run a model on meta tensors (no real compute, the model left unchanged) and "
        "report each problem with where it is, what is wrong and how to fix it. MODEL is a spec "
        "file, a registered family, or path/to/file.py:NAME as for `brickwork summary`. Exit "
        "status: 0 when no error was found (warnings allowed), 1 when one was, 2 for bad input.",
    )
    add_model_arguments(p, batch_size=3)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_doctor)
    add_training_commands(commands)
    add_export_command(commands)
    return parser


def add_training_commands(commands: Any) -> None:
    p = commands.add_parser(
        "train",
        help="train a model on a dataset, with checkpoints, curves and a test score",
        description="Train SPEC (default: the guide's classifier) on a dataset. The input shape "
        "and class count come from the data. The run directory gets spec.yaml, config.json, "
        "metrics.jsonl, curves.png, confusion.png, model.safetensors (best validation weights) "
        "and a checkpoint written every epoch, and on Ctrl-C or SIGTERM at the current step; "
        "--resume continues it exactly.",
    )
    p.add_argument("spec", nargs="?", help="model spec (.yaml/.json); default the guide's CNN")
    p.add_argument(
        "--data",
        help="digits (default), mnist, fashion-mnist, cifar10, folder:PATH, synthetic:C,H,W,K,N",
    )
    p.add_argument("--data-dir", help="where the dataset's files are (else they are downloaded)")
    p.add_argument("--epochs", type=positive_count, help="default 25")
    p.add_argument("--batch-size", type=positive_count, help="default 64")
    p.add_argument("--lr", type=float, help="peak learning rate, default 3e-3")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default adamw")
    p.add_argument("--schedule", choices=SCHEDULES, help="default onecycle")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument("--label-smoothing", type=float, help="default 0.1")
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="random shifts (and flips for photos) on each batch; default on",
    )
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument(
        "--precision", choices=PRECISIONS, help="default fp32; bf16 is autocast on CPU and CUDA"
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
        "--compile may change)",
    )
    p.set_defaults(run=cmd_train)

    p = commands.add_parser(
        "evaluate",
        help="accuracy, per-class precision/recall and confusion matrix of a saved model",
    )
    p.add_argument("model", help="a run directory or a .safetensors file")
    p.add_argument("--data", help="dataset (default: the one it was trained on)")
    p.add_argument("--data-dir", help="where the dataset's files are")
    p.add_argument("--json", action="store_true", help="print JSON, with accuracy at top level")
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("predict", help="class and probability for image files")
    p.add_argument("model", help="a run directory or a .safetensors file")
    p.add_argument("images", nargs="+", help="PNG or JPG files")
    p.set_defaults(run=cmd_predict)


def cmd_export(args: argparse.Namespace) -> int:
    from brickwork.export import CHECK_BATCHES, EXPORT_BATCH, export
    from brickwork.inspect.render import format_bytes

    try:
        path = export(args.model, args.format, args.out)
    except ExportError as err:  # the exporter failed or the file disagrees with PyTorch
        if args.debug:
            raise
        _print_error(err)
        return EXIT_FINDINGS
    batches = ", ".join(str(b) for b in (EXPORT_BATCH, *CHECK_BATCHES))
    print(
        f"{path} ({format_bytes(path.stat().st_size)}): read back and checked against PyTorch "
        f"at batch sizes {batches}"
    )
    return 0


def add_export_command(commands: Any) -> None:
    from brickwork.export import FORMATS, SUFFIXES

    suffixes = ", ".join(f"{fmt} {' or '.join(s)}" for fmt, s in SUFFIXES.items())
    p = commands.add_parser(
        "export",
        help="export a trained model to ONNX, torch.export (.pt2) or TorchScript, checked",
        description="Export a run's model (or a brickwork .safetensors file) with a dynamic "
        "batch dimension, its input shape and dtype taken from the spec in the file. The file is "
        "read back and run at other batch sizes than the one it was exported at; its outputs "
        "must match PyTorch's within 1e-4, or it is not written (exit status 1). Class names "
        "and normalisation go with it: ONNX metadata_props, or brickwork.json in the .pt2 and "
        "TorchScript archives. ONNX needs pip install 'brickwork[export]'.",
    )
    p.add_argument("model", help="a run directory or a .safetensors file")
    p.add_argument("--format", required=True, choices=FORMATS, help="the file format")
    p.add_argument(
        "--out",
        help=f"the file to write ({suffixes}) or an existing directory; default beside the "
        "model, e.g. RUN_DIR/model.onnx",
    )
    p.set_defaults(run=cmd_export)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status: int = args.run(args)
        return status
    except BrokenPipeError:  # `brickwork bricks | head`: the reader has gone, nothing to say
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which saves and exits itself)
        if args.debug:
            raise
        if distributed.launch_rank() == 0:  # under torchrun, every rank gets the Ctrl-C
            print("interrupted", file=sys.stderr)
        return 130
    except (BrickworkError, OSError) as err:
        if args.debug:
            raise
        _print_error(err)
        return EXIT_BAD_INPUT
