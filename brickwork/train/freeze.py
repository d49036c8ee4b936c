"""``--freeze PATTERN``: parts of a model kept as they are while the rest trains.

A pattern is matched (``fnmatch``) against the module paths ``model.named_modules()`` gives
(``layer1``, ``layer1.0.conv1``, ``decoder.last``). A matched module's parameters, and those of
every module inside it, stop asking for gradients (so the optimizer leaves them out), and its
batch norms stay in eval mode while training: their running statistics do not move either.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from torch import nn

from brickwork.errors import ConfigError

SHOWN = 6
"""How many module paths an unmatched pattern's message lists."""


def freeze(model: nn.Module, patterns: Sequence[str]) -> list[nn.Module]:
    """Freeze the modules of ``model`` that ``patterns`` match; their batch norms.

    Args:
        model: the model, before its optimizer is made.
        patterns: ``fnmatch`` patterns over module paths; each must match at least one.

    Returns:
        The batch norms inside frozen modules, for :func:`keep_frozen` after ``model.train()``.

    Raises:
        ConfigError: a pattern that matches no module path (a few paths listed).
    """
    paths = [name for name, _ in model.named_modules() if name]
    matched: set[str] = set()
    for pattern in patterns:
        hits = [p for p in paths if fnmatchcase(p, pattern)]
        if not hits:
            some = ", ".join(paths[:SHOWN]) + (", ..." if len(paths) > SHOWN else "")
            raise ConfigError(
                f"--freeze {pattern!r} matches no module of {type(model).__name__} "
                f"(its modules: {some or 'none'})",
                hint="patterns are fnmatch over module paths, e.g. 'layer1*' or 'encoder.*'",
            )
        matched.update(hits)
    norms: list[nn.Module] = []
    for name, module in model.named_modules():
        if name and any(name == m or name.startswith(m + ".") for m in matched):
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                norms.append(module)
    return norms


def keep_frozen(norms: Sequence[nn.Module]) -> None:
    """Put the frozen batch norms back in eval mode (after ``model.train()``)."""
    for norm in norms:
        norm.eval()
