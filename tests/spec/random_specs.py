"""Random specs, chains and graphs, mostly valid and sometimes not: for the property tests, and
for any script that wants many specs (a reliability run, say). Import with ``tests/spec`` on the
path::

    import random
    from random_specs import random_spec

    spec = random_spec(random.Random(seed))            # a dict: build(spec) or SpecError
    spec = random_spec(random.Random(seed), bombs=True)  # sometimes YAML text that is a bomb

Sizes stay small (a few thousand parameters), so every spec that builds does so in milliseconds
and runs on the CPU. With ``bombs=True`` about one spec in ten is a denial-of-service attempt
(a YAML alias bomb, a repeat of a billion copies, nesting thousands deep, a document of
megabytes, an input too big for a tensor, names that shadow ``nn.Module`` attributes), each of
which brickwork must refuse with a ``SpecError`` at once.
"""

import random
from typing import Any

ACTIVATIONS = ["relu", "gelu", "tanh", "sigmoid", "identity"]
MERGES = ["concat", "add", "mul"]
BAD_NAMES = ["forward", "training", "__dict__", "my-block", "input", "append"]
Scope = dict[str, str]
"""The names an item may read, each with the kind of value it holds: ``image`` (C, H, W),
``vector`` (F,) or (L, F), ``ids`` (token ids), ``parts`` (a tuple), or ``any``."""


def random_spec(rng: random.Random, *, bombs: bool = False) -> dict[str, Any] | str:
    """A random spec: a chain (a list of bricks) or a graph (names, ``from:``, merges, splits,
    ``use:``, several inputs and outputs)."""
    if bombs and rng.random() < 0.1:
        return random_bomb(rng)
    inputs = {f"x{i}": _input(rng) for i in range(rng.choice([1, 1, 2, 3]))}
    if len(inputs) == 1 and rng.random() < 0.5:
        ((shape, dtype),) = inputs.values()
        spec: dict[str, Any] = {"input": shape, "input_dtype": dtype}
        inputs = {"input": (shape, dtype)}
    else:
        spec = {"inputs": {n: _written(shape, dtype) for n, (shape, dtype) in inputs.items()}}
    scope = {name: _kind(shape, dtype) for name, (shape, dtype) in inputs.items()}
    items = _items(rng, scope, depth=2, first_from=len(inputs) > 1)
    spec["model"] = items
    named = [i["name"] for i in items if isinstance(i.get("name"), str) and i["name"] in scope]
    if named and rng.random() < 0.3:
        picks = rng.sample(named, rng.randint(1, min(3, len(named))))
        spec["outputs"] = (
            picks if rng.random() < 0.5 else {f"out{k}": p for k, p in enumerate(picks)}
        )
    return spec


def _input(rng: random.Random) -> tuple[list[int], str]:
    kind = rng.random()
    if kind < 0.55:
        return [rng.randint(1, 4), rng.randint(2, 10), rng.randint(2, 10)], "float32"
    if kind < 0.85:
        return [rng.randint(1, 16)], "float32"
    return [rng.randint(1, 6)], "int64"


def _written(shape: list[int], dtype: str) -> Any:
    return shape if dtype == "float32" else {"shape": shape, "dtype": dtype}


def _kind(shape: list[int], dtype: str) -> str:
    if dtype != "float32":
        return "ids"
    return "image" if len(shape) == 3 else "vector"


def _items(rng: random.Random, scope: Scope, depth: int, first_from: bool) -> list[Any]:
    """A list of items; ``scope`` holds the names they may read (inputs and earlier items)."""
    items: list[Any] = []
    current = next(reversed(scope.values()))  # what the item before gives
    for i in range(rng.randint(1, 6)):
        source = None
        if (i == 0 and first_from) or (rng.random() < 0.3 and len(scope) > 1):
            source = _reference(rng, scope)
            current = scope.get(source.partition(".")[0], "any")
        item, current = _item(rng, scope, current, depth)
        if source is not None and "from" not in item:
            item["from"] = source
        name = _name(rng, i, scope)
        if name is not None:
            item["name"] = name
            scope[name] = current
        items.append(item)
    return items


def _item(rng: random.Random, scope: Scope, kind: str, depth: int) -> tuple[dict[str, Any], str]:
    """An item reading a value of ``kind``, and the kind of value it gives."""
    roll = rng.random()
    same = [n for n, k in scope.items() if k == kind and kind in ("image", "vector")]
    if roll < 0.15 and len(same) >= 2:
        return {rng.choice(MERGES): None, "from": rng.sample(same, 2)}, kind
    if roll < 0.25 and depth > 0 and kind in ("image", "vector"):
        body = _items(rng, {"input": kind}, depth - 1, first_from=False)
        container = rng.choice(["sequential", "residual", "repeat"])
        if container == "repeat":
            return {"repeat": {"times": rng.randint(1, 3), "body": body}}, "any"
        return {container: body}, "any"
    if roll < 0.3:
        return {"chunk": {"chunks": rng.randint(1, 3), "dim": rng.choice([1, -1])}}, "parts"
    items = [n for n in scope if n not in ("input",) and not n.startswith("x")]
    if roll < 0.35 and items:
        return {"use": rng.choice(items)}, "any"
    return _brick(rng, kind)


def _brick(rng: random.Random, kind: str) -> tuple[dict[str, Any], str]:
    size = rng.choice([1, 2, 3, 4, 6, 8, 8, 8, rng.choice([0, -1])])
    image = [
        {"conv2d": {"out": size, "kernel_size": rng.randint(1, 3), "padding": rng.randint(0, 1)}},
        {"conv_block": {"out": size, "kernel_size": 3, "padding": 1}},
        {"maxpool2d": {"kernel_size": 2}},
        {"batchnorm": None},
        {"layernorm": None},
        {rng.choice(ACTIVATIONS): None},
    ]
    vector = [{"linear": {"out": size}}, {"dec_block": {"out": size}}, {"batchnorm": None}]
    vector.append({rng.choice(ACTIVATIONS): None})
    if kind == "ids" or (kind == "any" and rng.random() < 0.1):
        return {"embedding": {"num_embeddings": 12, "out": size}}, "vector"
    if rng.random() < 0.1:
        return {"flatten": None}, "vector"
    if kind == "image" or (kind == "any" and rng.random() < 0.5):
        return rng.choice(image), "image"
    return rng.choice(vector), "vector"


def _name(rng: random.Random, index: int, scope: Scope) -> str | None:
    roll = rng.random()
    if roll < 0.02:
        return rng.choice(BAD_NAMES)
    if roll < 0.03:
        return rng.choice(list(scope))  # a duplicate
    if roll < 0.75:
        return f"n{len(scope)}_{index}"
    return None


def _reference(rng: random.Random, scope: Scope) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "nowhere"  # a name that does not exist
    if roll < 0.05:
        return f"n{len(scope) + 1}_0"  # a name that comes later, or never
    parts = [n for n, k in scope.items() if k == "parts"]
    if parts and roll < 0.5:
        return f"{rng.choice(parts)}.{rng.randint(0, 2)}"  # a part of an output of several
    return rng.choice(list(scope))


def random_bomb(rng: random.Random) -> dict[str, Any] | str:
    """A spec meant to exhaust time, memory or the stack; brickwork refuses each at once."""
    kind = rng.randrange(7)
    if kind == 0:  # "billion laughs": nested YAML anchors and aliases
        lines = ['a: &a ["relu", "relu", "relu", "relu", "relu", "relu", "relu", "relu", "relu"]']
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
            lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        return "\n".join([*lines, "input: [4]", "model: *i"])
    if kind == 1:
        return {
            "input": [4],
            "model": [{"repeat": {"times": 10 ** rng.randint(4, 12), "body": ["relu"]}}],
        }
    if kind == 2:
        depth = rng.choice([250, 1_000, 10_000])
        return "input: [4]\nmodel: " + "[" * depth + "relu" + "]" * depth
    if kind == 3:
        node: Any = ["relu"]
        for _ in range(rng.randint(70, 300)):
            node = [{"sequential": node}]
        return {"input": [4], "model": node}
    if kind == 4:
        return "input: [4]\nmodel: [relu]\n# " + "x" * rng.randint(300_000, 3_000_000)
    if kind == 5:
        return {"input": [10**18, rng.randint(4, 40)], "model": ["relu"]}
    name = rng.choice(BAD_NAMES)
    return {"input": [4], "model": [{"linear": {"out": 2}, "name": name}]}
