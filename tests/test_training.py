"""Model-guidance runs end to end on a tiny synthetic VOC: layout, metrics against scikit-learn,
per-run Pareto front, resume == uninterrupted, and config errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from rightfocus.data import collate, encode, load_dataset
from rightfocus.data.synthetic import make
from rightfocus.runs import store
from rightfocus.runs.config import FROM_INIT, RunConfig, load_config_file
from rightfocus.metrics import IOU_THRESHOLDS
from rightfocus.pareto import pareto_front
from rightfocus.training.runner import StopRequested, train_run

SIZE = 16


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voc")
    return make("voc2007", root, seed=0, n_train=12, n_val=6, n_test=6, min_size=24, max_size=28)


def _base(voc: Path, **kw) -> RunConfig:
    cfg = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=2,
                    lr=1e-2, batch_size=6, image_size=SIZE, seed=0)
    return replace(cfg, **kw)


def _guided(voc: Path, base: RunConfig, **kw) -> RunConfig:
    return replace(base, method="ixg", tap="final", loss="energy", lam=1.0, epochs=3, lr=1e-3,
                   init_from=base.run_id, **kw)


@pytest.fixture(scope="module")
def results(tmp_path_factory, voc) -> Path:
    res = tmp_path_factory.mktemp("results")
    train_run(_base(voc), res, progress=False)
    return res


def _rows(rdir: Path) -> list[dict]:
    return [json.loads(line) for line in (rdir / "metrics.jsonl").read_text().splitlines()]


def test_guided_run_writes_the_layout(voc, results):
    base = _base(voc)
    cfg = _guided(voc, base)
    rdir = train_run(cfg, results, progress=False)
    assert rdir == store.run_dir(results, "demo", cfg.run_id)
    assert store.load_config(rdir) == cfg
    summary = json.loads((rdir / "done").read_text())
    rows = _rows(rdir)
    for key in ("epoch", "split", "tap", "method", "f1", "map", "epg", "iou", "iou_threshold", "onobj_epg",
                "accuracy", "group_acc", "worst_group_acc", "epoch_time_s", "checkpoint"):
        assert all(key in r for r in rows), key
    # epoch 0 = the baseline checkpoint, on val and test
    assert {(r["epoch"], r["split"]) for r in rows if r["epoch"] == 0} == {(0, "val"), (0, "test")}
    val = [r for r in rows if r["split"] == "val" and r["epoch"] >= 1]
    assert sorted(r["epoch"] for r in val) == [1, 2, 3]
    assert all(r["epoch_time_s"] > 0 for r in val)
    # the stored front is the Pareto front of the val rows (an independent recomputation)
    pts = np.array([[r["f1"], r["epg"], r["iou"]] for r in val])
    expected = sorted(int(r["epoch"]) for r, keep in zip(val, pareto_front(pts)) if keep)
    assert summary["front_epochs"] == expected
    assert summary["selected_epoch"] in expected
    # test rows exist exactly for the front and the selected checkpoint; only those checkpoints are kept
    tested = {r["epoch"] for r in rows if r["split"] == "test" and r["epoch"] >= 1}
    assert tested == set(expected)
    kept = {p.name for p in (rdir / "ckpt").iterdir()}
    assert kept == {f"epoch_{e}.pt" for e in expected}  # latest.pt (resume state) goes once done


def test_stored_test_f1_matches_sklearn_on_the_selected_checkpoint(voc, results):
    rdir = store.run_dir(results, "demo", _base(voc).run_id)
    model, cfg = store.load_checkpoint(rdir, "selected")
    data = load_dataset("voc2007", voc, "test", size=SIZE)
    batch = collate([data[i] for i in range(len(data))])
    with torch.no_grad():
        logits = model(encode(batch["image"], model.input_encoding))
    ours = f1_score(batch["labels"].numpy().ravel(), (logits >= 0).numpy().ravel().astype(int), zero_division=0)
    sel = store.read_done(rdir)["selected_epoch"]
    stored = [r for r in _rows(rdir) if r["split"] == "test" and r["epoch"] == sel and r["tap"] is None]
    assert stored and stored[0]["f1"] == pytest.approx(ours, abs=1e-9)
    # baselines are evaluated at every tap with their native method, plus GradCAM at the final tap
    pairs = {(r["tap"], r["method"]) for r in _rows(rdir) if r["split"] == "test" and r["tap"]}
    assert pairs == {(t, "ixg") for t in model.taps} | {("final", "gradcam")}


def test_resume_equals_uninterrupted(voc, results, tmp_path):
    base = _base(voc)
    cfg = _guided(voc, base, dilation=0.1)
    straight = train_run(cfg, results, progress=False)
    # a second results root holding the same baseline: interrupt after epoch 1, then resume
    other = tmp_path / "res"
    bdir = store.run_dir(results, "demo", base.run_id)
    target = store.run_dir(other, "demo", base.run_id)
    target.parent.mkdir(parents=True)
    import shutil

    shutil.copytree(bdir, target)
    with pytest.raises(StopRequested):
        train_run(cfg, other, stop_after_epochs=1, progress=False)
    rdir = store.run_dir(other, "demo", cfg.run_id)
    assert not store.is_done(rdir) and (rdir / "ckpt" / "latest.pt").exists()
    assert max(r["epoch"] for r in _rows(rdir)) == 1
    train_run(cfg, other, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]  # noqa: E731
    assert strip(_rows(rdir)) == strip(_rows(straight))
    a, b = store.read_done(rdir), store.read_done(straight)
    assert (a["selected_epoch"], a["front_epochs"]) == (b["selected_epoch"], b["front_epochs"])


def test_iou_threshold_is_selected_on_val_and_applied_on_test(voc, results):
    """MG Sec. 3.3: the IoU threshold is selected on held-out data. Candidates from the config (0.5 is
    not one): every val row carries one of them, and every test row carries the threshold that its
    checkpoint's validation selected for the same pair; the baseline's test rows too."""
    candidates = [0.1, 0.3, 0.7]
    base = _base(voc)
    cfg = _guided(voc, base, extra={"iou_thresholds": candidates})
    rows = _rows(train_run(cfg, results, progress=False))
    val = {(r["epoch"], r["tap"], r["method"]): r["iou_threshold"] for r in rows
           if r["split"] == "val" and r["epoch"] >= 1}
    assert val and set(val.values()) <= set(candidates)
    test = [r for r in rows if r["split"] == "test" and r["epoch"] >= 1]
    assert test and all(r["iou_threshold"] == val[(r["epoch"], r["tap"], r["method"])] for r in test)
    brows = _rows(store.run_dir(results, "demo", base.run_id))
    bval = {(r["epoch"], r["tap"], r["method"]): r["iou_threshold"] for r in brows
            if r["split"] == "val" and r["tap"] is not None}
    btest = [r for r in brows if r["split"] == "test" and r["tap"] is not None]
    assert btest and all(r["iou_threshold"] == bval[(r["epoch"], r["tap"], r["method"])] for r in btest)
    assert set(bval.values()) <= set(IOU_THRESHOLDS)


def test_load_metrics_joins_configs(voc, results):
    train_run(_guided(voc, _base(voc)), results, progress=False)
    df = store.load_metrics(results, "demo")
    assert {"run_id", "is_baseline", "config_tap", "config_method", "lam", "on_front", "selected"} <= set(df.columns)
    assert df["is_baseline"].any() and (~df["is_baseline"]).any()
    guided = df[~df["is_baseline"]]
    assert (guided["selected"] & (guided["split"] == "test")).any()


def test_guided_run_without_finished_baseline_names_it(voc, tmp_path):
    cfg = _guided(voc, _base(voc))
    with pytest.raises(FileNotFoundError, match="not finished"):
        train_run(cfg, tmp_path, progress=False)


def _params(rdir: Path) -> dict[str, torch.Tensor]:
    model, _ = store.load_checkpoint(rdir, "selected")
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_guided_run_from_the_initialisation_starts_where_its_baseline_starts(voc, tmp_path):
    """init_from = FROM_INIT (Waterbirds, MG D.1.2): no baseline run is needed; with lr 0 (Adam leaves
    the parameters where they are) the guided run's checkpoint holds its starting parameters, which
    equal an untrained baseline's (the same seeded fresh initialisation), or the file in extra.weights."""
    base = _base(voc, epochs=1, lr=0.0)
    guided = replace(_guided(voc, base), epochs=1, lr=0.0, init_from=FROM_INIT)
    gdir = train_run(guided, tmp_path / "a", progress=False)  # no baseline trained in this results root
    rows = _rows(gdir)
    assert {(r["epoch"], r["split"]) for r in rows if r["epoch"] == 0} == {(0, "val"), (0, "test")}
    assert store.read_done(gdir)["init_from_resolved"] == FROM_INIT
    start = _params(train_run(base, tmp_path / "a", progress=False))
    got = _params(gdir)
    assert got.keys() == start.keys() and all(torch.equal(got[k], start[k]) for k in start)
    # with a weights file: the run starts from it (head included: the class counts agree)
    from rightfocus.models import build_model

    torch.manual_seed(123)
    other = build_model("vanilla", "tiny", load_dataset("voc2007", voc, "train").num_classes)
    torch.save(other.state_dict(), tmp_path / "w.pth")
    pretrained = replace(guided, extra={"weights": str(tmp_path / "w.pth")})
    got = _params(train_run(pretrained, tmp_path / "b", progress=False))
    want = dict(other.named_parameters())
    assert all(torch.equal(got[k], want[k].detach()) for k in want)
    assert any(not torch.equal(got[k], start[k]) for k in start)  # the file, not the seeded init


# ---- configs ------------------------------------------------------------------------------------
def test_run_id_ignores_paths_and_devices_but_not_lambda(voc):
    cfg = _guided(voc, _base(voc))
    assert cfg.run_id == replace(cfg, data_root="/elsewhere", device="cuda:3", num_workers=8, profile="paper").run_id
    assert cfg.run_id != replace(cfg, lam=2.0).run_id
    assert cfg.run_id != replace(cfg, extra={"annotation_seed": 1}).run_id
    assert cfg.run_id == RunConfig.from_dict(cfg.to_dict()).run_id  # stable through serialisation
    assert cfg.run_id.startswith("voc2007-vanilla-tiny-ixg-final-energy-l1-f1-d0-s0-")
    assert "-baseline-" in _base(voc).run_id
    assert len(cfg.run_id.rsplit("-", 1)[1]) == 8


def test_unknown_config_key_is_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: voc2007\nlamda: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'lamda' \(did you mean 'lam'\?\); valid keys: .*'lam'"):
        load_config_file(path)
    path.write_text("dataset: voc2007\n")
    with pytest.raises(ValueError, match="unknown config key"):
        load_config_file(path, ["bogus=1"])
    from rightfocus.cli import main

    assert main(["train", str(path), "--set", "bogus=1", "--results", str(tmp_path)]) == 2


def test_overrides_and_validation(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: voc2007\nlr: 1e-4\n")
    cfg = load_config_file(path, ["lam=0.5", "method=ixg", "tap=input", "loss=l1", "extra.annotation_seed=3"])
    assert (cfg.lam, cfg.lr, cfg.loss, cfg.extra) == (0.5, 1e-4, "l1", {"annotation_seed": 3})
    with pytest.raises(ValueError, match="loss"):
        RunConfig(loss="dice", method="ixg", tap="input")
    with pytest.raises(ValueError, match="all be set"):
        RunConfig(method="ixg")


def test_cli_train_runs_the_same_function(voc, tmp_path, capsys):
    from rightfocus.cli import main
    from rightfocus.runs.config import dump_config

    cfg = _base(voc, epochs=1)
    path = tmp_path / "run.yaml"
    path.write_text(dump_config(replace(cfg, epochs=3)))
    assert main(["train", str(path), "--set", "epochs=1", "--results", str(tmp_path / "res")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["run_id"] == cfg.run_id and printed["done"]
    assert store.load_config(store.run_dir(tmp_path / "res", "demo", cfg.run_id)) == cfg
