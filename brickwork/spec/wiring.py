"""Which values each item of a graph reads, checked before anything is built.

References are by name, never by position: an item reads the item before it unless ``from:``
names others, ``use:`` names an earlier item whose module runs again, and ``outputs:`` names what
the model returns. A name that does not exist or comes later, a cycle, a duplicate name and an
output never computed are errors; an output nothing reads is a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from brickwork.errors import SpecError, SpecWarning, unknown_name_message
from brickwork.spec.graph import Outputs, Ref, output_refs
from brickwork.spec.items import Item, parse_ref


@dataclass(frozen=True)
class Wiring:
    """What each item of a list reads and runs, and what the list returns.

    Attributes:
        sources: for each item, the values it reads.
        modules: for each item, the module it runs: its own (its value key) or a used one's.
        outputs: what the graph returns.
    """

    sources: tuple[tuple[Ref, ...], ...]
    modules: tuple[str, ...]
    outputs: Outputs


def wire(items: Sequence[Item], inputs: Sequence[str], outputs: object = None) -> Wiring:
    """Resolve and check the references of one list's items.

    Args:
        items: the list's items, in order.
        inputs: the names of the values the list starts from (``input`` for one).
        outputs: the spec's ``outputs:`` (a name, a list or a mapping of names), or ``None``
            for the last item's output.

    Raises:
        SpecError: a duplicate name; a name that does not exist, comes later or makes a cycle;
            a first item that does not say which of several inputs it reads; an output that
            names no value.
    """
    named = check_unique(items, inputs)
    sources = tuple(_sources(item, items, inputs) for item in items)
    for item in items:
        for ref in item.sources or ():  # the item before is always there to read
            _check_reference(item, ref, named, inputs, sources, items)
    modules = tuple(_module(item, named, items, inputs) for item in items)
    result = _outputs(outputs, items, named, inputs)
    _warn_unused(items, inputs, sources, result)
    return Wiring(sources, modules, result)


def check_unique(items: Sequence[Item], inputs: Sequence[str]) -> dict[str, Item]:
    """The named items by name; a name (or an unnamed item's position) used twice is an error."""
    seen: dict[str, str] = dict.fromkeys(inputs, "an input")
    for item in items:
        key = item.value_key
        if key in seen:
            what = f"name {key!r}" if item.name else f"position {key!r} (its name when unnamed)"
            raise SpecError(
                f"{item.position}: {what} is used twice in {item.parent} (also {seen[key]})",
                hint="names must be unique in their list",
            )
        seen[key] = item.position
    return {item.name: item for item in items if item.name is not None}


def _sources(item: Item, items: Sequence[Item], inputs: Sequence[str]) -> tuple[Ref, ...]:
    """What ``item`` reads: its ``from:``, else the item before it (or the one input)."""
    if item.sources is not None:
        return item.sources
    if item.index > 0:
        return (Ref(items[item.index - 1].value_key),)
    if len(inputs) != 1:
        raise SpecError(
            f"{item.path}: the model has {len(inputs)} inputs ({', '.join(inputs)}), so the "
            "first item says which it reads",
            hint=f"add `from: {inputs[0]}`",
        )
    return (Ref(inputs[0]),)


def _check_reference(
    item: Item,
    ref: Ref,
    named: Mapping[str, Item],
    inputs: Sequence[str],
    sources: Sequence[tuple[Ref, ...]],
    items: Sequence[Item],
) -> None:
    """Refuse a reference to a name that does not exist, comes later or closes a cycle."""
    where = f"{item.path}.from"
    if ref.name in inputs:
        return
    target = named.get(ref.name)
    if target is None:
        earlier = [*inputs, *(i.name for i in items[: item.index] if i.name is not None)]
        raise SpecError(f"{where}: {unknown_name_message('name', ref.name, earlier)}")
    if target.index < item.index:
        return
    loop = _path_back(target.index, item.index, sources, items)
    if loop is not None:
        labels = [_label(items[i]) for i in [item.index, *loop]]
        raise SpecError(
            f"{where}: {ref} makes a cycle: {' → '.join(labels)} (each reads the next)",
            hint="an item reads only inputs and items before it",
        )
    raise SpecError(
        f"{where}: {ref} comes later ({target.path}); an item reads only inputs and items "
        "before it",
        hint=f"move {item.path} after {target.path}",
    )


def _path_back(
    start: int, goal: int, sources: Sequence[tuple[Ref, ...]], items: Sequence[Item]
) -> list[int] | None:
    """The items from ``start`` that lead, each reading the next, to ``goal``; ``None`` if none."""
    positions = {item.value_key: item.index for item in items}
    stack, seen = [(start, [start])], {start}
    while stack:
        index, trail = stack.pop()
        if index == goal:
            return trail
        for ref in sources[index]:
            target = positions.get(ref.name)
            if target is not None and target not in seen:
                seen.add(target)
                stack.append((target, [*trail, target]))
    return None


def _label(item: Item) -> str:
    return item.name if item.name is not None else f"[{item.index}]"


def _module(
    item: Item, named: Mapping[str, Item], items: Sequence[Item], inputs: Sequence[str]
) -> str:
    """The module ``item`` runs: its own, or for ``use:`` the earlier item's (followed through
    other ``use:`` items)."""
    if item.use is None:
        return item.value_key
    where = f"{item.path}.use"
    target = named.get(item.use)
    if target is None:
        if item.use in inputs:
            raise SpecError(f"{where}: {item.use!r} is an input; use: names an item's module")
        earlier = [i.name for i in items[: item.index] if i.name is not None]
        raise SpecError(f"{where}: {unknown_name_message('name', item.use, earlier)}")
    if target.index >= item.index:
        raise SpecError(
            f"{where}: {item.use!r} comes later ({target.path}); use: runs an earlier item's "
            "module",
            hint=f"move {item.path} after {target.path}",
        )
    return _module(target, named, items, inputs)


def _outputs(
    value: object, items: Sequence[Item], named: Mapping[str, Item], inputs: Sequence[str]
) -> Outputs:
    """``outputs:`` as references, each naming an input or an item; default the last item."""
    choices = [*inputs, *named]

    def ref(text: object, where: str) -> Ref:
        found = parse_ref(text, where)
        if found.name not in choices:
            raise SpecError(
                f"{where}: {unknown_name_message('name', found.name, choices)} (an output "
                "names an input or a named item, so that it is computed)"
            )
        return found

    if value is None:
        return Ref(items[-1].value_key)
    if isinstance(value, Mapping):
        if not value:
            raise SpecError("outputs: expected a name, a list or a mapping of names, got {}")
        return {str(k): ref(v, f"outputs.{k}") for k, v in value.items()}
    if isinstance(value, list):
        if not value:
            raise SpecError("outputs: expected a name, a list or a mapping of names, got []")
        return tuple(ref(v, f"outputs[{i}]") for i, v in enumerate(value))
    return ref(value, "outputs")


def _warn_unused(
    items: Sequence[Item],
    inputs: Sequence[str],
    sources: Sequence[tuple[Ref, ...]],
    outputs: Outputs,
) -> None:
    """Warn about each input and item whose output nothing reads."""
    read = {ref.name for refs in sources for ref in refs} | {
        ref.name for ref in output_refs(outputs)
    }
    for name in inputs:
        if name not in read:
            warnings.warn(
                f"inputs.{name}: no item reads this input; read it (from: {name}) or remove it",
                SpecWarning,
                stacklevel=2,
            )
    for item in items:
        if item.value_key not in read:
            warnings.warn(
                f"{item.path}: its output is never read (no item takes it with from:, and it is "
                "not an output); remove it, or name it in from: or outputs:",
                SpecWarning,
                stacklevel=2,
            )


def check_in_place(items: Sequence[Item], wiring: Wiring, modules: Mapping[str, nn.Module]) -> None:
    """Refuse a module that overwrites its input (``inplace: true``) where another item, or the
    output, reads that input too: it would read the overwritten values.

    Raises:
        SpecError: names the item, the value and who else reads it.
    """
    readers: dict[str, list[str]] = {}
    for item, refs in zip(items, wiring.sources, strict=True):
        for ref in refs:
            readers.setdefault(ref.name, []).append(item.path)
    for ref in output_refs(wiring.outputs):
        readers.setdefault(ref.name, []).append("the outputs")
    for item, refs, used in zip(items, wiring.sources, wiring.modules, strict=True):
        if not getattr(modules[used], "inplace", False):
            continue
        for ref in refs:
            others = [path for path in readers[ref.name] if path != item.path]
            if others:
                raise SpecError(
                    f"{item.path}: runs in place (inplace: true) on {ref.name}, which "
                    f"{', '.join(others)} also read{'s' * (len(others) == 1)}: they would get "
                    "the overwritten values",
                    hint="drop inplace: true from this item",
                )
