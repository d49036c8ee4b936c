"""What an exported file must give: PyTorch's own outputs on random batches of several sizes."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import BrickworkError, ConfigError, ExportError, ShapeError, first_line
from brickwork.exporting.arguments import SHAPE_HINT
from brickwork.inspect import device_of
from brickwork.spec import SpecInput

EXPORT_BATCH = 2
CHECK_BATCHES = (3, 1)
"""Exported at batch size 2 (torch.export specialises sizes 0 and 1), checked at 3 and 1."""
TOLERANCE = 1e-4
"""Largest difference allowed between an exported file's outputs and PyTorch's: absolute for
outputs within ±1, relative to the largest output beyond (a deep random-weight ResNet's logits
run to 10⁴, where float32 rounding alone exceeds 1e-4)."""

Writer = Callable[[Path], None]
"""Writes the exported file."""
Call = Callable[..., list[torch.Tensor]]
"""Runs an exported file on a batch of each input: the output's tensors."""
Batch = tuple[torch.Tensor, ...]
"""One batch of each of a model's inputs, in order."""
Runner = Callable[[Path], Call]
"""Reads an exported file back, ready to run."""


@contextmanager
def cpu_eval(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode on the CPU; the caller's model is left as it was."""
    device = device_of(model)  # raises DeviceError for a model spread over devices
    if device is not None and device.type == "meta":
        raise ConfigError("the model is on the meta device: it has no weights to export")
    ready = model if device is None or device.type == "cpu" else copy.deepcopy(model).cpu()
    modes = [(m, m.training) for m in ready.modules()]
    ready.eval()
    try:
        yield ready
    finally:
        for module, mode in modes:
            module.training = mode


def random_inputs(model: nn.Module, inputs: Sequence[SpecInput]) -> dict[int, Batch]:
    """Random batches of every input, the same on every call: export batch first, then the
    check batches."""
    generator = torch.Generator().manual_seed(0)
    vocabulary = min(  # token ids that every embedding takes
        (m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)), default=2
    )

    def batch(size: int, spec: SpecInput) -> torch.Tensor:
        shape, dtype = (size, *spec.shape), spec.dtype
        if dtype.is_floating_point:
            return torch.randn(shape, generator=generator, dtype=dtype)
        return torch.randint(0, vocabulary, shape, generator=generator, dtype=dtype)

    return {b: tuple(batch(b, spec) for spec in inputs) for b in (EXPORT_BATCH, *CHECK_BATCHES)}


def expected_outputs(model: nn.Module, inputs: dict[int, Batch]) -> dict[int, Any]:
    """PyTorch's outputs for each batch: what the exported file must give."""
    expected = {}
    for batch, xs in inputs.items():
        try:
            with torch.no_grad():
                expected[batch] = model(*xs)
        except BrickworkError:  # brickwork's models say what they take
            raise
        except Exception as err:
            given = " and ".join(
                f"{str(x.dtype).removeprefix('torch.')} input of shape {tuple(x.shape)}" for x in xs
            )
            raise ShapeError(
                f"{type(model).__name__} fails on a random {given} "
                f"({first_line(err, with_type=True)})",
                hint=SHAPE_HINT,
            ) from err
        leaves(expected[batch])  # tensors only
    return expected


def leaves(output: Any) -> list[torch.Tensor]:
    """The tensors of an output: a tensor, or tuples, lists and dicts of them, in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, list | tuple):
        return [t for item in output for t in leaves(item)]
    raise ExportError(f"the model returns {type(output).__name__}; exports need tensors")


@dataclass(frozen=True)
class Check:
    """What an exported file must give: PyTorch's outputs for each random batch.

    Attributes:
        fmt: the format, for messages.
        target: the file being exported, for messages.
        inputs: a random batch for each batch size, the export batch first.
        expected: PyTorch's outputs for each of them.
    """

    fmt: str
    target: Path
    inputs: dict[int, Batch]
    expected: dict[int, Any]

    def write(self, exporter: tuple[Writer, Runner], tmp: Path) -> None:
        """Write the file to ``tmp``, read it back, and compare its outputs with PyTorch's."""
        write, run = exporter
        try:
            write(tmp)
        except OSError:  # disk full, permissions: the CLI reports them as they are
            raise
        except Exception as err:  # e.g. protobuf's 2 GiB limit on an ONNX file
            raise ExportError(
                f"{self.target}: cannot write the {self.fmt} file "
                f"({first_line(err, with_type=True)})"
            ) from err
        try:
            call = run(tmp)
        except Exception as err:
            raise ExportError(
                f"{self.target}: the exported {self.fmt} file cannot be read back "
                f"({first_line(err, with_type=True)}); it was not written"
            ) from err
        for batch, xs in self.inputs.items():
            self.compare(call, batch, xs)

    def compare(self, call: Call, batch: int, xs: Batch) -> None:
        """Run the exported file on ``xs``; its outputs must match PyTorch's."""
        fmt, target = self.fmt, self.target
        want = leaves(self.expected[batch])
        try:
            got = call(*xs)
        except Exception as err:  # the runtime refuses the file or this batch size
            raise ExportError(
                f"{target}: the exported {fmt} file fails at batch size {batch} "
                f"({first_line(err, with_type=True)}); it was not written"
            ) from err
        shapes = [tuple(t.shape) for t in got]
        if shapes != [tuple(t.shape) for t in want]:
            raise ExportError(
                f"{target}: the exported {fmt} file gives outputs of shape {shapes} at batch "
                f"size {batch}, PyTorch {[tuple(t.shape) for t in want]}; it was not written"
            )
        pairs = [(g.double(), w.double()) for g, w in zip(got, want, strict=True) if w.numel()]
        diffs = [float((g - w).abs().max()) for g, w in pairs]
        diff = math.nan if any(map(math.isnan, diffs)) else max(diffs, default=0.0)
        scale = max([1.0, *(float(w.nan_to_num(0.0).abs().max()) for _, w in pairs)])
        if not diff <= TOLERANCE * scale:  # `not <=` also catches NaN
            allowed = f"{TOLERANCE:g}" + (
                f" × {scale:.3g}, the outputs' largest magnitude" if scale > 1 else ""
            )
            raise ExportError(
                f"{target}: the exported {fmt} file's outputs differ from PyTorch's by up to "
                f"{diff:.3g} at batch size {batch} (allowed: {allowed}); it was not written"
            )
