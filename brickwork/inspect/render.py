"""Inspection results as text: shapes, names, counts and byte sizes, and the summary's table.

Shapes come as :func:`~brickwork.inspect.meta_run.shapes_of` gives them: a list of sizes for a
tensor, the same structure of lists and dicts for a tuple, list or dict, a type name otherwise.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from brickwork.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from brickwork.inspect.summary import Summary

_HEADERS = {
    "input_shape": "input shape",
    "output_shape": "output shape",
    "params": "params",
    "trainable": "trainable",
    "macs": "MACs",
}


def shape_text(shape: Any) -> str:
    """``[3, 28, 28]`` → ``"[3, 28, 28]"``, nested lists and dicts alike; ``None`` → ``"--"``.

    Args:
        shape: a shape, a structure of shapes, a type name or ``None``.
    """
    if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
        return "[" + ", ".join(map(str, shape)) + "]"
    if isinstance(shape, list):
        return "[" + ", ".join(shape_text(s) for s in shape) + "]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {shape_text(v)}" for k, v in shape.items()) + "}"
    return "--" if shape is None else str(shape)


def names_text(names: list[str]) -> str:
    """The first six names in backquotes, then ``...``: ```a.weight`, `a.bias```.

    Args:
        names: parameter or module names.
    """
    return ", ".join(f"`{n}`" for n in names[:6]) + (" ..." if len(names) > 6 else "")


def inputs_text(shapes: Any, named: dict[str, Any] | None = None) -> str:
    """A call's input shapes: ``[[2, 3]]`` (one input) → ``"[2, 3]"``, several as a list; inputs
    given by name follow as ``name=[2, 3]``.

    Args:
        shapes: the shapes of a call's positional inputs, one item per input.
        named: the shapes of the inputs given by name. Default none.
    """
    if named:
        parts = [shape_text(s) for s in shapes or []]
        parts += [f"{name}={shape_text(shape)}" for name, shape in named.items()]
        return ", ".join(parts)
    if isinstance(shapes, list) and len(shapes) == 1:
        return shape_text(shapes[0])
    return shape_text(shapes)


def format_count(n: int) -> str:
    """``51930186`` → ``"51.93M"``; small numbers as they are.

    Args:
        n: a count (parameters, MACs).
    """
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
"""The units :func:`parse_bytes` reads, lower-cased."""


def parse_bytes(text: str, option: str) -> int:
    """``"1GB"`` → 10⁹, ``"512MiB"`` → 512·2²⁰, ``"4096"`` → 4096: the one parser of sizes.

    Args:
        text: the size as written.
        option: the option it was given to (``--shard-size``), for the message.

    Raises:
        ConfigError: not a positive number of bytes with one of the units of :data:`UNITS`.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in UNITS or float(match.group(1)) * UNITS[unit] < 1:
        raise ConfigError(f"{option} {text!r}: expected a size such as 16GiB, 500MB or 4096")
    return int(float(match.group(1)) * UNITS[unit])


def format_bytes(n: int) -> str:
    """``51930186 * 4`` → ``"198.10 MiB"``.

    Args:
        n: a size in bytes.
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def summary_table(s: Summary) -> Table:
    """The summary's rows as a rich table with the summary's columns.

    A row whose submodules have rows of their own (an expanded row) shows only what it holds and
    runs itself: its own parameters, own trainable parameters and own MACs; any other row shows
    its whole subtree's. A repeated call shows ``(shared)`` parameters.

    Args:
        s: a summary.
    """
    from rich.table import Table

    title = s.model if s.run == "none" else f"{s.model} · batch {s.batch_size}"
    table = Table(title=title, title_justify="left")
    table.add_column("module (type)", no_wrap=True)
    for column in s.columns:
        table.add_column(_HEADERS[column], justify="left" if "shape" in column else "right")
    for row in s.rows:
        expanded = not row.is_leaf and row.depth < s.depth  # its children have rows of their own
        label = "  " * row.depth + (f"{row.label} ({row.type})" if row.path else row.type)
        if row.call > 1:
            label += f" #{row.call}"
        cells = {
            "input_shape": inputs_text(row.input_shape, row.input_kwargs),
            "output_shape": shape_text(row.output_shape),
            "params": "(shared)"
            if row.call > 1
            else _cell(row.own_params if expanded else row.params),
            "trainable": "(shared)"
            if row.call > 1
            else _cell(row.own_trainable if expanded else row.trainable),
            "macs": _cell(row.own_macs if expanded else row.macs),
        }
        table.add_row(label, *(cells[c] for c in s.columns))
    return table


def summary_totals(s: Summary) -> str:
    """The lines under the summary's table: parameters, MACs, memory, and the error if any.

    Args:
        s: a summary.
    """
    lines = [
        f"total params: {s.total_params:,}  (trainable {s.trainable_params:,}, "
        f"non-trainable {s.non_trainable_params:,}; shared ones counted once)",
    ]
    if s.run == "none":  # nothing ran: no MACs, no activations
        lines.append(
            f"params: {format_bytes(s.param_bytes)} · buffers: {format_bytes(s.buffer_bytes)}"
        )
        return "\n".join(lines + [f"note: {note}" for note in s.notes])
    lines += [
        f"MACs per forward pass: {format_count(s.macs)} ({s.macs:,})",
        f"input: {format_bytes(s.input_bytes)} · forward activations: "
        f"{format_bytes(s.forward_activation_bytes)} · params: {format_bytes(s.param_bytes)}"
        f" · buffers: {format_bytes(s.buffer_bytes)}",
        f"training memory with Adam: {format_bytes(s.train_memory_bytes)} (params, grads, 2 Adam "
        f"states, buffers, {format_bytes(s.saved_activation_bytes)} saved for backward and the "
        "input)",
    ]
    if s.uncounted_ops:
        ops = ", ".join(f"{name} ×{n}" for name, n in sorted(s.uncounted_ops.items()))
        lines.append(f"MACs not counted (no formula) for: {ops}")
    if s.run == "real":
        lines.append(f"ran on real tensors: {s.run_reason}")
    elif s.run_reason:
        lines.append(f"stopped on meta: {s.run_reason}")
    lines += [f"note: {note}" for note in s.notes]
    if s.error:
        lines.append(f"error: {s.error}")
    return "\n".join(lines)


def render(s: Summary, width: int = 120) -> str:
    """The summary as text: a table of rows, then the totals.

    Args:
        s: a summary.
        width: the width of the text in characters. Default 120.
    """
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    console.print(summary_table(s))
    console.print(summary_totals(s), soft_wrap=True)
    return buffer.getvalue().rstrip() + "\n"


def _cell(n: int) -> str:
    """A count for a table cell: ``"--"`` for none, thousands separated otherwise."""
    return "--" if n == 0 else f"{n:,}"
