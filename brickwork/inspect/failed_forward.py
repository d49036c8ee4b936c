"""The doctor's diagnosis of a forward that raised: which finding, where, and the fix.

A meta forward that needs real values, where no real run could follow, is a ``meta-limit``; a
module without ``forward`` is ``missing-forward``; a stock layer whose sizes do not fit its
input, or an error that reads like a shape error, is ``shape-mismatch`` (with the size that would
fit); anything else is ``forward-error`` with the user's line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from brickwork.errors import closest, first_line
from brickwork.inspect.findings import Finding
from brickwork.inspect.inspection import limit_text, needs_real_values
from brickwork.inspect.meta_run import MetaRun
from brickwork.inspect.render import inputs_text, shape_text
from brickwork.inspect.static_checks import missing_forward
from brickwork.inspect.user_code import user_line

_SHAPE_ERRORS = re.compile(
    r"cannot be multiplied|must have (the )?same reduction dim|size mismatch|shape '\[.*\]' is "
    r"invalid|The size of tensor a|Expected size|expected input.*to have|Given groups=|"
    r"Kernel size can't be greater|Expected.*(2D|3D|4D|5D)|normalized_shape|"
    r"running_mean should contain|Expected more than 1 value|expected .*D input|expected bias|"
    r"broadcast",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Failure:
    """What is known of the failing call: the error and the module that raised it."""

    err: Exception
    path: str  # "" for the model itself
    module: nn.Module | None
    name: str  # `path`, or the model's class name
    text: str  # the error's first line
    at_text: str  # " at file:line" of the user's code, or ""
    inputs: Any  # shapes of the module's positional inputs
    named: dict[str, Any]  # shapes of its inputs given by name


def diagnose(
    run: MetaRun, modules: dict[str, nn.Module], model_name: str, found: list[Finding]
) -> Finding | None:
    """The finding that explains why ``run``'s forward raised.

    Args:
        run: a run whose forward raised (``run.exception`` is set).
        modules: the meta copy's ``named_modules()``, by path.
        model_name: the model's class name, for messages about the model itself.
        found: the findings so far (a ``missing-forward`` among them is not repeated).

    Returns:
        One finding; ``None`` when the failure was already reported.
    """
    err = run.exception
    assert err is not None
    row = run.failed
    path = row.path if row else ""
    at = user_line(err)
    f = _Failure(
        err=err,
        path=path,
        module=modules.get(path),
        name=f"`{path}`" if path else model_name,
        text=first_line(err),
        at_text=f" at {at}" if at else "",
        inputs=row.input_shape if row else None,
        named=row.input_kwargs if row else {},
    )
    if isinstance(err, NotImplementedError) and "forward" in f.text and "meta" not in f.text:
        if any(finding.code == "missing-forward" for finding in found):
            return None  # already reported, with the nested-def line if there is one
        return missing_forward(type(f.module) if f.module is not None else object, path)
    if run.undo is None and needs_real_values(run):
        finding = Finding(
            "meta-limit",
            "warning",
            path,
            f"{limit_text(run)} (data-dependent: .item(), a boolean mask, nonzero...), so it "
            f"cannot run on meta tensors: {f.text}",
            "the checks that need a full pass did not run; run them for real: run='real' "
            "(--run real) on a model built with real weights",
        )
    else:
        finding = _shape_finding(f, run) or _forward_error(f)
    return replace(finding, line=at) if at and finding.line is None else finding


def _shape_finding(f: _Failure, run: MetaRun) -> Finding | None:
    """A ``shape-mismatch`` when the failing module or the error's words say so."""
    module, path = f.module, f.path
    shaped = _shape_mismatch(module, path, f.inputs, run) if module is not None else None
    if shaped is not None:
        return shaped
    if isinstance(module, nn.Embedding):
        return Finding(
            "shape-mismatch",
            "error",
            path,
            f"{f.name} (Embedding) cannot take its input{f.at_text}: {f.text}",
            "an embedding takes integer token ids: give input_dtype=torch.long",
        )
    if _SHAPE_ERRORS.search(str(f.err)):
        return Finding(
            "shape-mismatch",
            "error",
            path,
            f"{_labelled(f.name, module, path)} fails on input {inputs_text(f.inputs, f.named)}"
            f"{f.at_text}: {f.text}",
            "print the shapes with brickwork.summary(model, input_shape) to see where they part",
        )
    return None


def _forward_error(f: _Failure) -> Finding:
    """A ``forward-error``, with the attribute meant or the argument missing when it can tell."""
    module, path, text = f.module, f.path, f.text
    if isinstance(f.err, AttributeError):
        match = re.search(r"has no attribute '(\w+)'", text)
        if match and module is not None:
            names = [n for n in dir(module) if not n.startswith("__")]
            guess = closest(match.group(1), names)
            return Finding(
                "forward-error",
                "error",
                path,
                f"{f.name}.forward raises AttributeError{f.at_text}: {text}",
                f"did you mean {guess!r}?" if guess else None,
            )
    if (
        isinstance(f.err, TypeError)
        and "missing" in text
        and "required positional argument" in text
    ):
        return Finding(
            "forward-error",
            "error",
            path,
            f"{_labelled(f.name, module, path)} was called without its input{f.at_text}: {text}",
            f"pass the tensor: self.{path.rsplit('.', 1)[-1]}(x)" if path else None,
        )
    return Finding(
        "forward-error",
        "error",
        path,
        f"{f.name} raises {type(f.err).__name__}{f.at_text} on input "
        f"{inputs_text(f.inputs, f.named)}: "
        f"{text}",
    )


def _labelled(name: str, module: nn.Module | None, path: str) -> str:
    """```encoder` (Linear)`` for a submodule; the model's own name alone for the model."""
    return f"{name} ({type(module).__name__})" if path else name


def _factor(size: int, run: MetaRun) -> str:
    """``50176 = 64×28×28`` when an earlier module's output had that many values per sample."""
    for row in reversed(run.rows):
        shape = row.output_shape
        if row is run.failed or not isinstance(shape, list) or len(shape) < 3:
            continue
        if all(isinstance(s, int) for s in shape) and math.prod(shape[1:]) == size:
            return f"{size} = {'×'.join(map(str, shape[1:]))}"
    return str(size)


def _shape_mismatch(module: nn.Module, path: str, inputs: Any, run: MetaRun) -> Finding | None:
    """A precise message for the stock layers whose sizes a user types by hand."""
    if not inputs or not isinstance(inputs[0], list):
        return None
    x: list[int] = inputs[0]
    name = f"`{path}`" if path else type(module).__name__

    def finding(message: str, hint: str) -> Finding:
        return Finding("shape-mismatch", "error", path, message, hint)

    if isinstance(module, nn.Linear) and x and x[-1] != module.in_features:
        got = x[-1]
        return finding(
            f"{name} is Linear(in_features={module.in_features}) but receives {_factor(got, run)} "
            "features",
            f"set in_features={got}, or let brickwork infer it (brickwork.build / CNNClassifier)",
        )
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        dims = len(module.kernel_size)
        if len(x) not in (dims + 1, dims + 2):
            return finding(
                f"{name} is {type(module).__name__} and needs (B, C, {'...'}) input of rank "
                f"{dims + 2}, but receives {shape_text(x)}",
                "it may come after a flatten: move it before, or use a Linear",
            )
        channels = x[1] if len(x) == dims + 2 else x[0]
        if channels != module.in_channels:
            return finding(
                f"{name} is {type(module).__name__}(in_channels={module.in_channels}) but receives "
                f"{channels} channels (input {shape_text(x)})",
                f"set in_channels={channels}",
            )
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and len(x) > 1:
        if x[1] != module.num_features:
            return finding(
                f"{name} is {type(module).__name__}(num_features={module.num_features}) but "
                f"receives {x[1]} channels (input {shape_text(x)})",
                f"set num_features={x[1]}",
            )
        ranks = {nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,)}
        expected = ranks.get(type(module))
        if expected and len(x) not in expected:
            fit = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}
            return finding(
                f"{name} is {type(module).__name__} but receives input of rank {len(x)} "
                f"({shape_text(x)})",
                f"use {fit.get(len(x), 'a norm for this rank')}",
            )
    if isinstance(module, nn.LayerNorm):
        wanted = list(module.normalized_shape)
        if x[-len(wanted) :] != wanted:
            return finding(
                f"{name} is LayerNorm({tuple(wanted)}) but receives input {shape_text(x)}",
                f"set normalized_shape={tuple(x[-len(wanted) :])}",
            )
    return None
