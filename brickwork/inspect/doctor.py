"""``brickwork doctor``: the classic ``nn.Module`` bugs, found before a step of training.

The model runs the way the summary runs it: a meta copy on meta inputs, so nothing is computed
and the model is left as it was. Each problem becomes a :class:`Finding` with a stable ``code``:

==================== =========================================================================
code                 what it means
==================== =========================================================================
missing-forward      a module without ``forward`` (often one indented into ``__init__``)
shape-mismatch       the first module whose input does not fit, with the value that would
forward-error        any other exception inside a forward, with the line of your code
unused-module        a submodule with parameters that the forward never calls
unregistered-module  modules, parameters or trainable tensors in a plain list/dict/tuple/set
batch-size-changed   the output's first dimension differs from the input's
state-leak           forward grows an attribute, or keeps the call's tensors, on the module
no-grad-param        trainable parameters that get no gradient from the output
input-ignored        the output does not depend on the input
mixed-devices        parameters or buffers on more than one device
side-effect          forward prints, or raises Python warnings
meta-limit           (warning) the forward needs real values (``.item()``, boolean masks), so
                     the checks that need a full pass cannot run
construction-error   building the model raised (command line)
==================== =========================================================================
"""

from __future__ import annotations

import ast
import inspect
import io
import math
import re
import sys
import textwrap
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch import nn

from brickwork.errors import DeviceError, closest, first_line, positive_int
from brickwork.inspect.params import device_of
from brickwork.inspect.summary import (
    MODULE_INTERNALS,
    MetaRun,
    batch_of,
    meta_copy,
    meta_inputs,
    resolve_model,
    storage_key,
    tensors_in,
)

NEEDS_A_FULL_PASS = (
    "unused-module",
    "batch-size-changed",
    "state-leak",
    "no-grad-param",
    "input-ignored",
)
CONTAINERS = (nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
"""Modules that hold others and are not meant to be called."""

_LIBRARY_DIRS = tuple(
    str(Path(file).resolve().parent) for file in (torch.__file__, Path(__file__).parent) if file
)  # torch's and brickwork's own folders: a user's line is outside both
_SHAPE_ERRORS = re.compile(
    r"cannot be multiplied|must have (the )?same reduction dim|size mismatch|shape '\[.*\]' is "
    r"invalid|The size of tensor a|Expected size|expected input.*to have|Given groups=|"
    r"Kernel size can't be greater|Expected.*(2D|3D|4D|5D)|normalized_shape|"
    r"running_mean should contain|Expected more than 1 value|expected .*D input|expected bias|"
    r"broadcast",
    re.IGNORECASE,
)


_META_LIMITS = re.compile(
    r"on meta tensors|register_meta|meta tensor|data-dependent|item\(\) cannot|"
    r"Cannot copy out of meta tensor|is not implemented for the 'Meta' backend|"
    r"could not run '.*' with arguments from the 'Meta' backend",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    """One problem: ``code`` (see the module docstring), ``severity`` (``error`` or
    ``warning``), the module ``path`` (``""`` for the model itself), what is wrong and a hint."""

    code: str
    severity: str
    path: str
    message: str
    hint: str | None = None


@dataclass
class Report:
    """What :func:`doctor` found. ``str(report)`` renders it; ``to_dict()`` is JSON-ready."""

    model: str
    findings: list[Finding] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    """Checks that need a full forward pass and could not run because it failed."""
    not_run_reason: str = "the forward failed"

    @property
    def ok(self) -> bool:
        """No finding of severity ``error`` (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    def codes(self) -> list[str]:
        """The codes found, in order (a code appears once per finding)."""
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        lines = []
        for f in self.findings:
            where = f.path or f"({self.model})"
            lines.append(f"{f.severity:<7} {f.code:<19} {where}: {f.message}")
            if f.hint:
                lines.append(f"{'':<28}hint: {f.hint}")
        errors = sum(f.severity == "error" for f in self.findings)
        warns = len(self.findings) - errors
        verdict = (
            "no problems found" if not self.findings else f"{errors} error(s), {warns} warning(s)"
        )
        lines.append(f"{self.model}: {verdict}")
        if self.not_run:
            lines.append(f"not run, because {self.not_run_reason}: {', '.join(self.not_run)}")
        return "\n".join(lines) + "\n"


def doctor(
    model_or_spec: nn.Module | Mapping[str, Any] | str,
    input_shape: Sequence[int] | None = None,
    input_data: Any = None,
    batch_size: int = 3,
    input_dtype: torch.dtype | str | None = None,
) -> Report:
    """Find the classic ``nn.Module`` bugs in a model, without running it for real.

    Args:
        model_or_spec: an ``nn.Module`` (left untouched), a spec or a registered family name.
        input_shape: shape of one sample, no batch dimension; a spec's ``input`` otherwise.
        input_data: instead of ``input_shape``: a tensor, tuple or dict of tensors (shapes only).
        batch_size: batch size of the trial input. Default 3, an odd size that a hard-coded
            ``view(-1, N)`` cannot hide behind.
        input_dtype: dtype of an ``input_shape`` input (``torch.long`` for token ids).

    Returns:
        A :class:`Report`; ``report.ok`` is ``False`` when an error was found.
    """
    positive_int(batch_size, "batch_size")
    model, shape, dtype = resolve_model(model_or_spec, input_shape, input_dtype)
    report = Report(type(model).__name__)
    report.findings += static_findings(model)
    if any(f.code == "missing-forward" and f.path == "" for f in report.findings):
        report.not_run = list(NEEDS_A_FULL_PASS)
        return report
    shadow = meta_copy(model)
    args, kwargs = meta_inputs(shape, input_data, batch_size, dtype)
    modules = dict(shadow.named_modules())
    before = _state(shadow)
    run = MetaRun(shadow, track=list(tensors_in((args, kwargs))))
    with _Watch() as watch:
        run.forward(args, kwargs)
    report.findings += watch.findings()
    if run.exception is not None:
        found = _diagnose(run, modules, report.model, report.findings)
        if found is not None:
            report.findings.append(found)
        report.not_run = list(NEEDS_A_FULL_PASS)
        if found is not None and found.code == "meta-limit":
            report.not_run_reason = "the forward needs real values"
        return report
    # With input_shape the batch is dimension 0 by construction; given input_data (a
    # sequence-first RNN's, say) any of the first input's sizes may be the batch.
    first = next(tensors_in((args, kwargs)), None)
    batches = {batch_of(args, kwargs)} if input_data is None or first is None else set(first.shape)
    report.findings += _batch_size(run, batches)
    report.findings += _input_use(run)
    report.findings += _gradients(run, shadow, modules)
    after_one = _state(shadow)
    with _Watch():  # its prints and warnings were reported from the first call
        MetaRun(shadow).forward(args, kwargs)  # a second call shows what accumulates
    report.findings += _state_leaks(before, after_one, _state(shadow))
    return report


# ----------------------------------------------------------------------------- static checks


def static_findings(model: nn.Module) -> list[Finding]:
    """Checks that read the model without running it: forward, registration, devices."""
    findings: list[Finding] = []
    registered = {id(t) for t in (*model.modules(), *model.parameters(), *model.buffers())}
    for path, module in model.named_modules():
        if type(module).forward is nn.Module.forward and not isinstance(module, CONTAINERS):
            findings.append(missing_forward(type(module), path))
        findings += _unregistered(module, path, registered)
    try:
        device_of(model)
    except DeviceError as err:
        findings.append(Finding("mixed-devices", "error", "", str(err), err.hint))
    return findings


def missing_forward(cls: type, path: str = "") -> Finding:
    """The ``missing-forward`` finding for a module class, naming a nested ``def forward``."""
    nested = _forward_inside_init(cls)
    if nested:
        message = (
            f"{cls.__name__} has no forward: `def forward` at {nested} is inside `__init__` "
            "(an indentation slip)"
        )
        hint = "dedent `def forward` to the class level, beside `__init__`"
    else:
        message = f"{cls.__name__} defines no forward, so calling it raises NotImplementedError"
        hint = "define `def forward(self, x):` on the class"
    return Finding("missing-forward", "error", path, message, hint)


def _forward_inside_init(cls: type) -> str | None:
    """``file:line`` of a ``def forward`` nested in the class's ``__init__``, if there is one."""
    try:
        lines, start = inspect.getsourcelines(cls)
        source_file = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            for inner in ast.walk(node):
                if isinstance(inner, ast.FunctionDef) and inner.name == "forward":
                    return f"{source_file}:{start + inner.lineno - 1}"
    return None


def _unregistered(module: nn.Module, path: str, registered: set[int]) -> Iterator[Finding]:
    """Modules and trainable tensors that only a plain attribute holds (an RNN's list of its own
    registered weights is fine: those are registered elsewhere)."""
    derived = {getattr(hook, "name", None) for hook in module._forward_pre_hooks.values()}
    for attr, value in vars(module).items():
        if attr in MODULE_INTERNALS or attr in derived:  # old weight_norm recomputes `weight`
            continue
        where = f"{path}.{attr}" if path else attr
        if isinstance(value, torch.Tensor) and value.requires_grad and id(value) not in registered:
            yield Finding(
                "unregistered-module",
                "error",
                where,
                f"`{attr}` is a tensor with requires_grad but not an nn.Parameter: "
                ".parameters(), .to() and state_dict do not see it",
                f"wrap it: self.{attr} = nn.Parameter(...)",
            )
            continue
        if not isinstance(value, list | tuple | set | dict):
            continue
        items = list(value.values()) if isinstance(value, dict) else list(value)
        items = [v for v in items if id(v) not in registered]
        modules = [  # a ReLU in a list holds nothing to train or move
            v for v in items if isinstance(v, nn.Module) and any(True for _ in v.state_dict())
        ]
        params = [v for v in items if isinstance(v, torch.Tensor) and v.requires_grad]
        if not modules and not params:
            continue
        frozen = bool(modules) and not any(p.requires_grad for m in modules for p in m.parameters())
        kind = type(value).__name__
        what = (
            f"{len(modules)} module(s) ({', '.join(sorted({type(m).__name__ for m in modules}))})"
            if modules
            else f"{len(params)} trainable tensor(s)"
        )
        fix = {
            (True, True): "nn.ModuleDict",
            (True, False): "nn.ModuleList",
            (False, True): "nn.ParameterDict",
            (False, False): "nn.ParameterList",
        }[(bool(modules), isinstance(value, dict))]
        if frozen:  # a frozen teacher kept out of the optimizer on purpose
            yield Finding(
                "unregistered-module",
                "warning",
                where,
                f"`{attr}` is a plain {kind} of {what}, all frozen: .to() and state_dict do not "
                "see them, so they stay on their device and out of checkpoints",
                f"if that is not intended, use {fix}(...) and keep them frozen",
            )
            continue
        yield Finding(
            "unregistered-module",
            "error",
            where,
            f"`{attr}` is a plain {kind} of {what}: .parameters(), .to() and state_dict do not "
            "see them, so the optimizer never trains them",
            f"use {fix}(...) instead of a {kind}",
        )


# ----------------------------------------------------------------------------- the forward pass


class _Watch:
    """Catches what a forward prints and the Python warnings it raises, with the user's line."""

    def __init__(self) -> None:
        self.printed = io.StringIO()
        self.printed_at: str | None = None  # the user's line of the first print
        self.caught: list[warnings.WarningMessage] = []

    def __enter__(self) -> _Watch:
        watch = self

        class Writer(io.StringIO):
            def write(self, text: str) -> int:
                if watch.printed_at is None and text.strip():
                    watch.printed_at = _user_frame(sys._getframe(1))
                return watch.printed.write(text)

        self._redirect = redirect_stdout(Writer())
        self._redirect.__enter__()
        self._warnings = warnings.catch_warnings(record=True)
        log = self._warnings.__enter__()
        self.caught = log if log is not None else []
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        self._redirect.__exit__(*exc)

    def findings(self) -> list[Finding]:
        found = []
        lines = self.printed.getvalue().strip().splitlines()
        if lines:
            text, where = lines[0], self.printed_at
            more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
            found.append(
                Finding(
                    "side-effect",
                    "warning",
                    "",
                    f"forward prints{f' at {where}' if where else ''}: {text[:120]!r}{more}",
                    "printing in forward floods training logs; use logging at debug level, or "
                    "brickwork.summary to see shapes",
                )
            )
        for w in self.caught:
            found.append(
                Finding(
                    "side-effect",
                    "warning",
                    "",
                    f"forward raises {w.category.__name__} at {w.filename}:{w.lineno}: {w.message}",
                )
            )
        return found


def _user_frame(frame: FrameType | None) -> str | None:
    while frame is not None:
        filename = str(Path(frame.f_code.co_filename).resolve())
        if not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _user_line(err: BaseException) -> str | None:
    """``file:line`` of the deepest frame of the traceback that is the user's code."""
    found = None
    for frame in traceback.extract_tb(err.__traceback__):
        filename = str(Path(frame.filename).resolve())
        if not filename.startswith(_LIBRARY_DIRS) and not frame.filename.startswith("<"):
            found = f"{frame.filename}:{frame.lineno}"
    return found


def _diagnose(
    run: MetaRun, modules: dict[str, nn.Module], model_name: str, found: list[Finding]
) -> Finding | None:
    err = run.exception
    assert err is not None
    row = run.failed
    path = row.path if row else ""
    module = modules.get(path)
    name = f"`{path}`" if path else model_name
    text = first_line(err)
    at = _user_line(err)
    at_text = f" at {at}" if at else ""
    if _META_LIMITS.search(str(err)):
        return Finding(
            "meta-limit",
            "warning",
            path,
            f"{name} uses an operation that needs real values{at_text} (data-dependent: "
            f".item(), a boolean mask, nonzero...), so it cannot run on meta tensors: {text}",
            "the checks that need a full pass did not run; run one real batch to exercise them",
        )
    if isinstance(err, NotImplementedError) and "forward" in text:
        if any(f.code == "missing-forward" for f in found):
            return None  # already reported, with the nested-def line if there is one
        return missing_forward(type(module) if module is not None else object, path)
    inputs = row.input_shape if row else None
    shaped = _shape_mismatch(module, path, inputs, run) if module is not None else None
    if shaped is not None:
        return shaped
    if isinstance(module, nn.Embedding):
        return Finding(
            "shape-mismatch",
            "error",
            path,
            f"{name} (Embedding) cannot take its input{at_text}: {text}",
            "an embedding takes integer token ids: give input_dtype=torch.long",
        )
    shown = _shape_text(inputs)
    if _SHAPE_ERRORS.search(str(err)):
        return Finding(
            "shape-mismatch",
            "error",
            path,
            f"{_labelled(name, module, path)} fails on input {shown}{at_text}: {text}",
            "print the shapes with brickwork.summary(model, input_shape) to see where they part",
        )
    if isinstance(err, AttributeError):
        match = re.search(r"has no attribute '(\w+)'", text)
        owner = module if module is not None else None
        if match and owner is not None:
            names = [n for n in dir(owner) if not n.startswith("__")]
            guess = closest(match.group(1), names)
            return Finding(
                "forward-error",
                "error",
                path,
                f"{name}.forward raises AttributeError{at_text}: {text}",
                f"did you mean {guess!r}?" if guess else None,
            )
    if isinstance(err, TypeError) and "missing" in text and "required positional argument" in text:
        return Finding(
            "forward-error",
            "error",
            path,
            f"{_labelled(name, module, path)} was called without its input{at_text}: {text}",
            f"pass the tensor: self.{path.rsplit('.', 1)[-1]}(x)" if path else None,
        )
    return Finding(
        "forward-error",
        "error",
        path,
        f"{name} raises {type(err).__name__}{at_text} on input {shown}: {text}",
    )


def _labelled(name: str, module: nn.Module | None, path: str) -> str:
    """```encoder` (Linear)`` for a submodule; the model's own name alone for the model."""
    return f"{name} ({type(module).__name__})" if path else name


def _shape_text(shapes: Any) -> str:
    if isinstance(shapes, list) and len(shapes) == 1:
        shapes = shapes[0]
    return str(shapes).replace(" ", "").replace(",", ", ")


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
                f"{dims + 2}, but receives {_shape_text([x])}",
                "it may come after a flatten: move it before, or use a Linear",
            )
        channels = x[1] if len(x) == dims + 2 else x[0]
        if channels != module.in_channels:
            return finding(
                f"{name} is {type(module).__name__}(in_channels={module.in_channels}) but receives "
                f"{channels} channels (input {_shape_text([x])})",
                f"set in_channels={channels}",
            )
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and len(x) > 1:
        if x[1] != module.num_features:
            return finding(
                f"{name} is {type(module).__name__}(num_features={module.num_features}) but "
                f"receives {x[1]} channels (input {_shape_text([x])})",
                f"set num_features={x[1]}",
            )
        ranks = {nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,)}
        expected = ranks.get(type(module))
        if expected and len(x) not in expected:
            fit = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}
            return finding(
                f"{name} is {type(module).__name__} but receives input of rank {len(x)} "
                f"({_shape_text([x])})",
                f"use {fit.get(len(x), 'a norm for this rank')}",
            )
    if isinstance(module, nn.LayerNorm):
        wanted = list(module.normalized_shape)
        if x[-len(wanted) :] != wanted:
            return finding(
                f"{name} is LayerNorm({tuple(wanted)}) but receives input {_shape_text([x])}",
                f"set normalized_shape={tuple(x[-len(wanted) :])}",
            )
    return None


# ----------------------------------------------------------------------------- after a full pass


def _batch_size(run: MetaRun, batches: set[int]) -> list[Finding]:
    outputs = [t for t in tensors_in(run.output) if t.dim() > 0]  # a scalar loss has no batch
    if not outputs or any(t.shape[0] in batches for t in outputs):
        return []
    out = outputs[0]
    batch = min(batches)
    culprit = next(
        (
            row
            for row in run.rows
            if isinstance(row.output_shape, list)
            and row.output_shape
            and isinstance(row.output_shape[0], int)
            and row.output_shape[0] not in batches
            and row.path
        ),
        None,
    )
    got = out.shape[0]
    received = culprit.input_shape[0] if culprit and culprit.input_shape else None
    if culprit is None:
        where = "it changes inside the model's own forward"
    elif isinstance(received, list) and received and received[0] not in batches:
        caller = _caller(run, culprit)
        where = (
            f"it changes inside {f'`{caller.path}`' if caller and caller.path else 'the model'}"
            f"'s own forward, before `{culprit.path}` receives {_shape_text(received)}"
        )
        culprit = caller if caller and caller.path else None
    else:
        where = (
            f"`{culprit.path}` ({culprit.type}) is the first to change it "
            f"({_shape_text(culprit.input_shape)} → {_shape_text(culprit.output_shape)})"
        )
    return [
        Finding(
            "batch-size-changed",
            "error",
            culprit.path if culprit else "",
            f"the output's first dimension is {got} but the batch has {batch} samples: {where}",
            "a view(-1, N) with a hard-coded N regroups samples; flatten with x.flatten(1) or "
            "x.view(x.size(0), -1)",
        )
    ]


def _caller(run: MetaRun, row: Any) -> Any:
    """The row of the call that made ``row``'s call (the nearest shallower row before it)."""
    index = next(i for i, r in enumerate(run.rows) if r is row)
    return next((r for r in reversed(run.rows[:index]) if r.depth < row.depth), None)


def _input_use(run: MetaRun) -> list[Finding]:
    outputs = list(tensors_in(run.output))
    if not outputs or any(storage_key(t) in run.tainted for t in outputs):
        return []
    return [
        Finding(
            "input-ignored",
            "error",
            "",
            "the output does not depend on the input",
            "check that forward uses its argument (not a stored tensor or a constant)",
        )
    ]


def _gradients(run: MetaRun, shadow: nn.Module, modules: dict[str, nn.Module]) -> list[Finding]:
    reached, opaque = _leaves_reached(list(tensors_in(run.output)))
    called = {row.path for row in run.rows}
    findings: list[Finding] = []
    unused: list[str] = []
    for path, module in modules.items():
        if not path or any(path == u or path.startswith(u + ".") for u in unused):
            continue
        params = list(module.parameters())
        if not params or any(id(p) in reached or storage_key(p) in run.read for p in params):
            continue  # used: through autograd, or read by some op (frozen weights, F.linear...)
        if not any(c == path or c.startswith(path + ".") for c in called):
            unused.append(path)
            findings.append(
                Finding(
                    "unused-module",
                    "error",
                    path,
                    f"`{path}` ({type(module).__name__}, {sum(p.numel() for p in params):,} "
                    "parameters) is registered but forward never calls it",
                    "call it in forward, or delete it (its parameters still go to the optimizer)",
                )
            )
    if opaque:  # a reentrant checkpoint hides which parameters it reaches
        return findings
    silent = [
        name
        for name, p in shadow.named_parameters()
        if p.requires_grad
        and id(p) not in reached
        and not any(name.startswith(u + ".") for u in unused)
    ]
    if silent:
        shown = ", ".join(f"`{n}`" for n in silent[:6]) + (" ..." if len(silent) > 6 else "")
        cause = (
            "the output carries no gradient at all (computed under no_grad, detached, or made of "
            "integers?)"
            if not reached
            else "their values do not reach the output (a detach(), an in-place overwrite, or an "
            "unused branch)"
        )
        findings.append(
            Finding(
                "no-grad-param",
                "error",
                silent[0].rsplit(".", 1)[0],
                f"{len(silent)} trainable parameter(s) get no gradient from the output: {shown}; "
                + cause,
                "freeze them with requires_grad_(False) if that is intended",
            )
        )
    return findings


def _leaves_reached(outputs: list[torch.Tensor]) -> tuple[set[int], bool]:
    """ids of the leaf tensors that backward from ``outputs`` would give a gradient, and whether
    the graph holds a node that recomputes its own graph in backward (a reentrant checkpoint),
    behind which the leaves cannot be seen."""
    reached: set[int] = set()
    opaque = False
    stack: list[Any] = [t.grad_fn for t in outputs if t.grad_fn is not None]
    seen: set[int] = set()
    for t in outputs:
        if t.grad_fn is None and t.requires_grad:
            reached.add(id(t))
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad: a leaf
        if variable is not None:
            reached.add(id(variable))
        opaque = opaque or "Checkpoint" in type(node).__name__
        stack.extend(next_node for next_node, _ in node.next_functions)
    return reached, opaque


def _state(model: nn.Module) -> dict[tuple[str, str], tuple[str, int]]:
    """What forward could accumulate: lengths of containers, identities of tensors."""
    state: dict[tuple[str, str], tuple[str, int]] = {}
    for path, module in model.named_modules():
        derived = {getattr(hook, "name", None) for hook in module._forward_pre_hooks.values()}
        for attr, value in vars(module).items():
            if attr in MODULE_INTERNALS or attr in derived:
                continue
            if isinstance(value, list | dict | set):
                state[(path, attr)] = ("len", len(value))
            elif isinstance(value, torch.Tensor):
                state[(path, attr)] = ("tensor", id(value))
    return state


def _state_leaks(
    before: dict[tuple[str, str], tuple[str, int]],
    first: dict[tuple[str, str], tuple[str, int]],
    second: dict[tuple[str, str], tuple[str, int]],
) -> list[Finding]:
    findings = []
    for (path, attr), (kind, value) in second.items():
        where = f"{path}.{attr}" if path else attr
        was = first.get((path, attr))
        if kind == "len" and was is not None and was[0] == "len" and value > was[1]:
            findings.append(
                Finding(
                    "state-leak",
                    "error",
                    where,
                    f"`self.{attr}` grows on every call ({was[1]} → {value} items after two "
                    "calls): it keeps every call's tensors and their autograd graphs alive",
                    "keep the trace in a local list and return it (see brickwork.LayerStack)",
                )
            )
        elif (
            kind == "tensor"
            and was is not None
            and was != (kind, value)
            and before.get((path, attr)) != was
        ):
            findings.append(
                Finding(
                    "state-leak",
                    "warning",
                    where,
                    f"`self.{attr}` is set to a tensor of each call: it keeps that call's autograd "
                    "graph alive until the next one",
                    f"return it instead, or store a detached copy: self.{attr} = x.detach()",
                )
            )
    return findings
