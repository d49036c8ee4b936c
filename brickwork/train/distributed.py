"""Training on several processes: ``torchrun --nproc_per_node=N -m brickwork train ...``.

PyTorch's own engine does the work: ``torchrun`` starts the processes and sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`start` joins them into a process group (NCCL between
GPUs, gloo on CPUs) and the trainer wraps the model in ``DistributedDataParallel``.

- Every rank takes its share of each global batch (``--batch-size`` is the global batch), so a
  run on N processes follows the single-process run with the same batch size.
- Only rank 0 reads and writes the run directory; what the others need from it (the saved
  options and spec, the training state on ``--resume``) is sent to them by :func:`from_main`.
- A failure that one rank meets is told to the others, so every process stops with a message
  instead of waiting for a peer that will never answer; a rank that dies is noticed by its
  peers' next collective call (see :class:`RankLostError`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from brickwork.errors import BrickworkError, PeerError, RankLostError

T = TypeVar("T")

TIMEOUT = timedelta(seconds=float(os.environ.get("BRICKWORK_DIST_TIMEOUT", 600)))
"""How long a collective call waits for a silent peer (``BRICKWORK_DIST_TIMEOUT`` seconds)."""

_control: Any = None  # see _cpu_group


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank ``rank`` of ``size``, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), group or no group."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def local_rank() -> int | None:
    return int(os.environ.get("LOCAL_RANK", "0")) if launched() else None


def current() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), local_rank() or 0)


def start(device: torch.device) -> World:
    """Join the torchrun job this process is part of; outside one (or once joined) a no-op."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return current()
    if not dist.is_available():
        raise BrickworkError("this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return current()


def _cpu_group() -> Any:
    """A gloo group for small CPU messages (stop flags, pickled state): the default group when
    it is gloo, else one made on first use (every rank gets here at the same point)."""
    global _control
    if _control is None and dist.get_backend() != "gloo":
        _control = dist.new_group(backend="gloo", timeout=TIMEOUT)
    return _control


def stop() -> None:
    """Leave the process group (at the end of a command)."""
    global _control
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _control = None


def lost(err: BaseException) -> RankLostError:
    world = current()
    text = str(err).split(" This is typically")[0].strip().strip("'\"") or repr(err)
    return RankLostError(
        f"rank {world.rank} of {world.size} lost contact with another rank (a process died, "
        f"was killed, or the network failed): {text.splitlines()[0]}",
        hint="the last checkpoint is kept; continue with --resume once every node is up",
    )


@contextmanager
def lost_ranks_reported() -> Iterator[None]:
    """Turn a collective call's failure into a :class:`RankLostError` that says what happened."""
    try:
        yield
    except RuntimeError as err:
        if is_collective_failure(err):
            raise lost(err) from err
        raise


def is_collective_failure(err: BaseException) -> bool:
    """A RuntimeError that comes from a collective call failing, not from the model."""
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(err, dist_error):
        return True
    text = str(err)
    return current().size > 1 and any(
        word in text for word in ("Gloo", "gloo", "NCCL", "Connection closed", "Connection reset")
    )


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (a small CPU all-reduce; no device sync)."""
    if current().size == 1:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_cpu_group())
    return bool(value.item())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (in place; returned for chaining)."""
    if current().size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_min(tensor: torch.Tensor) -> torch.Tensor:
    if current().size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def from_main(read: Callable[[], T]) -> T:
    """``read()`` on rank 0, its result sent to every rank; a failure there stops them all.

    The result travels pickled over the CPU group: keep tensors in it on the CPU.
    """
    world = current()
    if world.size == 1:
        return read()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if world.main:
        try:
            payload = [("ok", read())]
        except BaseException as err:
            error = err
            payload = [("error", f"{type(err).__name__}: {err}")]
    dist.broadcast_object_list(payload, src=0, group=_cpu_group())
    if error is not None:
        raise error
    kind, value = payload[0]
    if kind == "error":
        raise PeerError(f"rank 0 failed: {value}")
    return value  # type: ignore[no-any-return]


def gather_objects(value: T) -> list[T]:
    """``value`` of every rank, in rank order, on every rank (pickled over the CPU group)."""
    world = current()
    if world.size == 1:
        return [value]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, value, group=_cpu_group())
    return gathered


def local_first(load: Callable[[], T]) -> T:
    """``load()`` on each node's first rank, then on the others (a download happens once)."""
    world = current()
    if world.size == 1:
        return load()
    result: Any = None
    error: BaseException | None = None
    if world.local_rank == 0:
        try:
            result = load()
        except BaseException as err:
            error = err
    if any_rank(error is not None):
        if error is not None:
            raise error
        raise PeerError("another rank failed to load the data; its message says why")
    return result if world.local_rank == 0 else load()


def broadcast_module(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if current().size == 1:
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def share(n: int) -> slice:
    """This rank's contiguous share of ``n`` items (shares differ by one at most)."""
    world = current()
    if world.size == 1:
        return slice(0, n)
    size, extra = divmod(n, world.size)
    start = world.rank * size + min(world.rank, extra)
    return slice(start, start + size + (world.rank < extra))
