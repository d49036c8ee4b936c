"""``brickwork doctor``: the classic ``nn.Module`` bugs, found before a step of training.

The model runs the way the summary runs it: a meta copy on meta inputs, so nothing is computed
and the model is left as it was. First the checks that only read the model
(:mod:`~brickwork.inspect.static_checks`); then one forward, whose prints and warnings are caught
(:mod:`~brickwork.inspect.watch`). A forward that raises is diagnosed
(:mod:`~brickwork.inspect.failed_forward`); one that runs through is checked, and called a second
time to see what accumulates (:mod:`~brickwork.inspect.full_pass`). Each problem becomes a
:class:`~brickwork.inspect.findings.Finding` with a stable ``code``, listed in
:mod:`~brickwork.inspect.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brickwork.errors import positive_int
from brickwork.inspect.failed_forward import diagnose
from brickwork.inspect.findings import FindingCode, Report
from brickwork.inspect.full_pass import (
    batch_size_findings,
    gradient_findings,
    input_use_findings,
    module_state,
    state_leak_findings,
)
from brickwork.inspect.meta_copy import meta_copy
from brickwork.inspect.meta_run import MetaRun, batch_of, meta_inputs, tensors_in
from brickwork.inspect.static_checks import static_findings
from brickwork.inspect.summary import resolve_model
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
    before = module_state(shadow)
    run = MetaRun(shadow, track=list(tensors_in((args, kwargs))))
    with Watch() as watch:
        run.forward(args, kwargs)
    report.findings += watch.findings()
    if run.exception is not None:
        found = diagnose(run, modules, report.model, report.findings)
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
    report.findings += batch_size_findings(run, batches)
    report.findings += input_use_findings(run)
    report.findings += gradient_findings(run, shadow, modules)
    after_one = module_state(shadow)
    with Watch():  # its prints and warnings were reported from the first call
        MetaRun(shadow).forward(args, kwargs)  # a second call shows what accumulates
    report.findings += state_leak_findings(before, after_one, module_state(shadow))
    return report
