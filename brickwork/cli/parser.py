"""The command line's argparse pieces: the parser class, argument types, shared options."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any, NoReturn

from brickwork.cli.output import print_error
from brickwork.errors import EXIT_BAD_INPUT, ConfigError, positive_int
from brickwork.shapes import parse_shape

Command = Callable[[argparse.Namespace], int]
"""What runs a subcommand: its parsed arguments in, its exit status out."""


class Parser(argparse.ArgumentParser):
    """argparse, with bad input reported like every other error: one line and a hint."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message>`` and ``hint: <prog> --help``; exit with status 2.

        Args:
            message: argparse's message.
        """
        print_error(message, f"{self.prog} --help", shared=True)
        raise SystemExit(EXIT_BAD_INPUT)


def add_command(commands: Any, name: str, run: Command) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, run by ``run``; returns its parser, for its arguments.

    ``run``'s docstring says what the command does: its first line, lowercased and without its
    full stop, is the command's line in ``brickwork --help``; the paragraph after it, if any,
    describes the command in ``brickwork NAME --help``.

    Args:
        commands: the subparsers of the ``brickwork`` parser.
        name: the subcommand's name.
        run: the function that runs it.
    """
    summary, _, description = (inspect.getdoc(run) or "").partition("\n\n")
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary[:1].lower() + summary[1:].rstrip("."), description=description or None
    )
    parser.set_defaults(run=run)
    return parser


def shape_argument(text: str) -> tuple[int, ...]:
    """``"1,28,28"`` → ``(1, 28, 28)``; an argparse type (see :func:`parse_shape`).

    Args:
        text: the option's value.
    """
    try:
        return parse_shape(text, what=None)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_count(text: str) -> int:
    """An argparse type: a positive integer (see :func:`positive_int`).

    Args:
        text: the option's value.
    """
    try:
        return positive_int(int(text), "the value")
    except ValueError:  # not a whole number (int() says so), or not positive (ConfigError)
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def add_model_arguments(p: argparse.ArgumentParser, batch_size: int | None) -> None:
    """MODEL, the options that build it and its inputs, shared by `summary` and `doctor`.

    Args:
        p: the subcommand's parser.
        batch_size: the default of ``--batch-size`` (``None``: the command chooses).
    """
    p.add_argument("model", help="spec file, family name, or path/to/file.py:NAME")
    add_target_arguments(p)
    p.add_argument(
        "--input-shape",
        type=shape_argument,
        action="append",
        help="per-sample input shape, e.g. 1,28,28; repeat it for a forward with several inputs",
    )
    p.add_argument(
        "--input-dtype",
        action="append",
        help="dtype of each --input-shape, in their order, by torch's name: float32 (default), "
        "long for token ids, float16, bfloat16, bool...",
    )
    p.add_argument(
        "--input",
        action="append",
        metavar="NAME:SHAPE[:DTYPE]",
        help="a keyword input of the whole shape the forward receives, batch first: "
        "input_ids:1,128:long; repeat it for each",
    )
    p.add_argument(
        "--input-data",
        metavar="FILE",
        help="real inputs: a .safetensors file (keyword inputs by name) or a .pt/.pth file "
        "(read with weights_only=True)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_count,
        default=batch_size,
        help=f"batch size (default {batch_size or '1, or 2 where batch norm needs it'})",
    )
    p.add_argument(
        "--run",
        dest="run_mode",  # `run` is the function that runs the command
        choices=("auto", "meta", "real"),
        default="auto",
        help="auto (default): meta tensors, and real ones when an op needs values; meta; or real "
        "(the model's own weights); the model is left as it was",
    )


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """The options that build MODEL: ``--args``/``--kwargs`` (file.py:NAME; keywords also for a
    family) and ``--model-args`` (a family's arguments as a YAML mapping)."""
    p.add_argument(
        "--args", help="positional arguments for NAME as Python literals: '1, [32, 64], 10'"
    )
    p.add_argument(
        "--kwargs",
        help="keyword arguments for NAME (or a family) as literals: \"activation='lrelu'\"",
    )
    p.add_argument(
        "--model-args",
        metavar="YAML",
        help="a family's arguments as a YAML mapping: '{n_classes: 5, in_chans: 1}'",
    )


def add_max_pixels_argument(p: argparse.ArgumentParser) -> None:
    """``--max-pixels``: the largest image opened, for files the user trusts."""
    p.add_argument(
        "--max-pixels",
        type=positive_count,
        help="image files: open images of up to N pixels (default Pillow's limit, 89,478,485); "
        "larger ones are refused as possible decompression bombs",
    )


def add_size_option(
    p: argparse.ArgumentParser, flag: str, help: str, default: str | None = None
) -> None:
    """An option whose value is a size in bytes (``16GiB``, ``500MB``, ``4096``), read with
    :func:`~brickwork.inspect.render.parse_bytes` where it is used, so that its error names
    ``flag``."""
    p.add_argument(flag, metavar="SIZE", default=default, help=help)


def add_json_argument(p: argparse.ArgumentParser, help: str) -> None:
    """``--json``: print JSON instead of text; ``help`` says what the JSON holds."""
    p.add_argument("--json", action="store_true", help=help)


def add_code_argument(p: argparse.ArgumentParser) -> None:
    """``--code FILE``: the Python file of a model trained from file.py:NAME."""
    p.add_argument(
        "--code",
        metavar="FILE.py",
        help="for a model trained from path/to/file.py:NAME: that file, imported to build it "
        "(brickwork never imports code on its own)",
    )


def add_verify_argument(p: argparse.ArgumentParser) -> None:
    """``--no-verify``: load model and checkpoint files without checking their SHA-256."""
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the SHA-256 check of the model or checkpoint files read (faster on big "
        "files; a damaged file then goes unnoticed)",
    )


def add_overwrite_argument(p: argparse.ArgumentParser, kind: str) -> None:
    """``--overwrite``: replace an existing ``--out`` file that brickwork did not write."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing --out file even if it is not {kind} brickwork wrote "
        "(without it, such a file is kept and the command stops)",
    )
