"""The doctor's checks that need a forward pass that ran through.

They read the run (:class:`~brickwork.inspect.meta_run.MetaRun`): the batch size of the output,
whether the output depends on the input, which parameters get a gradient, which modules are never
called; and the modules' attributes before and after two calls, for state that grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from brickwork.inspect.findings import Finding
from brickwork.inspect.meta_copy import user_attributes
from brickwork.inspect.meta_run import MetaRun, storage_key, tensors_in
from brickwork.inspect.render import inputs_text, names_text
from brickwork.inspect.rows import SummaryRow
from brickwork.inspect.source import other_callers

ModuleState = dict[tuple[str, str], tuple[str, int]]
"""(module path, attribute) → ``("len", length)`` of a container or ``("tensor", id)``."""


def batch_size_findings(
    run: MetaRun, batches: set[int], inputs: Sequence[torch.Tensor], model: nn.Module
) -> list[Finding]:
    """A ``batch-size-changed`` error when no output keeps a batch size, naming where it changed.

    An output keeps the batch when its first dimension is the batch, or the batch times the
    sizes that follow it in an input (logits flattened with ``view(-1, logits.size(-1))``), or,
    in a model with a sequence-first layer (``batch_first=False``), when its second is.

    Args:
        run: a run that ran through.
        batches: the sizes that count as the batch (any of the first input's sizes, when the
            batch dimension is not known).
        inputs: the input tensors.
        model: the copy that ran (for its sequence-first layers).
    """
    flattened = set(batches)
    for t in inputs:
        for k in range(2, t.dim() + 1):
            flattened.add(math.prod(t.shape[:k]))
    seq_first = any(getattr(m, "batch_first", True) is False for m in model.modules())

    def keeps(t: torch.Tensor) -> bool:
        if t.shape[0] in flattened or (seq_first and t.dim() > 1 and t.shape[1] in batches):
            return True
        return _joined_batches(t, batches)

    outputs = [t for t in tensors_in(run.output) if t.dim() > 0]  # a scalar loss has no batch
    if not outputs or any(keeps(t) for t in outputs) or _one_per_sample(run.output, batches):
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
            f"'s own forward, before `{culprit.path}` receives {inputs_text(received)}"
        )
        culprit = caller if caller and caller.path else None
    else:
        where = (
            f"`{culprit.path}` ({culprit.type}) is the first to change it "
            f"({inputs_text(culprit.input_shape)} → {inputs_text(culprit.output_shape)})"
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


def uncalled_without_forward(findings: list[Finding], run: MetaRun) -> list[Finding]:
    """``findings`` with each ``missing-forward`` error of a submodule that the forward, which
    ran through, never called made a note: a module used only through its other methods (RAFT's
    ``CorrBlock``) needs no forward. One with a ``def forward`` slipped into ``__init__`` (its
    line known) stays an error.

    Args:
        findings: the findings so far.
        run: a run that ran through.
    """
    called = {row.path for row in run.rows}
    kept = []
    for f in findings:
        if f.code == "missing-forward" and f.path and f.line is None and f.path not in called:
            f = replace(
                f,
                severity="note",
                message=f"{f.message.split(',')[0]}; forward never calls it (it may use its "
                "other methods), so that is fine here",
                hint=None,
            )
        kept.append(f)
    return kept


def _joined_batches(t: torch.Tensor, batches: set[int], limit: int = 256) -> bool:
    """``t``'s first dimension is batches joined along it: its autograd graph holds a
    ``torch.cat`` along dimension 0 of tensors whose first dimension is each a batch, and which
    made that size (two inputs' batches joined, as a contrastive model joins two views).

    Args:
        t: an output tensor.
        batches: the sizes that count as the batch.
        limit: how many autograd nodes to look at, from the output back.
    """
    stack, seen = [t.grad_fn], 0
    while stack and seen < limit:
        node = stack.pop()
        if node is None:
            continue
        seen += 1
        if type(node).__name__ == "CatBackward0":
            try:  # private metadata: what each gradient's shape, so each forward value's, is
                joined = node._input_metadata[0].shape
                dim = node._saved_dim % len(joined)  # type: ignore[attr-defined]
                parts = [n._input_metadata[i].shape[0] for n, i in node.next_functions if n]
            except (AttributeError, IndexError, TypeError, ZeroDivisionError):
                return False
            if dim == 0 and joined[0] == t.shape[0]:
                return bool(parts) and all(p in batches for p in parts)
        stack.extend(n for n, _ in node.next_functions)
    return False


def _one_per_sample(output: Any, batches: set[int]) -> bool:
    """A list with one dict or list per sample (a detection model's boxes and labels)."""
    return (
        isinstance(output, list)
        and len(output) in batches
        and all(isinstance(item, dict | list) for item in output)
    )


def _caller(run: MetaRun, row: SummaryRow) -> SummaryRow | None:
    """The row of the call that made ``row``'s call (the nearest shallower row before it)."""
    index = next(i for i, r in enumerate(run.rows) if r is row)
    return next((r for r in reversed(run.rows[:index]) if r.depth < row.depth), None)


def input_use_findings(run: MetaRun, inputs: Sequence[torch.Tensor]) -> list[Finding]:
    """An ``input-ignored`` error when no output is computed from the input.

    Args:
        run: a run that ran through, tracking the input's tensors.
        inputs: the input tensors (none for a forward that takes none: nothing to ignore).
    """
    outputs = list(tensors_in(run.output))
    if not inputs or not outputs or any(storage_key(t) in run.tainted for t in outputs):
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


def gradient_findings(
    run: MetaRun, shadow: nn.Module, modules: dict[str, nn.Module]
) -> list[Finding]:
    """``unused-module`` for modules with parameters that the forward never calls, and
    ``no-grad-param`` for trainable parameters that backward from the output would not reach.

    A module that another public method (``generate``) calls is a note, not an error; so are
    parameters used under ``torch.no_grad()`` or updated outside autograd (a frozen backbone,
    an EMA teacher).

    Args:
        run: a run that ran through.
        shadow: the copy it ran.
        modules: the copy's ``named_modules()``, by path.
    """
    reached, opaque = _leaves_reached(list(tensors_in(run.output)))
    findings, unused = _unused_findings(run, shadow, modules, reached)
    if opaque:  # a reentrant checkpoint hides which parameters it reaches
        return findings
    silent: list[str] = []
    outside: list[str] = []
    for name, p in shadow.named_parameters():
        if not p.requires_grad or id(p) in reached or any(name.startswith(u + ".") for u in unused):
            continue
        (outside if storage_key(p) in run.read_without_grad else silent).append(name)
    if outside:
        findings.append(
            Finding(
                "no-grad-param",
                "note",
                outside[0].rsplit(".", 1)[0],
                f"{len(outside)} trainable parameter(s) are used only under torch.no_grad() or "
                f"updated outside autograd, so they get no gradient: {names_text(outside)}",
                "if they are frozen on purpose, requires_grad_(False) keeps them out of the "
                "optimizer too",
            )
        )
    if silent and not shadow.training:
        findings.append(
            Finding(
                "no-grad-param",
                "note",
                silent[0].rsplit(".", 1)[0],
                f"{len(silent)} trainable parameter(s) get no gradient from the output in eval "
                f"mode: {names_text(silent)}; in training mode the loss may reach them",
                "run the doctor on the model in training mode (model.train()) to check",
            )
        )
    elif silent:
        cause = (
            "the output carries no gradient at all (detached, or made of integers?)"
            if not reached
            else "their values do not reach the output (a detach(), an in-place overwrite, or an "
            "unused branch)"
        )
        if next(tensors_in(run.output), None) is None:
            cause = f"the output holds no tensor (it is a {type(run.output).__name__})"
        path = silent[0].rsplit(".", 1)[0]
        findings.append(
            Finding(
                "no-grad-param",
                "error",
                path,
                f"{len(silent)} trainable parameter(s) get no gradient from the output: "
                f"{names_text(silent)}; {cause}",
                "freeze them with requires_grad_(False) if that is intended",
            )
        )
    return findings


def _unused_findings(
    run: MetaRun, shadow: nn.Module, modules: dict[str, nn.Module], reached: set[int]
) -> tuple[list[Finding], list[str]]:
    """``unused-module`` findings (errors, or notes for a module that another method, another
    key or training mode would run), and the paths of the unused modules."""
    called = {row.path for row in run.rows}
    findings: list[Finding] = []
    unused: list[str] = []
    for path, module in modules.items():
        if not path or any(path == u or path.startswith(u + ".") for u in unused):
            continue
        params = list(module.parameters())
        if not params or any(id(p) in reached or storage_key(p) in run.read for p in params):
            continue  # used: through autograd, or read by some op (frozen weights, F.linear...)
        if any(c == path or c.startswith(path + ".") for c in called):
            continue
        unused.append(path)
        size = f"{type(module).__name__}, {sum(p.numel() for p in params):,} parameters"
        why = _unused_on_purpose(path, shadow, modules, called)
        if why is not None:
            note = f"`{path}` ({size}) {why}"
            findings.append(Finding("unused-module", "note", path, note, None))
            continue
        findings.append(
            Finding(
                "unused-module",
                "error",
                path,
                f"`{path}` ({size}) is registered but forward never calls it",
                "call it in forward, or delete it (its parameters still go to the optimizer)",
            )
        )
    return findings, unused


def _unused_on_purpose(
    path: str, shadow: nn.Module, modules: dict[str, nn.Module], called: set[str]
) -> str | None:
    """Why a module that did not run may be meant so (the end of a note's message): another
    public method uses it, forward picked another entry of its ``ModuleDict``, or the model is
    in eval mode (an auxiliary head runs only in training); ``None`` otherwise."""
    method = other_callers(shadow, path)
    if method is not None:
        return f"is not called by forward; {method}() uses it"
    picked = _picked_instead(path, modules, called)
    if picked is not None:
        return (
            f"did not run on these inputs; forward picked `{picked}` from the same ModuleDict, "
            "so another key would run it"
        )
    if not shadow.training:
        return (
            "did not run with the model in eval mode; a forward may call it only in training "
            "(an auxiliary head): run the doctor on model.train() to check it"
        )
    return None


def _picked_instead(path: str, modules: dict[str, nn.Module], called: set[str]) -> str | None:
    """The entry of the ``nn.ModuleDict`` that holds ``path`` which ran instead of it (a
    forward that picks one by key, ``self.heads[task](x)``), or ``None``."""
    parent = path.rpartition(".")[0]
    if not isinstance(modules.get(parent), nn.ModuleDict):
        return None
    depth = path.count(".")
    ran = sorted(c for c in called if c.startswith(parent + ".") and c.count(".") == depth)
    return ran[0] if ran else None


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


def module_state(model: nn.Module) -> ModuleState:
    """What forward could accumulate: lengths of containers, identities of tensors.

    Args:
        model: the meta copy, between calls.
    """
    state: ModuleState = {}
    for path, module in model.named_modules():
        for attr, value in user_attributes(module):
            if isinstance(value, list | dict | set):
                state[(path, attr)] = ("len", len(value))
            elif isinstance(value, torch.Tensor):
                state[(path, attr)] = ("tensor", id(value))
    return state


def state_leak_findings(
    before: ModuleState, first: ModuleState, second: ModuleState
) -> list[Finding]:
    """``state-leak`` findings: a container that grows from the first call to the second (error),
    an attribute set to a new tensor on each call (warning).

    Args:
        before: :func:`module_state` before the first call.
        first: after the first call.
        second: after the second call.
    """
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
