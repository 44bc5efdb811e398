"""No import circles in lib/rightfocus: experiments reads results and never imports
training; widgets' logic and views import one way.

The graph is read with `ast` from the source, without importing anything: an edge A -> B for every
``import``/``from ... import`` of a rightfocus module in A, at module level AND inside functions
(a function-level import is a circle that only waits for its first call). Imports of a package
count as imports of its ``__init__``; ``from pkg import name`` counts as importing ``pkg.name`` when
that is a module, else ``pkg``. Edges from a package's ``__init__`` to its own submodules are
excluded (a package re-exporting its parts is not a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import rightfocus

ROOT = Path(rightfocus.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """{module: rightfocus modules it imports anywhere in its source}."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                if not t.startswith("rightfocus"):
                    continue
                dep = _resolve(t, modules)
                if dep is None or dep == mod:
                    continue
                if path.name == "__init__.py" and dep.startswith(mod + "."):
                    continue  # a package importing its own parts
                graph[mod].add(dep)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # cli imports the training runner inside a function only
    assert any(d.startswith("rightfocus.training") for d in graph["rightfocus.cli"])


def test_no_import_cycles_in_lib():
    cycles = find_cycles(import_graph())
    assert cycles == [], f"import circles in lib/rightfocus (break them; logic never imports views): {cycles}"


def test_experiments_never_import_training():
    graph = import_graph()
    bad = {m: sorted(d for d in deps if d.startswith("rightfocus.training"))
           for m, deps in graph.items() if m.startswith("rightfocus.experiments")}
    assert not any(bad.values()), f"experiments read results and must not import training: {bad}"


#: the layers below the grids: they train, explain or describe ONE run, whichever grid made it, so they
#: never import `rightfocus.experiments` (grids, make rules, paper numbers); a run is `rightfocus.runs`
LOWER_LAYERS = ("rightfocus.training", "rightfocus.models", "rightfocus.attributions", "rightfocus.data",
                "rightfocus.metrics", "rightfocus.losses", "rightfocus.runs", "rightfocus.guide",
                "rightfocus.aim_options", "rightfocus.registry", "rightfocus.widgets")


def test_lower_layers_never_import_experiments():
    graph = import_graph()
    assert any(m.startswith("rightfocus.training") for m in graph)  # the graph sees the package
    bad = sorted((m, d) for m, deps in graph.items() if m.startswith(LOWER_LAYERS)
                 for d in deps if d.startswith("rightfocus.experiments"))
    assert not bad, f"these import rightfocus.experiments (read rightfocus.runs / the registries): {bad}"
