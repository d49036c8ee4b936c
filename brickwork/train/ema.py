"""``--ema DECAY``: an exponential moving average of a model's weights, kept beside them.

After every optimizer step each floating-point parameter of the average moves towards the
model's, ``avg += (1 - decay) * (weight - avg)``; buffers (batch-norm statistics, counters) are
copied as they are, as timm's ``ModelEmaV3`` does. The average is a whole copy of the model, so
it is evaluated and saved as any model is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class Ema:
    """The moving average of ``model``'s weights, starting from its weights now.

    Args:
        model: the model being trained (on its device).
        decay: how much of the average each step keeps, in ``(0, 1)`` (e.g. 0.999).

    Attributes:
        module: the averaged copy of the model, in evaluation mode, without gradients.
        decay: as given.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s weights; copy its buffers."""
        weights = dict(model.named_parameters())
        averaged: list[torch.Tensor] = []
        latest: list[torch.Tensor] = []
        for name, avg in self.module.named_parameters():
            if avg.is_floating_point():
                averaged.append(avg)
                latest.append(weights[name].detach())
            else:
                avg.copy_(weights[name])
        if averaged:
            torch._foreach_lerp_(averaged, latest, 1.0 - self.decay)
        buffers = dict(model.named_buffers())
        for name, buffer in self.module.named_buffers():
            buffer.copy_(buffers[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The average's tensors (a checkpoint keeps them)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average saved by :meth:`state_dict`."""
        self.module.load_state_dict(state)
