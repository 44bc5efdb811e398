"""A rehearsal at the papers' shapes: one guided run per MG model kind (Vanilla IxG, X-DNN
IntGrad, B-cos) with ResNet-50 at 224 px from its baseline, and one AIM run (ConvNeXt-tiny, 224 px),
on release-sized stand-in data with stand-in weights, configs taken from the rehearsal grids."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from rightfocus.experiments import aim_grids, grids
from rightfocus.runs import store
from rightfocus.experiments.rehearsal import write_weights
from rightfocus.training.runner import train_run


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vanilla", "xdnn", "bcos"])
def test_one_guided_run_per_model_kind_at_224(kind, tmp_path, monkeypatch):
    from rightfocus.data import synthetic

    voc = synthetic.make("voc2007", tmp_path / "voc2007", **synthetic.release_size_options("voc2007", 2))
    run = next(c for c in grids.group_configs("voc-main", "rehearsal", str(tmp_path))
               if c.model_kind == kind and c.tap == "input" and not c.is_baseline)
    base = next(c for c in grids.group_configs("voc-main", "rehearsal", str(tmp_path)) if c.run_id == run.init_from[0])
    run = replace(run, init_from=[base.run_id], threads=1)
    base = replace(base, threads=1)
    assert (run.arch, run.image_size, run.batch_size, run.data_root) == ("resnet50", 224, 64, str(voc))
    write_weights(tmp_path / "w", names=[base.extra["weights"]])
    monkeypatch.setenv("WEIGHTS_ROOT", str(tmp_path / "w"))
    results = tmp_path / "results"
    train_run(base, results, progress=False)
    rdir = train_run(run, results, progress=False)
    assert store.is_done(rdir)
    rows = [r for r in store.read_metrics(rdir) if r["split"] == "test" and r["tap"] == "input"]
    assert rows and all(r["method"] == run.method for r in rows)
    assert all(math.isfinite(r["epg"]) and 0 <= r["epg"] <= 1 for r in rows)
    assert {r["epoch"] for r in store.read_metrics(rdir) if r["split"] == "val"} == {0, 1, 2}


@pytest.mark.slow
def test_one_aim_run_at_224(tmp_path, monkeypatch):
    from rightfocus.data import synthetic
    from rightfocus.experiments.aim_grids import PRETRAINED_FILES

    cub = synthetic.make("cub", tmp_path / "cub", **synthetic.release_size_options("cub", 4))
    run = next(c for c in aim_grids.group_configs("aim-main", "rehearsal", str(tmp_path))
               if c.model_kind == "aim" and c.dataset == "cub" and c.arch == "convnext_tiny")
    run = replace(run, threads=1)
    assert (run.image_size, run.batch_size, run.data_root) == (224, 512, str(cub))
    write_weights(tmp_path / "w", names=[PRETRAINED_FILES["convnext_tiny"]])
    monkeypatch.setenv("WEIGHTS_ROOT", str(tmp_path / "w"))
    rdir = train_run(run, tmp_path / "results", progress=False)
    assert store.is_done(rdir)
    assert len(store.read_metrics(rdir)) > 0
