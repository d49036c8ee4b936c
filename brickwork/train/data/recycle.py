"""CPU batches written into memory that earlier batches used, once nothing holds those.

A batch of 64 normalised images of 224 px is 38 MB of ``float32``: more than the C library
serves from its heap, so fresh memory is mapped for every batch, each of its pages is faulted in
and zeroed when first written, and all are given back when the batch is freed. On the CPU that
costs the main process about as long as normalising the batch itself, time taken from the
DataLoader workers on a small machine.

A :class:`Recycler` keeps the memory of the last few tensors it made. Each tensor wraps a NumPy
view of that memory made for it alone (``torch.from_numpy``): the tensor's storage holds the
view, and so do its views, the activations autograd saves, and ``tensor.numpy()``'s arrays. The
view is freed only when the last of them goes, which a weak reference tells; only then is the
memory written again.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

KEEP = 2
"""Tensors whose memory is kept: the batch a training step holds and the one being made."""


class Recycler:
    """``float32`` CPU tensors in memory used again once no tensor or array holds it.

    Args:
        keep: the most memory blocks kept for later batches.
    """

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._blocks: list[tuple[np.ndarray, weakref.ref[np.ndarray]]] = []

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A contiguous ``float32`` tensor of ``shape``: its values are undefined."""
        free = [i for i, (_, lent) in enumerate(self._blocks) if lent() is None]
        for i in free:
            if self._blocks[i][0].shape == shape:
                return self._lend(i, self._blocks[i][0])
        block = np.empty(shape, dtype=np.float32)
        if len(self._blocks) < self.keep:
            return self._lend(len(self._blocks), block)
        if free:  # a block of another shape (a last, smaller batch) gives way
            return self._lend(free[0], block)
        return torch.from_numpy(block)  # every block is held: this one is not kept

    def _lend(self, slot: int, block: np.ndarray) -> torch.Tensor:
        """A tensor over ``block``, kept in ``slot`` (a new one at the end)."""
        view = block.view()  # held by the tensor's storage, and by nothing of ours
        entry = (block, weakref.ref(view))
        if slot == len(self._blocks):
            self._blocks.append(entry)
        else:
            self._blocks[slot] = entry
        return torch.from_numpy(view)
