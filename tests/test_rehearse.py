"""The rehearsal profile: the paper grids at paper shapes with capped runs, the CPU sample,
stand-in data at release sizes, per-run papermill recipes, and REHEARSAL on every rendered id."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest
import yaml
from PIL import Image

from rightfocus.experiments import aim_grids, grids
from rightfocus.runs import store
from rightfocus.runs.config import CAP_FIELDS, RunConfig, load_config_file
from rightfocus.experiments.makefile import EXECUTED_NOTEBOOK, PAPERS, sample_groups, write_grid

#: fields the rehearsal may change (caps); everything else, shapes included, is the paper's
_CAPPED = {"epochs", "max_steps_per_epoch", "max_eval_images", "profile", "init_from", "extra"}


def _pairs(module):
    paper = module.all_configs("paper", "D")
    rehearsal = module.all_configs("rehearsal", "D")
    assert len(paper) == len(rehearsal)
    return list(zip(paper, rehearsal))


@pytest.mark.parametrize("module", [grids, aim_grids], ids=["mg", "aim"])
def test_rehearsal_is_the_paper_grid_capped(module):
    for p, r in _pairs(module):
        same = {k: v for k, v in p.to_dict().items() if k not in _CAPPED}
        assert same == {k: v for k, v in r.to_dict().items() if k not in _CAPPED}
        assert r.profile == "rehearsal" and 1 <= r.epochs <= 2 < p.epochs
        for cap in CAP_FIELDS:
            assert getattr(r, cap) is not None and getattr(p, cap) is None
    if module is grids:  # same weights files and the same baseline sweep structure
        for p, r in _pairs(module):
            assert p.extra == r.extra
            assert (p.init_from is None) == (r.init_from is None)
            assert len(p.init_from or []) == len(r.init_from or [])
    else:  # AIM: the whole annealing schedule fits in the capped epochs
        assert {r.extra["anneal_epochs"] for _, r in _pairs(module) if r.model_kind == "aim"} == {1}
    shapes = {(c.arch, c.image_size, c.batch_size) for _, c in _pairs(module)}
    expected = ({("resnet50", 224, 64), ("densenet121", 224, 64), ("vit_s", 224, 64)} if module is grids else
                {(a, s, 512) for a in ("convnext_tiny", "resnet50", "resnet101") for s in (224, 299)})
    assert shapes == expected


@pytest.mark.parametrize("paper", ["mg", "aim"])
def test_cpu_sample_covers_every_group_key_and_dataset_once(paper):
    module = PAPERS[paper].grids
    full = {g: module.group_configs(g, "rehearsal", "D") for g in module.GROUPS}
    sample = sample_groups(full, module.rehearsal_key)
    datasets = set()
    for g, cfgs in full.items():
        keys = {module.rehearsal_key(c) for c in cfgs if not (c.is_baseline and paper == "mg")}
        kept = [c for c in sample[g] if not (c.is_baseline and paper == "mg")]
        assert sorted(map(str, (module.rehearsal_key(c) for c in kept))) == sorted(map(str, keys))
        ids = {c.run_id for c in sample[g]}
        full_ids = {c.run_id for c in cfgs}
        for c in kept:
            assert set(c.init_run_ids) <= ids <= full_ids | {c.run_id for c in kept}
            # a guided run keeps one baseline of its sweep; otherwise it is a run of the full grid
            trimmed = dataclasses.replace(c, init_from=next((f.init_from for f in cfgs if f.run_id != c.run_id and
                                                             dataclasses.replace(f, init_from=None)
                                                             == dataclasses.replace(c, init_from=None)), c.init_from))
            assert trimmed.run_id in full_ids
        datasets |= {c.dataset for c in sample[g]}
    assert datasets == {c.dataset for cfgs in full.values() for c in cfgs}
    n_full = len({c.run_id for cfgs in full.values() for c in cfgs})
    n_sample = len({c.run_id for cfgs in sample.values() for c in cfgs})
    assert n_sample < n_full / 4


def test_mg_sample_keeps_the_baselines_of_runs_from_the_initialisation():
    """Waterbirds guided runs start from ImageNet, not from a baseline run, so nothing pulls their
    baselines in: the CPU sample keeps each sampled run's family baseline (Tables 1/C1 compare them)."""
    full = {"waterbirds": grids.group_configs("waterbirds", "rehearsal", "D")}
    sample = sample_groups(full, grids.rehearsal_key, grids.rehearsal_companions)["waterbirds"]
    guided = [c for c in sample if not c.is_baseline]
    assert guided
    for c in guided:
        assert any(b.is_baseline and (b.task, b.model_kind, b.arch, b.seed) == (c.task, c.model_kind, c.arch, c.seed)
                   for b in sample), c.run_id


def test_aim_sample_keeps_the_runs_its_figures_compare():
    """Fig. 5 / Table 1 pair an AIM run with its baseline, Tables 12-13 / 16 with its ablation twin: the
    CPU sample keeps both sides of every such pair that the group lists, and the runs the qualitative
    figures draw by name."""
    from rightfocus.experiments import aim_grids

    full = {g: aim_grids.group_configs(g, "rehearsal", "D") for g in aim_grids.GROUPS}
    sample = sample_groups(full, aim_grids.rehearsal_key, aim_grids.rehearsal_companions)
    twins = 0
    for g, cfgs in full.items():
        kept = {c.run_id for c in sample[g]}
        for c in sample[g]:
            if c.model_kind != "aim":
                continue
            same = [o for o in cfgs if (o.dataset, o.arch, o.seed) == (c.dataset, c.arch, c.seed)]
            for o in same:
                if o.model_kind == "vanilla":
                    assert o.run_id in kept, (g, c.run_id, "its baseline")
                diff = {k for k in set(c.extra) | set(o.extra) if c.extra.get(k) != o.extra.get(k)}
                if o.model_kind == "aim" and len(diff) == 1 and diff <= set(aim_grids.ABLATION_SWITCHES):
                    assert o.run_id in kept, (g, c.run_id, diff)
                    twins += 1
    assert twins >= 4  # no-aux, one-mask and edge-init pairs exist (the test would be vacuous otherwise)
    from rightfocus.figures.aim_qualitative import QUALITATIVE

    assert {(ds, arch) for ds, arch, _ in QUALITATIVE.values()} <= set(aim_grids.FIGURE_RUNS["aim-main"])
    for g, pairs in aim_grids.FIGURE_RUNS.items():  # the qualitative figures' runs, AIM and baseline
        for ds, arch in pairs:
            have = {c.model_kind for c in sample[g] if c.dataset == ds and c.extra.get("paper_arch") == arch}
            assert have == {"aim", "vanilla"}, (g, ds, arch)
    for g in ("aim-noaux", "aim-onemask", "aim-edgeinit"):
        flags = {tuple(bool(c.extra[k]) for k in aim_grids.ABLATION_SWITCHES) for c in sample[g]}
        assert len(flags) >= 2, g


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
@pytest.mark.parametrize("paper", ["mg", "aim"])
def test_rehearsal_recipes_execute_the_training_notebook_per_run(paper, tmp_path):
    mk = write_grid("rehearsal", tmp_path, "D", paper=paper, sample=True)
    out = subprocess.run(["make", "-n", "-f", str(mk), f"{paper}-runs", "PY=python"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmds = [line for line in out.stdout.splitlines() if "papermill" in line]
    configs = sorted((tmp_path / "rehearsal" / paper / "configs").glob("*.yaml"))
    assert len(cmds) == len(configs) > 0
    for line in cmds:
        rid = line.split("params/")[1].split(".yaml")[0]
        assert PAPERS[paper].notebook in line
        assert f"{store.run_dir(tmp_path, 'rehearsal', rid) / EXECUTED_NOTEBOOK}" in line
        params = yaml.safe_load((tmp_path / "rehearsal" / paper / "params" / f"{rid}.yaml").read_text())
        # the notebook trains exactly the run's config file (what `rightfocus train` reads)
        cfg = load_config_file(tmp_path / "rehearsal" / paper / "configs" / f"{rid}.yaml")
        assert [RunConfig.from_dict(c) for c in params["configs"]] == [cfg] and cfg.run_id == rid


def test_release_sized_stand_in_data(tmp_path):
    from rightfocus.data import load_dataset, synthetic

    opts = synthetic.release_size_options("voc", 2)
    root = synthetic.make("voc", tmp_path / "voc", **opts)
    lo, hi = synthetic.RELEASE_SIZES["voc2007"]
    sizes = [Image.open(p).size for p in sorted(root.rglob("*.jpg"))]
    assert len(sizes) == 6 and all(lo <= s <= hi for wh in sizes for s in wh)
    ds = load_dataset("voc2007", root, "train", size=224)
    assert tuple(ds[0]["image"].shape) == (3, 224, 224)
    with pytest.raises(ValueError, match="images_per_split"):
        synthetic.release_size_options("coco", 1)


def test_rehearsal_figures_say_rehearsal(tmp_path):
    from rightfocus.figures import deviations_for, render_all

    assert any("REHEARSAL" in n for n in deviations_for("mg.fig4", "rehearsal"))
    assert not any("REHEARSAL" in n for n in deviations_for("mg.fig4", "paper"))
    paths = render_all("rehearsal", tmp_path / "results", only=["mg.tabD1"], out=tmp_path / "fig")
    md = [p for p in paths if p.suffix == ".md"][0]
    assert "REHEARSAL" in md.read_text()


def test_cache_budget_and_uint8_segmentations(tmp_path, monkeypatch):
    import torch

    from rightfocus.data import base, load_dataset, synthetic

    root = synthetic.make("voc", tmp_path / "voc", seed=0, n_train=6, n_val=2, n_test=2, min_size=24, max_size=32,
                          seg_fraction=1.0)
    plain = load_dataset("voc2007", root, "train", size=16)
    one = 16 * 16 * 3 + 16 * 16  # uint8 image + uint8 segmentation
    monkeypatch.setattr(base, "_CACHE_USE", [0])
    monkeypatch.setattr(base, "CACHE_BUDGET_BYTES", 2 * one)
    cached = load_dataset("voc2007", root, "train", size=16, cache=True).preload()
    assert len(cached._cache) == 2 and base._CACHE_USE[0] == 2 * one  # stops at the budget
    assert all(v[1].dtype == torch.uint8 for v in cached._cache.values())
    for i in range(len(plain)):  # same samples, cached or not; segmentations int64 in samples
        a, b = plain[i], cached[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["seg"], b["seg"]) and b["seg"].dtype == torch.int64
