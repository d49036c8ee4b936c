"""``brickwork build``, ``bricks`` and ``models``: specs built, and what a spec can name."""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Callable
from typing import Any

import torch

from brickwork.cli.parser import add_command, add_overwrite_argument, shape_argument
from brickwork.errors import REQUIRED, ConfigError, arguments_of
from brickwork.inspect import count_params, tree
from brickwork.layers import ACTIVATIONS, NORMS
from brickwork.models import create_model, list_models
from brickwork.registry import BRICKS, MODELS, Registry, closest_entry, normalize_name
from brickwork.spec import CONTAINERS, build, describe_io, describe_ranks, save_spec, to_spec

KINDS: dict[str, Registry[Any]] = {
    "bricks": BRICKS,
    "families": MODELS,
    "activations": ACTIVATIONS,
    "norms": NORMS,
}
"""What ``brickwork bricks`` lists, under these headings."""
SINGULAR = {"bricks": "brick", "families": "family", "activations": "activation", "norms": "norm"}


def cmd_build(args: argparse.Namespace) -> int:
    """Build a model from a spec and show its tree and output shape.

    Build a model from a YAML/JSON spec on the meta device (no memory), print its module tree
    with parameter counts and its inferred output shape.
    """
    model = build(args.spec, input_shape=args.input_shape, device="meta")  # no memory needed
    spec = to_spec(model)
    print(tree(model))
    print(f"\n{describe_io(spec)}, {count_params(model):,} parameters")
    if args.out:
        save_spec(spec, args.out, overwrite=args.overwrite)
        print(f"normalised spec written to {args.out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the registered models with their parameter counts.

    List registered models (families and their variants) with the parameter count at their
    default arguments, counted on the meta device.
    """
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


def cmd_bricks(args: argparse.Namespace) -> int:
    """List bricks, families, activations and norms, or describe one.

    Without NAME, list everything a spec can name. With NAME, show that entry's arguments, their
    defaults and which ones brickwork infers.
    """
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


def _summary_line(factory: Callable[..., Any]) -> str:
    """The first line of a docstring, without reStructuredText markup."""
    doc = (inspect.getdoc(factory) or "").strip()
    line = doc.splitlines()[0] if doc else ""
    line = re.sub(r":\w+:`~?([^`]+)`", r"\1", line)  # :class:`CNNClassifier` → CNNClassifier
    return line.replace("``", "")


def _describe(kind: str, registry: Registry[Any], name: str) -> None:
    """Print an entry's summary, the input it takes, and its arguments with their defaults."""
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
    if rule.merge:
        print("  takes two or more inputs, named in a graph spec: from: [a, b]")
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


def add_commands(commands: Any) -> None:
    """Add ``build``, ``bricks`` and ``models`` to the subparsers ``commands``."""
    p = add_command(commands, "build", cmd_build)
    p.add_argument("spec", help="spec file (.yaml, .yml or .json)")
    p.add_argument(
        "--input-shape",
        type=shape_argument,
        help="per-sample input shape, e.g. 1,28,28 (overrides the spec)",
    )
    p.add_argument("--out", help="write the normalised spec (every size written out) here")
    add_overwrite_argument(p, "a spec")
    p = add_command(commands, "bricks", cmd_bricks)
    p.add_argument("name", nargs="?", help="a brick, family, activation or norm")
    p = add_command(commands, "models", cmd_models)
    p.add_argument("pattern", nargs="?", help="a glob such as 'resnet*'")
