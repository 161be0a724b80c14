"""Explicit registry of hashing methods (in the manner of timm's `register_model`).

A method module decorates its `HashMethod` subclass with ``@register_method("name")``.
Built-in modules are imported by `load_builtin_methods()` from a fixed list, not by star imports,
so importing `fabricsearch.hashing` never fills the registry as a side effect.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fabricsearch.hashing.base import HashMethod, MethodConfig

BUILTIN_METHOD_MODULES = ["dvsh", "dnnh", "dsah", "tsn", "dshgan", "classical"]

_REGISTRY: dict[str, type[HashMethod]] = {}
_builtins_loaded = False


class UnknownMethodError(KeyError):
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
