"""Mask sources (`rightfocus.training.mask_sources`) against masks drawn independently of our loaders:
pycocotools' annToMask (COCO), the SegmentationClass PNG's palette indices read with PIL (VOC), the
CUB segmentation PNG thresholded with numpy (Waterbirds), the dilation formula drawn with numpy; the
teacher / AIM sources against the attributions / masks of the models they load, and their refusals."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from rightfocus.data import collate, load_dataset
from rightfocus.data.synthetic import make
from rightfocus.data.voc import VOC_CLASSES
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.training import checkpoint as ckpt
from rightfocus.training.mask_sources import (
    AimSource, BoxSource, SegmentationSource, TeacherSource, build_mask_source, parse_mask_source,
)


# ---- segmentation from each dataset's own annotation -------------------------------------------
def test_coco_segmentation_source_equals_pycocotools(tmp_path):
    root = make("coco2014", tmp_path / "coco", seed=3, n_train=8, n_val=4, n_test=4)
    ds = load_dataset("coco2014", root, "train")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(root / "annotations" / "instances_train2014.json"))
    cats = sorted(coco.getCatIds())
    by_file = {img["file_name"]: img["id"] for img in coco.loadImgs(coco.getImgIds())}
    src = SegmentationSource(binary=False)
    checked = 0
    for i in range(len(ds)):
        sample = ds[i]
        batch = collate([sample])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_file[ds.records[i].path.name]], iscrowd=None))
        for k in sorted({cats.index(a["category_id"]) for a in anns}):
            # oracle: the class's annToMask pixels not covered by a later annotation of another class
            want = np.zeros(sample["image"].shape[-2:], bool)
            for a in anns:
                drawn = coco.annToMask(a) > 0
                want = (want | drawn) if cats.index(a["category_id"]) == k else (want & ~drawn)
            masks, has = src.masks(batch, batch["image"], torch.tensor([k]))
            assert bool(has[0]) == bool(want.any())
            np.testing.assert_array_equal(masks[0].numpy().astype(bool), want)
            checked += 1
    assert checked >= 8


def test_voc_segmentation_source_equals_the_png_palette(tmp_path):
    root = make("voc2007", tmp_path / "voc", seed=1, n_train=10, n_val=4, n_test=4, seg_fraction=1.0)
    ds = load_dataset("voc2007", root, "train")
    src = SegmentationSource(binary=False)
    checked = 0
    for i in range(len(ds)):
        png = root / "VOCdevkit/VOC2007/SegmentationClass" / f"{ds.records[i].path.stem}.png"
        with Image.open(png) as im:
            assert im.mode == "P"
            raw = np.asarray(im)  # palette indices: VOC class id (1..20), 0 background, 255 void
        batch = collate([ds[i]])
        for k in torch.nonzero(batch["labels"][0]).flatten().tolist():
            want = raw == VOC_CLASSES.index(ds.classes[k]) + 1
            masks, has = src.masks(batch, batch["image"], torch.tensor([k]))
            np.testing.assert_array_equal(masks[0].numpy().astype(bool), want)
            assert bool(has[0]) == bool(want.any())
            checked += 1
    assert checked >= 10


def test_waterbirds_segmentation_source_equals_the_cub_mask(tmp_path):
    root = make("waterbirds", tmp_path / "wb", seed=2, n_train=8, n_val=4, n_test=4)
    for task in ("bird", "place"):
        ds = load_dataset("waterbirds", root, "train", task=task)
        src = SegmentationSource(binary=True)
        for i in range(len(ds)):
            png = next(root.rglob(f"segmentations/**/{ds.records[i].path.stem}.png"))
            with Image.open(png) as im:
                want = np.asarray(im.convert("L")) > 127  # the loader's default threshold
            batch = collate([ds[i]])
            target = torch.nonzero(batch["labels"][0]).flatten()[:1]
            masks, has = src.masks(batch, batch["image"], target)
            np.testing.assert_array_equal(masks[0].numpy().astype(bool), ~want if task == "place" else want)
            assert bool(has[0])


def test_dilated_boxes_source_equals_the_dilation_drawn_with_numpy():
    h, w, p = 20, 30, 0.25
    boxes = torch.tensor([[0, 4.0, 3, 14, 9], [1, 20, 10, 29, 19], [0, 1, 15, 5, 20]])
    batch = {"boxes": [boxes], "invert_mask": torch.tensor([False])}
    masks, has = BoxSource(p).masks(batch, torch.zeros(1, 3, h, w), torch.tensor([0]))
    want = np.zeros((h, w), bool)
    for c, x0, y0, x1, y1 in boxes.tolist():
        if c == 0:  # Rao et al. Sec. 5.3: grow by int(p * side) on each side, clamped to the image
            dx, dy = int(p * (x1 - x0)), int(p * (y1 - y0))
            want[max(int(y0) - dy, 0):min(int(y1) + dy, h), max(int(x0) - dx, 0):min(int(x1) + dx, w)] = True
    assert bool(has[0])
    np.testing.assert_array_equal(masks[0].numpy().astype(bool), want)


def test_parse_mask_source_errors_name_the_fix():
    assert parse_mask_source("teacher:abc") == ("teacher", "abc")
    assert parse_mask_source("dilated-boxes:0.1") == ("dilated-boxes", "0.1")
    for bad, words in (("mask", "unknown mask_source"), ("teacher", "teacher:<run>"),
                       ("boxes:1", "write 'boxes'"), ("dilated-boxes:-1", ">= 0")):
        with pytest.raises(ValueError, match=words):
            parse_mask_source(bad)


def test_default_source_keeps_run_ids_and_others_change_them():
    cfg = RunConfig(dataset="voc2007", model_kind="bcos", arch="tiny", method="bcos", tap="input", loss="energy",
                    lam=1.0, image_size=32)
    assert "mask_source" not in cfg.result_fields()
    seg = replace(cfg, mask_source="segmentation")
    assert seg.run_id != cfg.run_id and "-segmentation-" in seg.run_id
    with pytest.raises(ValueError, match="annotation_fraction"):
        replace(cfg, mask_source="teacher:x", annotation_fraction=0.5)
    with pytest.raises(ValueError, match="guided model-guidance runs"):
        RunConfig(mask_source="segmentation")


# ---- teacher / AIM sources ----------------------------------------------------------------------
def _fake_run(results: Path, config: RunConfig, model: torch.nn.Module, k: int, options: dict | None = None) -> str:
    rdir = store.run_dir(results, config.profile, config.run_id)
    (rdir / "ckpt").mkdir(parents=True)
    store.write_config(rdir, config)
    ckpt.save_weights(rdir / "ckpt" / "epoch_1.pt", model, k, 1, options or {})
    store.write_done(rdir, {"selected_epoch": 1})
    return config.run_id


def _student(source: str, size: int = 16, dataset: str = "voc2007") -> RunConfig:
    return RunConfig(dataset=dataset, model_kind="vanilla", arch="tiny", method="ixg", tap="input",
                     loss="distill", lam=1.0, image_size=size, mask_source=source)


def test_teacher_source_gives_the_teachers_normalised_maps_and_refuses_mismatches(tmp_path):
    from rightfocus.attributions import attribute
    from rightfocus.data.encoding import encode
    from rightfocus.models import build_model

    torch.manual_seed(0)
    teacher = build_model("bcos", "tiny", 5).eval()
    tcfg = RunConfig(dataset="voc2007", model_kind="bcos", arch="tiny", image_size=16)
    rid = _fake_run(tmp_path, tcfg, teacher, 5)
    src = build_mask_source(_student(f"teacher:{rid}"), 5, tmp_path)
    assert isinstance(src, TeacherSource) and src.method == "bcos"
    images, targets = torch.rand(3, 3, 16, 16), torch.tensor([0, 4, 2])
    masks, has = src.masks({}, images, targets)
    maps = attribute(teacher, encode(images, "bcos"), targets, "bcos").clamp_min(0)
    want = maps / maps.flatten(1).amax(1)[:, None, None]
    torch.testing.assert_close(masks, want)
    assert has.all() and float(masks.min()) >= 0 and float(masks.max()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="trained at 16 px .* at 32 px"):
        build_mask_source(_student(f"teacher:{rid}", size=32), 5, tmp_path)
    with pytest.raises(ValueError, match="predicts 5 classes"):
        build_mask_source(_student(f"teacher:{rid}"), 7, tmp_path)
    with pytest.raises(ValueError, match="same dataset and task"):
        build_mask_source(_student(f"teacher:{rid}", dataset="coco2014"), 5, tmp_path)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        build_mask_source(_student("teacher:nope"), 5, tmp_path)


def test_aim_source_gives_merged_masks_in_unit_range_and_refuses_mismatches(tmp_path):
    import torch.nn.functional as F

    from rightfocus.data.encoding import encode
    from rightfocus.models import build_model

    from rightfocus.training import aim_loop

    torch.manual_seed(0)
    acfg = RunConfig(paper="aim", dataset="waterbirds100", model_kind="aim", arch="tiny", image_size=16,
                     lam=1.0, extra={"stage": 2, "tau": 0.25, "pretrained": False})
    aim = aim_loop.build_run_model(acfg, 2, pretrained=False).eval()
    rid = _fake_run(tmp_path, acfg, aim, 2, aim_loop.model_options(acfg))
    student = replace(_student(f"aim:{rid}", dataset="waterbirds"), task="bird", loss="energy")
    src = build_mask_source(student, 2, tmp_path)
    assert isinstance(src, AimSource)
    images = torch.rand(4, 3, 16, 16)
    masks, has = src.masks({}, images, torch.tensor([0, 1, 1, 0]))
    with torch.no_grad():
        out = aim.forward_aim(encode(images, aim.input_encoding))
    n_stages = len(out.masks)
    assert n_stages > 1  # the division by the stage count matters
    want = F.interpolate(out.merged_mask.float() / n_stages, size=(16, 16), mode="bilinear")[:, 0]
    torch.testing.assert_close(masks, want)
    assert float(masks.min()) >= 0 and float(masks.max()) <= 1 and has.all()
    with pytest.raises(ValueError, match="at 16 px .* at 32 px"):
        build_mask_source(replace(student, image_size=32), 2, tmp_path)
    with pytest.raises(ValueError, match="same dataset and task"):
        build_mask_source(replace(student, task="place"), 2, tmp_path)
    bcos = RunConfig(dataset="waterbirds", task="bird", model_kind="bcos", arch="tiny", image_size=16)
    other = _fake_run(tmp_path, bcos, build_model("bcos", "tiny", 2), 2)
    with pytest.raises(ValueError, match="is not an AIM model"):
        build_mask_source(replace(student, mask_source=f"aim:{other}"), 2, tmp_path)
