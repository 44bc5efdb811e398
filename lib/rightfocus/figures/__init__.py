"""Figure and table registry: one renderer per inventory id (shared INVENTORY.md), registered by id.

A renderer is a function ``f(ctx: RenderContext) -> matplotlib Figure | Table`` decorated with
``@register("mg.fig5a", kind="figure", groups=["voc-main"], protocol=...)`` (`protocol`: the id's protocol
card, `rightfocus.protocol`). `render_all` saves figures as
``<id>.png`` + ``<id>.pdf`` and tables as ``<id>.csv`` + ``<id>.md`` under ``figures/<profile>/``.

Renderers only READ results (through `rightfocus.experiments.store`); they never train. When a group
a renderer reads has no results, `render_all` writes an explicit placeholder naming the group and the
command that produces it, never fake data. A renderer that finds its groups but not the runs it needs
raises `MissingResults`, which also becomes a placeholder.

Registration: every module ``figures/<paper>_<topic>.py`` (a name with an underscore, e.g.
``mg_pareto.py``, ``aim_tables.py``) is imported when this package is imported, so a new renderer
module only needs that name and the decorator.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

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
            from rightfocus.experiments import store

            self._cache[key] = store.load_metrics(self.results, self.profile, group)
        return self._cache[key]

    def has_group(self, group: str) -> bool:
        """True when the group's manifest exists and at least one of its runs has metrics."""
        try:
            return not self.metrics(group).empty
        except FileNotFoundError:
            return False

    def run_dir(self, run_id: str) -> Path:
        from rightfocus.experiments import store

        return store.run_dir(self.results, self.profile, run_id)

    def deviations(self) -> list[str]:
        """The budget-driven deviations from the paper that affect this id (demo profile only)."""
        return deviations_for(self.fig_id, self.profile)


def _mg_deviations(fig_id: str) -> list[str]:
    from rightfocus.experiments.grids import deviations_for as mg_deviations

    return list(mg_deviations(fig_id))


def _aim_deviations(fig_id: str) -> list[str]:
    """AIM's list: plain strings (affect every aim id) or mappings with ``text``/``what`` and
    ``figures`` (glob patterns such as ``aim.*``)."""
    from rightfocus.experiments.aim_grids import AIM_DEMO_DEVIATIONS

    out = []
    for d in AIM_DEMO_DEVIATIONS:
        if isinstance(d, str):
            out.append(d)
        elif any(fnmatch.fnmatch(fig_id, pat) for pat in d.get("figures", ("*",))):
            out.append(str(d.get("text", d.get("what", ""))))
    return out


def _ext_deviations(fig_id: str) -> list[str]:
    from rightfocus.experiments.ext_grids import deviations_for as ext_deviations

    return ext_deviations(fig_id)


#: id prefix -> function(fig_id) giving the demo deviations that affect that id
DEVIATION_PROVIDERS: dict[str, Callable[[str], list[str]]] = {"mg": _mg_deviations, "aim": _aim_deviations,
                                                              "ext": _ext_deviations}


#: the note under every figure and table of the rehearsal profile (`make rehearse`)
REHEARSAL_NOTE = ("REHEARSAL: stand-in data and random stand-in weights, every run capped to a few steps; "
                  "the numbers say nothing about the papers (`make rehearse`, results/rehearsal)")


def deviations_for(fig_id: str, profile: str) -> list[str]:
    """The budget-driven deviations from the paper that affect `fig_id` (demo profile only; the
    lists live with the grids: `experiments.grids.DEMO_DEVIATIONS`, `aim_grids.AIM_DEMO_DEVIATIONS`);
    the rehearsal profile's one note, `REHEARSAL_NOTE`, under every id."""
    if profile == "rehearsal":
        return [REHEARSAL_NOTE]
    provider = DEVIATION_PROVIDERS.get(fig_id.split(".")[0])
    if profile != "demo" or provider is None:
        return []
    try:
        return provider(fig_id)
    except ImportError:  # grids not installed yet: nothing to print
        return []


class RenderedPaths(list):
    """`render_all`'s result: the written paths, plus the ids rendered as placeholders."""

    placeholders: dict[str, str]

    def __init__(self, paths: Iterable[Path] = (), placeholders: dict[str, str] | None = None) -> None:
        super().__init__(paths)
        self.placeholders = dict(placeholders or {})


def _load_renderer_modules() -> None:
    for info in pkgutil.iter_modules(__path__):
        if "_" in info.name and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def _grid_of(group: str) -> str:
    """The Make target that trains `group`: the paper whose grid has it (`experiments.makefile.PAPERS`)."""
    from rightfocus.experiments.makefile import PAPERS

    return next((paper for paper, spec in PAPERS.items() if group in spec.grids.GROUPS), "mg")


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
    every id has been tried, a RuntimeError lists them."""
    from rightfocus.experiments.grids import PROFILES
    from rightfocus.figures import style

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
    from rightfocus.experiments import store

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


_load_renderer_modules()
