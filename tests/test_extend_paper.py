"""A third paper is a plug-in: a package outside lib/ registers a `Paper` (grid, renderer, protocol
recipe) and, named in $RIGHTFOCUS_PLUGINS, works from the command line: `rightfocus grid` lists and
writes its runs, `rightfocus train` trains them, `rightfocus figures` renders its id and `rightfocus
protocol` prints its card, while no file under lib/ changes (docs/extending.md, "Add a paper")."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rightfocus
from rightfocus.data.synthetic import make

LIB = Path(rightfocus.__file__).resolve().parents[1]

TOY_INIT = '''
from rightfocus.papers import Paper, register

register(Paper(
    key="toy",
    title="A toy paper (Doe et al., 2099)",
    short="a toy paper (Doe et al. 2099)",
    grid_module="toy_paper.grids",
    notebook="notebooks/mg_train.ipynb",
    renderers=("toy_paper.figures",),
    claims=(),
    recipes="toy_paper.grids:RECIPES",
))
'''

TOY_GRIDS = '''
import os
from dataclasses import replace

from rightfocus.runs.config import RunConfig
from rightfocus.protocol import INIT_BASELINE, INIT_RANDOM, Recipe

GROUPS = ("toy-main",)


def group_configs(group, profile, data_root="data"):
    if group not in GROUPS:
        raise ValueError(f"unknown toy group {group!r}")
    base = RunConfig(paper="mg", profile=profile, dataset="voc2007", data_root=os.path.join(data_root, "voc"),
                     model_kind="vanilla", arch="tiny", epochs=1, lr=1e-2, batch_size=6, image_size=16, seed=0)
    guided = replace(base, method="ixg", tap="input", loss="energy", lam=1.0, lr=1e-3, init_from=base.run_id)
    return [base, guided]


def all_configs(profile, data_root="data", groups=GROUPS):
    return [c for g in groups for c in group_configs(g, profile, data_root)]


def rehearsal_key(config):
    return (config.model_kind, config.tap)


RECIPES = {"toy-main": (
    Recipe("toy-main", "baseline", {"guided": False}, INIT_RANDOM, (1,), (1e-2,), 6, (16,), "resized to 16 px",
           "last epoch", "We train a tiny model for one epoch.", "Toy Sec. 1"),
    Recipe("toy-main", "guided run", {"guided": True}, INIT_BASELINE, (1,), (1e-3,), 6, (16,), "resized to 16 px",
           "last epoch", "We guide it with the Energy loss.", "Toy Sec. 2"),
)}
'''

TOY_FIGURES = '''
import matplotlib.pyplot as plt

from rightfocus.figures import MissingResults, register
from rightfocus.protocol import Protocol
from toy_paper.grids import RECIPES


@register("toy.fig1", kind="figure", groups=["toy-main"],
          protocol=Protocol("Guidance moves the explanation onto the object.", "Toy Sec. 2", RECIPES["toy-main"]))
def fig1(ctx):
    """Test EPG of the toy runs."""
    df = ctx.metrics("toy-main")
    test = df[df["split"] == "test"]
    if test.empty:
        raise MissingResults("no test rows in toy-main")
    fig, ax = plt.subplots()
    ax.bar(range(len(test)), test["epg"])
    return fig
'''


def _lib_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(LIB.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(LIB)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("toy")
    pkg = root / "plugins" / "toy_paper"
    pkg.mkdir(parents=True)
    for name, text in (("__init__", TOY_INIT), ("grids", TOY_GRIDS), ("figures", TOY_FIGURES)):
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    make("voc2007", root / "data" / "voc", seed=0, n_train=12, n_val=6, n_test=6, min_size=24, max_size=28)
    env = dict(os.environ, RIGHTFOCUS_PLUGINS="toy_paper", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(root / "plugins"), str(LIB), os.environ.get("PYTHONPATH", "")]))
    return root, env


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "rightfocus", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"rightfocus {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_plugin_paper_runs_end_to_end_without_touching_lib(toy):
    root, env = toy
    before = _lib_hash()
    data, results, figures = root / "data", root / "results", root / "figures"

    # the grid: listed and written under <results>/demo/toy/
    listed = [line.split("\t") for line in _cli(env, root, "grid", "--paper", "toy", "--list",
                                                  "--data-root", str(data)).splitlines()]
    assert [g for g, _ in listed] == ["toy-main", "toy-main"]
    base_id, guided_id = (rid for _, rid in listed)
    assert "energy" in guided_id and base_id != guided_id
    mk = Path(_cli(env, root, "grid", "--paper", "toy", "--results", str(results), "--data-root", str(data)).strip())
    assert mk == results / "demo" / "toy" / "grid.mk"
    assert "toy-runs:" in mk.read_text() and "notebooks/mg_train.ipynb" in mk.read_text()
    manifest = json.loads((results / "demo" / "groups" / "toy-main.json").read_text())
    assert manifest["runs"] == [base_id, guided_id]

    # the runs train (baseline first: the guided run starts from it)
    for rid in (base_id, guided_id):
        _cli(env, root, "train", str(results / "demo" / "toy" / "configs" / f"{rid}.yaml"), "--results", str(results))
        assert (results / "demo" / "runs" / rid / "done").exists()

    # its renderer, through the figures command
    out = _cli(env, root, "figures", "--profile", "demo", "--results", str(results), "--out", str(figures),
               "--only", "toy.fig1")
    assert str(figures / "toy.fig1.png") in out
    assert json.loads((figures / "render_report.json").read_text()) == {"toy.fig1": "rendered"}

    # its protocol card, and the card and recipe table agree with its paper-profile grid
    card = _cli(env, root, "protocol", "toy.fig1")
    assert card.startswith("### toy.fig1 (figure)")
    assert "- toy-main, guided run: init its baseline run; epochs 1; lr 0.001; batch 6;" in card
    assert "Toy Sec. 2" in card
    check = subprocess.run(
        [sys.executable, "-c", "from rightfocus.registry import load_plugins; load_plugins(); "
         "from rightfocus import protocol, site; "
         "print(protocol.check('toy.fig1'), protocol.check_recipes('toy'), list(site.paper_ids('toy')))"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.split() == ["[]", "[]", "['toy.fig1']"]

    assert _lib_hash() == before, "adding a paper must not change any file under lib/"


def test_an_unknown_paper_names_the_registered_ones():
    from rightfocus.papers import PAPERS
    from rightfocus.registry import UnknownName

    with pytest.raises(UnknownName, match=r"unknown paper 'toy'; choose one of \['mg', 'aim', 'ext'\]"):
        PAPERS["toy"]


@pytest.mark.parametrize("paper", ["mg", "aim", "ext"])
def test_every_recipe_of_a_built_in_paper_matches_its_grid(paper):
    from rightfocus import protocol
    from rightfocus.papers import PAPERS

    assert PAPERS[paper].recipe_table()
    assert protocol.check_recipes(paper) == []


def test_the_site_navigation_gains_a_page_per_registered_paper():
    import copy

    import yaml

    from rightfocus import site
    from rightfocus.papers import PAPERS, Paper

    nav = yaml.safe_load((LIB.parent / "mkdocs.yml").read_text())["nav"]
    assert site.nav_with_papers(copy.deepcopy(nav)) == nav  # the built-in pages are listed already
    with PAPERS.temporarily("toy", Paper("toy", "A toy paper (2099)", "a toy paper", "toy_paper.grids", "nb")):
        results = next(s["Results"] for s in site.nav_with_papers(copy.deepcopy(nav)) if "Results" in s)
    assert results[-1] == {"A toy paper (2099)": "papers/toy.md"}
    assert "toy" not in PAPERS
