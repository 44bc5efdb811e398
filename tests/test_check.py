"""`rightfocus check` on an empty root, on a stand-in tree (synthetic data in the real formats plus
stand-in weights), and on a tree with one broken piece: each reported with the right line and exit
code; it writes nothing, and `make mg PROFILE=paper` stops at it before the grid is written."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rightfocus import cli
from rightfocus.check import ERROR, WARNING, run_check
from rightfocus.check.known_counts import KNOWN
from rightfocus.check.weights import weights_needs
from rightfocus.data import synthetic
from rightfocus.experiments import grids

REPO = Path(__file__).resolve().parents[1]
GROUP = "voc-limited"  # paper profile: B-cos ResNet-50 on VOC only, 21 runs
VOC_SIZES = {"n_train": 10, "n_val": 6, "n_test": 8}


def _weights_files(group: str = GROUP) -> list[tuple[str, str, str]]:
    needs = weights_needs({group: grids.group_configs(group, "paper", "data")})
    return [(n.file, n.kind, n.arch) for n in needs]


def _write_standin_weights(root: Path, group: str = GROUP) -> None:
    """The grid's weights files: release stand-ins (`rightfocus.models.release.write_standin`) for
    release file names, else our model's own state dict (which `load_weights` accepts)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        from rightfocus.models.release import RELEASES, write_standin  # type: ignore[attr-defined]
    except ImportError:
        RELEASES, write_standin = {}, None
    for file, kind, arch in _weights_files(group):
        if file in RELEASES:
            write_standin(file, root / file, seed=0)
        else:
            from rightfocus.models import build_model

            torch.save(build_model(kind, arch, 1000).state_dict(), root / file)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    """data/voc2007 (synthetic, real layout) and weights/ for GROUP; tests copy it before breaking it."""
    base = tmp_path_factory.mktemp("standin")
    synthetic.make("voc2007", base / "data" / "voc2007", seed=0, **VOC_SIZES)
    _write_standin_weights(base / "weights")
    return base


@pytest.fixture
def broken(standin, tmp_path) -> Path:
    """A private copy of the stand-in tree that a test may damage."""
    dst = tmp_path / "tree"
    shutil.copytree(standin, dst)
    return dst


def _check(tree: Path, **kw):
    kw.setdefault("groups", [GROUP])
    kw.setdefault("measure", False)
    kw.setdefault("sample", 0)
    return run_check("mg", "paper", str(tree / "data"), str(tree / "weights"), results=str(tree / "results"),
                     log=lambda s: None, **kw)


def _lines(report, level: str) -> list[str]:
    return [p.line() for p in report.problems if p.level == level]


# ---- empty root ----------------------------------------------------------------------------------
def test_empty_root_names_every_missing_dataset_and_the_fix(tmp_path, capsys):
    code = cli.main(["check", "--paper", "mg", "--data-root", str(tmp_path / "empty"), "--group", "voc-limited",
                     "--group", "waterbirds", "--results", str(tmp_path / "results"), "--no-measure"])
    out = capsys.readouterr().out
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert any("[data voc2007]" in e and "VOCtrainval_06-Nov-2007.tar" in e for e in errors)
    assert any("[data waterbirds]" in e and "waterbird_complete100_forest2water2" in e for e in errors)
    # no weights root: one line that names every file the grid loads and how to pass the folder
    (weights,) = [e for e in errors if e.startswith("ERROR   [weights]")]
    assert "--weights-root" in weights
    for file, _, _ in _weights_files("voc-limited") + _weights_files("waterbirds"):
        assert file in weights
    assert all(" -> fix: " in e for e in errors)
    assert "FAILED" in out
    assert not (tmp_path / "results").exists()  # the check writes nothing


def test_empty_root_aim(tmp_path):
    report = run_check("aim", "paper", str(tmp_path), str(tmp_path / "w"), groups=["aim-edgeinit"],
                       results=str(tmp_path / "results"), measure=False, log=lambda s: None)
    assert report.exit_code == 1
    errors = _lines(report, ERROR)
    assert any("[data cub]" in e and "CUB_200_2011.tgz" in e for e in errors)
    assert any("WEIGHTS_ROOT" in e and "is not a folder" in e and "convnext_tiny-983f1562.pth" in e for e in errors)


def test_unknown_group_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["check", "--data-root", str(tmp_path), "--group", "nope", "--no-measure"]) == 2
    assert "unknown mg group" in capsys.readouterr().err


# ---- stand-in tree ----------------------------------------------------------------------------------
def test_standin_tree_passes_with_count_warnings(standin):
    report = _check(standin)
    assert report.exit_code == 0, _lines(report, ERROR)
    manifest = json.loads((standin / "data" / "voc2007" / synthetic.MANIFEST).read_text())
    rows = {r.split: r for r in report.data_rows}
    assert set(rows) == {"train", "val", "test"}
    for split, row in rows.items():
        images = [im for im in manifest["images"] if im["split"] == split]
        assert row.num_images == len(images) == VOC_SIZES[f"n_{split}"]
        # oracle: torchvision's own VOC parser, non-difficult objects (what the devkit's Table 1 counts)
        from torchvision.datasets import VOCDetection

        voc = VOCDetection(str(standin / "data" / "voc2007"), year="2007", image_set=split)
        objects = sum(o["difficult"] == "0" for i in range(len(voc))
                      for o in voc.parse_voc_xml(__import__("xml.etree.ElementTree").etree.ElementTree
                                                 .parse(voc.annotations[i]).getroot())["annotation"]["object"])
        assert row.annotations.startswith(f"{objects} (release {KNOWN['voc2007'].objects[split]})")
        assert row.layout == "VOCdevkit/VOC2007/JPEGImages"
    # a stand-in tree is not the release: one count warning per split, with the release's numbers
    warns = [w for w in _lines(report, WARNING) if w.startswith("WARNING [data voc2007/")]
    assert len(warns) == 3
    assert any(f"{VOC_SIZES['n_train']} images (release 2501)" in w for w in warns)
    assert [w.status for w in report.weights] == ["ok"] * len(report.weights)
    assert report.unique_runs == len(grids.group_configs(GROUP, "paper", "data"))


def test_disk_volume_and_shortage(standin, monkeypatch):
    from rightfocus.check import resources
    from rightfocus.models import build_model, count_parameters

    report = _check(standin)
    model = build_model("bcos", "resnet50", 6)  # the stand-in VOC has 6 classes
    nbytes = 4 * (count_parameters(model) + sum(b.numel() for b in model.buffers()))
    configs = grids.group_configs(GROUP, "paper", str(standin / "data"))
    kept = sum(2 if c.is_baseline else 1 + resources.ASSUMED_FRONT for c in configs)
    assert report.disk["volume_gb"] == pytest.approx((kept + 4) * nbytes / 1e9)

    monkeypatch.setattr(resources.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**12, free=10**6))
    short = _check(standin)
    assert short.exit_code == 1
    assert any(line.startswith("ERROR   [disk]") and "--results" in line for line in _lines(short, ERROR))


# ---- one broken piece --------------------------------------------------------------------------------
def test_corrupted_image_is_one_error_line(broken):
    image = broken / "data" / "voc2007" / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000003.jpg"
    image.write_bytes(b"not a jpeg at all" * 10)
    report = _check(broken)
    assert report.exit_code == 1
    errors = _lines(report, ERROR)
    assert len(errors) == 1, errors
    assert "cannot decode image" in errors[0] and str(image) in errors[0] and "-> fix: re-download" in errors[0]


def test_empty_image_file_found_without_decoding(broken):
    image = broken / "data" / "voc2007" / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000002.jpg"
    image.write_bytes(b"")
    report = _check(broken, sample=1)  # only the first image decoded: the stat finds it
    assert any("listed image files are empty" in e and str(image) in e for e in _lines(report, ERROR))


def test_missing_annotation_file_is_reported_with_its_path(broken):
    xml = broken / "data" / "voc2007" / "VOCdevkit" / "VOC2007" / "Annotations" / "000004.xml"
    xml.unlink()
    report = _check(broken)
    assert report.exit_code == 1
    (error,) = _lines(report, ERROR)  # every split reads it (class list): one line for one cause
    assert "annotation file not found" in error and str(xml) in error and "VOCtrainval_06-Nov-2007.tar" in error
    assert error.startswith("ERROR   [data voc2007/train,val,test]")


def test_truncated_weights_file_is_reported(broken):
    (file, _, _), = _weights_files()
    path = broken / "weights" / file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = _check(broken)
    assert report.exit_code == 1
    errors = _lines(report, ERROR)
    assert len(errors) == 1 and f"[weights {file}]" in errors[0] and "re-download" in errors[0]
    assert [w.status for w in report.weights] != ["ok"]


def test_weights_of_another_model_do_not_fit(broken):
    from rightfocus.models import build_model

    (file, _, _), = _weights_files()
    torch.save(build_model("vanilla", "resnet18", 1000).state_dict(), broken / "weights" / file)
    report = _check(broken)
    assert report.exit_code == 1
    assert any(f"[weights {file}]" in e for e in _lines(report, ERROR))


# ---- time --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("paper,group,kind,sizes", [("mg", "voc-limited", "voc2007", VOC_SIZES),
                                                   ("aim", "aim-edgeinit", "cub", {"per_class": 6, "num_classes": 3})])
def test_measured_step_time_gives_hours_per_group(paper, group, kind, sizes, tmp_path):
    """Demo profile (tiny models, 32 px): every distinct step is timed and a group's hours are its
    runs' epochs x steps per epoch x step time."""
    synthetic.make(kind, tmp_path / "synthetic" / kind, seed=0, **sizes)
    report = run_check(paper, "demo", str(tmp_path), None, groups=[group], results=str(tmp_path / "r"),
                       measure=True, log=lambda s: None)
    assert report.exit_code == 0, _lines(report, ERROR)
    from rightfocus.check.resources import run_hours, step_key

    configs = report.groups[group]
    assert {step_key(c) for c in configs} == set(report.steps)
    assert all(s.seconds > 0 and s.measured_batch <= s.grid_batch for s in report.steps.values())
    train = next(r.num_images for r in report.data_rows if r.split == "train")
    expected = sum(run_hours(c, train, report.steps[step_key(c)]) for c in configs)
    assert report.hours[group] == pytest.approx(expected) and not math.isnan(expected) and expected > 0
    if paper == "mg":  # MG: epochs x ceil(n / batch) steps of the run's own kind
        c = configs[0]
        assert run_hours(c, train, report.steps[step_key(c)]) == pytest.approx(
            c.epochs * math.ceil(train / c.batch_size) * report.steps[step_key(c)].seconds / 3600)


# ---- make -------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_make_runs_check_before_the_grid_only_for_the_paper_profile():
    venv = Path(sys.executable).parent.parent
    cmd = ["make", "-n", "-o", str(venv / ".stamp"), f"VENV={venv}", "mg-grid", "DATA_ROOT=/d", "WEIGHTS_ROOT=/w"]
    paper = subprocess.run(cmd + ["PROFILE=paper"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = [line for line in paper.splitlines() if "-m rightfocus" in line]
    assert "rightfocus check --paper mg --profile paper --data-root /d" in lines[0]
    assert '--weights-root "/w"' in lines[0] and "rightfocus grid" in lines[1]
    demo = subprocess.run(cmd + ["PROFILE=demo"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "rightfocus check" not in demo and "rightfocus grid" in demo
    aim = subprocess.run(["make", "-n", "-o", str(venv / ".stamp"), f"VENV={venv}", "aim-grid", "PROFILE=paper"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = [line for line in aim.splitlines() if "-m rightfocus" in line]
    assert "rightfocus check --paper aim" in lines[0] and "rightfocus grid --paper aim" in lines[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_make_mg_paper_with_a_missing_data_root_writes_nothing(tmp_path):
    venv = Path(sys.executable).parent.parent
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    results = tmp_path / "results"
    out = subprocess.run(["make", "-o", str(venv / ".stamp"), f"VENV={venv}", "mg", "PROFILE=paper",
                          "DATA_ROOT=/nonexistent", f"RESULTS={results}", "CHECK_ARGS=--no-measure"],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "ERROR   [data voc2007] dataset folder /nonexistent/voc2007 does not exist" in out.stdout
    assert not results.exists()


@pytest.mark.slow
def test_paper_shape_step_is_timed_at_a_reduced_batch_on_cpu(standin, monkeypatch):
    """Paper profile on CPU: B-cos ResNet-50 at 224 px, timed at batch 2 and scaled to the grid's 64."""
    from rightfocus.check import resources

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the CPU path, also on a GPU machine
    report = _check(standin, measure=True, steps=1)
    assert report.exit_code == 0, _lines(report, ERROR)
    assert {(k[1], k[2], k[3], k[5]) for k in report.steps} == {("bcos", "resnet50", 224, "plain"),
                                                              ("bcos", "resnet50", 224, "guided")}
    for st in report.steps.values():
        assert st.measured_batch == resources.CPU_BATCH and st.grid_batch == 64 and st.extrapolated
    assert report.hours[GROUP] > 0
