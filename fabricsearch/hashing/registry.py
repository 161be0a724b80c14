"""Explicit registry of hashing methods (in the manner of timm's `register_model`).

A method module decorates its `HashMethod` subclass with ``@register_method("name")``.
Built-in modules are imported by `load_builtin_methods()` from a fixed list, not by star imports,
so importing `fabricsearch.hashing` never fills the registry as a side effect.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fabricsearch.errors import ConfigError, UserError

if TYPE_CHECKING:
    from fabricsearch.hashing.base import HashMethod, MethodConfig

BUILTIN_METHOD_MODULES = ["dvsh", "dnnh", "dsah", "tsn", "dshgan", "classical", "head"]

_REGISTRY: dict[str, type[HashMethod]] = {}
_builtins_loaded = False


class UnknownMethodError(UserError, KeyError):
    """A method name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown method"


def register_method(name: str) -> Callable[[type[HashMethod]], type[HashMethod]]:
    """Class decorator: register a `HashMethod` subclass under `name` (raises on duplicates)."""
    key = name.lower()

    def decorator(cls: type[HashMethod]) -> type[HashMethod]:
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"hashing method {key!r} is already registered ({_REGISTRY[key]!r})")
        cls.name = key
        _REGISTRY[key] = cls
        return cls

    return decorator


def unregister_method(name: str) -> None:
    """Remove a method (for tests that register throwaway classes)."""
    _REGISTRY.pop(name.lower(), None)


def load_builtin_methods() -> None:
    """Import the built-in method modules once; modules not written yet are skipped."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in BUILTIN_METHOD_MODULES:
        full = f"fabricsearch.hashing.methods.{module}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:  # a real missing dependency inside the module
                raise
    _builtins_loaded = True


def available_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    load_builtin_methods()
    return sorted(_REGISTRY)


def get_method_class(name: str) -> type[HashMethod]:
    load_builtin_methods()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise UnknownMethodError(
            f"unknown hashing method {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def needs_labels(name: str) -> bool:
    """Whether a method learns from labels. Methods without trainable weights (LSH, ITQ) are
    fitted on images alone, so a library without labels can train them."""
    return bool(get_method_class(name).trainable)


def method_config_class(name: str) -> type[MethodConfig]:
    """The frozen `Config` dataclass of a registered method."""
    return get_method_class(name).Config


def create_method(name: str, config: MethodConfig | None = None, **overrides: Any) -> HashMethod:
    """Instantiate a registered method from its default `Config` plus keyword overrides.

    Unknown override keys raise `TypeError` so typos in ``--option`` values are not ignored.
    """
    cls = get_method_class(name)
    if config is None:
        config = cls.Config(**overrides)
    elif overrides:
        import dataclasses

        config = dataclasses.replace(config, **overrides)
    return cls(config)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(name: str, kind: Any, raw: str) -> Any:
    """One option value from text, by the config field's type; ValueError names the field."""
    import json
    import typing

    text = raw.strip()
    origin = typing.get_origin(kind)
    if kind is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"option {name} takes true or false (yes/no, on/off, 1/0), not {raw!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"option {name} takes a whole number, not {raw!r}") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"option {name} takes a number, not {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"option {name} takes a finite number, not {raw!r}")
        return value
    if kind is str:
        return text
    if origin is tuple:
        (inner, *_rest) = typing.get_args(kind) or (int,)
        try:
            items = json.loads(text) if text.startswith("[") else text.split(",")
        except json.JSONDecodeError:
            raise ConfigError(f"option {name} takes a list such as 24,48,96, not {raw!r}") from None
        return tuple(_coerce(name, inner, str(v)) for v in items)
    raise ConfigError(f"option {name} cannot be set from the command line")


def parse_method_options(method: str, items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings → typed overrides of `method`'s Config, converted by each field's
    declared type (``variational=no`` is False, ``tau=abc`` is refused naming ``tau``). Raises
    ValueError for an unknown key or a value that does not fit."""
    import dataclasses
    import typing

    cls = method_config_class(method)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    reserved = {"bits", "input_size", "backbone"}  # set by their own command-line flags
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--option {item!r} is not KEY=VALUE")
        if key in reserved:
            raise ConfigError(f"option {key} has its own flag (--{key.replace('_', '-')})")
        if key not in fields:
            known = ", ".join(sorted(fields - reserved))
            raise ConfigError(f"{method} has no option {key!r} (options: {known})")
        out[key] = _coerce(key, hints[key], raw)
    return out
