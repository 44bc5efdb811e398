"""Protocol cards: for every figure/table id, how the runs it reads are trained and evaluated in the
paper profile, and the paper sentence that protocol follows.

A card is declared with its renderer: ``@register("mg.tab1", ..., protocol=Protocol(...))`` in the figure
module. Its training facts are `Recipe`s (usually shared per experiment group: each paper's recipe table,
`rightfocus.papers.Paper.recipes`); each recipe names the runs of its group it describes
(`Recipe.where`) and the values those runs have (initialisation, epochs, lr, batch, resolution), so a
test can compare every card, and every recipe of a paper's table, with the configs the paper-profile
grid generates (`check`, `check_recipes`).

Public API: `card(id)`, `cards()`, `card_markdown(id)`, `cards_markdown()`, `cards_json()`; CLI
``rightfocus protocol ID`` / ``rightfocus protocol --all [--format md|json]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from rightfocus.papers import PAPERS, paper_of_group

#: how a run is initialised (`config_init` reads it from a RunConfig)
INIT_IMAGENET = "ImageNet weights"
INIT_BASELINE = "its baseline run"
INIT_RANDOM = "random"
NONE = "\u2014"
#: the note of an id whose renderer declares no protocol
UNDECLARED = "no protocol declared"


@dataclass(frozen=True)
class Recipe:
    """How one set of runs an id reads is trained and evaluated (paper profile).

    `where` selects those runs among the paper-profile configs of `group`: RunConfig field -> value
    (a tuple means "one of"), ``extra.<key>`` for `RunConfig.extra`, and ``guided`` (bool: a guided MG
    run, or an AIM model rather than its vanilla baseline). `epochs`, `lr`, `resolution` list every
    value those runs have."""

    group: str
    runs: str
    where: Mapping[str, Any]
    init: str
    epochs: tuple[int, ...]
    lr: tuple[float, ...]
    batch: int
    resolution: tuple[int, ...]
    crop: str
    selection: str
    follows: str
    section: str


@dataclass(frozen=True)
class Protocol:
    """What a renderer declares: the recipes of the runs it reads, the paper sentence the id follows
    (with its section) and optional notes; `optional` lists groups read only when present."""

    follows: str
    section: str
    recipes: tuple[Recipe, ...] = ()
    optional: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtocolCard:
    """One id's card: the `Protocol` its renderer declares, with the id, kind and groups."""

    id: str
    kind: str
    groups: tuple[str, ...]
    follows: str
    section: str
    recipes: tuple[Recipe, ...] = ()
    optional: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, str]:
        """One line of text per field, the recipes' values joined (the docs table's columns)."""
        def join(values: Iterable[str]) -> str:
            out = list(dict.fromkeys(v for v in values if v))
            return "; ".join(out) if out else NONE

        r = self.recipes
        many = len({x.group for x in r}) > 1

        def who(x: Recipe) -> str:
            return f"{x.group} {x.runs}" if many else x.runs

        reads = [*dict.fromkeys([*self.groups, *(x.group for x in r if x.group not in self.optional)]),
                 *(f"{g} (when present)" for g in self.optional)]
        return {
            "id": self.id,
            "reads": ", ".join(reads) if reads else "no runs",
            "init": join(f"{who(x)}: {x.init}" for x in r),
            "epochs": join(f"{who(x)}: {_nums(x.epochs)}" for x in r),
            "lr": join(f"{who(x)}: {_nums(x.lr)}" for x in r),
            "batch": join(f"{x.batch}" for x in r),
            "crop / resolution": join(f"{x.crop} ({_nums(x.resolution)} px)" for x in r),
            "threshold / selection": join(x.selection for x in r),
            "follows": f"{self.section}: \"{self.follows}\"" if self.follows else "; ".join(self.notes) or NONE,
        }


def _nums(values: Iterable[Any]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _registry() -> dict[str, Any]:
    """Every registered renderer, plug-in papers' included (`figures.load_renderers`)."""
    from rightfocus.figures import load_renderers

    return load_renderers()


def card(fig_id: str) -> ProtocolCard:
    """The protocol card of inventory id `fig_id` (as declared with its renderer)."""
    figs = _registry()
    if fig_id not in figs:
        raise KeyError(f"no figure/table id {fig_id!r}; known ids: {', '.join(figs)}")
    rend = figs[fig_id]
    p = rend.protocol
    if p is None:  # printed as such; tests/test_protocol.py fails until the renderer declares one
        p = Protocol("", "", notes=(f"{UNDECLARED}: add protocol=Protocol(...) (or figures.mg_common.mg_protocol / "
                                    f"aim_common.aim_protocol) to its @register in {rend.func.__module__}",))
    return ProtocolCard(fig_id, rend.kind, rend.groups, p.follows, p.section, tuple(p.recipes),
                        tuple(p.optional), tuple(p.notes))


def _order(fig_id: str) -> tuple:
    """Papers in registration order (`rightfocus.papers.PAPERS`), then ids of no paper; numbers in
    natural order."""
    import re

    prefix = fig_id.split(".")[0]
    papers = PAPERS.names()
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", fig_id.split(".", 1)[-1])]
    return (papers.index(prefix) if prefix in papers else len(papers), prefix, parts)


def cards() -> dict[str, ProtocolCard]:
    """Every registered id's card: paper by paper (model guidance, AIM, the project's additions, then
    plug-in papers), ids in natural order."""
    return {i: card(i) for i in sorted(_registry(), key=_order)}


def card_markdown(fig_id: str) -> str:
    """One id's card as markdown: a field list, then one line per recipe."""
    c = card(fig_id)
    s = c.summary()
    lines = [f"### {c.id} ({c.kind})", "", f"- reads: {s['reads']}", f"- follows: {s['follows']}"]
    for r in c.recipes:
        lines.append(f"- {r.group}, {r.runs}: init {r.init}; epochs {_nums(r.epochs)}; lr {_nums(r.lr)}; "
                     f"batch {r.batch}; {r.crop} ({_nums(r.resolution)} px); {r.selection} "
                     f"({r.section}: \"{r.follows}\")")
    lines += [f"- note: {n}" for n in c.notes]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cards_markdown() -> str:
    """Every card as one markdown table (docs/protocol.md is this text)."""
    rows = [c.summary() for c in cards().values()]
    cols = list(rows[0]) if rows else []
    out = ["# Protocol cards (paper profile)", "",
           "Generated by `rightfocus protocol --all --format md`; one row per figure/table id: the runs it "
           "reads and how the paper profile trains and evaluates them, with the paper sentence each follows. "
           "`rightfocus protocol ID` prints one card with every recipe.", "",
           "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def cards_json(ids: Iterable[str] | None = None) -> str:
    """Cards as JSON (id -> card fields)."""
    chosen = list(ids) if ids is not None else list(cards())
    return json.dumps({i: asdict(card(i)) for i in chosen}, indent=1, default=str) + "\n"


# ---- checking a card against generated configs --------------------------------------------------

def config_init(config: Any) -> str:
    """How a RunConfig starts: from a baseline run (`init_from` names run ids), from ImageNet weights (a
    weights file or AIM's ``pretrained``; also `init_from` = ``"init"``, where a baseline starts), or at
    random."""
    from rightfocus.runs.config import FROM_INIT

    if config.init_from and config.init_from != FROM_INIT:
        return INIT_BASELINE
    extra = config.extra or {}
    return INIT_IMAGENET if extra.get("weights") or extra.get("pretrained") else INIT_RANDOM


def _field(config: Any, key: str) -> Any:
    if key == "guided":
        return config.loss is not None if config.paper == "mg" else config.model_kind == "aim"
    if key.startswith("extra."):
        return (config.extra or {}).get(key[len("extra."):])
    return getattr(config, key)


def selects(recipe: Recipe, config: Any) -> bool:
    """True when `config` is one of the runs `recipe.where` describes."""
    for key, want in recipe.where.items():
        have = _field(config, key)
        if isinstance(want, tuple):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def _same(a: Iterable[float], b: Iterable[float]) -> bool:
    a, b = sorted(set(a)), sorted(set(b))
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a, b))


def mismatches(recipe: Recipe, configs: Iterable[Any]) -> list[str]:
    """What differs between `recipe` and the configs it selects (empty: they agree)."""
    chosen = [c for c in configs if selects(recipe, c)]
    if not chosen:
        return [f"{recipe.group} / {recipe.runs}: no generated run matches {dict(recipe.where)}"]
    out = []
    inits = sorted({config_init(c) for c in chosen})
    if inits != [recipe.init]:
        out.append(f"init: card {recipe.init!r}, grid {inits}")
    for name, attr in (("epochs", "epochs"), ("lr", "lr"), ("resolution", "image_size")):
        have = [getattr(c, attr) for c in chosen]
        if not _same(getattr(recipe, name), have):
            out.append(f"{name}: card {list(getattr(recipe, name))}, grid {sorted(set(have))}")
    batches = sorted({c.batch_size for c in chosen})
    if batches != [recipe.batch]:
        out.append(f"batch: card {recipe.batch}, grid {batches}")
    return [f"{recipe.group} / {recipe.runs}: {m}" for m in out]


def paper_configs(group: str) -> list[Any]:
    """The paper-profile configs the grid generates for `group` (the grid of the paper that lists it)."""
    paper = paper_of_group(group)
    if paper is None:
        raise ValueError(f"unknown group {group!r}")
    return paper.grids.group_configs(group, "paper")


def check(fig_id: str) -> list[str]:
    """Every mismatch between `fig_id`'s card and the paper-profile grid (empty: the card is true)."""
    return [m for r in card(fig_id).recipes for m in mismatches(r, paper_configs(r.group))]


def check_recipes(paper: str) -> list[str]:
    """Every mismatch between the recipe table of `paper` (`Paper.recipe_table`) and the paper-profile
    grid (empty: every recipe is true, also those no card reads)."""
    table = PAPERS[paper].recipe_table()
    return [m for group, recipes in table.items() for r in recipes for m in mismatches(r, paper_configs(group))]
