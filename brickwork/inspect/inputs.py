"""A forward's inputs as users have them: shapes, named shapes, tensors, files.

An inspection holds its inputs as :class:`Inputs`: positional and keyword arguments whose tensors
are either the user's own (real values) or ``meta`` tensors that stand for a shape and a dtype.
A meta run takes meta stand-ins of them all; a real run takes the user's tensors as they are and
gives the stand-ins random values (:meth:`Inputs.real`).
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, first_line
from brickwork.inspect.meta_copy import is_scripted, unwrap_compiled
from brickwork.inspect.meta_run import tensors_in
from brickwork.shapes import check_numel, meta_like, parse_dtype, parse_shape

MASK_VALUE = 1
"""What a ``*mask*`` input built from a shape holds on a real run: ones, every position kept, as
a tokenizer's ``attention_mask`` of an unpadded batch."""


@dataclass
class Inputs:
    """The arguments of the inspected forward.

    Attributes:
        args: positional arguments.
        kwargs: keyword arguments, by name.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def meta(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments with every tensor replaced by a meta stand-in (shape, dtype, strides)."""
        return (
            tuple(_to_meta(v) for v in self.args),
            {k: _to_meta(v) for k, v in self.kwargs.items()},
        )

    def real(
        self, model: nn.Module, device: torch.device
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments for a real run on ``device``.

        The user's tensors are moved there (as they are when already there); a meta stand-in
        becomes random values of its shape and dtype, drawn from a generator of its own (the
        global RNG is not touched): floats from a normal distribution, integers within the range
        of every embedding of ``model`` (token ids), booleans true, and ones for an input whose
        name holds ``mask``.

        Args:
            model: the model, for the range of its embeddings.
            device: where the model's weights are.
        """
        high = _id_range(model)
        generator = torch.Generator().manual_seed(0)

        def real(name: str) -> Any:
            def values(tensor: torch.Tensor) -> torch.Tensor:
                if tensor.device.type != "meta":
                    return tensor.to(device)
                return _random_like(tensor, name, high, generator).to(device)

            return values

        return (
            tuple(map_tensors(v, real("")) for v in self.args),
            {k: map_tensors(v, real(k)) for k, v in self.kwargs.items()},
        )

    @property
    def batch(self) -> int:
        """The batch size: the first dimension of the first tensor (1 for none or a scalar)."""
        first = next(tensors_in((self.args, self.kwargs)), None)
        return int(first.shape[0]) if first is not None and first.dim() else 1

    @property
    def nbytes(self) -> int:
        """Bytes of every input tensor."""
        return sum(t.numel() * t.element_size() for t in tensors_in((self.args, self.kwargs)))


def make_inputs(
    input_shape: tuple[int, ...] | None, input_data: Any, batch_size: int, dtype: torch.dtype
) -> Inputs:
    """The inspected forward's arguments.

    Args:
        input_shape: shape of one sample, no batch dimension; used when ``input_data`` is
            ``None``.
        input_data: a tensor (one positional argument), a tuple or list (positional arguments)
            or a dict (keyword arguments), each tensor with its batch dimension: real values, or
            ``meta`` tensors that stand for their shape and dtype alone.
        batch_size: the batch of an ``input_shape`` input.
        dtype: the dtype of an ``input_shape`` input.

    Raises:
        ConfigError: neither ``input_shape`` nor ``input_data`` is given.
    """
    if input_data is not None:
        if isinstance(input_data, Mapping):
            return Inputs((), {str(k): v for k, v in input_data.items()})
        if isinstance(input_data, tuple | list):
            return Inputs(tuple(input_data), {})
        return Inputs((input_data,), {})
    if input_shape is None:
        raise ConfigError(
            "summary needs input_shape (one sample, no batch dimension, e.g. (1, 28, 28)) "
            "or input_data"
        )
    check_numel((batch_size, *input_shape), "batch_size × input_shape")
    return Inputs((torch.empty((batch_size, *input_shape), dtype=dtype, device="meta"),), {})


def needs_input(model: nn.Module) -> bool:
    """Whether a forward of ``model`` needs an input: its forward takes a required argument,
    or the model has no forward of its own (a ``ModuleList``, a module that only holds
    parameters) or a TorchScript one.

    Args:
        model: any module.
    """
    model = unwrap_compiled(model)
    if is_scripted(model):  # a compiled forward: its signature is TorchScript's
        return True
    forward = inspect.getattr_static(type(model), "forward", None)
    if forward is None or forward is nn.Module.forward:
        return True
    try:
        parameters = list(inspect.signature(forward).parameters.values())[1:]  # after self
    except (TypeError, ValueError):
        return True
    required = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(
        p.default is inspect.Parameter.empty
        and (p.kind in required or p.kind is inspect.Parameter.KEYWORD_ONLY)
        for p in parameters
    )


def named_input(text: str) -> tuple[str, torch.Tensor]:
    """``"input_ids:1,128:long"`` → ``("input_ids", a meta tensor of shape (1, 128), int64)``.

    The shape is the whole tensor's, batch first, as the forward receives it; the dtype is
    optional (float32).

    Args:
        text: ``NAME:SHAPE[:DTYPE]``.

    Raises:
        ConfigError: not of that form, or a bad shape or dtype (named).
    """
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0].isidentifier():
        raise ConfigError(
            f"--input: expected NAME:SHAPE[:DTYPE] such as input_ids:1,128:long, got {text!r}"
        )
    shape = parse_shape(parts[1], what=f"--input {parts[0]}")
    dtype = parse_dtype(parts[2]) if len(parts) == 3 else torch.float32
    return parts[0], torch.empty(shape, dtype=dtype, device="meta")


def load_input_data(path: str | Path) -> Any:
    """Real inputs from a file: a ``.safetensors`` file (its tensors by name, as keyword
    arguments), or a ``.pt``/``.pth`` file read with ``torch.load(weights_only=True)``: a tensor,
    a tuple or list of them (positional) or a dict (keyword).

    Args:
        path: the file.

    Raises:
        ConfigError: a missing file, another suffix, or a file that cannot be read (no pickle
            code is ever run).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--input-data: no such file: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        if path.suffix in (".pt", ".pth"):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file, or pickled code that weights_only refuses
        raise ConfigError(f"--input-data: cannot read {path}: {first_line(err)}") from err
    raise ConfigError(
        f"--input-data: {path} is neither .safetensors nor .pt/.pth",
        hint="save the inputs with safetensors.torch.save_file({'x': x}, 'inputs.safetensors')",
    )


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``value`` with each tensor ``t`` in it replaced by ``fn(t)``: tuples (named ones too),
    lists and dicts rebuilt, anything else as it is.

    Args:
        value: an input: a tensor, or a structure that holds tensors.
        fn: what each tensor becomes.
    """
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, list):
        return [map_tensors(v, fn) for v in value]
    if isinstance(value, tuple):
        items = [map_tensors(v, fn) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        mapped = copy.copy(value)  # keeps OrderedDict, defaultdict...
        for k, v in value.items():
            mapped[k] = map_tensors(v, fn)
        return mapped
    return value


def _to_meta(value: Any) -> Any:
    """Meta stand-ins for the tensors in ``value`` (nested ones too); anything else as it is."""
    return map_tensors(value, meta_like)


def _id_range(model: nn.Module) -> int:
    """Token ids below this fit every embedding of ``model`` (2 when it has none)."""
    sizes = [
        m.num_embeddings
        for m in model.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.num_embeddings > 0
    ]
    return min(sizes, default=2)


def _random_like(
    meta: torch.Tensor, name: str, high: int, generator: torch.Generator
) -> torch.Tensor:
    """Values for a meta stand-in: see :meth:`Inputs.real`."""
    shape, dtype = tuple(meta.shape), meta.dtype
    if "mask" in name.lower() or dtype == torch.bool:
        return torch.full(shape, MASK_VALUE, dtype=dtype)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, generator=generator).to(dtype)
    upper = min(high, torch.iinfo(dtype).max) if math.prod(shape) else 1
    return torch.randint(0, max(upper, 1), shape, generator=generator, dtype=dtype)
