"""``brickwork export``: a trained model as ONNX, a ``.pt2`` program or TorchScript, checked."""

from __future__ import annotations

import argparse
from typing import Any

from brickwork.cli.parser import (
    add_code_argument,
    add_command,
    add_overwrite_argument,
    add_verify_argument,
)
from brickwork.exporting import CHECK_BATCHES, EXPORT_BATCH, FORMATS, SUFFIXES, export
from brickwork.inspect.render import format_bytes


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained model to ONNX, torch.export (.pt2) or TorchScript, checked.

    Export a run's model (or a brickwork .safetensors file) with a dynamic batch dimension, its
    input shape and dtype taken from the spec in the file. The file is read back and run at other
    batch sizes than the one it was exported at; its outputs must match PyTorch's within 1e-4, or
    it is not written (exit status 1). Class names and normalisation go with it: ONNX
    metadata_props, or brickwork.json in the .pt2 and TorchScript archives. ONNX needs pip
    install 'brickwork[export]'.
    """
    path = export(
        args.model,
        args.format,
        args.out,
        overwrite=args.overwrite,
        verify=args.verify,
        code=args.code,
    )
    batches = ", ".join(str(b) for b in (EXPORT_BATCH, *CHECK_BATCHES))
    print(
        f"{path} ({format_bytes(path.stat().st_size)}): read back and checked against PyTorch "
        f"at batch sizes {batches}"
    )
    return 0


def add_commands(commands: Any) -> None:
    """Add ``export`` to the subparsers ``commands``."""
    suffixes = ", ".join(f"{fmt} {' or '.join(s)}" for fmt, s in SUFFIXES.items())
    p = add_command(commands, "export", cmd_export)
    p.add_argument("model", help="a run directory or a .safetensors file")
    p.add_argument("--format", required=True, choices=FORMATS, help="the file format")
    p.add_argument(
        "--out",
        help=f"the file to write ({suffixes}) or an existing directory; default beside the "
        "model, e.g. RUN_DIR/model.onnx",
    )
    add_overwrite_argument(p, "an export")
    add_code_argument(p)
    add_verify_argument(p)
