"""What the doctor reports: a :class:`Finding` per problem, gathered in a :class:`Report`.

Each finding has a stable ``code``:

==================== =========================================================================
code                 what it means
==================== =========================================================================
missing-forward      a module without ``forward`` (often one indented into ``__init__``)
shape-mismatch       the first module whose input does not fit, with the value that would
forward-error        any other exception inside a forward, with the line of your code
unused-module        a submodule with parameters that the forward never calls (a note when
                     another public method, such as ``generate``, calls it)
unregistered-module  modules, parameters or trainable tensors in a plain list/dict/tuple/set
batch-size-changed   the output's first dimension differs from the input's
state-leak           forward grows an attribute, or keeps the call's tensors, on the module
no-grad-param        trainable parameters that get no gradient from the output (a note when
                     they are used under ``torch.no_grad()`` or updated outside autograd)
input-ignored        the output does not depend on the input
mixed-devices        parameters or buffers on more than one device
side-effect          forward prints, or raises Python warnings
meta-limit           (warning) the forward needs real values (``.item()``, boolean masks) and
                     cannot run for real (weights on meta, or ``run="meta"``), so the checks
                     that need a full pass cannot run
construction-error   building the model raised (command line)
==================== =========================================================================

With a ``loss`` (and optionally an ``optimizer``), the training checks
(:mod:`~brickwork.inspect.doctor_step`) add these:

======================= ======================================================================
code                    what it means
======================= ======================================================================
probabilities-as-logits the output is already a softmax, log-softmax or sigmoid, and the loss
                        applies its own (``CrossEntropyLoss``, ``BCEWithLogitsLoss``)
logits-as-probabilities the loss takes (log-)probabilities (``NLLLoss``, ``BCELoss``) and the
                        output is raw scores
loss-target-mismatch    the target cannot fit the loss: dtype, shape, a broadcast that pairs
                        every output with every target, one class for cross-entropy
labels-out-of-range     class indices outside ``[0, K)``, binary targets outside ``[0, 1]``
initial-loss            the first loss is far from what a model that knows nothing gives
                        (``log K`` under cross-entropy), or not finite
optimizer-misses-params trainable parameters in no parameter group; parameters in a group
                        that neither the model nor the loss owns
eval-mode-training      dropout or batch norm left in eval mode in a part that trains
frozen-but-updating     ``requires_grad=False`` parameters that ``optimizer.step()`` changes,
                        batch norms in a frozen part whose running statistics move
bias-before-norm        a convolution's or linear layer's bias straight before a norm that
                        cancels it (warning, with the parameters wasted)
dead-units              ReLUs that output 0 for the whole batch, at init or after a step
saturated-activations   sigmoids or tanh in their flat tails on most of the batch
vanishing-gradients     the first layer's gradient (relative to its weight) far below the
                        last one's
exploding-gradients     far above it, or not finite
cannot-overfit          the loss of one fixed batch does not go down, or (10 steps or more)
                        does not get near its floor
======================= ======================================================================

Any finding can be silenced: ``doctor(..., ignore=[CODE])`` or ``--ignore CODE`` for the whole
model, ``brickwork_ignore = ("CODE",)`` on a module class for that module and what it holds, or a
``# brickwork: ignore[CODE]`` comment on the line the finding names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FindingCode = Literal[
    "missing-forward",
    "shape-mismatch",
    "forward-error",
    "unused-module",
    "unregistered-module",
    "batch-size-changed",
    "state-leak",
    "no-grad-param",
    "input-ignored",
    "mixed-devices",
    "side-effect",
    "meta-limit",
    "construction-error",
    "probabilities-as-logits",
    "logits-as-probabilities",
    "loss-target-mismatch",
    "labels-out-of-range",
    "initial-loss",
    "optimizer-misses-params",
    "eval-mode-training",
    "frozen-but-updating",
    "bias-before-norm",
    "dead-units",
    "saturated-activations",
    "vanishing-gradients",
    "exploding-gradients",
    "cannot-overfit",
]
"""Every code a finding can have, as the tables in this module's docstring list them."""

FINDING_CODES: tuple[FindingCode, ...] = FindingCode.__args__  # type: ignore[attr-defined]
"""Every code, in the order of :data:`FindingCode`."""

Severity = Literal["error", "warning", "note"]
"""``error``: the model is wrong; ``warning``: it may be intended, or a check could not run;
``note``: worth knowing, most likely intended."""

_CODE_WIDTH = max(map(len, FINDING_CODES))
_INDENT = 7 + 1 + _CODE_WIDTH + 1  # severity, space, code, space

IGNORE_ATTRIBUTE = "brickwork_ignore"
"""The class attribute that silences codes for a module and what it holds."""


@dataclass(frozen=True)
class Finding:
    """One problem found in a model.

    Attributes:
        code: what kind of problem (see the module docstring).
        severity: ``error`` or ``warning``.
        path: the module path as in ``named_modules()`` (``""`` for the model itself), or an
            attribute path (``encoder.layers``).
        message: what is wrong, where.
        hint: how to fix it, when a fix is known.
        line: ``file:line`` of the user's code the finding names, when known.
    """

    code: FindingCode
    severity: Severity
    path: str
    message: str
    hint: str | None = None
    line: str | None = None

    @property
    def silence(self) -> str:
        """How to silence this finding, if it is intended."""
        ways = f"--ignore {self.code} (ignore=[{self.code!r}])"
        if self.line:
            return f"{ways}, or `# brickwork: ignore[{self.code}]` at {self.line}"
        if self.path:
            return f"{ways}, or {IGNORE_ATTRIBUTE} = ({self.code!r},) on `{self.path}`'s class"
        return ways


@dataclass
class Report:
    """What :func:`~brickwork.inspect.doctor.doctor` found. ``str(report)`` renders it;
    ``to_dict()`` is JSON-ready."""

    model: str
    findings: list[Finding] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    """Checks that need a full forward pass and could not run because it failed."""
    not_run_reason: str = "the forward failed"
    run: str = "meta"
    """``meta`` (nothing computed) or ``real`` (the model's weights, on their device)."""
    run_reason: str | None = None
    """Why a real run was used, or why it could not be."""
    silenced: list[Finding] = field(default_factory=list)
    """Findings left out by ``ignore``, ``select`` or an opt-out in the model's code."""
    training: str | None = None
    """What the training checks ran (steps, optimizer, batch, loss), when a loss was given."""
    losses: list[float] = field(default_factory=list)
    """The training checks' loss of their fixed batch, before each step and after the last."""

    @property
    def ok(self) -> bool:
        """No finding of severity ``error`` (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    def codes(self) -> list[FindingCode]:
        """The codes found, in order (a code appears once per finding)."""
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable data, with ``ok`` and each finding's
        ``silence``."""
        data = {**asdict(self), "ok": self.ok}
        for finding, item in zip(self.findings, data["findings"], strict=True):
            item["silence"] = finding.silence
        return data

    def __str__(self) -> str:
        """One line per finding (and its hint), a verdict, and the checks that did not run."""
        lines = []
        for f in self.findings:
            where = f.path or f"({self.model})"
            lines.append(f"{f.severity:<7} {f.code:<{_CODE_WIDTH}} {where}: {f.message}")
            if f.hint:
                lines.append(f"{'':<{_INDENT}}hint: {f.hint}")
            lines.append(f"{'':<{_INDENT}}silence: {f.silence}")
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning")}
        notes = len(self.findings) - sum(counts.values())
        verdict = (
            "no problems found"
            if not self.findings
            else f"{counts['error']} error(s), {counts['warning']} warning(s)"
            + (f", {notes} note(s)" if notes else "")
        )
        if self.silenced:
            verdict += f" ({len(self.silenced)} silenced)"
        lines.append(f"{self.model}: {verdict}")
        if self.run == "real":
            lines.append(f"ran on real tensors: {self.run_reason}")
        if self.training:
            lines.append(f"training checks: {self.training}")
        if self.not_run:
            lines.append(f"not run, because {self.not_run_reason}: {', '.join(self.not_run)}")
        return "\n".join(lines) + "\n"
