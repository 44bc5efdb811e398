"""The first hour of a new user: the README's runnable block, the example configs, the CLI's
help and its errors, and relative paths that mean the project root's folders from any working directory.

Oracles: the run store's own files (`done`, config.yaml), `RunConfig.run_id`, exact messages naming the
key / profile / folder, and the filesystem."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import torch

from rightfocus import project
from rightfocus.cli import main
from rightfocus.runs import store
from rightfocus.runs.config import FIELD_HELP, RunConfig, load_config_file
from readme_blocks import run_block, runnable_blocks

REPO = Path(__file__).resolve().parents[1]


def test_readme_block_runs_and_trains(tmp_path):
    blocks = runnable_blocks("tests/test_first_hour.py")
    assert len(blocks) == 1, "README marks exactly one runnable python block for this test"
    out = run_block(blocks[0], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dirs = [Path(line) for line in out.stdout.splitlines() if "/runs/" in line]
    assert len(run_dirs) == 2 and all(store.is_done(d) for d in run_dirs)
    guided = store.load_config(run_dirs[1])
    assert guided.init_from == run_dirs[0].name and not guided.is_baseline


# ---- example configs ------------------------------------------------------------------------------
def test_example_guided_config_starts_from_the_example_baseline():
    base = load_config_file(REPO / "configs" / "example_baseline.yaml")
    guided = load_config_file(REPO / "configs" / "example_guided.yaml")
    assert base.is_baseline and not guided.is_baseline
    assert guided.init_from == base.run_id, "update init_from in configs/example_guided.yaml to the baseline's id"
    assert {k: v for k, v in base.to_dict().items() if k not in ("method", "tap", "loss", "lam", "init_from")} == \
        {k: v for k, v in guided.to_dict().items() if k not in ("method", "tap", "loss", "lam", "init_from")}


def test_example_configs_train_with_tiny_caps(tmp_path):
    from rightfocus.data.synthetic import make
    from rightfocus.training.runner import train_from_file

    data = make("voc2007", tmp_path / "voc", n_train=8, n_val=4, n_test=4)
    caps = [f"data_root={data}", "epochs=1", "max_steps_per_epoch=1", "max_eval_images=4", "image_size=32"]
    base = train_from_file(REPO / "configs" / "example_baseline.yaml", caps, results=tmp_path / "results")
    assert store.is_done(base)
    guided = train_from_file(REPO / "configs" / "example_guided.yaml", caps + [f"init_from={base.name}"],
                             results=tmp_path / "results")
    assert store.is_done(guided) and store.read_done(guided)["init_from_resolved"] == base.name


def test_guided_run_without_init_from_says_what_to_set(tmp_path):
    from rightfocus.training.mg_task import resolve_init

    cfg = load_config_file(REPO / "configs" / "example_guided.yaml", ["init_from="])
    with pytest.raises(ValueError, match="needs init_from: the run id of the baseline"):
        resolve_init(cfg, tmp_path)


# ---- CLI: help and errors that name the problem ----------------------------------------------------------
def test_train_help_lists_every_field_with_meaning_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert set(FIELD_HELP) == set(RunConfig.field_names())
    for name in RunConfig.field_names():
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(name + " ")), None)
        assert line is not None, f"{name} missing from `rightfocus train --help`"
        assert f"(default: {getattr(RunConfig(), name)!r})" in line


def test_bad_values_and_keys_name_the_key(tmp_path, capsys):
    cfg = REPO / "configs" / "example_baseline.yaml"
    assert main(["train", str(cfg), "--set", "lam=abc", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--set lam=abc" in err and "config key 'lam' must be a number, got 'abc'" in err
    assert main(["train", str(cfg), "--set", "epochs=1.5", "--results", str(tmp_path)]) == 2
    assert "config key 'epochs' must be an integer, got 1.5" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text() + "lamda: 0.1\n")
    assert main(["train", str(bad), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'lamda' (did you mean 'lam'?)" in err
    assert not (tmp_path / "demo").exists(), "nothing written for a rejected config"


def test_figures_rejects_an_unknown_profile(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["figures", "--profile", "dmo", "--results", str(tmp_path), "--out", str(tmp_path / "f")])
    assert exc.value.code == 2
    assert "invalid choice: 'dmo'" in capsys.readouterr().err and not (tmp_path / "f").exists()
    from rightfocus.figures import render_all

    with pytest.raises(ValueError, match=r"unknown profile 'dmo'; known profiles: \['demo', 'paper', 'rehearsal'\]"):
        render_all("dmo", tmp_path, out=tmp_path / "f")
    assert not (tmp_path / "f").exists()


def test_demo_grid_with_a_wrong_data_root_fails_before_writing(tmp_path, capsys):
    wrong = tmp_path / "wrong"
    assert main(["grid", "--profile", "demo", "--results", str(tmp_path / "results"), "--data-root", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert f"demo data missing under --data-root '{wrong}'" in err and "no config was written" in err
    assert not (tmp_path / "results").exists()


def test_config_weights_root_is_where_weights_are_read(tmp_path, monkeypatch):
    from rightfocus.data.synthetic import make
    from rightfocus.models import build_model
    from rightfocus.training.runner import train_run

    monkeypatch.delenv("WEIGHTS_ROOT", raising=False)
    data = make("voc2007", tmp_path / "voc", n_train=4, n_val=2, n_test=2)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(3)
    source = build_model("vanilla", "tiny", 20)
    torch.save(source.state_dict(), weights / "tiny.pth")
    common = dict(dataset="voc2007", data_root=str(data), model_kind="vanilla", arch="tiny", epochs=1, batch_size=4,
                  image_size=32, threads=1, max_steps_per_epoch=1, max_eval_images=2, extra={"weights": "tiny.pth"})
    with pytest.raises(FileNotFoundError, match="tiny.pth"):  # neither $WEIGHTS_ROOT nor weights_root: not found
        train_run(RunConfig(**common), tmp_path / "r0", progress=False)
    rdir = train_run(RunConfig(**common, weights_root=str(weights)), tmp_path / "r1", progress=False)
    assert store.is_done(rdir) and "WEIGHTS_ROOT" not in os.environ  # restored after the run


# ---- relative paths mean the project root's folders ------------------------------------------------------
def test_project_root_and_resolution_from_a_subfolder(tmp_path, monkeypatch):
    monkeypatch.delenv(project.ROOT_ENV, raising=False)
    root = tmp_path / "clone"
    (root / "notebooks").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "rightfocus"\n')
    monkeypatch.chdir(root / "notebooks")
    assert project.project_root() == root.resolve()
    assert project.resolve("results") == (root / "results").resolve()        # from the root
    assert project.resolve("../results") == (root / "results").resolve()     # from here, it exists
    assert project.resolve("/abs/x") == Path("/abs/x")
    assert project.portable("../results") == "results"
    monkeypatch.setenv(project.ROOT_ENV, str(tmp_path))
    assert project.project_root() == tmp_path.resolve()


# ---- what a user reads names no file outside the repository ----------------------------------------------
def test_no_user_facing_text_cites_files_outside_the_repository():
    """Messages, docstrings, comments, notebooks, Make files and docs state facts, not the names of design
    notes a clone does not have (FACTS.md, DESIGN.md, INVENTORY.md, anything under ../shared)."""
    outside = re.compile(r"FACTS(\.md)?\b|\b(DESIGN|INVENTORY)\.md\b|\.\./shared\b|/work/shared\b")
    files = [p for d in ("lib", "notebooks", "mk", "configs", "docs") for p in (REPO / d).rglob("*")
             if p.is_file() and p.suffix in (".py", ".ipynb", ".mk", ".yaml", ".md") and "egg-info" not in str(p)]
    files.append(REPO / "Makefile")
    assert len(files) > 100 and REPO / "docs" / "index.md" in files  # the scan sees the trees it names
    hits = [f"{p.relative_to(REPO)}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
            if outside.search(line)]
    assert not hits, hits


def test_missing_baseline_names_a_config_that_exists(tmp_path):
    """A guided run whose baseline is not trained names a command whose config file exists."""
    from dataclasses import replace as dc_replace

    from rightfocus.training.mg_task import resolve_init

    guided = load_config_file(REPO / "configs" / "example_guided.yaml")
    with pytest.raises(FileNotFoundError) as exc:  # nothing written yet: say what to write
        resolve_init(guided, tmp_path)
    assert "configs/example_baseline.yaml" in str(exc.value) and "config.yaml" not in str(exc.value)
    base = load_config_file(REPO / "configs" / "example_baseline.yaml")
    written = tmp_path / base.profile / "mg" / "configs" / f"{base.run_id}.yaml"
    written.parent.mkdir(parents=True)
    written.write_text("# the grid's config\n")
    with pytest.raises(FileNotFoundError, match=re.escape(f"`.venv/bin/rightfocus train {written}`")):
        resolve_init(dc_replace(guided, init_from=base.run_id), tmp_path)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    from rightfocus.models.weights import read_state_dict

    path = tmp_path / "resnet50-0676ba61.pth"
    path.write_bytes(bytes(range(7, 256)) * 16)  # neither a zip nor a pickle
    with pytest.raises(ValueError, match="not a torch checkpoint.*corrupt or partial download") as exc:
        read_state_dict(path)
    assert "pickle to load" not in str(exc.value) and "re-save" not in str(exc.value)


# ---- run ids: the readable prefix tells a grid's runs apart ------------------------------------------------
@pytest.mark.parametrize("paper,profile", [("mg", "paper"), ("mg", "demo"), ("aim", "paper"), ("aim", "demo")])
def test_runs_of_a_grid_differ_in_their_readable_prefix(paper, profile):
    from rightfocus.experiments.makefile import PAPERS

    module = PAPERS[paper].grids
    ids = {c.run_id for g in module.GROUPS for c in module.group_configs(g, profile, "data")}
    prefixes = [rid.rsplit("-", 1)[0] for rid in ids]
    shared = sorted(p for p in set(prefixes) if prefixes.count(p) > 1)
    assert not shared, f"{len(shared)} prefixes name several runs, e.g. {shared[:3]}"


def test_id_tags_default_to_the_grids_defaults():
    """A setting at its default adds nothing to the prefix (existing ids stay), so the tag defaults must be
    the grids' own."""
    from rightfocus.experiments.aim_grids import AIM_EXTRA_DEFAULTS
    from rightfocus.runs.config import ID_TAGS

    for key, (default, _) in ID_TAGS.items():
        if key in AIM_EXTRA_DEFAULTS:
            assert AIM_EXTRA_DEFAULTS[key] == default, key
    base = RunConfig(method="ixg", tap="input", loss="energy", lam=0.05, extra={"annotation_seed": 0})
    assert base.run_id.rsplit("-", 1)[0] == RunConfig(method="ixg", tap="input", loss="energy", lam=0.05).run_id.rsplit("-", 1)[0]
    other = RunConfig(method="ixg", tap="input", loss="energy", lam=0.05, extra={"annotation_seed": 1})
    assert "-as1-s0-" in other.run_id


# ---- make help and the CLI's help name everything a user runs ---------------------------------------------
#: Make targets that other targets call (not run by hand)
INTERNAL_TARGETS = {"help", "demo-train", "draw-gallery", "mg-grid", "mg-train", "aim-grid", "aim-train", "aim-figures", "ext-grid", "ext-train",
                    "rehearse-data", "rehearse-check"}


def test_make_help_lists_every_user_target():
    import subprocess

    phony = set()
    for path in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]:
        for line in path.read_text().splitlines():
            if line.startswith(".PHONY:"):
                phony |= set(line.split(":", 1)[1].split())
    out = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    listed = {t for m in re.finditer(r"make ([a-z|-]+)", out) for t in m.group(1).split("|")}
    assert {"setup", "data", "rehearse", "mg-demo", "aim-demo"} <= listed
    assert phony - INTERNAL_TARGETS <= listed, sorted(phony - INTERNAL_TARGETS - listed)


def test_every_cli_argument_has_a_help_text():
    import argparse

    from rightfocus.cli import _build_parser

    sub = next(a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in sub.choices.items() for a in p._actions
               if a.help is None and not isinstance(a, argparse._HelpAction)]
    assert not missing, missing
