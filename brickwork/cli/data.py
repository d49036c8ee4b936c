"""``brickwork pack``: an image folder written as tar shards for ``--data shards:DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from brickwork.cli.parser import add_command, add_size_option
from brickwork.inspect.render import parse_bytes
from brickwork.train.data import pack


def cmd_pack(args: argparse.Namespace) -> int:
    """Write an image folder as WebDataset-style tar shards with an index.

    Each split of folder:PATH (train, and val and test when there) becomes shards of about
    --shard-size bytes in --out, plus index.json; train from them with --data shards:DIR.
    Images are copied as they are, not decoded.
    """
    packed = pack(
        args.source, Path(args.out), parse_bytes(args.shard_size, "--shard-size"), log=print
    )
    for split, count in packed.samples.items():
        print(f"{split}: {count} images in {packed.shards[split]} shard(s)")
    print(f"{packed.bytes / 1e6:.1f} MB in {args.out}; train with --data shards:{args.out}")
    return 0


def add_commands(commands: Any) -> None:
    """Add ``pack`` to the subparsers ``commands``."""
    p = add_command(commands, "pack", cmd_pack)
    p.add_argument("source", help="folder:PATH, an image tree (PATH/<class>/<image>)")
    p.add_argument("--out", required=True, help="a new or empty folder for the shards")
    add_size_option(p, "--shard-size", "bytes a shard holds, e.g. 1GB (default)", default="1GB")
