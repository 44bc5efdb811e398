"""One-epoch runs per mask source through the run engine (the demo's tiny models at 32 px): each
finishes, records its source in its config, and trains on ITS signal (from the same start, seed and
class draws, a run guided by another source has another training localisation loss). The fast test
uses small synthetic sets; the slow one the demo's own dataset sizes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rightfocus.data.synthetic import make
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.training import checkpoint as ckpt
from rightfocus.training.runner import train_run

SIZE = 32


def _loc(rdir: Path) -> float:
    rows = [json.loads(line) for line in (rdir / "metrics.jsonl").read_text().splitlines()]
    return next(r["train_loc"] for r in rows if r["epoch"] == 1 and r.get("train_loc") is not None)


def _aim_run(results: Path, data_root: Path) -> str:
    """A finished AIM run in the store's format (untrained, seeded: only its masks are read)."""
    from rightfocus.training import aim_loop

    cfg = RunConfig(paper="aim", dataset="waterbirds100", data_root=str(data_root), model_kind="aim", arch="tiny",
                    image_size=SIZE, lam=1.0, extra={"stage": 1, "tau": 0.25, "pretrained": False})
    torch.manual_seed(0)
    rdir = store.run_dir(results, "demo", cfg.run_id)
    (rdir / "ckpt").mkdir(parents=True)
    store.write_config(rdir, cfg)
    model = aim_loop.build_run_model(cfg, 2, pretrained=False)
    ckpt.save_weights(rdir / "ckpt" / "epoch_1.pt", model, 2, 1, aim_loop.model_options(cfg))
    store.write_done(rdir, {"selected_epoch": 1})
    return cfg.run_id


#: (dataset, model kind) pairs whose box / dilated-box / segmentation runs each test trains
FAST = (("voc", "bcos"),)
FULL = (("voc", "bcos"), ("voc", "vanilla"), ("wb", "bcos"), ("wb", "vanilla"))


def _runs(voc: Path, wb: Path, results: Path, batch: int, pairs=FULL) -> dict[str, Path]:
    common = dict(arch="tiny", image_size=SIZE, batch_size=batch, lr=1e-3, threads=1)
    out: dict[str, Path] = {}
    for name, root, extra in (("voc", voc, {}), ("wb", wb, {"task": "bird"})):
        dataset = "voc2007" if name == "voc" else "waterbirds"
        for kind in ("bcos", "vanilla"):
            if kind == "bcos" and (name, kind) not in pairs:
                continue  # Vanilla runs are always needed: the annotation-free students start from them
            base = RunConfig(dataset=dataset, data_root=str(root), model_kind=kind, epochs=1, **common, **extra)
            train_run(base, results, progress=False)
            method = "bcos" if kind == "bcos" else "ixg"
            out[f"{name}-{kind}-base"] = base
            guided = replace(base, method=method, tap="input", loss="energy", lam=1.0, init_from=base.run_id)
            for source in ("boxes", "dilated-boxes:0.25", "segmentation"):
                if (name, kind) in pairs or source == "boxes":
                    out[f"{name}-{kind}-{source}"] = replace(guided, mask_source=source)
    # annotation-free: a Vanilla student, its B-cos teacher being the box-guided B-cos run above
    for name in ("voc", "wb"):
        if f"{name}-bcos-boxes" not in out:
            continue
        teacher = out[f"{name}-bcos-boxes"]
        train_run(teacher, results, progress=False)
        out[f"{name}-teacher"] = replace(out[f"{name}-vanilla-boxes"], loss="distill",
                                         mask_source=f"teacher:{teacher.run_id}")
    out["wb-aim"] = replace(out["wb-vanilla-boxes"], mask_source=f"aim:{_aim_run(results, wb)}")
    return {k: train_run(c, results, progress=False) if not k.endswith("-base") else None for k, c in out.items()}


def _check(dirs: dict[str, Path], pairs=FULL) -> None:
    for key, rdir in dirs.items():
        if rdir is None:
            continue
        cfg = store.load_config(rdir)
        assert store.is_done(rdir), key
        assert torch.isfinite(torch.tensor(_loc(rdir))), key
        if "teacher" in key or "aim" in key:
            assert cfg.mask_source.split(":")[0] in key
    for name in (f"{d}-{k}" for d, k in pairs):
        losses = {s: _loc(dirs[f"{name}-{s}"]) for s in ("boxes", "dilated-boxes:0.25", "segmentation")}
        assert len(set(losses.values())) == 3, (name, losses)
    assert _loc(dirs["voc-teacher"]) != _loc(dirs["voc-vanilla-boxes"])
    assert _loc(dirs["wb-aim"]) != _loc(dirs["wb-vanilla-boxes"])


def test_one_epoch_run_per_source_on_small_sets(tmp_path):
    torch.set_num_threads(1)
    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=12, n_val=6, n_test=6, seg_fraction=1.0)
    wb = make("waterbirds", tmp_path / "wb", seed=0, n_train=12, n_val=8, n_test=8)
    _check(_runs(voc, wb, tmp_path / "results", batch=6, pairs=FAST), pairs=FAST)


@pytest.mark.slow
def test_one_epoch_run_per_source_on_demo_sized_sets(tmp_path):
    torch.set_num_threads(1)
    voc = make("voc2007", tmp_path / "voc", seed=0)
    wb = make("waterbirds", tmp_path / "wb", seed=0)
    _check(_runs(voc, wb, tmp_path / "results", batch=16))
