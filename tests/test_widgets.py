"""Heatmap inspector and perception study, driven through their Python API.

Oracles: `rightfocus.attributions.attribute` and `rightfocus.metrics` on the same checkpoint / map
(other modules), hand-drawn boxes and segmentations, `scipy.stats.binomtest`, exact reproducibility.
The results tree is made by `training.runner.train_run` (MG runs) on a tiny VOC-format dataset
(tests/tiny_results.py); the AIM run is a checkpoint + per-epoch masks written with the AIM loop's own
writers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rightfocus.widgets import (
    RESPONSE_COLUMNS, InspectorState, PerceptionStudy, load_responses, plan_study, simulate_participant,
    simulate_study, split_subsets, study_images, summarize,
)

from tiny_results import CLASSES, SIZE, _mg_config, _write_voc, write_tree

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine run ~20x faster single-threaded (no oversubscription)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """results/demo with a vanilla baseline, an Energy/IxG-guided run and an AIM run on one dataset.
    The checkpoints are untrained (seeded, the guided one perturbed) to keep the suite fast; the slow
    test below builds the same tree with `train_run`."""
    root = tmp_path_factory.mktemp("widgets")
    data, results = root / "voc", root / "results"
    return {"root": root, "data": data, "results": results, **write_tree(results, data)}


@pytest.fixture()
def state(tree):
    return InspectorState(tree["results"], "demo", [tree["baseline"], tree["guided"]], split="test")


# ---- inspector: maps and metrics are the library's -------------------------------------------------
def test_runs_are_listed_and_defaults_follow_the_guided_run(tree, state):
    assert set(state.available_runs()) == {tree["baseline"], tree["guided"], tree["aim"]}
    assert (state.method, state.tap) == ("ixg", "input")  # the guided run's own attribution
    assert state.class_names == list(CLASSES)


def test_heatmap_is_attribute_on_the_chosen_checkpoint_image_and_class(tree, state):
    from rightfocus.attributions import attribute
    from rightfocus.data import encode, load_dataset
    from rightfocus.runs import store

    ds = load_dataset("voc2007", tree["data"], "test", size=SIZE)
    for run in (tree["baseline"], tree["guided"]):
        model, _ = store.load_checkpoint(store.run_dir(tree["results"], "demo", run), "selected")
        for index, target in ((0, 0), (3, 1), (3, 0)):
            state.select(index=index, target=target)
            panel = {p.run_id: p for p in state.view().panels}[run]
            x = encode(ds[index]["image"][None], model.input_encoding)
            expected = attribute(model, x, torch.tensor([target]), "ixg", "input")[0]
            torch.testing.assert_close(panel.heatmap, expected)
            torch.testing.assert_close(state.heatmap(run, index, target), expected)
    # the two runs' maps differ (guidance changed the model), and so do two classes of one image
    state.select(index=3, target=0)
    a, b = (p.heatmap for p in state.view().panels)
    assert not torch.allclose(a, b)
    assert not torch.allclose(state.heatmap(tree["guided"], 3, 0), state.heatmap(tree["guided"], 3, 1))


def test_metrics_equal_rightfocus_metrics_on_the_same_map(tree, state):
    from rightfocus.data import boxes_to_masks
    from rightfocus.metrics import epg, iou, onobject_epg

    state.select(index=3, target=1)
    sample = state.sample()
    box = boxes_to_masks(sample["boxes"], 1, (SIZE, SIZE))
    obj = (sample["seg"] == 2).float()  # class index 1 -> id 2 in this dataset
    assert 0 < obj.sum() < box.sum()  # the object is strictly inside its box: on-object EPG is informative
    for panel in state.view().panels:
        m = panel.heatmap[None]
        assert panel.metrics["epg"] == pytest.approx(float(epg(m, box[None])[0]), abs=1e-6)
        assert panel.metrics["iou"] == pytest.approx(float(iou(m, box[None], 0.5)[0]), abs=1e-6)
        assert panel.metrics["onobj_epg"] == pytest.approx(float(onobject_epg(m, box[None], obj[None])[0]), abs=1e-6)
    # EPG by hand on the first panel: positive mass inside the box over the total positive mass
    pos = torch.relu(state.view().panels[0].heatmap)
    assert state.view().panels[0].metrics["epg"] == pytest.approx(float((pos * box).sum() / pos.sum()), abs=1e-6)


def test_prediction_is_the_models_sigmoid_score(tree, state):
    from rightfocus.data import encode
    from rightfocus.runs import store

    model, _ = store.load_checkpoint(store.run_dir(tree["results"], "demo", tree["guided"]))
    state.select(index=2)
    x = encode(state.sample()["image"][None], model.input_encoding)
    with torch.no_grad():
        probs = torch.sigmoid(model(x))[0]
    panel = state.view().panels[1]
    assert panel.predicted == int(probs.argmax()) and panel.confidence == pytest.approx(float(probs.max()), abs=1e-6)


def test_cache_hits_on_revisit_and_is_bounded(tree):
    s = InspectorState(tree["results"], "demo", [tree["guided"]], cache_size=6)  # sample, logits, map per image
    s.select(index=0); s.view()
    misses = s.cache.misses
    s.select(index=1); s.view()
    s.select(index=0); s.view()  # back to the first image: maps and logits come from the cache
    assert s.cache.misses == misses + 3 and s.cache.hits >= 3
    for i in range(4):
        s.select(index=i); s.view()
    assert len(s.cache) == 6


def test_filters_by_class_group_and_epg(tree, state):
    from rightfocus.data import load_dataset

    ds = load_dataset("voc2007", tree["data"], "test", size=SIZE)
    has_dog = [i for i in range(len(ds)) if ds[i]["labels"][1] > 0]
    assert state.filter_images(cls=1) == has_dog and 0 < len(has_dog) < len(ds)
    scores = state.image_epg(tree["guided"])
    # per-image EPG = mean over its classes of the metric on the map of that class
    from rightfocus.data import boxes_to_masks
    from rightfocus.metrics import epg

    i = has_dog[0]
    per_class = [float(epg(state.heatmap(tree["guided"], i, c)[None],
                           boxes_to_masks(ds[i]["boxes"], c, (SIZE, SIZE))[None])[0])
                 for c in torch.nonzero(ds[i]["labels"]).flatten().tolist()]
    assert scores.loc[i, "epg"] == pytest.approx(np.mean(per_class), abs=1e-5)
    lo, hi = float(scores["epg"].median()), 1.0
    kept = state.filter_images(epg_range=(lo, hi), run_id=tree["guided"])
    assert kept == [int(j) for j, v in zip(scores["index"], scores["epg"]) if lo <= v <= hi]
    change = state.epg_change(tree["baseline"], tree["guided"])
    assert list(change["change"]) == sorted(change["change"], reverse=True)
    assert state.filter_images(group=0) == []  # VOC has no groups


def test_aim_panel_shows_stage_masks_and_stored_epochs(tree):
    from rightfocus.data import encode
    from rightfocus.runs.store import load_checkpoint as load_aim_checkpoint

    s = InspectorState(tree["results"], "demo", [tree["aim"]])
    assert (s.method, s.tap) == ("gradcam", "classifier")
    assert s.mask_epochs(tree["aim"]) == [1, 2]
    s.select(index=1)
    panel = s.view().panels[0]
    assert panel.tap == "aim" and panel.mask_epoch is None
    model, _ = load_aim_checkpoint(s.run_dir(tree["aim"]))
    with torch.no_grad():
        out = model.forward_aim(encode(s.sample()["image"][None], "imagenet"))
    stage_names = [f"S{k}" for k in out.masks]
    assert list(panel.masks) == stage_names + ["merged"]
    first = out.masks[next(iter(out.masks))][0, 0].float()
    up = torch.nn.functional.interpolate(first[None, None], size=(SIZE, SIZE), mode="nearest")[0, 0]
    np.testing.assert_array_equal(panel.masks[stage_names[0]], up.numpy())
    # the epoch slider shows the masks the run stored at that epoch
    blob1 = torch.load(s.run_dir(tree["aim"]) / "masks" / "epoch_1.pt", weights_only=True)
    s.select(mask_epoch=1)
    p1 = s.view().panels[0]
    assert p1.mask_epoch == 1
    stored = blob1["stage_masks"][0][1, 0].float()  # image 1 is the second stored position
    up = torch.nn.functional.interpolate(stored[None, None], size=(SIZE, SIZE), mode="nearest")[0, 0]
    np.testing.assert_array_equal(p1.masks[stage_names[0]], up.numpy())
    s.select(index=5)  # not a stored image: back to the checkpoint's masks, said so
    assert s.view().panels[0].mask_epoch is None


def test_export_png_and_bad_selections(tree, state, tmp_path):
    out = state.export_png(tmp_path / "view.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 100
    with pytest.raises(ValueError, match="unknown method"):
        state.select(method="saliency")
    with pytest.raises(IndexError, match="out of range"):
        state.select(index=999)
    with pytest.raises(ValueError, match="choose at least one run"):
        state.set_runs([])
    # runs on different data cannot be compared side by side
    from rightfocus.runs import store
    from rightfocus.runs.config import RunConfig

    other = RunConfig(dataset="coco2014", data_root="elsewhere", profile="demo")
    store.write_config(state.run_dir(other.run_id), other)
    with pytest.raises(ValueError, match="different datasets"):
        state.set_runs([tree["guided"], other.run_id])
    # a method a model cannot do is shown as an error on its panel; the other panels still draw
    s = InspectorState(tree["results"], "demo", [tree["guided"], tree["aim"]])
    s.select(method="intgrad", tap="mid1")
    panels = s.view().panels
    assert panels[0].error is None and panels[1].error and "intgrad" in panels[1].error and "input" in panels[1].error


@pytest.mark.slow
def test_inspector_agrees_with_the_runs_own_evaluation(tmp_path):
    """Runs trained by `train_run`: the inspector's per-map EPG / IoU, averaged flat over the test
    (image, class) pairs, equals the test EPG / IoU the training loop stored for the selected checkpoint."""
    from rightfocus.runs import store
    from rightfocus.training.runner import train_run

    data = _write_voc(tmp_path / "voc")
    results = tmp_path / "results"
    base = _mg_config(data)
    train_run(base, results, progress=False)
    guided = _mg_config(data, method="ixg", tap="input", loss="energy", lam=1.0, init_from=base.run_id)
    train_run(guided, results, progress=False)
    s = InspectorState(results, "demo", [base.run_id, guided.run_id], split="test")
    for run in s.runs:
        selected = store.read_done(s.run_dir(run))["selected_epoch"]
        row = next(r for r in store.read_metrics(s.run_dir(run)) if r["split"] == "test"
                   and r["epoch"] == selected and (r["tap"], r["method"]) == ("input", "ixg"))
        epgs, ious = [], []
        for i in range(s.num_images):
            for c in s.ground_truth(i):
                m = s.map_metrics(run, s.heatmap(run, i, c, "ixg", "input"), i, c, "ixg", "input")
                epgs.append(m["epg"])
                ious.append(m["iou"])
        assert np.mean(epgs) == pytest.approx(row["epg"], abs=1e-5)
        assert np.mean(ious) == pytest.approx(row["iou"], abs=1e-5)


@pytest.mark.slow
def test_inspector_agrees_with_the_aim_loops_per_sample_epg(tmp_path):
    """An AIM run trained by the AIM loop on synthetic Waterbirds: the inspector's GradCAM EPG (at the
    classifier tap, against the object segmentation) equals the loop's per_sample.csv, and the epoch
    selector lists the epochs whose masks the loop stored."""
    import dataclasses

    from rightfocus.data.synthetic import make
    from rightfocus.experiments.aim_grids import make_config
    from rightfocus.training.runner import train_run

    make("waterbirds", tmp_path / "data" / "waterbirds", n_train=24, n_val=8, n_test=12)
    config = make_config("demo", "waterbirds100", "convnext_tiny", data_root=str(tmp_path / "data"))
    config = dataclasses.replace(config, epochs=2, extra={**config.extra, "anneal_epochs": 1})
    rdir = train_run(config, tmp_path / "results", progress=False)
    s = InspectorState(tmp_path / "results", "demo", [config.run_id], split="test")
    assert s.mask_epochs(config.run_id) == [0, 1, 2] and s.tap == "classifier"  # 0: before training
    per_sample = pd.read_csv(Path(rdir) / "per_sample.csv")
    for row in per_sample.itertuples():
        s.select(index=int(row.index))
        panel = s.view().panels[0]
        assert panel.metrics["mask"] == "seg" and panel.tap == "aim"
        assert panel.metrics["epg"] == pytest.approx(row.epg_gradcam, abs=1e-5)


# ---- the widget layer forwards to the state ----------------------------------------------------------
def test_inspector_widgets_drive_the_view(tree, tmp_path):
    from rightfocus.widgets import HeatmapInspector

    ins = HeatmapInspector.from_results(tree["results"], "demo", runs=[tree["baseline"], tree["guided"]])
    first = ins.image.value
    assert ins.last_view is not None and len(first) > 0
    ins.index.value = 3
    assert ins.last_view.index == 3 and ins.image.value != first
    ins.target.value = 1
    assert ins.last_view.target == 1
    torch.testing.assert_close(ins.last_view.panels[1].heatmap, ins.state.heatmap(tree["guided"], 3, 1))
    ins.method.value = "ixg"
    assert ins.last_view.method == "ixg"
    ins.filter_class.value = 1
    assert [v for _, v in ins.matches.options] == ins.state.filter_images(cls=1)
    ins.next.click()
    assert ins.last_view.index in ins.state.filter_images(cls=1)
    ins.runs.value = (tree["aim"],)
    assert [p.run_id for p in ins.last_view.panels] == [tree["aim"]]
    assert [v for _, v in ins.mask_epoch.options] == [-1, 1, 2]  # -1: the checkpoint's own masks
    ins.index.value = 4
    ins.mask_epoch.value = 2
    assert ins.last_view.panels[0].mask_epoch is None  # image 4 is not one the run stored masks for
    ins.index.value = 1
    assert ins.last_view.panels[0].mask_epoch == 2
    ins.mask_epoch.value = -1
    assert ins.last_view.panels[0].mask_epoch is None
    ins.export_png(tmp_path / "w.png")
    assert (tmp_path / "w.png").stat().st_size > 0


# ---- perception study ----------------------------------------------------------------------------------
def test_subsets_are_disjoint_and_cover_the_images():
    subsets = split_subsets(range(100), 4, seed=3)
    assert [len(s) for s in subsets] == [25] * 4
    assert sorted(sum(subsets, [])) == list(range(100))
    assert split_subsets(range(100), 4, seed=3) == subsets != split_subsets(range(100), 4, seed=4)
    chosen = study_images(500, 100, seed=3)
    assert len(set(chosen)) == 100 and chosen == sorted(chosen) and 0 <= min(chosen) and max(chosen) < 500
    assert chosen == study_images(500, 100, seed=3) != study_images(500, 100, seed=4)
    assert study_images(30, 100) == list(range(30))  # fewer available: all of them
    with pytest.raises(ValueError, match="duplicates"):
        split_subsets([1, 1, 2], 2)


def test_placement_is_balanced_and_reproducible():
    from scipy.stats import binomtest

    plans = [plan_study(range(100), "base", "aim", f"p{i}", seed=7) for i in range(40)]
    b_left = sum(t.left_run == "aim" for plan in plans for t in plan)
    n = sum(len(p) for p in plans)
    assert n == 40 * 25
    assert binomtest(b_left, n, 0.5).pvalue > 1e-3  # a fair coin, not a fixed side
    assert 0 < sum(t.left_run == "aim" for t in plans[0]) < 25
    again = [plan_study(range(100), "base", "aim", f"p{i}", seed=7) for i in range(40)]
    assert again == plans
    assert plan_study(range(100), "base", "aim", "p0", seed=8) != plans[0]
    # every participant's trials are exactly one subset, each trial shows both runs once
    subsets = split_subsets(range(100), 4, seed=7)
    for plan in plans:
        assert sorted(t.image_index for t in plan) == subsets[plan[0].subset]
        assert all({t.left_run, t.right_run} == {"base", "aim"} for t in plan)
    assert {plan[0].subset for plan in plans} == {0, 1, 2, 3}


def test_responses_survive_a_restart_and_resume(tmp_path):
    csv = tmp_path / "study" / "responses.csv"
    study = PerceptionStudy(range(20), "base", "aim", csv, participant="alice", n_subsets=2, seed=1)
    first = [study.answer(c) for c in ("left", "right", "left")]
    # the kernel "dies": a new object on the same CSV resumes at the 4th trial and keeps the rows
    again = PerceptionStudy(range(20), "base", "aim", csv, participant="alice", n_subsets=2, seed=1)
    assert again.answered == 3 and again.current == study.trials[3]
    again.answer("right")
    df = load_responses(csv)
    assert list(df.columns) == list(RESPONSE_COLUMNS)
    assert df.trial.tolist() == [0, 1, 2, 3] and df.choice.tolist() == ["left", "right", "left", "right"]
    for row, trial in zip(df.itertuples(), study.trials):
        chosen = trial.left_run if row.choice == "left" else trial.right_run
        assert row.chosen_run == chosen and row.preferred_is_b == (chosen == "aim") and not row.simulated
    assert first[0]["image_index"] == df.image_index[0]
    # another participant on the same file starts at trial 0
    bob = PerceptionStudy(range(20), "base", "aim", csv, participant="bob", n_subsets=2, seed=1)
    assert bob.answered == 0
    while not bob.done:
        bob.answer("left")
    with pytest.raises(RuntimeError, match="answered all"):
        bob.answer("left")
    with pytest.raises(ValueError, match="choice"):
        again.answer("middle")
    # resuming with another plan (other seed) would mislabel answers: refused
    with pytest.raises(ValueError, match="not this study's plan"):
        PerceptionStudy(range(20), "base", "aim", csv, participant="alice", n_subsets=2, seed=2)


def test_summary_is_scipys_binomial_test(tmp_path):
    from scipy.stats import binomtest

    epg = {(i, r): (0.8 if r == "aim" else 0.5) + 0.01 * (i % 7) for i in range(100) for r in ("base", "aim")}
    df = simulate_study(range(100), "base", "aim", epg, n_participants=8, noise=0.3, seed=0)
    s = summarize(df)
    k = int(df.preferred_is_b.sum())
    assert (s["n"], s["k"]) == (200, k) and s["rate"] == k / 200
    assert s["p_value"] == pytest.approx(binomtest(k, 200, 0.5, alternative="two-sided").pvalue, rel=1e-12)
    assert s["simulated"] is True and df.simulated.all()
    # the paper's numbers: 70.7 % of 2675 -> p < 1e-5
    paper = pd.DataFrame({"preferred_is_b": [True] * 1891 + [False] * 784, "simulated": False})
    ps = summarize(paper)
    assert ps["rate"] == pytest.approx(0.707, abs=1e-3) and ps["p_value"] < 1e-5 and ps["simulated"] is False
    # noise-free simulated participant always picks the higher-EPG map; written rows round-trip
    plan = plan_study(range(100), "base", "aim", "sim", seed=0)
    exact = simulate_participant(plan, epg, "aim", noise=0.0)
    assert exact.preferred_is_b.all()
    path = tmp_path / "responses_sim.csv"
    exact.to_csv(path, index=False)
    assert summarize(load_responses(tmp_path))["k"] == len(plan)


def test_study_renders_maps_of_both_runs(tree, tmp_path):
    state = InspectorState(tree["results"], "demo", [tree["baseline"], tree["aim"]])
    render = state.study_renderer()
    study = PerceptionStudy(range(6), tree["baseline"], tree["aim"], tmp_path / "r.csv", "p", n_subsets=2,
                            render=render)
    t = study.current
    image, left = render(t.image_index, t.left_run)
    gt = state.ground_truth(t.image_index)[0]
    torch.testing.assert_close(left, state.heatmap(t.left_run, t.image_index, gt, "gradcam", "classifier"))
    fig = study.figure()
    assert [ax.get_title() for ax in fig.axes] == ["image", "A", "B"]
    box = study.widget()
    box.buttons[1].click()  # "B (right)"
    assert load_responses(tmp_path / "r.csv").choice.tolist() == ["right"]


# ---- notebooks run headless ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inspect_heatmaps",
                                  pytest.param("perception_study", marks=pytest.mark.slow)])
def test_notebook_runs_headless_under_papermill(tree, tmp_path, name, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel inherits it (see _one_thread)
    src = REPO / "notebooks" / f"{name}.ipynb"
    nb = json.loads(src.read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "commit without outputs"
    params = {"results": str(tree["results"]), "profile": "demo", "interactive": False,
              "runs": [tree["baseline"], tree["aim"]]}  # default out_dir: under the results, never the tracked tree
    if name == "perception_study":
        params["n_subsets"] = 2
    tracked = {p for p in (REPO / "figures").rglob("*")}
    pm.execute_notebook(str(src), str(tmp_path / f"{name}.out.ipynb"), parameters=params, kernel_name="python3",
                        progress_bar=False, cwd=str(REPO / "notebooks"))  # where JupyterLab starts kernels
    out = tree["results"] / "demo" / ("inspector" if name == "inspect_heatmaps" else "study")
    pngs = list(out.glob("*.png"))
    assert pngs, "the notebook exports its view / study figure under <results>/<profile>/"
    assert {p for p in (REPO / "figures").rglob("*")} == tracked, "nothing written into figures/"
    if name == "inspect_heatmaps":
        text = json.dumps(json.loads((tmp_path / f"{name}.out.ipynb").read_text())["cells"])
        assert re.search(r"EPG \d+\.\d %  IoU \d+\.\d %", text), "scores shown as percentages"
    if name == "perception_study":
        s = summarize(load_responses(out / "responses_simulated.csv"))
        assert s["simulated"] is True and s["n"] == 3  # 6 test images in 2 subsets: one participant's 3


# ---- where the inspector looks: unfinished runs, relative data roots ---------------------------------------
def test_unfinished_run_folders_are_skipped_with_a_note(tree, tmp_path):
    from rightfocus.runs import store

    results = tmp_path / "results"
    cfg = store.load_config(store.run_dir(tree["results"], "demo", tree["baseline"]))
    store.write_config(store.run_dir(results, "demo", cfg.run_id), cfg)  # a run that failed before `done`
    store.run_dir(results, "demo", "empty-folder").mkdir()
    state = InspectorState(results, "demo")
    assert state.available_runs() == []
    assert state.skipped == {cfg.run_id: "not finished (no done file)", "empty-folder": "no config.yaml"}
    assert state.skipped_note().startswith("skipped 2 unfinished run folder(s): ")
    msg = state.nothing_found()
    assert str(results / "demo" / "runs") in msg and "make demo" in msg and "results=" in msg
    assert InspectorState(tree["results"], "demo").available_runs() == sorted(
        [tree["baseline"], tree["guided"], tree["aim"]])


def test_relative_data_roots_resolve_next_to_the_results(tree, tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from rightfocus import project
    from rightfocus.runs import store

    clone = tmp_path / "clone"
    shutil.copytree(tree["results"], clone / "results")
    (clone / "data").mkdir()
    (clone / "data" / "voc").symlink_to(tree["data"])
    for rid in (tree["baseline"], tree["guided"]):
        rdir = store.run_dir(clone / "results", "demo", rid)
        store.write_config(rdir, dataclasses.replace(store.load_config(rdir), data_root="data/voc"))
    monkeypatch.setenv(project.ROOT_ENV, str(tmp_path / "elsewhere"))  # not the clone: only results' parent helps
    monkeypatch.chdir(tmp_path)
    state = InspectorState(clone / "results", "demo", [tree["baseline"], tree["guided"]], split="test")
    assert state.data_root_for(state.config(tree["baseline"])) == str(clone / "data" / "voc")
    reference = InspectorState(tree["results"], "demo", [tree["baseline"], tree["guided"]], split="test")
    torch.testing.assert_close(state.view().panels[1].heatmap, reference.view().panels[1].heatmap)
    moved = InspectorState(clone / "results", "demo", [tree["baseline"]], data_root=str(tree["data"]))
    assert moved.num_images == reference.num_images
    lost = InspectorState(clone / "results", "demo", [tree["baseline"]], data_root="gone/voc")
    with pytest.raises(FileNotFoundError, match=r"data_root is none of .*gone/voc.*pass data_root=<folder>"):
        lost.num_images


def test_panel_titles_show_scores_as_percentages():
    """EPG / IoU / on-object EPG read as percentages, as in the tables (fractions stay in code and files)."""
    from rightfocus.widgets.state import Panel

    panel = Panel("r", "guided", torch.zeros(2, 2), 1, "bird", 0.9, 0.9,
                  {"epg": 0.6926156282424927, "iou": 0.25, "onobj_epg": 0.5, "mask": "boxes"}, "final")
    assert panel.title().splitlines()[-1] == "EPG 69.3 % IoU 25.0 % on-obj 50.0 %"


def test_readout_adds_registered_metrics_equal_to_quantus(tree, state):
    import warnings

    import numpy as np

    quantus = pytest.importorskip("quantus")
    from rightfocus.data import boxes_to_masks

    state.select(index=3, target=1, readout=("pointing_game", "auc"))
    box = boxes_to_masks(state.sample()["boxes"], 1, (SIZE, SIZE)).numpy()[None, None].astype(np.float64)
    kw = dict(normalise=False, abs=False, disable_warnings=True)
    for panel in state.view().panels:
        a = panel.heatmap.double().numpy()[None, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = {name: float(metric(model=None, x_batch=np.zeros_like(a), y_batch=np.zeros(1, int), a_batch=a,
                                    s_batch=box, channel_first=True)[0])
                 for name, metric in (("pointing_game", quantus.PointingGame(**kw)), ("auc", quantus.AUC(**kw)))}
        assert panel.metrics["auc"] == pytest.approx(q["auc"], abs=1e-6)
        assert panel.metrics["pointing_game"] == q["pointing_game"]
        assert "PG" in panel.title() and "AUC" in panel.title()
    with pytest.raises(ValueError, match="readout"):
        state.select(readout=("no_such_metric",))
