"""The one rule for a training step's peak memory, which ``summary`` reports and ``train``
checks a run against (``brickwork.train.memory``):

- the weights: parameters, the gradient and the optimizer's states (Adam: 2, SGD: 1) of each
  trainable one, buffers, one more copy of the parameters for a moving average (``--ema``),
  and half a copy for autocast's 16-bit weights (bf16, fp16);
- the activations: every tensor autograd saves for backward, and the input batch when no op
  saved it, each storage once; under autocast, :data:`HALF_SHARE` of them.
"""

from __future__ import annotations

OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd": 1}
"""Tensors an optimizer keeps per trainable parameter: Adam's two moments, SGD's momentum."""
HALF_SHARE = 0.5
"""Mixed precision (bf16, fp16): the share of the fp32 activation bytes that a step saves, as
autocast casts the inputs of convolutions and matrix products to 16 bits. An estimate."""


def weight_bytes(
    params: int,
    trainable: int,
    buffers: int,
    optimizer: str = "adamw",
    precision: str = "fp32",
    ema: bool = False,
) -> int:
    """The bytes a step holds whatever the batch.

    Args:
        params: bytes of every parameter.
        trainable: bytes of the trainable ones (each gets a gradient and optimizer states).
        buffers: bytes of the buffers (batch norm's running statistics...).
        optimizer: ``adamw``, ``adam`` or ``sgd``.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        ema: a moving average of the weights is kept.
    """
    states = OPTIMIZER_STATES.get(optimizer, 2)
    total = params + trainable * (1 + states) + buffers
    if ema:
        total += params
    if precision != "fp32":
        total += params // 2  # autocast's 16-bit copies of the weights
    return total


def activation_bytes(held: int, precision: str = "fp32") -> int:
    """The bytes of the activations a step holds, from those it holds in fp32 (``held``: the
    tensors saved for backward and the input batch)."""
    return held if precision == "fp32" else int(held * HALF_SHARE)
