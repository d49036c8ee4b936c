"""What a model's output holds: a tensor, or tuples and dicts of them."""

from typing import Any

import torch


def shapes_of(out: Any) -> Any:
    """Per-sample output shapes as a normalised spec writes them: ``[10]``, ``[[10], [4]]``,
    ``{"logits": [10], "box": [4]}``."""
    if isinstance(out, torch.Tensor):
        return list(out.shape[1:])
    if isinstance(out, dict):
        return {k: shapes_of(v) for k, v in out.items()}
    return [shapes_of(v) for v in out]


def leaves(out: Any) -> list[torch.Tensor]:
    """The tensors of an output, in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for v in (out.values() if isinstance(out, dict) else out) for t in leaves(v)]
