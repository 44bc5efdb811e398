"""The README and docs/ as a reader meets them, and the site's generated pages (without a browser:
`tests/test_site.py` opens the built site in Chromium).

Oracles: the filesystem (every relative link and image names an existing file, every anchor a heading
that exists), the CLI's own argument parser (every README command parses), the Makefiles' own target
lines, the figure inventory (every id on its paper's page) and nbconvert's output (no remote asset)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from readme_blocks import documents, run_block, runnable_blocks

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor GitHub and MkDocs (toc) give a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    text = md.read_text()
    explicit = set(re.findall(r"\{#([\w.\-]+)\}", text))
    return explicit | {_slug(re.sub(r"\{#.*\}", "", h)) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (at most 150: move detail to docs/)"
    text = README.read_text()
    for needed in ("make demo", "make test", "rightfocus check", "make site", "## What is reproduced"):
        assert needed in text, needed


@pytest.mark.parametrize("doc", documents() + [REPO / "CHANGELOG.md", REPO / "benchmarks" / "recorded" / "README.md"],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(doc):
    from rightfocus.site import PAPERS

    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # links inside code blocks are code
    generated = {f"papers/{p}.md" for p in PAPERS}  # docs/ pages the site generates (rightfocus.site)
    bad = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or (doc.parent.name == "docs" and target.split("#")[0] in generated):
            continue
        path, _, frag = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            bad.append(f"{target}: {dest} does not exist")
        elif frag and dest.suffix == ".md" and frag not in _anchors(dest):
            bad.append(f"{target}: no heading #{frag} in {dest.name}")
    assert not bad, "\n".join(bad)


def _commands(text: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.split("#")[0].strip() for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
    return [ln for ln in lines if ln]


def test_readme_commands_run_as_written_after_make_setup():
    """Every `.venv/bin/rightfocus ...` line of the README parses with the CLI's parser, every `make X`
    names a target the Makefiles define, and every other program is in `.venv/bin/`."""
    from rightfocus.cli import _build_parser

    make_text = "\n".join(p.read_text() for p in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))])
    targets = set(re.findall(r"^([\w.\-]+)\s*:(?!=)", make_text, flags=re.M))
    commands = _commands(README.read_text())
    assert commands
    for cmd in commands:
        argv = shlex.split(cmd)
        if argv[0] == "make":
            goals = [a for a in argv[1:] if "=" not in a and not a.startswith("-") and not a.isdigit()]
            assert goals and all(g in targets for g in goals), f"{cmd}: make target missing"
        elif argv[0] == ".venv/bin/rightfocus":
            _build_parser().parse_args(argv[1:])
        else:
            assert argv[0].startswith(".venv/bin/"), f"{cmd}: use .venv/bin/... (a fresh shell has no venv active)"
            if argv[0] == ".venv/bin/jupyter":
                assert all((REPO / a).exists() for a in argv[2:] if a.endswith(".ipynb")), cmd


def test_extending_example_runs(tmp_path):
    (block,) = runnable_blocks("tests/test_docs.py")
    out = run_block(block, tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    # the block's loss: share of positive attribution outside the upper half, two images -> in [0, 1]
    values = [float(v) for v in re.findall(r"[0-9]+\.[0-9]+", out.stdout)]
    assert values and all(0.0 <= v <= 2.0 for v in values), out.stdout


# ---- the site's staged pages --------------------------------------------------------------------------
def _executed_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('trained')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# voc-main"), cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    from rightfocus import site

    tmp = tmp_path_factory.mktemp("site")
    results = tmp / "results"
    _executed_notebook(results / "demo" / "notebooks" / "mg_train-voc-main.ipynb")
    cards = []
    out = site.stage(REPO, tmp / "src", REPO / "figures" / "demo", results, "demo",
                     card=lambda i: cards.append(i) or f"*protocol card of {i}*")
    return out, cards


@pytest.mark.parametrize("paper", ["mg", "aim"])
def test_paper_page_shows_every_inventory_id(staged, paper):
    from rightfocus import site

    out, cards = staged
    page = (out / "papers" / f"{paper}.md").read_text()
    ids = site.paper_ids(paper)
    assert ids and set(ids) <= set(cards)
    for fig_id, (kind, _) in ids.items():
        assert f"*protocol card of {fig_id}*" in page
        if kind == "figure" and (REPO / "figures" / "demo" / f"{fig_id}.png").exists():
            assert f"](../figures/{fig_id}.png)" in page and (out / "figures" / f"{fig_id}.png").exists()
        elif (REPO / "figures" / "demo" / f"{fig_id}.md").exists():
            first_row = next(ln for ln in (REPO / "figures" / "demo" / f"{fig_id}.md").read_text().splitlines()
                             if ln.startswith("|"))
            assert first_row in page, fig_id
    assert "## Claims {#claims}" in page


def test_notebooks_linked_per_group_and_absent_ones_named(staged):
    out, _ = staged
    mg, aim = (out / "papers" / "mg.md").read_text(), (out / "papers" / "aim.md").read_text()
    assert "| voc-main | [mg_train-voc-main.ipynb](../notebooks/mg_train-voc-main.html) |" in mg
    assert "| coco-main | not executed yet (`make mg-demo`) |" in mg
    assert "No executed notebooks under" in aim and "| aim-main | not executed yet (`make aim-demo`) |" in aim
    html = (out / "notebooks" / "mg_train-voc-main.html").read_text()
    assert "trained" in html
    assert not re.search(r"""<(script|link)\b[^>]*(src|href)=["']https?://""", html), "remote asset in notebook HTML"


def test_docs_links_point_at_staged_copies(staged):
    out, _ = staged
    demo = (out / "demo.md").read_text()
    assert "](papers/mg.md#claims)" in demo and "../figures/demo" not in demo
    assert (out / "records" / "index.md").exists() and (out / "changelog.md").exists()


def _verdicts(claims_md: Path) -> dict[str, int]:
    rows = [ln for ln in claims_md.read_text().splitlines() if ln.startswith("|")]
    split = lambda ln: [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip().strip("|"))]  # noqa: E731
    col = split(rows[0]).index("verdict")
    counts = {"hold": 0, "part": 0, "not": 0}
    for ln in rows[2:]:
        v = split(ln)[col]
        counts["not" if v.startswith("does not") else "part" if v.startswith("partly") else "hold"] += 1
    return counts


@pytest.mark.parametrize("paper", ["mg", "aim"])
def test_readme_claim_counts_match_the_rendered_claims_tables(paper):
    """The README's "what is reproduced" row says how many of each paper's claims hold on the demo: it
    must say what the tracked claims table says (re-rendering changes the table: update the README)."""
    c = _verdicts(REPO / "figures" / "demo" / f"{paper}.claims.md")
    n = sum(c.values())
    text = " ".join(README.read_text().split())
    expected = f"of {n}: {c['hold']} hold"
    assert expected in text, f"README should say '{expected}' for {paper} (figures/demo/{paper}.claims.md)"
    if c["part"]:
        assert f"{c['part']} in part" in text
    assert f"{c['not']} do not" in text or f"{c['not']} does not" in text
