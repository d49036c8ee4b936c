"""How big a spec may be: limits that no real model meets, checked before anything is built.

A spec is data from anywhere, so its size is checked before it can cost time or memory: the
document's length before it is parsed, its nesting while YAML is composed, the number of values
once YAML aliases are expanded (a "billion laughs" document is a few lines of anchors), and the
number of bricks once repeats are multiplied out, all before the first module is made. Each error
names the limit and the value found.

For scale: ResNet-152 written out block by block, with all its sizes (``to_spec`` of the graph
spec that ``examples/resnet50.yaml`` is for ResNet-50), is about 560 bricks, 7,000 values and
34 kB of YAML, nested 10 deep; it builds in about a second on two CPU cores. Within the limits a
spec parses in seconds and builds in a few (a brick costs 0.1 to 4 ms on meta tensors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brickwork.errors import SpecError, positive_int
from brickwork.registry import MODELS

MAX_SPEC_BYTES = 256_000
"""The longest spec document read, in characters (seven ResNet-152s written out): YAML parses at
roughly 100 to 500 kB a second."""
MAX_DEPTH = 64
"""The deepest nesting of lists and mappings in a spec."""
MAX_VALUES = 200_000
"""The most values (lists, mappings, keys and scalars) a spec may hold once aliases are expanded."""
MAX_REPEAT = 1_000
"""The most copies one ``repeat`` makes."""
MAX_BRICKS = 2_000
"""The most bricks a spec builds, repeats multiplied out (3.5 ResNet-152s written out)."""
FAMILY_BRICKS = 250
"""What a registered family (``resnet152``, ``unet``) counts for against :data:`MAX_BRICKS`: it
builds a whole model (ResNet-152 has about 500 modules) under one name."""


def check_length(length: int, where: str) -> None:
    """Refuse a document longer than :data:`MAX_SPEC_BYTES` before it is read or parsed."""
    if length > MAX_SPEC_BYTES:
        raise SpecError(
            f"{where}: {length:,} characters, more than a spec may have "
            f"(MAX_SPEC_BYTES = {MAX_SPEC_BYTES:,})",
            hint="a model this big is a registered family with arguments, not a brick list",
        )


def depth_error(where: str) -> SpecError:
    """The error for a document nested deeper than :data:`MAX_DEPTH`."""
    return SpecError(
        f"{where}: nested more than {MAX_DEPTH} deep (MAX_DEPTH = {MAX_DEPTH})",
        hint="no model needs this nesting; check for a runaway generator or a malicious file",
    )


def check_values(data: object, where: str) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH`, holding more than :data:`MAX_VALUES`
    values once shared parts (YAML aliases) are counted each time they appear, or containing
    itself.

    The walk is iterative and counts each shared part once, so it takes time in proportion to
    the data as stored, not as expanded.
    """
    sizes: dict[int, int] = {}  # id → expanded size, for containers already counted
    depths: dict[int, int] = {}
    open_ids: set[int] = set()  # containers on the path being walked
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            open_ids.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
            depths[key] = 1 + max((depths.get(id(c), 0) for c in children), default=0)
            if depths[key] > MAX_DEPTH:
                raise depth_error(where)
            if sizes[key] > MAX_VALUES:
                raise SpecError(
                    f"{where}: more than {MAX_VALUES:,} values once its aliases are expanded "
                    f"(MAX_VALUES = {MAX_VALUES:,})",
                    hint="a YAML document whose anchors refer to anchors multiplies its size: "
                    "write the repetition as `repeat: {times: N, body: [...]}`",
                )
            continue
        if key in sizes or not isinstance(node, list | tuple | Mapping):
            continue
        if key in open_ids:
            raise SpecError(f"{where}: contains itself (a YAML alias inside its own anchor)")
        if len(open_ids) >= MAX_DEPTH:
            raise depth_error(where)
        open_ids.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, list | tuple | Mapping))


def _children(node: object) -> list[Any]:
    """The values inside a list or mapping (a mapping's keys count as plain values)."""
    if isinstance(node, Mapping):
        return [*node.keys(), *node.values()]
    if isinstance(node, list | tuple):
        return list(node)
    return []


def repeat_times(times: object, where: str) -> int:
    """A repeat's ``times``: a positive integer up to :data:`MAX_REPEAT`.

    Args:
        times: the value given.
        where: the spec path of the repeat (``model[2].repeat``).
    """
    number = positive_int(times, f"{where}.times:", SpecError)
    if number > MAX_REPEAT:
        raise SpecError(
            f"{where}.times: {number:,} copies, more than one repeat may make "
            f"(MAX_REPEAT = {MAX_REPEAT:,})",
            hint="no real model repeats a block this often; check for a typo",
        )
    return number


def check_bricks(model: object) -> None:
    """Refuse a ``model`` that would build more than :data:`MAX_BRICKS` bricks, before any is built.

    Repeats are multiplied out without being expanded, so ``repeat: {times: 1000000000}`` is
    refused at once; a part shared through aliases is counted once per appearance; a family
    counts as :data:`FAMILY_BRICKS`.

    Args:
        model: the spec's ``model``.

    Raises:
        SpecError: too many bricks, or a repeat of more than :data:`MAX_REPEAT` copies.
    """
    counted: dict[int, int] = {}

    def count(node: object, path: str) -> int:
        if isinstance(node, str):
            return FAMILY_BRICKS if node in MODELS else 1
        if isinstance(node, list):
            if id(node) not in counted:
                counted[id(node)] = sum(
                    count(n, _item_path(path, i, n)) for i, n in enumerate(node)
                )
            return counted[id(node)]
        if not isinstance(node, Mapping):
            return 1
        inner = [(k, v) for k, v in node.items() if k not in ("name", "from", "use")]
        if len(inner) != 1:
            return 1  # not an item: the builder says what is wrong with it
        ((key, value),) = inner
        where = f"{path}.{key}"
        if key == "repeat" and isinstance(value, Mapping):
            times = value.get("times")
            copies = repeat_times(times, where) if isinstance(times, int) and times > 0 else 1
            return copies * count(value.get("body"), f"{where}.body")
        if key in ("residual", "sequential") and isinstance(value, list):
            return 1 + count(value, where)
        return FAMILY_BRICKS if isinstance(key, str) and key in MODELS else 1

    total = count(model, "model")
    if total > MAX_BRICKS:
        raise SpecError(
            f"model: {total:,} bricks once repeats are multiplied out, more than a spec may build "
            f"(MAX_BRICKS = {MAX_BRICKS:,})",
            hint="a model this big is a registered family with arguments, not a brick list",
        )


def _item_path(parent: str, index: int, node: object) -> str:
    """An item's spec path as the builder writes it: ``model.up3`` when named, else ``model[4]``."""
    name = node.get("name") if isinstance(node, Mapping) else None
    return f"{parent}.{name}" if isinstance(name, str) and name else f"{parent}[{index}]"
