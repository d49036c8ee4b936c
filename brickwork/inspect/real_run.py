"""A real run that leaves the model as it was: its copy, and everything the run writes undone.

When a forward needs real values (``.item()``, ``nonzero``, a CPU-only argument, TorchScript),
the inspection runs it on the model's own weights, on their device. Three things keep the user's
model as it was, without holding a second copy of its weights:

- the run calls a structural copy (:func:`real_copy`): new module objects, attribute dicts and
  hook tables (the user's hooks dropped), the model's own tensors shared. What a forward sets on
  ``self`` (a ``training`` flag, a cache, a list it appends to) lands on the copy;
- :class:`UndoLog`, called by the run's dispatch mode before each op, saves a copy of any storage
  that existed before the run the first time an op writes to it (batch norm's running
  statistics, an EMA update, an in-place op on an input), and puts every saved storage back
  after the run: copy-on-write, so only what is written costs memory;
- :func:`kept` restores the CPU and CUDA random number generators, the parameters'
  ``requires_grad`` and what a ``.data =`` assignment replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from typing import Any

import torch
from torch import nn

from brickwork.inspect.meta_copy import structural_copy
from brickwork.inspect.meta_run import storage_key, tensors_in


def real_copy(model: nn.Module) -> nn.Module:
    """A structural copy of ``model`` that shares its tensors (see the module's docstring).

    Args:
        model: the user's model.
    """
    return structural_copy(model, _same)


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


_UNANNOTATED_WRITES = dict.fromkeys(
    ("native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm", "_batch_norm_impl_index"),
    (3, 4),
)
"""Ops that update running statistics in place (arguments 3 and 4) with no ``!`` in their
schema."""


class UndoLog:
    """Copy-on-write of the storages that existed before a run and that its ops write to."""

    def __init__(self) -> None:
        """An empty log: nothing created, nothing saved."""
        self.created: set[int] = set()  # storages the run made: theirs to write
        self.saved: dict[int, tuple[torch.UntypedStorage, torch.UntypedStorage]] = {}
        self._writes: dict[Any, tuple[list[int], list[str]]] = {}  # op → written arguments

    def before(self, func: Any, args: Any, kwargs: Any) -> None:
        """Save each storage ``func`` is about to write that the run did not make.

        Args:
            func: the aten op.
            args: its positional arguments.
            kwargs: its keyword arguments.
        """
        positions, names = self._written(func)
        targets = [args[i] for i in positions if i < len(args)]
        targets += [kwargs[n] for n in names if n in kwargs]
        for tensor in tensors_in(targets):
            self._save(tensor)

    def after(self, args: Any, kwargs: Any, out: Any) -> None:
        """Record the storages ``out`` holds that no argument held: the run made them.

        Args:
            args: the op's positional arguments.
            kwargs: its keyword arguments.
            out: what it returned.
        """
        outs = list(tensors_in(out))
        if not outs:
            return
        inputs = {storage_key(t) for t in tensors_in((args, kwargs))}
        for t in outs:
            key = storage_key(t)
            if key not in inputs:
                self.created.add(key)

    def restore(self) -> None:
        """Put every saved storage back as it was before the run."""
        with torch.no_grad():
            for storage, saved in self.saved.values():
                storage.copy_(saved)
        self.saved.clear()

    def _save(self, tensor: torch.Tensor) -> None:
        key = storage_key(tensor)
        if key in self.created or key in self.saved or tensor.device.type == "meta":
            return
        storage = tensor.untyped_storage()
        self.saved[key] = (storage, storage.clone())  # type: ignore[no-untyped-call]

    def _written(self, func: Any) -> tuple[list[int], list[str]]:
        """Positions and names of the arguments ``func`` writes to (from its schema)."""
        found = self._writes.get(func)
        if found is None:
            positions: list[int] = list(_UNANNOTATED_WRITES.get(func.__name__.split(".")[0], ()))
            names: list[str] = []
            for i, arg in enumerate(func._schema.arguments):
                if arg.alias_info is not None and arg.alias_info.is_write:
                    names.append(arg.name)  # a positional argument may come by name too
                    if not arg.kwarg_only:
                        positions.append(i)
            found = self._writes[func] = (positions, names)
        return found


@contextmanager
def kept(model: nn.Module) -> Iterator[None]:
    """Restore, on leaving, the RNG states (CPU, and CUDA when it is in use), each parameter's
    ``requires_grad``, and each parameter and buffer whose ``.data`` was replaced.

    Args:
        model: the user's model.
    """
    tensors = list(chain(model.parameters(), model.buffers()))
    flags = [p.requires_grad for p in model.parameters()]
    data = [t.detach() for t in tensors]
    in_use = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    devices = list(range(torch.cuda.device_count())) if in_use else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for p, flag in zip(model.parameters(), flags, strict=True):
                if p.requires_grad != flag:
                    p.requires_grad_(flag)
            for t, old in zip(tensors, data, strict=True):
                if t.data_ptr() != old.data_ptr():
                    t.data = old
