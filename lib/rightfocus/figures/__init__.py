"""Figure and table registry: one renderer per inventory id, registered by id.

A renderer is a function ``f(ctx: RenderContext) -> matplotlib Figure | Table`` decorated with
``@register("mg.fig5a", kind="figure", groups=["voc-main"], protocol=...)`` (`protocol`: the id's protocol
card, `rightfocus.protocol`). `render_all` saves figures as
``<id>.png`` + ``<id>.pdf`` and tables as ``<id>.csv`` + ``<id>.md`` under ``figures/<profile>/``.

Renderers only READ results (through `rightfocus.runs.store`); they never train. When a group
a renderer reads has no results, `render_all` writes an explicit placeholder naming the group and the
command that produces it, never fake data. A renderer that finds its groups but not the runs it needs
raises `MissingResults`, which also becomes a placeholder.

Registration: the renderer modules of every paper in `rightfocus.papers.PAPERS` (`Paper.renderers`;
the built-in papers name ``figures/<paper>_*.py``, so a new module of theirs only needs that name and the
decorator) are imported when this package is imported; `load_renderers` also imports those of papers
registered later (plug-ins, `rightfocus.registry.load_plugins`). An id's prefix (``mg.fig5a`` -> ``mg``)
names its paper, whose demo deviations are printed under it.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from rightfocus.papers import PAPERS, paper_of_group, paper_of_id
from rightfocus.registry import load_plugins

log = logging.getLogger(__name__)

KINDS = ("figure", "table")
#: groups that need no training results
NO_RESULTS_GROUPS = frozenset({"none", "config"})


class MissingResults(LookupError):
    """Raised by a renderer when the runs it needs are not in the results; becomes a placeholder."""


@dataclass
class Table:
    """What a table renderer returns: the frame (saved as csv + md) and note lines for the md."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    title: str = ""


@dataclass(frozen=True)
class Renderer:
    id: str
    kind: str
    groups: tuple[str, ...]
    func: Callable[["RenderContext"], Any]
    #: the id's protocol card (`rightfocus.protocol.Protocol`), declared with the renderer
    protocol: Any = None


FIGURES: dict[str, Renderer] = {}


def register(fig_id: str, kind: str = "figure", groups: Sequence[str] = (), protocol: Any = None) -> Callable:
    """Decorator: register `func` as the renderer of inventory id `fig_id`; `protocol` is its protocol
    card (`rightfocus.protocol.Protocol`: the runs' recipes and the paper sentence the id follows)."""
    if kind not in KINDS:
        raise ValueError(f"register({fig_id!r}): kind={kind!r}; use one of {KINDS}")

    def wrap(func: Callable) -> Callable:
        if fig_id in FIGURES and FIGURES[fig_id].func is not func:
            raise ValueError(f"figure id {fig_id!r} registered twice ({FIGURES[fig_id].func.__module__})")
        FIGURES[fig_id] = Renderer(fig_id, kind, tuple(g for g in groups if g not in NO_RESULTS_GROUPS), func,
                                   protocol)
        return func

    return wrap


@dataclass
class RenderContext:
    """What a renderer gets: where results live, the id being rendered, and cached readers."""

    profile: str
    results: Path
    fig_id: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def metrics(self, group: str) -> pd.DataFrame:
        """All metrics rows of a group joined with configs (`store.load_metrics`), cached."""
        key = ("metrics", group)
        if key not in self._cache:
            from rightfocus.runs import store

            self._cache[key] = store.load_metrics(self.results, self.profile, group)
        return self._cache[key]

    def has_group(self, group: str) -> bool:
        """True when the group's manifest exists and at least one of its runs has metrics."""
        try:
            return not self.metrics(group).empty
        except FileNotFoundError:
            return False

    def run_dir(self, run_id: str) -> Path:
        from rightfocus.runs import store

        return store.run_dir(self.results, self.profile, run_id)

    def deviations(self) -> list[str]:
        """The budget-driven deviations from the paper that affect this id (demo profile only)."""
        return deviations_for(self.fig_id, self.profile)


#: the note under every figure and table of the rehearsal profile (`make rehearse`)
REHEARSAL_NOTE = ("REHEARSAL: stand-in data and random stand-in weights, every run capped to a few steps; "
                  "the numbers say nothing about the papers (`make rehearse`, results/rehearsal)")


def deviations_for(fig_id: str, profile: str) -> list[str]:
    """The budget-driven deviations from the paper that affect `fig_id` (demo profile only: its
    paper's `Paper.demo_deviations`, lists kept with the grids); the rehearsal profile's one note,
    `REHEARSAL_NOTE`, under every id."""
    if profile == "rehearsal":
        return [REHEARSAL_NOTE]
    paper = paper_of_id(fig_id)
    if profile != "demo" or paper is None:
        return []
    return paper.demo_deviations(fig_id)


class RenderedPaths(list):
    """`render_all`'s result: the written paths, plus the ids rendered as placeholders."""

    placeholders: dict[str, str]

    def __init__(self, paths: Iterable[Path] = (), placeholders: dict[str, str] | None = None) -> None:
        super().__init__(paths)
        self.placeholders = dict(placeholders or {})


def _import_renderers() -> None:
    """Import the renderer modules of every registered paper, paper by paper (each once)."""
    for paper in PAPERS.values():
        for module in paper.renderer_modules():
            importlib.import_module(module)


def load_renderers() -> dict[str, Renderer]:
    """Load the plug-ins (`rightfocus.registry.load_plugins`) and the renderers of every registered
    paper; returns `FIGURES`."""
    load_plugins()
    _import_renderers()
    return FIGURES


def _grid_of(group: str) -> str:
    """The Make target that trains `group`: that of the paper whose grid has it (the first paper's when
    none has)."""
    paper = paper_of_group(group) or next(iter(PAPERS.values()))
    return paper.make_target


def render_all(
    profile: str = "demo",
    results: str | Path = "results",
    only: Sequence[str] | None = None,
    out: str | Path | None = None,
    part: tuple[int, int] = (1, 1),
) -> RenderedPaths:
    """Render every registered id (or those in `only`, glob patterns allowed) into `out`
    (default ``figures/<profile>``). Returns the written paths; ``.placeholders`` maps the ids that
    had no results to the reason. Also writes ``render_report.json`` (id -> status).
    `part` = (k, n) renders the k-th of n interleaved slices of those ids (n processes at once;
    ``render_report.json`` is shared, locked).

    Renderers that fail for another reason are written as placeholders naming the error and, after
    every id has been tried, a RuntimeError lists them. Plug-in papers' renderers are loaded first
    (`load_renderers`)."""
    from rightfocus.experiments.grids import PROFILES
    from rightfocus.figures import style

    load_renderers()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known profiles: {list(PROFILES)}")
    k, n = part
    if not 1 <= k <= n:
        raise ValueError(f"part {k}/{n}: use k/n with 1 <= k <= n")
    ids = _select_ids(only)[k - 1::n]
    style.use_style()
    out = Path(out) if out is not None else Path("figures") / profile
    out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    written = RenderedPaths()
    report: dict[str, str] = {}
    failed: dict[str, str] = {}
    for fig_id in ids:
        rend = FIGURES[fig_id]
        ctx = RenderContext(profile, Path(results), fig_id, cache)
        missing = [g for g in rend.groups if not ctx.has_group(g)]
        reason = None
        result = None
        if missing:
            targets = " / ".join(dict.fromkeys(f"make {_grid_of(g)} PROFILE={profile}" for g in missing))
            reason = f"no results for group {', '.join(missing)} in {Path(results) / profile} - run `{targets}`"
        else:
            try:
                result = rend.func(ctx)
            except MissingResults as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - reported below, after the other ids
                log.exception("renderer %s failed", fig_id)
                reason = f"renderer failed: {type(exc).__name__}: {exc}"
                failed[fig_id] = reason
        notes = ctx.deviations()
        flags = _flags(ctx, rend.groups) if reason is None else []
        if reason is not None:
            result = style.placeholder(rend.kind, fig_id, reason)
            if fig_id not in failed:
                written.placeholders[fig_id] = reason
            report[fig_id] = f"placeholder: {reason}"
        else:
            report[fig_id] = "rendered"
        written.extend(_save(result, rend.kind, fig_id, out, notes, flags))
    report_path = out / "render_report.json"
    from rightfocus.runs import store

    store.update_json(report_path, report)  # shared by `make -j` render jobs: locked, atomic
    written.append(report_path)
    if written.placeholders:
        log.warning("placeholders (no results): %s", ", ".join(sorted(written.placeholders)))
    if failed:
        raise RuntimeError("renderers failed (placeholders written): " +
                           "; ".join(f"{k}: {v}" for k, v in failed.items()))
    return written


def _select_ids(only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(FIGURES)
    ids: list[str] = []
    for pat in only:
        hits = [i for i in FIGURES if fnmatch.fnmatch(i, pat)]
        if not hits:
            raise KeyError(f"no renderer for {pat!r}; known ids: {', '.join(FIGURES)}")
        ids.extend(h for h in hits if h not in ids)
    return ids


def _flags(ctx: RenderContext, groups: Sequence[str]) -> list[str]:
    """Operating-point footnotes of an id drawn from `groups`, only when some of their runs miss it
    (`figures.operating_point`; the claims tables print their own)."""
    from rightfocus.figures import operating_point

    return operating_point.footnotes(ctx, groups) if operating_point.missed(ctx, groups) else []


def _save(result: Any, kind: str, fig_id: str, out: Path, notes: list[str], flags: Sequence[str] = ()) -> list[Path]:
    from rightfocus.figures import style

    if kind == "figure":
        if isinstance(result, Table):
            raise TypeError(f"{fig_id} is registered as a figure but returned a Table")
        return style.save_figure(result, out / fig_id, notes, flags)
    if not isinstance(result, Table):
        raise TypeError(f"{fig_id} is registered as a table and must return figures.Table, got {type(result)}")
    return style.save_table(result, out / fig_id, notes, flags)


_import_renderers()


def __getattr__(name: str) -> Any:
    if name == "DEVIATION_PROVIDERS":  # deprecated: id prefix -> function(fig_id) -> the demo's deviations
        import warnings

        from rightfocus.papers import PAPERS

        warnings.warn("figures.DEVIATION_PROVIDERS is deprecated; use rightfocus.papers.PAPERS[key]."
                      "demo_deviations", DeprecationWarning, stacklevel=2)
        return {key: paper.demo_deviations for key, paper in PAPERS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
