"""The parts `InspectorState` composes, each on its own: the run catalogue (`widgets.catalogue`), the
selection (`widgets.selection`), the attribution cache (`widgets.cache`), the browsing functions
(`widgets.browse`) and the localisation-mask rule (`rightfocus.data.masks`).

Oracles: hand-written run folders and metrics rows, hand-drawn masks, counted forward passes of an
injected model, hand-computed rankings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from rightfocus.data.masks import box_mask, localisation_mask, localisation_source, object_mask
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.widgets import browse
from rightfocus.widgets.cache import LRUCache
from rightfocus.widgets.catalogue import RunCatalogue
from rightfocus.widgets.selection import Selection, default_attribution
from rightfocus.widgets.state import InspectorState

SIZE = 16


def _config(tmp_path: Path, **changes) -> RunConfig:
    base = dict(dataset="voc2007", data_root=str(tmp_path), model_kind="vanilla", arch="tiny", image_size=SIZE,
                profile="demo", epochs=1)
    return RunConfig(**{**base, **changes})


def _finished(results: Path, config: RunConfig, selected: int = 1) -> str:
    rdir = store.run_dir(results, "demo", config.run_id)
    store.write_config(rdir, config)
    store.write_done(rdir, {"selected_epoch": selected})
    (rdir / "ckpt").mkdir(parents=True, exist_ok=True)
    (rdir / "ckpt" / f"epoch_{selected}.pt").write_bytes(b"")
    return config.run_id


# ---- the run catalogue ---------------------------------------------------------------------------------
def test_catalogue_lists_finished_runs_and_says_why_others_are_left_out(tmp_path):
    results = tmp_path / "results"
    done = _finished(results, _config(tmp_path))
    running = _config(tmp_path, seed=1)
    store.write_config(store.run_dir(results, "demo", running.run_id), running)
    no_ckpt = _config(tmp_path, seed=2)
    store.write_config(store.run_dir(results, "demo", no_ckpt.run_id), no_ckpt)
    store.write_done(store.run_dir(results, "demo", no_ckpt.run_id), {})
    store.run_dir(results, "demo", "stray").mkdir()
    cat = RunCatalogue(results, "demo")
    assert cat.available_runs() == [done]
    assert cat.skipped == {running.run_id: "not finished (no done file)", no_ckpt.run_id: "no kept checkpoint",
                           "stray": "no config.yaml"}
    assert cat.skipped_note().startswith("skipped 3 unfinished run folder(s): ")
    assert cat.config(done) == _config(tmp_path) and cat.label(done) == "baseline vanilla-tiny"
    assert cat.checkpoint_epoch(done, "selected") == 1 and cat.checkpoint_epoch(done, 3) == 3
    assert cat.checkpoint_epoch(done, "latest") is None


def test_catalogue_refuses_runs_on_different_data(tmp_path):
    results = tmp_path / "results"
    a = _finished(results, _config(tmp_path))
    b = _finished(results, _config(tmp_path, image_size=32))
    cat = RunCatalogue(results, "demo")
    assert [c.run_id for c in cat.comparable([a])] == [a]
    with pytest.raises(ValueError, match="different datasets / image sizes"):
        cat.comparable([a, b])
    with pytest.raises(FileNotFoundError, match="not found under"):
        cat.comparable([a, "no-such-run"])


def test_catalogue_reads_the_iou_threshold_the_evaluation_selected(tmp_path):
    results = tmp_path / "results"
    rid = _finished(results, _config(tmp_path), selected=2)
    rows = [{"epoch": e, "split": "val", "tap": "final", "method": "gradcam", "iou_threshold": t}
            for e, t in ((1, 0.3), (2, 0.7), (3, 0.9))]
    store.write_metrics(store.run_dir(results, "demo", rid), rows)
    cat = RunCatalogue(results, "demo")
    assert cat.iou_threshold(rid, "selected", "gradcam", "final") == 0.7  # the selected epoch's
    assert cat.iou_threshold(rid, 1, "gradcam", "final") == 0.3
    assert cat.iou_threshold(rid, "latest", "gradcam", "final") == 0.9  # no epoch: the latest row
    assert cat.iou_threshold(rid, "selected", "ixg", "input") == 0.5  # no row for the pair: the default


# ---- the selection ---------------------------------------------------------------------------------------
def test_selection_rejects_unknown_choices_naming_them():
    from rightfocus.attributions import METHODS

    sel = Selection()
    with pytest.raises(ValueError, match="unknown method 'saliency'; choose one of") as err:
        sel.update({"method": "saliency"}, lambda: 10)
    assert all(m in str(err.value) for m in METHODS)
    with pytest.raises(ValueError, match=r"unknown selection\(s\) \['colour'\]; choose from .*'cmap'"):
        sel.update({"colour": "red"}, lambda: 10)
    with pytest.raises(ValueError, match="unknown mask_source 'box'.*'boxes'"):
        sel.update({"mask_source": "box"}, lambda: 10)
    with pytest.raises(ValueError, match="alpha must lie in"):
        sel.update({"alpha": 2}, lambda: 10)
    with pytest.raises(IndexError, match=r"image index 10 out of range \[0, 10\)"):
        sel.update({"index": 10}, lambda: 10)
    assert sel.method == "gradcam" and sel.mask_source == "auto"  # nothing taken from a refused change


def test_selection_resets_the_image_on_a_new_split_and_keys_the_view():
    sel = Selection(split="test")
    sel.update({"index": 7}, lambda: 10)
    sel.update({"split": "val"}, lambda: 10)
    assert (sel.split, sel.index) == ("val", 0)
    sel.update({"split": "val", "index": 3, "readout": ["auc"]}, lambda: 10)
    assert sel.index == 3 and sel.readout == ("auc",)
    key = sel.view_key(target=2)
    sel.update({"alpha": 0.25}, lambda: 10)
    assert sel.view_key(target=2) != key and sel.view_key(target=2)[5] == 2


def test_default_attribution_follows_the_first_guided_run(tmp_path):
    base, bcos = _config(tmp_path), _config(tmp_path, model_kind="bcos")
    guided = _config(tmp_path, method="ixg", tap="input", loss="energy", lam=1.0, init_from=base.run_id)
    assert default_attribution([base, guided]) == ("ixg", "input")
    assert default_attribution([base, bcos]) == ("bcos", "input")
    assert default_attribution([base]) == ("gradcam", "classifier")


# ---- the cache ----------------------------------------------------------------------------------------------
def test_lru_cache_evicts_the_least_recently_used_and_recomputes_it():
    cache, calls = LRUCache(2), []

    def value(k):
        calls.append(k)
        return k * 10

    assert [cache.get_or_compute(k, lambda k=k: value(k)) for k in (1, 2, 1, 3)] == [10, 20, 10, 30]
    assert calls == [1, 2, 3] and (cache.hits, cache.misses) == (1, 3)
    assert 1 in cache and 2 not in cache and len(cache) == 2  # 2 was least recently used
    assert cache.get_or_compute(2, lambda: value(2)) == 20 and calls == [1, 2, 3, 2]
    with pytest.raises(ValueError, match="cache size"):
        LRUCache(0)


def _injected_state(tmp_path: Path, cache_size: int) -> tuple[InspectorState, list[int]]:
    """A state on one run whose model and dataset come from injected loaders; counts forward passes."""
    from rightfocus.models import build_model

    config = _config(tmp_path)
    rid = _finished(tmp_path / "results", config)
    torch.manual_seed(0)
    model = build_model("vanilla", "tiny", 3).eval()
    calls: list[int] = []
    model.register_forward_hook(lambda *_: calls.append(1))
    images = torch.rand(4, 3, SIZE, SIZE)
    data = [{"image": images[i], "labels": torch.eye(3)[i % 3], "boxes": torch.tensor([[i % 3, 2., 2., 9., 9.]])}
            for i in range(4)]
    state = InspectorState(tmp_path / "results", "demo", [rid], cache_size=cache_size,
                           model_loader=lambda rdir, which: (model, config),
                           dataset_loader=lambda cfg, split, root: data)
    return state, calls


def test_attribution_cache_recomputes_what_it_evicted(tmp_path):
    state, calls = _injected_state(tmp_path, cache_size=2)  # one image's sample and logits
    first = state.logits(rid := state.runs[0], 0)
    state.logits(rid, 1)
    again = state.logits(rid, 0)  # evicted by image 1: computed again, to the same value
    assert len(calls) == 3 and torch.equal(first, again) and len(state.cache) == 2
    roomy, roomy_calls = _injected_state(tmp_path / "roomy", cache_size=8)
    for i in (0, 1, 0, 1):
        roomy.logits(roomy.runs[0], i)
    assert len(roomy_calls) == 2 and roomy.cache.hits == 2
    assert roomy.class_names == ["0", "1", "2"] and roomy.num_images == 4
    assert roomy.image_table()["classes"].tolist() == [[0], [1], [2], [0]]


# ---- browsing ------------------------------------------------------------------------------------------------
def test_browse_filters_and_ranks_by_epg_change():
    table = pd.DataFrame({"index": [0, 1, 2, 3], "classes": [[0], [1], [0, 1], []], "group": [0, 1, 0, -1]})
    a = pd.DataFrame({"index": [0, 1, 2, 3], "epg": [0.2, 0.5, 0.9, float("nan")]})
    b = pd.DataFrame({"index": [0, 1, 2, 3], "epg": [0.6, 0.4, 0.9, 0.3]})
    assert browse.filter_images(table, cls=0) == [0, 2]
    assert browse.filter_images(table, cls=1, group=0) == [2]
    assert browse.filter_images(table, epg_range=(0.4, 0.9), epg=b) == [0, 1, 2]
    with pytest.raises(ValueError, match="per-image EPG"):
        browse.filter_images(table, epg_range=(0, 1))
    ranked = browse.epg_change(a, b)
    assert ranked["index"].tolist() == [0, 2, 1]  # +0.4, 0, -0.1; image 3 has no EPG in a
    assert browse.epg_change(a, b, absolute=True)["index"].tolist() == [0, 1, 2]


# ---- the localisation-mask rule ----------------------------------------------------------------------------------
def test_mask_rule_boxes_segmentation_and_the_papers_choice():
    seg = torch.tensor([[0, 1, 2], [255, 2, 0]])
    sample = {"image": torch.zeros(3, 2, 3), "boxes": torch.tensor([[1., 0., 0., 2., 1.]]), "seg": seg}
    torch.testing.assert_close(box_mask(sample, 1), torch.tensor([[1., 1., 0.], [0., 0., 0.]]))
    torch.testing.assert_close(box_mask({**sample, "invert_mask": True}, 1), torch.tensor([[0., 0., 1.], [1., 1., 1.]]))
    torch.testing.assert_close(object_mask(seg, 1, multi_label=True), torch.tensor([[0., 0., 1.], [0., 1., 0.]]))
    torch.testing.assert_close(object_mask(seg, 1, multi_label=False), torch.tensor([[0., 1., 1.], [0., 1., 0.]]))
    assert object_mask(None, 1, multi_label=True) is None
    assert localisation_source("aim", has_seg=True) == "seg" and localisation_source("aim", has_seg=False) == "boxes"
    assert localisation_source("mg", has_seg=True) == "boxes" and localisation_source("mg", True, "seg") == "seg"
    with pytest.raises(ValueError, match="unknown mask source"):
        localisation_source("mg", True, "object")
    box, obj = box_mask(sample, 1), object_mask(seg, 1, True)
    assert localisation_mask(box, obj, "seg") is obj and localisation_mask(box, obj, "boxes") is box
    with pytest.raises(ValueError, match="no segmentation"):
        localisation_mask(box, None, "seg")
