"""The SHA-256 of a file's tensors, kept in its metadata: flipped bytes are caught on load."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of ``tensors``: each name, dtype, shape and raw bytes, in name order.

    The same tensors give the same digest wherever they live (CPU or not, any strides).
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
