"""One item of a spec list, as written: its brick, its name, what it reads, the module it reuses.

An item is a brick name, or a mapping of one brick to its arguments, beside which it may carry
``name:`` (its module path, and the name other items refer to it by), ``from:`` (the names of the
values it reads, instead of the item before: ``enc2``, ``[up3, enc2]``, ``stats.0`` for one part
of an output of several) and, in place of a brick, ``use:`` (run an earlier item's module again,
with the same weights).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from brickwork.errors import SpecError
from brickwork.layers import ACTIVATIONS
from brickwork.registry import BRICKS, MODELS, Registry, closest_entry, normalize_name
from brickwork.spec.graph import Graph, Ref

CONTAINERS = ("residual", "repeat", "sequential")
"""The item names that hold other items rather than name a registered brick."""
INPUT = "input"
"""The name of the input of a spec with one ``input:``, and of a nested group's input."""
ITEM_KEYS = ("name", "from", "use")
"""The keys an item may have beside its brick."""
RESERVED = frozenset({*dir(Graph), *dir(nn.Sequential), *vars(nn.Module()), INPUT})
"""Names an item cannot take: ``nn.Module``'s and its containers' attributes (``forward``,
``training``, ``append``...), which a submodule of that name would shadow, and ``input``."""
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Item:
    """An item of a spec list.

    Attributes:
        index: its position in the list.
        parent: the spec path of the list (``model``, ``model.layer1.sequential``).
        key: its brick (or container) as written; ``None`` for ``use:``.
        value: the brick's arguments as written (``None`` if none).
        name: its ``name:``, or ``None``.
        sources: the values ``from:`` names, or ``None`` for the item before.
        use: the earlier item whose module it runs again, or ``None``.
    """

    index: int
    parent: str
    key: str | None
    value: object
    name: str | None
    sources: tuple[Ref, ...] | None
    use: str | None

    @property
    def position(self) -> str:
        """Its spec path by position: ``model[4]``."""
        return f"{self.parent}[{self.index}]"

    @property
    def path(self) -> str:
        """Its spec path for messages: ``model.up3`` when named, else ``model[4]``."""
        return self.position if self.name is None else f"{self.parent}.{self.name}"

    @property
    def value_key(self) -> str:
        """The name of its output and module: its name, or its position when unnamed."""
        return self.name if self.name is not None else str(self.index)

    @property
    def wired(self) -> bool:
        """Whether it reads named values or reuses a module: only a graph can hold it."""
        return self.sources is not None or self.use is not None


def parse_items(nodes: object, path: str) -> list[Item]:
    """The items of a spec list.

    Raises:
        SpecError: not a non-empty list, or an item that is malformed (see :func:`parse_item`).
    """
    if not isinstance(nodes, list) or not nodes:
        raise SpecError(f"{path}: expected a non-empty list of bricks, got {nodes!r}")
    return [parse_item(node, path, i) for i, node in enumerate(nodes)]


def parse_item(node: object, parent: str, index: int) -> Item:
    """One item: a brick name, or ``{brick: {arguments}}`` with ``name:``/``from:``, or
    ``{use: name}`` with ``name:``/``from:``.

    Raises:
        SpecError: not a name or a mapping, no brick or several, a bad name, a bad ``from:``.
    """
    here = f"{parent}[{index}]"
    if isinstance(node, str):
        return Item(index, parent, node, None, None, None, None)
    if not isinstance(node, Mapping):
        raise SpecError(f"{here}: expected a brick name or {{brick: {{arguments}}}}, got {node!r}")
    name = check_name(node["name"], f"{here}.name") if "name" in node else None
    path = here if name is None else f"{parent}.{name}"
    sources = parse_sources(node["from"], f"{path}.from") if "from" in node else None
    rest = {k: v for k, v in node.items() if k not in ITEM_KEYS}
    if "use" in node:
        if rest:
            raise SpecError(
                f"{path}: an item either uses an earlier item's module or builds a brick, "
                f"got use: and {list(rest)}",
            )
        use = node["use"]
        if not isinstance(use, str):
            raise SpecError(f"{path}.use: expected the name of an earlier item, got {use!r}")
        return Item(index, parent, None, None, name, sources, use)
    if len(rest) != 1:
        raise SpecError(
            f"{path}: an item is one brick (optionally with name: and from:), got keys "
            f"{list(node)}",
            hint="write each brick as its own list item: - conv_block: {out: 32}",
        )
    ((key, value),) = rest.items()
    if not isinstance(key, str):
        raise SpecError(f"{path}: brick names are strings, got {key!r}")
    return Item(index, parent, key, value, name, sources, None)


def check_name(name: object, where: str) -> str:
    """A name for an item or an input: usable as an attribute, shadowing none of ``nn.Module``'s.

    Names are identifiers (``enc2``, ``head``) or digits (``0``, as ``nn.Sequential`` numbers
    its items and torchvision names ``layer1.0``).

    Raises:
        SpecError: anything else, one line saying why.
    """
    if not isinstance(name, str) or not name or "." in name:
        raise SpecError(f"{where}: must be a non-empty string without '.', got {name!r}")
    if not (name.isidentifier() or _DIGITS.fullmatch(name)) or keyword.iskeyword(name):
        raise SpecError(
            f"{where}: {name!r} is not a valid attribute name; use letters, digits and _ "
            "(not first a digit, unless all digits), and no Python keyword",
        )
    if name == INPUT:
        raise SpecError(f"{where}: 'input' names the input itself; pick another name")
    if name.startswith("_") or name in RESERVED:
        raise SpecError(
            f"{where}: {name!r} would shadow the nn.Module attribute of that name; pick another "
            f"name, such as '{name.strip('_')}_block'",
        )
    return name


def parse_sources(value: object, where: str) -> tuple[Ref, ...]:
    """``from:``: one name or a list of them; ``name.0`` is the first part of an output of
    several.

    Raises:
        SpecError: not names (a position such as ``3`` included: items are referred to by name).
    """
    names = value if isinstance(value, list) else [value]
    if not names:
        raise SpecError(f"{where}: expected a name or a list of names, got []")
    return tuple(parse_ref(name, where) for name in names)


def parse_ref(text: object, where: str) -> Ref:
    """``enc2`` → ``Ref("enc2")``; ``stats.1`` → ``Ref("stats", 1)``."""
    if isinstance(text, int) and not isinstance(text, bool):
        raise SpecError(
            f"{where}: {text} is a position; items are referred to by name, so that inserting "
            "one never rewires the others",
            hint="give the item a name: (`name: enc2`) and write `from: enc2`",
        )
    if not isinstance(text, str) or not text:
        raise SpecError(f"{where}: expected the name of an input or an earlier item, got {text!r}")
    name, dot, part = text.partition(".")
    if dot and not _DIGITS.fullmatch(part):
        raise SpecError(
            f"{where}: {text!r}: one part of an output of several is picked by its position, "
            f"as in '{name}.0'",
        )
    return Ref(name, int(part) if dot else None)


def lookup(key: str, path: str) -> tuple[Registry[Any], str]:
    """The registry and canonical name of a brick, family or activation (bricks win)."""
    for registry in (BRICKS, MODELS, ACTIVATIONS):
        if key in registry:
            return registry, registry.canonical(key)
    names = sorted({*BRICKS.names(), *MODELS.names(), *ACTIVATIONS.names(), *CONTAINERS})
    match = closest_entry(key, {normalize_name(n): n for n in names})
    suggestion = f"; did you mean {match!r}?" if match else ";"
    raise SpecError(
        f"{path}: unknown brick {key!r}{suggestion} valid: {', '.join(names)}",
        hint="`brickwork bricks` lists them with their arguments",
    )


def jsonable(value: Any) -> Any:
    """``value`` with tuples turned into lists, as JSON and YAML write them."""
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    return value
