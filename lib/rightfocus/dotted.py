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
