"""``brickwork doctor``: the classic ``nn.Module`` bugs, found before a step of training.

The model runs the way the summary runs it (:mod:`~brickwork.inspect.inspection`): a meta copy
on meta inputs, so nothing is computed, or for real when an op needs values; the model is left as
it was either way. First the checks that only read the model
(:mod:`~brickwork.inspect.static_checks`); then one forward, whose prints and warnings are caught
(:mod:`~brickwork.inspect.watch`). A forward that raises is diagnosed
(:mod:`~brickwork.inspect.failed_forward`); one that runs through is checked, and called a second
time to see what accumulates (:mod:`~brickwork.inspect.full_pass`). Each problem becomes a
:class:`~brickwork.inspect.findings.Finding` with a stable ``code``, listed in
:mod:`~brickwork.inspect.findings`; those the user silenced are set apart
(:func:`silence`). Each stage adds to one :class:`~brickwork.inspect.findings.Report`, so that
later stages (a training step's checks) can follow the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, positive_int, unknown_name_message
from brickwork.inspect.doctor_step import BATCH, SEED, TRAINING_CODES, training_checks
from brickwork.inspect.failed_forward import diagnose
from brickwork.inspect.findings import FINDING_CODES, IGNORE_ATTRIBUTE, FindingCode, Report
from brickwork.inspect.full_pass import (
    batch_size_findings,
    gradient_findings,
    input_use_findings,
    module_state,
    state_leak_findings,
    uncalled_without_forward,
)
from brickwork.inspect.inputs import make_inputs, needs_input
from brickwork.inspect.inspection import Inspection, RunMode
from brickwork.inspect.meta_copy import type_name, unwrap_compiled
from brickwork.inspect.meta_run import tensors_in
from brickwork.inspect.source import assigned_at, ignored_on_line
from brickwork.inspect.static_checks import static_findings
from brickwork.inspect.summary import resolve_model, spec_input_data
from brickwork.inspect.training_setup import check_training_arguments, training_setup
from brickwork.inspect.watch import Watch

NEEDS_A_FULL_PASS: tuple[FindingCode, ...] = (
    "unused-module",
    "batch-size-changed",
    "state-leak",
    "no-grad-param",
    "input-ignored",
)
"""The codes of the checks that need a forward pass that ran through."""


def doctor(
    model_or_spec: nn.Module | Mapping[str, Any] | str,
    input_shape: Sequence[int] | None = None,
    input_data: Any = None,
    batch_size: int = 3,
    input_dtype: torch.dtype | str | None = None,
    run: RunMode = "auto",
    ignore: Collection[str] = (),
    select: Collection[str] | None = None,
    *,
    loss: Any = None,
    optimizer: Any = None,
    target: Any = None,
    steps: int | None = None,
) -> Report:
    """Find the classic ``nn.Module`` bugs in a model, on meta tensors first; with a ``loss``,
    the bugs of its training step too, on a few real steps of a copy.

    Args:
        model_or_spec: an ``nn.Module`` (left untouched), a spec or a registered family name.
        input_shape: shape of one sample, no batch dimension; a spec's ``input`` otherwise.
            Given neither this nor ``input_data``, a model whose forward takes nothing runs so;
            for any other only the checks that need no forward run.
        input_data: instead of ``input_shape``: a tensor, tuple or dict of tensors (real ones
            are used by a real run; meta ones stand for their shape).
        batch_size: batch size of the trial input. Default 3, an odd size that a hard-coded
            ``view(-1, N)`` cannot hide behind.
        input_dtype: dtype of an ``input_shape`` input (``torch.long`` for token ids).
        run: ``"auto"`` (default: meta, then real when an op needs values), ``"meta"`` or
            ``"real"``, as for :func:`~brickwork.inspect.summary.summary`.
        ignore: codes to leave out of the report (``["unused-module"]``).
        select: if given, the only codes to report.
        loss: runs the training checks (:mod:`~brickwork.inspect.doctor_step`): a name
            (``"cross_entropy"``, ``"mse"``, ``"bce"``...), an ``nn.Module`` or a function
            ``loss(output, target)``, called as your training loop calls it.
        optimizer: the optimizer the checks step a copy of: yours, over the model's parameters
            (its groups, state and settings are copied, yours is not touched), a name
            (``"adamw"``, ``"sgd"``: PyTorch's defaults), or ``None`` for ``Adam(lr=1e-3)``.
        target: the target of ``input_data``; ``None`` for a random one that fits the loss.
        steps: optimizer steps on the fixed batch; default 5, stopping early once the loss is
            near its floor. From 10 on, ``cannot-overfit`` also asks for the loss near its floor.

    Returns:
        A :class:`Report`; ``report.ok`` is ``False`` when an error was found.

    Raises:
        ConfigError: an unknown code in ``ignore`` or ``select``, a bad batch size or run, an
            unknown loss or optimizer, or a target that cannot be made for the loss.
    """
    positive_int(batch_size, "batch_size")
    ignored = check_codes(ignore, "ignore")
    selected = None if select is None else check_codes(select, "select")
    if loss is not None:
        check_training_arguments(loss, optimizer, steps, target, input_data)
    model, shape, dtype = resolve_model(model_or_spec, input_shape, input_dtype)
    report = Report(type_name(unwrap_compiled(model)))
    report.findings += static_findings(model)
    if any(f.code == "missing-forward" and f.path == "" for f in report.findings):
        report.not_run = list(NEEDS_A_FULL_PASS)
    else:
        given = input_data if shape is not None else spec_input_data(model, input_data, batch_size)
        if shape is None and given is None and needs_input(model):
            report.not_run = ["shape-mismatch", "forward-error", "side-effect", *NEEDS_A_FULL_PASS]
            report.not_run_reason = "no input was given (pass input_shape or input_data)"
            return silence(report, model, ignored, selected)
        if shape is None and given is None:
            given = ()  # a forward that takes nothing
        inputs = make_inputs(shape, given, batch_size, dtype)
        with Inspection(model, inputs, run) as inspection:
            _forward_checks(report, inspection, batch_known=input_data is None)
    if loss is not None:
        training = {"loss": loss, "optimizer": optimizer, "target": target, "steps": steps}
        _training(report, model_or_spec, (model, shape, dtype), input_data, training)
    return silence(report, model, ignored, selected)


def _training(
    report: Report,
    model_or_spec: Any,
    resolved: tuple[nn.Module, tuple[int, ...] | None, torch.dtype],
    input_data: Any,
    training: dict[str, Any],
) -> None:
    """The training checks, on the model with real weights (a spec or family built on the CPU,
    under a seed of its own), when the checks before let them run."""
    model, shape, dtype = resolved
    if report.not_run:  # the forward did not run through: neither can a training step
        report.not_run += list(TRAINING_CODES)
        return
    if not isinstance(model_or_spec, nn.Module):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            model = resolve_model(model_or_spec, shape, dtype, device="cpu")[0]
    if any(t.device.type == "meta" for t in (*model.parameters(), *model.buffers())):
        report.not_run = list(TRAINING_CODES)
        report.not_run_reason = "the model's weights are on meta"
        return
    if not any(p.requires_grad for p in model.parameters()):
        report.training = "nothing to train: the model has no trainable parameter"
        return
    setup = training_setup(model, **training)
    given = input_data is not None and any(t.device.type != "meta" for t in tensors_in(input_data))
    data = input_data if shape is not None else spec_input_data(model, input_data, BATCH)
    training_checks(report, model, make_inputs(shape, data, BATCH, dtype), setup, given)


def _forward_checks(report: Report, inspection: Inspection, batch_known: bool) -> None:
    """Run the model once (twice when it runs through) and add what the checks find."""
    before: list[Any] = []
    run = inspection.forward(
        track=True, before=lambda copy: before.append(module_state(copy)), watch=Watch
    )
    report.run, report.run_reason = inspection.kind, inspection.reason
    report.findings += inspection.watched.findings()
    modules = dict(inspection.copy.named_modules())
    if run.exception is not None:
        found = diagnose(run, modules, report.model, report.findings)
        if found is not None:
            report.findings.append(found)
        report.not_run = list(NEEDS_A_FULL_PASS)
        if found is not None and found.code == "meta-limit":
            report.not_run_reason = "the forward needs real values"
        return
    # With input_shape the batch is dimension 0 by construction; given input_data (a
    # sequence-first RNN's, say) any of the first input's sizes may be the batch.
    inputs = list(tensors_in((inspection.args, inspection.kwargs)))  # nested ones too
    sizes = set(inputs[0].shape) if inputs and not batch_known else set()
    batches = {inspection.inputs.batch} | sizes
    ignored = input_use_findings(run, inputs)
    if inputs and not ignored:  # no input, or one ignored: no batch to keep
        report.findings += batch_size_findings(run, batches, inputs, inspection.copy)
    report.findings += ignored
    report.findings = uncalled_without_forward(report.findings, run)
    report.findings += gradient_findings(run, inspection.copy, modules)
    after_one = module_state(inspection.copy)
    run.release()  # a real run's activations need not live through the second call
    with Watch():  # its prints and warnings were reported from the first call
        inspection.again()  # a second call shows what accumulates
    report.findings += state_leak_findings(before[-1], after_one, module_state(inspection.copy))


def check_codes(codes: Collection[str], what: str) -> frozenset[str]:
    """``codes`` if each is a finding code; ``--ignore unused-module,state-leak`` style commas
    are split.

    Args:
        codes: finding codes.
        what: the argument's name, for the message (``ignore``).

    Raises:
        ConfigError: an unknown code (with the closest one).
    """
    if isinstance(codes, str):
        codes = [codes]
    found = {c.strip() for code in codes for c in code.split(",") if c.strip()}
    for code in sorted(found):
        if code not in FINDING_CODES:
            message = unknown_name_message("finding code", code, FINDING_CODES)
            raise ConfigError(f"{what}: {message}")
    return frozenset(found)


def silence(
    report: Report, model: nn.Module, ignore: frozenset[str], select: frozenset[str] | None
) -> Report:
    """Name each finding's line where the source tells it (where the module it names is set),
    and move the findings the user silenced to ``report.silenced``: by ``ignore`` or ``select``,
    by a ``brickwork_ignore`` class attribute on the module named or one above it, or by a
    ``# brickwork: ignore[CODE]`` comment on the line named.

    Args:
        report: the report so far.
        model: the user's model (for the class attributes).
        ignore: codes to leave out.
        select: the only codes to keep, or ``None`` for all.
    """
    kept, silenced = [], []
    model = unwrap_compiled(model)
    for finding in report.findings:
        if finding.line is None:  # name the line that sets the module, so a comment can go there
            finding = replace(finding, line=assigned_at(model, finding.path))
        opted_out = _opted_out(model, finding.path) | ignored_on_line(finding.line)
        if (
            finding.code in ignore
            or (select is not None and finding.code not in select)
            or finding.code in opted_out
        ):
            silenced.append(finding)
        else:
            kept.append(finding)
    report.findings, report.silenced = kept, silenced
    return report


def _opted_out(model: nn.Module, path: str) -> set[str]:
    """The codes that ``brickwork_ignore`` silences for ``path``: on its class or any above."""
    codes: set[str] = set()
    parts = path.split(".") if path else []
    module: nn.Module | None = model
    for i in range(len(parts) + 1):
        if module is None:
            break
        opted = getattr(type(module), IGNORE_ATTRIBUTE, ())
        codes |= {opted} if isinstance(opted, str) else set(opted)
        module = module._modules.get(parts[i]) if i < len(parts) else None
    return codes
