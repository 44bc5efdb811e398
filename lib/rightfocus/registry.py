"""`Registry`: the one list of a concept's entries (attribution methods, losses, model kinds,
backbones, datasets, papers), each with its metadata, in registration order.

Everything that offers a choice (the grids, the CLI, `Guide`, the widgets, the figures) reads the
registry instead of keeping its own tuple of names, so adding an entry is one new file that calls
``register``. Third-party entries load through `load_plugins` (entry-point group
``rightfocus.plugins`` and the ``RIGHTFOCUS_PLUGINS`` environment variable), so subprocesses (make,
papermill, launched jobs) see them too.
"""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

T = TypeVar("T")

#: environment variable naming plug-in modules to import (comma-separated), e.g. ``mylab.methods``
PLUGINS_ENV = "RIGHTFOCUS_PLUGINS"
#: entry-point group of installed plug-ins (each entry point names a module to import)
PLUGINS_GROUP = "rightfocus.plugins"


class UnknownName(ValueError, KeyError):
    """A name that is not registered; the message lists the registered names and how to add one.
    A ValueError for argument checks and a KeyError for mapping-style lookups."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Named entries of one concept, in registration order.

    ``REG.register("name", obj)`` or, as a decorator, ``@REG.register("name")``; ``REG["name"]``
    raises `UnknownName` naming the choices; iteration yields the names.
    """

    def __init__(self, concept: str, how_to_add: str = "") -> None:
        self.concept = concept
        self.how_to_add = how_to_add
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, replace: bool = False) -> T | Callable[[T], T]:
        """Add `obj` under `name`; without `obj`, a decorator. A second entry under one name is an error
        unless ``replace=True``."""

        def add(o: T) -> T:
            if not isinstance(name, str) or not name:
                raise ValueError(f"a {self.concept} needs a non-empty string name, got {name!r}")
            if name in self._entries and not replace:
                raise ValueError(f"{self.concept} {name!r} is registered already; pick another name "
                                 "or pass replace=True")
            self._entries[name] = o
            return o

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> T:
        """Remove and return the entry `name` (tests and plug-in reloads)."""
        return self._entries.pop(self._check(name))

    @contextmanager
    def temporarily(self, name: str, obj: T) -> Iterator[T]:
        """Register `obj` under `name` for the duration of a ``with`` block (restoring any previous entry)."""
        previous = self._entries.get(name)
        self.register(name, obj, replace=True)
        try:
            yield obj
        finally:
            if previous is None:
                self._entries.pop(name, None)
            else:
                self._entries[name] = previous

    def _check(self, name: str) -> str:
        if name not in self._entries:
            hint = f"; to add one, {self.how_to_add}" if self.how_to_add else ""
            raise UnknownName(f"unknown {self.concept} {name!r}; choose one of {list(self._entries)}{hint}")
        return name

    def __getitem__(self, name: str) -> T:
        return self._entries[self._check(name)]

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._entries.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def values(self) -> list[T]:
        return list(self._entries.values())

    def view(self, keep: Callable[[T], bool] | None = None) -> "NameView":
        """The names of the entries that `keep` accepts, read from the registry at every use (entries
        registered later appear); a read-only sequence of strings."""
        return NameView(self, keep)

    def __repr__(self) -> str:
        return f"Registry({self.concept!r}: {list(self._entries)})"


class NameView(Sequence[str]):
    """A live, filtered sequence of a registry's names (`Registry.view`); equal to a tuple of the same
    names. `source` is a registry or a callable returning one (so that importing the module that holds
    the view does not import the registry's entries)."""

    def __init__(self, source: "Registry[Any] | Callable[[], Registry[Any]]", keep: Callable[[Any], bool] | None = None
                 ) -> None:
        self._source, self._keep = source, keep

    def _names(self) -> tuple[str, ...]:
        reg = self._source if isinstance(self._source, Registry) else self._source()
        return tuple(n for n, e in reg.items() if self._keep is None or self._keep(e))

    def __getitem__(self, i):  # type: ignore[override]
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, list, NameView)) else other)

    def __hash__(self) -> int:
        return hash(self._names())

    def __add__(self, other: Sequence[str]) -> tuple[str, ...]:
        return self._names() + tuple(other)

    def __repr__(self) -> str:
        return repr(self._names())


_loaded: set[str] = set()


def load_plugins(extra: str | None = None) -> list[str]:
    """Import the plug-in modules named by the ``rightfocus.plugins`` entry points, by
    ``$RIGHTFOCUS_PLUGINS`` and by `extra` (comma-separated), once each; returns the modules imported now.
    A module that fails to import raises ImportError naming the variable or entry point that named it."""
    names: list[tuple[str, str]] = []
    for ep in entry_points(group=PLUGINS_GROUP):
        names.append((ep.value.split(":")[0], f"entry point {ep.name!r} of group {PLUGINS_GROUP!r}"))
    for source, value in ((PLUGINS_ENV, os.environ.get(PLUGINS_ENV, "")), ("the plugins argument", extra or "")):
        names += [(m.strip(), source) for m in value.split(",") if m.strip()]
    imported = []
    for module, source in names:
        if module in _loaded:
            continue
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ImportError(f"plug-in module {module!r} (named by {source}) does not import: {e}") from e
        _loaded.add(module)
        imported.append(module)
    return imported
