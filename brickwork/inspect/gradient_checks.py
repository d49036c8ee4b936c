"""The training checks on the first backward's gradients.

- ``vanishing-gradients`` / ``exploding-gradients``: each layer's gradient relative to its
  weight (``‖g‖ / ‖w‖``, so that wide and narrow layers compare) from the first layer that ran
  to the last; the ratio first / last beyond :data:`VANISHING` or :data:`EXPLODING` (and any
  gradient that is not finite) is reported. Left out: layers a norm follows (batch norm in
  training mode, layer or group norm: the scale of their weights, hence of their relative
  gradient, does not matter; a ResNet-152's stem at init has one 2e4 times its head's), layers
  whose gradient is exactly 0 (behind a gate that starts at 0, as SAGAN's ``gamma``) and
  embeddings (only the batch's rows get a gradient).
- ``bias-before-norm``: a convolution or linear layer with a bias whose output goes, as it is,
  into a norm that subtracts its mean per channel (batch norm in training mode, instance norm):
  the bias's gradient is then 0 and it never learns. Both are required, the feed seen in the
  forward and the gradient that vanishes, so a bias that also feeds something else passes.
"""

from __future__ import annotations

import torch
from torch import nn

from brickwork.inspect.findings import Finding
from brickwork.inspect.forward_watch import ForwardRecord, layer_weight
from brickwork.inspect.render import names_text

VANISHING = 1e-4
"""First layer's relative gradient over the last one's, below which the first layers barely
learn. Measured at init: brickwork's families 0.2 to 7, the guide's classifier 2e-3 (two sigmoid
layers), four sigmoid layers of 64 units 2e-4, six 4e-6, ten ReLU layers without norm 6e-4,
twenty 1e-7."""
EXPLODING = 1e4
"""Its inverse bound: the first layer's relative gradient above this many times the last's."""
CANCELLED = 1e-4
"""A bias whose gradient's RMS is below this fraction of its weight's is cancelled (the exact
value is 0; rounding leaves about 1e-8)."""


def gradient_findings(model: nn.Module, record: ForwardRecord) -> list[Finding]:
    """``exploding-gradients`` for gradients that are not finite, else vanishing or exploding
    ones from the first layer to the last.

    Args:
        model: the copy, after the first backward.
        record: the first forward: its layers in the order they first ran, those a norm
            follows, and its activations (to name sigmoids and tanh on the way).
    """
    layers = [path for path in record.layers if path not in record.normalised]
    broken = [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and not bool(torch.isfinite(p.grad).all())
    ]
    if broken:
        message = f"the first backward gives gradients that are not finite: {names_text(broken)}"
        hint = "find the op that overflows (torch.autograd.set_detect_anomaly(True) names it)"
        path = broken[0].rsplit(".", 1)[0] if "." in broken[0] else ""
        return [Finding("exploding-gradients", "error", path, message, hint)]
    norms = [(path, ratio) for path in layers if (ratio := _relative(model, path)) is not None]
    if len(norms) < 2:
        return []
    first, ratio = norms[0][0], norms[0][1] / norms[-1][1]
    if VANISHING <= ratio <= EXPLODING:
        return []
    shown = ", ".join(f"`{p}` {r:.2g}" for p, r in _sampled(norms))
    if ratio > EXPLODING:
        return [_exploding(first, ratio, shown)]
    squash = sum(1 for site in record.activations if site.op in ("sigmoid", "tanh"))
    through = f", through {squash} sigmoid/tanh activation(s)" if squash else ""
    message = (
        f"the first layer's gradient is {ratio:.2g} of the last one's (each relative to its "
        f"weight: {shown}){through}: the layers near the input barely learn"
    )
    hint = (
        "use ReLU/GELU between layers, add normalisation (BatchNorm, LayerNorm) or residual "
        "connections, and keep PyTorch's init (kaiming_normal_ for deep ReLU stacks)"
    )
    return [Finding("vanishing-gradients", "warning", first, message, hint)]


def _exploding(first: str, ratio: float, shown: str) -> Finding:
    """The finding for a first layer whose relative gradient is ``ratio`` times the last's."""
    return Finding(
        "exploding-gradients",
        "warning",
        first,
        f"the first layer's gradient is {ratio:.2g} times the last one's (each relative to its "
        f"weight: {shown}): the layers near the input take steps far too large",
        "check the early layers' init (PyTorch's default; one far smaller than the others' "
        "starves the layers after it), add normalisation, or clip: clip_grad_norm_",
    )


def _relative(model: nn.Module, path: str) -> float | None:
    """``‖g‖ / ‖w‖`` of a layer's weight; ``None`` when either is 0 or there is no gradient."""
    weight = layer_weight(model.get_submodule(path))
    if weight is None or weight.grad is None:
        return None
    grad, norm = float(weight.grad.float().norm()), float(weight.detach().float().norm())
    return grad / norm if grad > 0 and norm > 0 else None


def _sampled(norms: list[tuple[str, float]], most: int = 5) -> list[tuple[str, float]]:
    """At most ``most`` entries, evenly spread, the first and last kept."""
    if len(norms) <= most:
        return norms
    step = (len(norms) - 1) / (most - 1)
    return [norms[round(i * step)] for i in range(most)]


def bias_before_norm_findings(model: nn.Module, feeds: list[tuple[str, str]]) -> list[Finding]:
    """A ``bias-before-norm`` warning for each layer whose bias a norm cancels.

    Args:
        model: the copy, after the first backward.
        feeds: (layer, norm) paths where the norm took the layer's output as it was.
    """
    findings = []
    for layer_path, norm_path in dict.fromkeys(feeds):
        layer = model.get_submodule(layer_path)
        bias, weight = getattr(layer, "bias", None), layer_weight(layer)
        if not isinstance(bias, torch.Tensor) or bias.grad is None or weight is None:
            continue
        if weight.grad is None:
            continue
        weight_rms = float(weight.grad.float().pow(2).mean().sqrt())
        bias_rms = float(bias.grad.float().pow(2).mean().sqrt())
        if weight_rms == 0 or bias_rms > CANCELLED * weight_rms:
            continue
        norm = type(model.get_submodule(norm_path)).__name__
        message = (
            f"`{layer_path}` ({type(layer).__name__}) adds a bias just before `{norm_path}` "
            f"({norm}), which subtracts each channel's mean and so cancels it: its "
            f"{bias.numel():,} bias parameters get no gradient and never learn"
        )
        hint = f"create `{layer_path}` with bias=False (conv_block(..., bias=False) for a brick)"
        findings.append(Finding("bias-before-norm", "warning", layer_path, message, hint))
    return findings
