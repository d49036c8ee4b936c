"""What the doctor reports: a :class:`Finding` per problem, gathered in a :class:`Report`.

Each finding has a stable ``code``:

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
]
"""Every code a finding can have, as the table in this module's docstring lists them."""

Severity = Literal["error", "warning"]
"""``error``: the model is wrong; ``warning``: it may be intended, or a check could not run."""


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
    """

    code: FindingCode
    severity: Severity
    path: str
    message: str
    hint: str | None = None


@dataclass
class Report:
    """What :func:`~brickwork.inspect.doctor.doctor` found. ``str(report)`` renders it;
    ``to_dict()`` is JSON-ready."""

    model: str
    findings: list[Finding] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    """Checks that need a full forward pass and could not run because it failed."""
    not_run_reason: str = "the forward failed"

    @property
    def ok(self) -> bool:
        """No finding of severity ``error`` (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    def codes(self) -> list[FindingCode]:
        """The codes found, in order (a code appears once per finding)."""
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable data, with ``ok``."""
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        """One line per finding (and its hint), a verdict, and the checks that did not run."""
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
