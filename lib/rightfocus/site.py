"""The results site (`make site`): docs/ plus one generated page per paper (`rightfocus.papers.PAPERS`),
built offline by MkDocs.

`stage` writes a MkDocs source tree into `build/site-src/`:

- the pages of ``docs/``, ``CHANGELOG.md`` (as ``changelog.md``) and ``benchmarks/recorded/*.md`` (as
  ``records/``), with their links into the repository rewritten to the staged copies;
- ``papers/<paper>.md`` for each paper, generated from its ids (`paper_ids`): its claims table first,
  then for every id its caption, figure (``<id>.png``) or table (``<id>.md``, the paper's numbers beside
  ours where the table has them) and its protocol card;
- the rendered figures (PNG) of the profile under ``figures/``;
- the executed training notebooks of the profile (``results/<profile>/notebooks/<paper>_train-<group>
  .ipynb``, written by ``make demo``) as standalone HTML under ``notebooks/``, linked per group; a
  group without one says so and names the command that writes it.

`build` stages and runs ``mkdocs build --strict`` with the project's ``mkdocs.yml`` (material theme
without web fonts or search, so that nothing loads from another host and pages work from ``file://``),
its folders
made absolute (``docs_dir``: the staging folder; ``site_dir``; the API reference's ``lib/``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from rightfocus import project
from rightfocus.papers import PAPERS
from rightfocus.protocol import card_markdown
from rightfocus.registry import load_plugins

STAGING = Path("build") / "site-src"
#: scripts or styles loaded from another host: a page must work offline
_REMOTE_ASSET = re.compile(r"""<(script|link)\b[^>]*\b(?:src|href)=["']https?://[^"']*["'][^>]*>(?:\s*</script>)?""", re.I)


def paper_ids(paper: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The ids of `paper` in page order, id -> (kind, groups): its inventory (`Paper.inventory`: the
    paper's ids and the project's added summaries such as claims) or, without one, the ids registered
    under its prefix."""
    spec = PAPERS[paper]
    inventory = spec.inventory_ids()
    if inventory is not None:
        return inventory
    from rightfocus.figures import load_renderers

    return {i: (r.kind, r.groups) for i, r in load_renderers().items() if i.startswith(f"{paper}.")}


def anchor(fig_id: str) -> str:
    """The HTML id of an id's section on its paper page (``mg.fig5a`` -> ``mg-fig5a``)."""
    return fig_id.replace(".", "-")


def caption(fig_id: str) -> str:
    """The first line of the id's renderer docstring, or "" (renderers registered in `figures`)."""
    from rightfocus.figures import FIGURES

    renderer = FIGURES.get(fig_id)
    doc = (renderer.func.__doc__ or "").strip() if renderer else ""
    return " ".join(doc.split("\n\n")[0].split())


def table_markdown(text: str) -> str:
    """A rendered table's markdown for a page section: its title as bold text, its note lines
    (``Note:``, ``Deviation:``, ``Operating point:`` ...) as a list."""
    out: list[str] = []
    for line in text.strip().splitlines():
        if line.startswith("# "):
            out += [f"**{line[2:].strip()}**", ""]
        elif line and not line.startswith("|"):
            out.append(f"- {line}")
        else:
            out.append(line)
    return "\n".join(out)


def id_section(fig_id: str, kind: str, groups: tuple[str, ...], figures: Path,
               card: Callable[[str], str] | None) -> str:
    """One id's section of a paper page (links relative to ``papers/``)."""
    lines = [f"## {fig_id} {{#{anchor(fig_id)}}}", ""]
    cap = caption(fig_id)
    lines += [f"{cap}" if cap else "", "", f"Groups: {', '.join(groups) if groups else 'none (no training results)'}.", ""]
    png, md = figures / f"{fig_id}.png", figures / f"{fig_id}.md"
    if kind == "figure" and png.exists():
        lines += [f"![{fig_id}](../figures/{fig_id}.png)", ""]
    elif md.exists():
        lines += [table_markdown(md.read_text()), ""]
    else:
        lines += [f"*Not rendered in `{project.portable(figures)}`: run `make figures` (after `make demo`).*", ""]
    if card is not None:  # its headings nest under the id's (level 4 and below)
        lines += [re.sub(r"^#{1,3} ", "#### ", card(fig_id).strip(), flags=re.M), ""]
    return "\n".join(lines)


def executed_notebooks(results: Path, profile: str, paper: str) -> dict[str, Path]:
    """Group -> executed training notebook of `paper` under `results/<profile>/notebooks/`."""
    nb_dir = results / profile / "notebooks"
    prefix = f"{paper}_train-"
    return {p.stem[len(prefix):]: p for p in sorted(nb_dir.glob(f"{prefix}*.ipynb"))}


def notebook_html(notebook: Path) -> str:
    """`notebook` (executed, outputs embedded) as one standalone HTML page without remote assets."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    # no favicon request to the server either (a 404 there is a console error); a way back to the site
    body = _REMOTE_ASSET.sub("", body).replace("<head>", '<head>\n<link rel="icon" href="data:,">', 1)
    return re.sub(r"(<body[^>]*>)", r'\1\n<p style="margin:1em"><a href="../index.html">rightfocus: results site</a></p>',
                  body, count=1)


def notebooks_section(paper: str, groups: list[str], found: dict[str, Path], results: Path, profile: str) -> str:
    """The per-group table of executed training notebooks (links relative to ``papers/``)."""
    command = PAPERS[paper].demo_command
    lines = ["## Executed training notebooks {#notebooks}", ""]
    if not found:
        lines += [f"No executed notebooks under `{project.portable(results / profile / 'notebooks')}`: `make demo` (or "
                  f"`{command}`) writes one per group, `{paper}_train-<group>.ipynb`, and this page links "
                  "them rendered to HTML.", ""]
    lines += ["| group | executed notebook |", "|---|---|"]
    for group in groups + sorted(set(found) - set(groups)):
        if group in found:
            lines.append(f"| {group} | [{found[group].name}](../notebooks/{found[group].stem}.html) |")
        else:
            lines.append(f"| {group} | not executed yet (`{command}`) |")
    return "\n".join(lines) + "\n"


def paper_page(paper: str, figures: Path, results: Path, profile: str,
               card: Callable[[str], str] | None) -> tuple[str, dict[str, Path]]:
    """The markdown of `paper`'s page and the notebooks it links (group -> file)."""
    ids = paper_ids(paper)
    title = PAPERS[paper].title
    claims = next(iter(PAPERS[paper].claims), "")  # the claims table the page opens with
    groups = list(dict.fromkeys(g for _, gs in ids.values() for g in gs))
    found = executed_notebooks(results, profile, paper)
    parts = [f"# {title}", "",
             f"Every id of the paper as rendered in `{project.portable(figures)}` (profile `{profile}`), in the inventory's "
             "order: figures as images, tables with the paper's numbers beside ours where the table has "
             "them. [Claims](#claims) first; [executed notebooks](#notebooks) at the end.", ""]
    index = [f"[{i}](#{anchor(i)})" for i in ids if i != claims]
    parts += ["Ids: " + ", ".join(index) + ".", ""]
    if claims in ids:
        section = id_section(claims, *ids[claims], figures=figures, card=card)
        parts += [section.replace(f"## {claims} {{#{anchor(claims)}}}", "## Claims {#claims}", 1)]
    parts += [id_section(i, kind, gs, figures, card) for i, (kind, gs) in ids.items() if i != claims]
    parts.append(notebooks_section(paper, groups, found, results, profile))
    return "\n".join(parts), found


def _id_link(m: re.Match) -> str:
    """A link to a rendered table of a paper -> its section on the paper's page (its claims table: #claims)."""
    fig_id, paper = m.group(1), m.group(2)
    if paper not in PAPERS:
        return m.group(0)
    return f"](papers/{paper}.md#{'claims' if fig_id in PAPERS[paper].claims else anchor(fig_id)})"


#: links of docs/ pages into the repository -> the staged copies (pages staged at the site's root)
_LINKS: tuple[tuple[re.Pattern, Callable[[re.Match], str]], ...] = (
    (re.compile(r"\]\(\.\./figures/[^/)]+/(([A-Za-z0-9]+)\.[A-Za-z0-9_]+)\.md\)"), _id_link),
    (re.compile(r"\]\(\.\./figures/[^/)]+/([^)]+\.png)\)"), lambda m: f"](figures/{m.group(1)})"),
    (re.compile(r"\]\(\.\./benchmarks/recorded/README\.md\)"), lambda m: "](records/index.md)"),
    (re.compile(r"\]\(\.\./benchmarks/recorded/([^)]+)\)"), lambda m: f"](records/{m.group(1)})"),
    (re.compile(r"\]\(\.\./CHANGELOG\.md\)"), lambda m: "](changelog.md)"),
)


def rewrite_links(text: str) -> str:
    """Links of a docs/ page that leave docs/, pointed at their copies in the site."""
    for pattern, repl in _LINKS:
        text = pattern.sub(repl, text)
    return text


def stage(root: Path, out: Path, figures: Path, results: Path, profile: str,
          card: Callable[[str], str] | None = card_markdown) -> Path:
    """Write the MkDocs source tree of the site into `out` (emptied first), one page per registered
    paper (plug-ins loaded first); returns `out`."""
    load_plugins()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for page in sorted((root / "docs").glob("*.md")):
        (out / page.name).write_text(rewrite_links(page.read_text()))
    # CHANGELOG.md sits at the repository root: its links made relative to docs/ first
    changelog = (root / "CHANGELOG.md").read_text().replace("](benchmarks/", "](../benchmarks/")
    (out / "changelog.md").write_text(rewrite_links(changelog))
    records = out / "records"
    records.mkdir()
    for f in sorted((root / "benchmarks" / "recorded").iterdir()):
        shutil.copy2(f, records / ("index.md" if f.name == "README.md" else f.name))
    (out / "figures").mkdir()
    for png in sorted(figures.glob("*.png")):
        shutil.copy2(png, out / "figures" / png.name)
    (out / "papers").mkdir()
    (out / "notebooks").mkdir()
    for paper in PAPERS:
        text, found = paper_page(paper, figures, results, profile, card)
        (out / "papers" / f"{paper}.md").write_text(text)
        for nb in found.values():
            (out / "notebooks" / f"{nb.stem}.html").write_text(notebook_html(nb))
    return out


def nav_with_papers(nav: list) -> list:
    """The site's navigation with a page under "Results" for every registered paper it does not list
    (plug-in papers); the listed pages keep their place and titles."""
    for section in nav:
        if isinstance(section, dict) and isinstance(section.get("Results"), list):
            pages = section["Results"]
            listed = {page for entry in pages if isinstance(entry, dict) for page in entry.values()}
            pages += [{PAPERS[k].title: f"papers/{k}.md"} for k in PAPERS if f"papers/{k}.md" not in listed]
    return nav


def build(root: Path, site: Path, figures: Path, results: Path, profile: str,
          staging: Path | None = None) -> Path:
    """Stage into `staging` (default ``build/site-src``) and build the HTML site into `site` with
    MkDocs (strict: a broken link or a missing page fails the build); returns its ``index.html``."""
    import yaml

    staging = stage(root, staging or root / STAGING, figures, results, profile)
    config = yaml.safe_load((root / "mkdocs.yml").read_text())
    config["docs_dir"], config["site_dir"] = str(staging.resolve()), str(site.resolve())
    if "nav" in config:
        config["nav"] = nav_with_papers(config["nav"])
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(root / "lib")]
    config_file = staging.with_name(staging.name + ".mkdocs.yml")
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # MkDocs' banner about its successor: not a build problem
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_file)], cwd=root,
                          env=env)
    if done.returncode:
        raise RuntimeError(f"mkdocs build failed on {staging} (its warnings are printed above: a broken link "
                           "or a page that does not build; --strict makes each warning an error)")
    return site / "index.html"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rightfocus.site", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo", help="which figures/<profile>/ and results/<profile>/ (default demo)")
    ap.add_argument("--figures", default=None, help="rendered ids (default figures/<profile>)")
    ap.add_argument("--results", default="results", help="results folder holding <profile>/notebooks/ (default results)")
    ap.add_argument("--out", default="site", help="where the HTML site goes (default site)")
    ap.add_argument("--stage-only", action="store_true", help="write build/site-src/ without running MkDocs")
    args = ap.parse_args(argv)
    root = project.project_root()
    figures = project.resolve(args.figures or f"figures/{args.profile}")
    results = project.resolve(args.results)
    if not figures.is_dir():
        ap.error(f"no rendered ids at {figures}: run `make figures PROFILE={args.profile}` (or `make demo`) first")
    if args.stage_only:
        print(stage(root, root / STAGING, figures, results, args.profile))
        return 0
    try:
        index = build(root, project.resolve(args.out), figures, results, args.profile)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"site: {index} (open it, or: python -m http.server -d {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
