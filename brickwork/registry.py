"""Name → factory registries, one per kind of component (activations, norms, bricks, models).

Names are normalised before lookup: lowercase, with ``_`` and ``-`` removed, so ``LeakyReLU``,
``leaky_relu`` and ``leaky-relu`` are the same key. A component is named by a *component spec*:

- ``"relu"``: the name alone;
- ``("lrelu", {"negative_slope": 0.2})``: a name and keyword arguments;
- ``{"lrelu": {"negative_slope": 0.2}}``: the same as a one-key mapping, which is how JSON and
  YAML write it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from brickwork.errors import ArgumentError, ConfigError, check_kwargs, closest

T = TypeVar("T", bound=Callable[..., Any])

ComponentSpec = str | tuple[str, Mapping[str, Any]] | Mapping[str, Any]


def normalize_name(name: str) -> str:
    """The lookup key of ``name``: lowercase, no ``_`` or ``-`` (``Leaky_ReLU`` → ``leakyrelu``)."""
    return name.lower().replace("_", "").replace("-", "")


def closest_entry(name: str, entries: Mapping[str, str]) -> str | None:
    """The entry whose normalised key is closest to ``name``'s, as ``entries`` spells it.

    ``entries`` maps normalised keys (aliases included) to the names to show.
    """
    match = closest(normalize_name(name), entries)
    return entries[match] if match else None


def parse_component_spec(spec: object, what: str = "component") -> tuple[str, dict[str, Any]]:
    """Split a component spec into ``(name, kwargs)``.

    Args:
        spec: ``name``, ``(name, kwargs)`` or ``{name: kwargs}``; ``kwargs`` may be ``None``.
        what: the kind of component, for error messages (``"activation"``).

    Raises:
        ConfigError: the spec has none of the three forms.
    """
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[0], str):
        name, kwargs = spec
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((name, kwargs),) = spec.items()
    else:
        raise ConfigError(
            f"bad {what} spec {spec!r}: expected a name, (name, kwargs) or {{name: kwargs}}"
        )
    if kwargs is None:
        kwargs = {}
    if not isinstance(name, str) or not isinstance(kwargs, Mapping):
        raise ConfigError(
            f"bad {what} spec {spec!r}: the name must be a string and its arguments a mapping"
        )
    return name, dict(kwargs)


@dataclass(frozen=True, kw_only=True)
class SizeRule:
    """How a registered brick or family takes its sizes from the shape of its input.

    The spec builder (:func:`brickwork.build`) reads it to fill in the arguments a user never
    types. Shapes are per sample, without the batch dimension: ``(C, H, W)`` for images. Every
    field is keyword-only: ``SizeRule(in_arg="in_channels", out_arg="out_channels", ranks=(3,))``.

    Attributes:
        in_arg: argument that receives the incoming size (``"in_features"``), or ``None``.
        in_dim: which dimension of the per-sample shape that size is: 0 for channels, -1 for
            the last (features).
        flat: the incoming size is the whole per-sample size, ``prod(shape)`` (a model that
            flattens its input first, such as ``mlp``).
        merge: the entry takes two or more inputs and gives one (``concat``, ``add``, ``mul``); a
            spec names them with ``from: [a, b]``. Its module says which shapes fit together
            (:class:`brickwork.blocks.Merge`).
        out_arg: argument that a spec's ``out:`` stands for (``"out_features"``), or ``None``.
        ranks: per-sample ranks the entry accepts (``(3,)`` for ``(C, H, W)``); ``None``: any.
        shape_arg: argument that receives the spatial shape ``input[1:]`` (families), or ``None``.
        dims_arg: argument that receives the spatial rank: 1 for ``(F,)`` or ``(C, L)``, 2 for
            ``(C, H, W)``, 3 for ``(C, D, H, W)`` (a norm that picks its 1-d/2-d/3-d form).
        int_input: the entry takes integer ids (``embedding``), not floats.
        any_dtype: the entry passes any dtype through (``flatten``, ``identity``); entries
            without it or ``int_input`` take floating-point input.
    """

    in_arg: str | None = None
    in_dim: int = 0
    out_arg: str | None = None
    ranks: tuple[int, ...] | None = None
    shape_arg: str | None = None
    dims_arg: str | None = None
    int_input: bool = False
    any_dtype: bool = False
    flat: bool = False
    merge: bool = False


class Registry(Generic[T]):
    """A mapping from normalised names (and aliases) to factories of one kind.

    Args:
        kind: what the registry holds, used in messages (``"activation"``).

    Example:
        >>> acts = Registry("activation")
        >>> _ = acts.register("relu", torch.nn.ReLU, aliases=("rectifier",))
        >>> acts.build("Rectifier")
        ReLU()
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}  # canonical name → factory
        self._keys: dict[str, str] = {}  # normalised name or alias → canonical name
        self._sizes: dict[str, SizeRule] = {}  # canonical name → how it takes its input size
        self._aliases: dict[str, list[str]] = {}  # canonical name → aliases as registered

    @overload
    def register(
        self, name: str, factory: T, *, aliases: tuple[str, ...] = (), sizes: SizeRule | None = None
    ) -> T: ...

    @overload
    def register(
        self,
        name: str,
        factory: None = None,
        *,
        aliases: tuple[str, ...] = (),
        sizes: SizeRule | None = None,
    ) -> Callable[[T], T]: ...

    def register(
        self,
        name: str,
        factory: T | None = None,
        *,
        aliases: tuple[str, ...] = (),
        sizes: SizeRule | None = None,
    ) -> T | Callable[[T], T]:
        """Register ``factory`` under ``name`` and ``aliases``; usable as a decorator.

        ``sizes`` tells the spec builder which argument takes the incoming size (see
        :class:`SizeRule`); without it, the entry takes no size from its input.

        Raises:
            ConfigError: ``name`` or an alias is already taken in this registry.
        """
        if not isinstance(name, str) or not normalize_name(name):
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if factory is None:
            return lambda f: self.register(name, f, aliases=aliases, sizes=sizes)
        if not callable(factory):
            raise ConfigError(
                f"{self.kind} {name!r}: the factory must be callable, got {factory!r}"
            )
        keys = dict.fromkeys(normalize_name(n) for n in (name, *aliases))  # ordered, deduplicated
        for key in keys:
            if key in self._keys:
                raise ConfigError(
                    f"{self.kind} name {key!r} is already registered "
                    f"(for {self._keys[key]!r}); pick another name"
                )
        self._entries[name] = factory
        self._sizes[name] = sizes or SizeRule()
        self._aliases[name] = [a for a in aliases if normalize_name(a) != normalize_name(name)]
        for key in keys:
            self._keys[key] = name
        return factory

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (a notebook cell that registers again, a test)."""
        canonical = self.canonical(name)
        del self._entries[canonical], self._sizes[canonical], self._aliases[canonical]
        for key in [k for k, v in self._keys.items() if v == canonical]:
            del self._keys[key]

    def canonical(self, name: str) -> str:
        """The registered name that ``name`` (any spelling or alias) refers to.

        Raises:
            ConfigError: unknown name; the message lists valid names and the closest match.
        """
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} name must be a string, got {name!r}")
        key = normalize_name(name)
        if key not in self._keys:
            match = closest_entry(name, self._keys)  # aliases count: 'leaky' finds 'lrelu'
            suggestion = f"; did you mean {match!r}?" if match else ";"
            raise ConfigError(
                f"unknown {self.kind} {name!r}{suggestion} valid: {', '.join(self.names())}"
            )
        return self._keys[key]

    def get(self, name: str) -> T:
        """The factory registered as ``name`` (any spelling or alias)."""
        return self._entries[self.canonical(name)]

    def build(self, spec: object, *args: Any, **extra: Any) -> Any:
        """Call the factory a component spec names.

        Args:
            spec: ``name``, ``(name, kwargs)`` or ``{name: kwargs}``.
            *args: positional arguments placed before the spec's keyword arguments
                (the channel count for a norm, say).
            **extra: keyword arguments supplied by the caller; the spec may not repeat them.

        Raises:
            ConfigError: unknown name or malformed spec.
            ArgumentError: a keyword argument the factory does not take.
        """
        name, kwargs = parse_component_spec(spec, self.kind)
        canonical = self.canonical(name)
        factory = self._entries[canonical]
        clash = sorted(set(kwargs) & set(extra))
        if clash:
            raise ArgumentError(
                f"{self.kind} {canonical!r}: argument(s) {', '.join(clash)} are set by brickwork "
                "and cannot be given in the spec"
            )
        check_kwargs(factory, kwargs, f"{self.kind} {canonical!r}")
        return factory(*args, **kwargs, **extra)

    def size_rule(self, name: str) -> SizeRule:
        """How the entry ``name`` takes its size from its input (see :class:`SizeRule`)."""
        return self._sizes[self.canonical(name)]

    def names(self) -> list[str]:
        """The registered names, sorted (aliases not included)."""
        return sorted(self._entries)

    def aliases(self, name: str) -> list[str]:
        """The other names under which ``name`` is registered, spelt as registered."""
        return list(self._aliases[self.canonical(name)])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


BRICKS: Registry[Callable[..., Any]] = Registry("brick")
"""Bricks: functions or classes that build one ``nn.Module`` from sizes and options."""

MODELS: Registry[Callable[..., Any]] = Registry("model")
"""Model families and their registered variants."""
