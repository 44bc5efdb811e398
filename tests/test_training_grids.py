"""Experiment grids as data: shared runs exist once, the paper profile follows Tables D1/D2 and D.1,
demo deviations are listed, and the generated Make fragment is valid for GNU make."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from rightfocus.experiments import grids
from rightfocus.runs import store
from rightfocus.runs.config import FROM_INIT
from rightfocus.experiments.makefile import write_grid
from rightfocus.experiments.paper_numbers_mg import TABLE_D1, TABLE_D2
from rightfocus.training.mg_task import eval_pairs


def _ids(group: str, profile: str = "demo") -> set[str]:
    return {c.run_id for c in grids.group_configs(group, profile)}


@pytest.mark.parametrize("profile", grids.PROFILES)
def test_shared_runs_have_one_id(profile):
    main = {c.run_id: c for c in grids.group_configs("voc-main", profile)}
    layers = grids.group_configs("voc-layers", profile)
    assert {c.run_id for c in layers if c.tap in ("input", "final")} <= set(main)
    limited = grids.group_configs("voc-limited", profile)
    assert {c.run_id for c in limited if c.annotation_fraction == 1.0} <= set(main)
    dilation = grids.group_configs("voc-dilation", profile)
    assert {c.run_id for c in dilation if c.dilation == 0.0 and not c.is_baseline} <= set(main)
    # every guided run's baseline(s) are part of its group, and ids are unique within a group
    for g in grids.GROUPS:
        cfgs = grids.group_configs(g, profile)
        ids = [c.run_id for c in cfgs]
        assert len(ids) == len(set(ids))
        for c in cfgs:
            if not c.is_baseline:
                assert set(c.init_run_ids) <= set(ids)


def test_paper_profile_follows_the_paper():
    main = [c for c in grids.group_configs("voc-main", "paper") if not c.is_baseline]
    assert len(main) == 3 * 2 * 4 * 3  # models x layers x losses x lambdas
    for loss, lams in TABLE_D1.items():
        assert sorted({c.lam for c in main if c.loss == loss}) == sorted(lams)
    assert {(c.epochs, c.lr, c.batch_size, c.image_size) for c in main} == {(50, 1e-4, 64, 224)}
    assert all(len(c.init_from) == 3 for c in main)  # the baseline lr sweep {1e-3, 1e-4, 1e-5}
    coco = [c for c in grids.group_configs("coco-main", "paper") if not c.is_baseline]
    assert {c.epochs for c in coco} == {10}
    limited = [c for c in grids.group_configs("voc-limited", "paper") if c.annotation_fraction < 1]
    for loss, lams in TABLE_D2.items():
        assert sorted({c.lam for c in limited if c.loss == loss}) == sorted(lams)
    birds = [c for c in grids.group_configs("waterbirds", "paper") if not c.is_baseline]
    rows = Counter((c.task, c.model_kind, c.tap, c.loss) for c in birds)
    assert set(rows.values()) == {4} and len(rows) == 2 * 3 * 2 * 2  # 2 seeds x 2 annotation subsets
    assert {(c.lam, c.lr, c.epochs, c.annotation_fraction) for c in birds} == {(5e-2, 1e-5, 350, 0.01)}
    archs = {c.arch for c in grids.group_configs("voc-backbones", "paper")}
    assert archs == {"densenet121", "vit_s"}


@pytest.mark.parametrize("profile", grids.PROFILES)
def test_waterbirds_guided_runs_start_from_imagenet_and_voc_coco_from_their_baselines(profile):
    """MG D.1.2: Waterbirds models are fine-tuned from ImageNet weights (the baselines' start, in the
    demo their seeded fresh initialisation), not from a Waterbirds baseline; D.1.1: VOC/COCO guided
    runs fine-tune the baselines."""
    birds = grids.group_configs("waterbirds", profile)
    base = {(c.task, c.model_kind, c.seed): c for c in birds if c.is_baseline}
    guided = [c for c in birds if not c.is_baseline]
    assert guided and base
    for c in guided:
        twin = base[(c.task, c.model_kind, c.seed)]
        assert c.init_from == FROM_INIT and c.init_run_ids == []
        assert c.extra.get("weights") == twin.extra.get("weights")
        assert (c.arch, c.image_size, c.lr) == (twin.arch, twin.image_size, twin.lr)
        if profile == "paper":
            assert c.extra["weights"] == grids.PAPER_WEIGHTS[(c.model_kind, "resnet50")]
            assert (c.epochs, c.lr) == (twin.epochs, twin.lr) == (350, 1e-5)
    for group in ("voc-main", "coco-main"):
        cfgs = grids.group_configs(group, profile)
        ids = {c.run_id for c in cfgs if c.is_baseline}
        for c in cfgs:
            if not c.is_baseline:
                assert c.init_run_ids and set(c.init_run_ids) <= ids and "weights" not in c.extra


@pytest.mark.parametrize("profile", grids.PROFILES)
def test_coco_dilation_is_the_voc_dilation_grid_on_coco_for_bcos(profile):
    """Supplement A.2 / Fig. A4 shows dilated-box examples for COCO too (B-cos, input, Energy and L1):
    the 0 % runs and the baselines are coco-main's; the paper profile trains 10/25/50 % with Table D1's
    lambdas and COCO's guided settings."""
    main = _ids("coco-main", profile)
    cfgs = grids.group_configs("coco-dilation", profile)
    guided = [c for c in cfgs if not c.is_baseline]
    assert {c.run_id for c in cfgs if c.is_baseline or c.dilation == 0.0} <= main
    assert {(c.dataset, c.model_kind, c.method, c.tap) for c in guided} == {("coco2014", "bcos", "bcos", "input")}
    assert {c.loss for c in guided} == {"energy", "l1"}
    if profile == "paper":
        assert sorted({c.dilation for c in guided}) == [0.0, 0.1, 0.25, 0.5]
        for loss in ("energy", "l1"):
            for d in (0.0, 0.1, 0.25, 0.5):
                assert sorted(c.lam for c in guided if c.loss == loss and c.dilation == d) == sorted(TABLE_D1[loss])
        assert {(c.epochs, c.lr, c.batch_size) for c in guided} == {(10, 1e-4, 64)}
    else:
        assert max(c.dilation for c in guided) == 0.5


def test_demo_deviations_name_real_figures():
    known = {"*", "mg.tab1", "mg.tabC1", "mg.tabD1", "mg.tabD2"} | {f"mg.fig{i}" for i in
                                                                   ["1", "2", "4", "5a", "5b", "6", "7", "8", "9", "10", "11", "12", "13"]}
    known |= {f"mg.fig{p}{i}" for p, n in (("A", 4), ("B", 9), ("C", 1), ("X", 11)) for i in range(1, n + 1)}
    for dev in grids.DEMO_DEVIATIONS:
        assert dev["what"] and set(dev["figures"]) <= known, dev
    assert any("one lambda" in t for t in grids.deviations_for("mg.fig5a"))
    assert grids.deviations_for("mg.fig5a") != grids.deviations_for("mg.tab1")


def test_eval_pairs_record_input_for_deeper_bcos_guidance():
    cfg = [c for c in grids.group_configs("voc-layers", "demo") if c.tap == "mid2"][0]
    assert eval_pairs(cfg, ()) == [("mid2", "bcos"), ("input", "bcos")]
    base = grids.baselines("demo", "voc2007", "vanilla")[0]
    taps = ("input", "mid1", "final")
    assert eval_pairs(base, taps) == [("input", "ixg"), ("mid1", "ixg"), ("final", "ixg"), ("final", "gradcam")]


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
@pytest.mark.parametrize("profile", grids.PROFILES)
def test_make_fragment_is_valid_and_orders_baselines_first(profile, tmp_path):
    mk = write_grid(profile, tmp_path, "data")
    manifest = json.loads(store.group_path(tmp_path, profile, "voc-main").read_text())
    assert manifest["runs"] == [c.run_id for c in grids.group_configs("voc-main", profile)]
    out = subprocess.run(["make", "-n", "-f", str(mk), "mg-runs", "PY=python"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmds = [line for line in out.stdout.splitlines() if "-m rightfocus train" in line or "papermill" in line]
    if profile != "demo":  # paper, rehearsal: one papermill execution per run, its parameters per run
        assert len(cmds) == len(grids.all_configs(profile))
        order = [line.split("params/")[1].split(".yaml")[0] for line in cmds]
        pos = {rid: i for i, rid in enumerate(order)}
        for c in grids.all_configs(profile):
            for dep in c.init_run_ids:
                assert pos[dep] < pos[c.run_id]
    else:
        assert len(cmds) == len(grids.GROUPS)  # one notebook execution per group
    # a second write leaves every file (hence every Make timestamp) unchanged
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / profile / "mg").rglob("*.yaml")}
    write_grid(profile, tmp_path, "data")
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / profile / "mg").rglob("*.yaml")}


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
@pytest.mark.parametrize("profile", ["demo", "paper"])
def test_aim_fragment_uses_the_same_writer(profile, tmp_path):
    from rightfocus.experiments import aim_grids

    mk = write_grid(profile, tmp_path, "data", paper="aim")
    assert mk == tmp_path / profile / "aim" / "grid.mk"
    out = subprocess.run(["make", "-n", "-f", str(mk), "aim-runs", "PY=python"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmds = [line for line in out.stdout.splitlines() if "-m rightfocus train" in line or "papermill" in line]
    if profile == "paper":
        assert len(cmds) == len({c.run_id for c in aim_grids.all_configs("paper")})
    else:
        # one execution of the AIM notebook per group, aim-main (whose runs the others share) first
        assert len(cmds) == len(aim_grids.GROUPS)
        assert all("aim_train.ipynb" in c for c in cmds)
        assert "aim_train-aim-main" in cmds[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_demo_trains_and_renders_both_papers_in_one_graph(tmp_path):
    """`make demo-train` (dry run, on grids written beforehand) hands both generated fragments and the
    Makefile's `render-<paper>` rules to one make under one jobserver: AIM's main group is started first,
    every group of both papers is one notebook execution, the gallery is drawn once, and each paper's ids
    render in two halves after that paper's groups (and only its own ids); MG's longest group starts second."""
    import sys

    from rightfocus.experiments import aim_grids, ext_grids

    repo, venv = Path(__file__).resolve().parents[1], Path(sys.executable).parent.parent
    for paper in ("mg", "aim", "ext"):
        write_grid("demo", tmp_path, "data", paper=paper)
    out = subprocess.run(["make", "-n", "-o", str(venv / ".stamp"), f"VENV={venv}", "demo-train",
                          f"RESULTS={tmp_path}"], cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    notebooks = [i for i, line in enumerate(lines) if "papermill" in line]
    assert len(notebooks) == len(grids.GROUPS) + len(aim_grids.GROUPS) + len(ext_grids.GROUPS)
    assert "aim_train-aim-main" in lines[notebooks[0]] and "mg_train-waterbirds" in lines[notebooks[1]]
    for paper, nb in (("aim", "aim_train-"), ("mg", "mg_train-"), ("ext", "ext_train-")):
        renders = [i for i, line in enumerate(lines) if "rightfocus figures" in line and f"'{paper}.*'" in line]
        assert [lines[i].split("--part ")[1].strip() for i in renders] == ["1/2", "2/2"]
        assert all(f"--results {tmp_path}" in lines[i] and "--profile demo" in lines[i] for i in renders)
        assert all(i < min(renders) for i in notebooks if nb in lines[i])
    assert sum("rightfocus gallery" in line for line in lines) == 1
