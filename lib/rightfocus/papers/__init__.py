"""Papers: each reproduced paper (and the project's own additions) as one `Paper` in the registry `PAPERS`.

A `Paper` names the parts of a paper that live elsewhere: its grid module (the runs per group and
profile), its training notebook, its renderer modules (the inventory ids they register start with
``<key>.``), the demo deviations printed under its ids, the protocol recipes of its groups, its claims
tables and the Make target that trains it. Every consumer reads this registry: the grid writer
(`experiments.makefile`), the renderers (`figures`), the protocol cards (`protocol`), the site
(`site`), ``rightfocus grid / check / launch`` (`cli`, `check`, `launch`) and the rehearsal
(`experiments.rehearsal`).

The built-in papers register themselves in `rightfocus.papers.mg`, `.aim` and `.ext`; another paper is
a package that calls ``PAPERS.register(Paper(...))`` and is named in ``$RIGHTFOCUS_PLUGINS`` (or a
``rightfocus.plugins`` entry point), which the command line, the renderer and the grid writer load
(`rightfocus.registry.load_plugins`).

References to other modules are lazy: a `Ref` is the object itself or a string ``"module"`` /
``"module:attribute"`` imported on first use, so importing this package imports no grid or renderer.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterable, Mapping

from rightfocus.registry import Registry

#: an object, or where to import it from: ``"package.module"`` or ``"package.module:attribute"``
Ref = Any
#: inventory entries: id -> (kind, groups)
Ids = Mapping[str, tuple[str, tuple[str, ...]]]


def resolve(ref: Ref) -> Any:
    """The object `ref` names (a string ``"module[:attribute]"`` is imported; anything else is returned)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def module_names(pattern: str) -> list[str]:
    """Module names matching `pattern`: a dotted name, or ``"package.prefix*"`` for every submodule
    of ``package`` whose name matches (in name order; the package itself is not imported)."""
    if "*" not in pattern:
        return [pattern]
    package, _, glob = pattern.rpartition(".")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{pattern!r}: {package!r} is not a package")
    names = sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations))
    return [f"{package}.{n}" for n in names if fnmatch.fnmatch(n, glob)]


@dataclass(frozen=True)
class Paper:
    """One paper: where its grid, notebook, renderers, deviations, recipes and claims are.

    `grid_module` holds ``GROUPS``, ``group_configs(group, profile, data_root)``, ``all_configs(profile,
    data_root)`` and ``rehearsal_key(config)`` (optional: ``rehearsal_companions``, the runs a sampled
    rehearsal keeps beside the sampled ones; ``GROUP_NEEDS``, group -> (paper, group) pairs whose demo
    stamps its demo group waits for). Its profiles are the project's (``experiments.grids.PROFILES``)."""

    key: str
    #: the site page's title, with the citation
    title: str
    #: one line for the command line's help, e.g. "model guidance (Rao et al. 2023)"
    short: str
    grid_module: Ref
    #: the training notebook papermill executes per run (paper profile) or group (demo), from the project root
    notebook: str
    #: modules whose ``@figures.register`` calls register the paper's ids; ``"package.prefix_*"`` globs
    renderers: tuple[str, ...] = ()
    #: demo: every other group waits for this one (its runs are shared and the training loop has no run lock)
    first_group: str | None = None
    #: refs to mappings id -> (kind, groups) in the order of the paper's page; empty: its registered ids
    inventory: tuple[Ref, ...] = ()
    #: the claims tables (ids) of the paper; its site page opens with the first
    claims: tuple[str, ...] = ()
    #: ref to a function fig_id -> the demo's deviations from the paper that affect that id
    deviations: Ref = None
    #: ref to a mapping group -> the `protocol.Recipe`s of its paper-profile runs
    recipes: Ref = None
    #: ref to a mapping whose values are the release weights files the grid reads from WEIGHTS_ROOT
    weights: Ref = None
    #: its grid is complete on its own: ``rightfocus check``, ``rightfocus launch`` and the rehearsal take it
    standalone: bool = True
    #: the Make target that trains its grid for a profile (``make <target> PROFILE=...``); "" = `key`
    make_target: str = ""
    #: the command that trains its demo grid (named on the site page); "" = ``make <make_target>``
    demo_command: str = ""

    def __post_init__(self) -> None:
        if not self.make_target:
            object.__setattr__(self, "make_target", self.key)
        if not self.demo_command:
            object.__setattr__(self, "demo_command", f"make {self.make_target}")

    @property
    def grids(self) -> ModuleType:
        """The grid module."""
        return resolve(self.grid_module)

    def renderer_modules(self) -> list[str]:
        """The renderer modules' names, globs expanded."""
        return [m for pattern in self.renderers for m in module_names(pattern)]

    def inventory_ids(self) -> Ids | None:
        """Its ids in page order, id -> (kind, groups), or None when it declares no inventory."""
        if not self.inventory:
            return None
        out: dict[str, tuple[str, tuple[str, ...]]] = {}
        for ref in self.inventory:
            out.update(resolve(ref))
        return out

    def demo_deviations(self, fig_id: str) -> list[str]:
        """The demo's deviations from the paper that affect `fig_id`."""
        return list(resolve(self.deviations)(fig_id)) if self.deviations is not None else []

    def recipe_table(self) -> Mapping[str, tuple[Any, ...]]:
        """Group -> its protocol recipes (empty when the paper declares none)."""
        return resolve(self.recipes) if self.recipes is not None else {}

    def weight_files(self) -> list[str]:
        """The release weights files its grid reads."""
        return list(resolve(self.weights).values()) if self.weights is not None else []


PAPERS: Registry[Paper] = Registry(
    "paper", "write a package that calls rightfocus.papers.PAPERS.register(Paper(...)) and name it in "
             "$RIGHTFOCUS_PLUGINS (docs/extending.md, 'Add a paper')")


def register(paper: Paper, *, replace: bool = False) -> Paper:
    """Add `paper` to `PAPERS` under its key."""
    return PAPERS.register(paper.key, paper, replace=replace)


def paper_of_group(group: str) -> Paper | None:
    """The paper whose grid lists `group`, or None."""
    return next((p for p in PAPERS.values() if group in p.grids.GROUPS), None)


def paper_of_id(fig_id: str) -> Paper | None:
    """The paper whose prefix `fig_id` carries (``mg.fig5a`` -> mg), or None."""
    return PAPERS.get(fig_id.split(".")[0])


def standalone() -> list[str]:
    """Keys of the papers whose grids run on their own (`Paper.standalone`)."""
    return [k for k, p in PAPERS.items() if p.standalone]


def choices_help(keys: Iterable[str] | None = None) -> str:
    """``key: short`` for each of `keys` (default: every paper), for the command line's ``--paper`` help."""
    return "; ".join(f"{k}: {PAPERS[k].short}" for k in (PAPERS if keys is None else keys))


__all__ = ["Ids", "PAPERS", "Paper", "Ref", "choices_help", "module_names", "paper_of_group", "paper_of_id",
           "register", "resolve", "standalone"]

# the built-in papers register on import, in this order (the order of pages, cards and choices)
from rightfocus.papers import mg  # noqa: E402,F401,I001
from rightfocus.papers import aim  # noqa: E402,F401
from rightfocus.papers import ext  # noqa: E402,F401
