"""``"package.module:name"`` references: how the registries name built-in builders and readers
without importing them (so a registry's module stays free of torch until an entry is used)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """`target` itself, or the object a ``"package.module:name"`` string names (imported now)."""
    if callable(target):
        return target
    module, _, name = str(target).partition(":")
    return getattr(importlib.import_module(module), name)


def dotted_name(target: Callable[..., Any] | str) -> str:
    """``"module:qualname"`` of a callable (a string is returned as it is)."""
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A package's module-level ``__getattr__`` (PEP 562): the public name `name` is taken from the
    submodule ``names[name]`` on first use, any other name is imported as a submodule of `package`."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__
