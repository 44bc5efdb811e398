"""Round trip: every synthetic kind is written in its real on-disk format and read back by the real
loader; counts, labels, boxes and groups must equal the generator's own record, and segmentation pixels
must lie inside their boxes. Same seed -> same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rightfocus.data import collate, load_dataset
from rightfocus.data.synthetic import KINDS, MANIFEST, canonical, make

SMALL = {
    "voc2007": {"n_train": 10, "n_val": 6, "n_test": 8, "seg_fraction": 0.6},
    "coco2014": {"n_train": 10, "n_val": 5, "n_test": 8, "p_empty": 0.3},
    "waterbirds": {"n_train": 24, "n_val": 8, "n_test": 16},
    "cub": {"per_class": 5, "num_classes": 4},
    "travelingbirds": {"per_class": 5, "num_classes": 3},
    "imagefolder": {"n_train": 3, "n_val": 2, "num_classes": 3},
    "hardimagenet": {"n_train": 3, "n_val": 2, "num_classes": 3},
}
# (split, loader options, manifest filter) per check
VIEWS = {
    "voc2007": [("train", {}), ("val", {}), ("test", {})],
    "coco2014": [("train", {}), ("val", {}), ("test", {})],
    "waterbirds": [("train", {"confounder": 100}), ("train", {"confounder": 95}), ("val", {}), ("test", {})],
    "cub": [("train", {}), ("test", {})],
    "travelingbirds": [("train", {}), ("test", {})],
    "imagefolder": [("train", {"loc_csv": True}), ("val", {"loc_csv": True})],
    "hardimagenet": [("train", {}), ("val", {})],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    return {k: make(k, root / k, seed=3, **SMALL[k]) for k in KINDS}


def _manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text())


def _expected(kind: str, root: Path, split: str, opts: dict) -> dict[str, dict]:
    recs = [r for r in _manifest(root)["images"] if r["split"] == split]
    if kind == "waterbirds":
        recs = [r for r in recs if r["confounder"] == opts.get("confounder", 100)]
    return {r["file"]: r for r in recs}


def _rel(ds, i: int, root: Path) -> str:
    return ds.records[i].path.relative_to(root).as_posix()


@pytest.mark.parametrize("kind,split,opts", [(k, s, o) for k in KINDS for s, o in VIEWS[k]])
def test_loader_reads_generator_record(data, kind, split, opts):
    root = data[kind]
    ds = load_dataset(kind, root, split, **opts)
    expected = _expected(kind, root, split, opts)
    assert len(ds) == len(expected) > 0
    assert ds.num_classes == len(ds.classes)
    for i in range(len(ds)):
        rec = expected[_rel(ds, i, root)]
        s = ds[i]
        assert s["image"].dtype == torch.float32 and s["image"].shape == (3, *rec["size"])
        assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
        names = [ds.classes[int(c)] for c in s["boxes"][:, 0]]
        got = sorted((n, *map(int, b)) for n, b in zip(names, s["boxes"][:, 1:].tolist()))
        if kind == "waterbirds":
            want = sorted((ds.classes[o["class"]], *o["box"]) for o in rec["objects"])
            assert (s["group"], s["place"]) == (rec["group"], rec["place"]) and rec["group"] == 2 * rec["y"] + rec["place"]
        else:
            want = sorted((o["class"] if isinstance(o["class"], str) else ds.classes[o["class"]], *o["box"])
                          for o in rec["objects"])
            if kind in ("cub", "travelingbirds"):
                want = [(ds.classes[o["class"]], *o["box"]) for o in rec["objects"]]
        assert got == want
        label_names = {ds.classes[k] for k in torch.nonzero(s["labels"]).flatten().tolist()}
        assert label_names == {w[0] for w in want}
        assert float(s["labels"].sum()) == len(label_names)


def _assert_seg_inside_boxes(s, multi_class: bool):
    seg, boxes = s["seg"], s["boxes"]
    for v in seg.unique().tolist():
        if v in (0, 255):
            continue
        cls = v - 1 if multi_class else None
        inside = torch.zeros_like(seg, dtype=torch.bool)
        for c, x0, y0, x1, y1 in boxes.tolist():
            if cls is None or int(c) == cls:
                inside[int(y0):int(y1), int(x0):int(x1)] = True
        assert inside[seg == v].all(), f"segment {v} leaves its boxes"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [None, 24, (40, 28)])
def test_segmentation_inside_boxes(data, kind, size):
    split, opts = VIEWS[kind][0]
    ds = load_dataset(kind, data[kind], split, size=size, box_rounding="outward", **opts)
    n_seg = 0
    for i in range(len(ds)):
        s = ds[i]
        if "seg" in s:
            n_seg += 1
            _assert_seg_inside_boxes(s, multi_class=kind in ("voc2007", "coco2014"))
            # the object fills part of its box only: background inside the box
            if kind not in ("voc2007", "coco2014") and size is None:
                c, x0, y0, x1, y1 = s["boxes"][0].int().tolist()
                assert (s["seg"][y0:y1, x0:x1] == 0).any()
    if kind != "imagefolder":
        assert n_seg > 0


@pytest.mark.parametrize("kind", ["voc2007", "waterbirds", "hardimagenet"])
def test_resize_and_collate(data, kind):
    split, opts = VIEWS[kind][0]
    ds = load_dataset(kind, data[kind], split, size=32, **opts)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["image"].shape == (len(ds), 3, 32, 32)
    assert batch["labels"].shape == (len(ds), ds.num_classes)
    assert len(batch["boxes"]) == len(ds)
    native = load_dataset(kind, data[kind], split, **opts)
    for i, b in enumerate(batch["boxes"]):
        assert (b[:, 1:] >= 0).all() and (b[:, [1, 3]] <= 32).all() and (b[:, [2, 4]] <= 32).all()
        # MG reference: scale with the image, then truncate to int
        h, w = native[i]["image"].shape[-2:]
        nb = native[i]["boxes"]
        sx, sy = 32 / w, 32 / h
        want = torch.stack([nb[:, 0], nb[:, 1] * sx, nb[:, 2] * sy, nb[:, 3] * sx, nb[:, 4] * sy], 1)
        assert torch.equal(b, want.trunc())
    if "seg" in batch:
        assert batch["seg"].shape == (len(ds), 32, 32)


def test_voc_missing_segmentation_collates_as_void(data):
    ds = load_dataset("voc2007", data["voc2007"], "test", size=24)
    samples = [ds[i] for i in range(len(ds))]
    with_seg = [("seg" in s) for s in samples]
    assert any(with_seg) and not all(with_seg)
    batch = collate(samples)
    for k, has in enumerate(with_seg):
        assert (batch["seg"][k] == 255).all() != has


def test_voc_boxes_are_one_based_in_xml(data):
    # the XML stores xmin = x0 + 1 (1-based, inclusive): the loader must undo exactly that
    import xml.etree.ElementTree as ET

    root = data["voc2007"]
    ds = load_dataset("voc2007", root, "train")
    rec = _expected("voc2007", root, "train", {})[_rel(ds, 0, root)]
    xml = ET.parse(root / "VOCdevkit/VOC2007/Annotations" / (Path(rec["file"]).stem + ".xml")).getroot()
    bb = xml.find("object/bndbox")
    first = rec["objects"][0]["box"]
    assert int(bb.findtext("xmin")) == first[0] + 1 and int(bb.findtext("xmax")) == first[2]


def test_coco_images_without_objects_have_empty_boxes(data):
    ds = load_dataset("coco2014", data["coco2014"], "train2014")
    empties = [i for i in range(len(ds)) if ds[i]["boxes"].shape == (0, 5)]
    assert empties, "the fixture asks for some empty images (p_empty)"
    for i in empties:
        assert ds[i]["labels"].sum() == 0


def test_waterbirds_confounders(data):
    root = data["waterbirds"]
    g100 = [load_dataset("waterbirds", root, "train", confounder=100)[i]["group"] for i in range(24)]
    assert set(g100) <= {0, 3}
    man = [r for r in _manifest(root)["images"] if r["confounder"] == 95 and r["split"] == "train"]
    minority = sum(r["group"] in (1, 2) for r in man)
    assert minority == round(0.05 * 18) + round(0.05 * 6)  # 5 % of each class
    test_groups = [r["group"] for r in _manifest(root)["images"] if r["split"] == "test" and r["confounder"] == 95]
    counts = np.bincount(test_groups, minlength=4)
    assert counts[0] == counts[1] and counts[2] == counts[3] > 0


def test_waterbirds_modified_val_and_place_task(data):
    root = data["waterbirds"]
    full = load_dataset("waterbirds", root, "val")
    mod = load_dataset("waterbirds", root, "val", modified_val=True)
    assert {full[i]["group"] for i in range(len(full))} == {0, 1, 2, 3}
    assert {mod[i]["group"] for i in range(len(mod))} == {0, 3}
    assert len(mod) == sum(full[i]["group"] in (0, 3) for i in range(len(full)))
    place = load_dataset("waterbirds", root, "test", task="place")
    assert place.classes == ["land", "water"] and place.invert_masks
    for i in range(len(place)):
        s = place[i]
        assert int(s["labels"].argmax()) == s["place"] == int(s["boxes"][0, 0]) and s["invert_mask"]


def test_travelingbirds_backgrounds_shift(data):
    root = data["travelingbirds"]
    a = load_dataset("travelingbirds", root, "test")
    # every CUB image exists in both trees; the test tree's background differs from the train tree's
    rel = a.records[0].path.relative_to(root / "CUB_fixed" / "test")
    img_test = a[0]["image"]
    from rightfocus.data.base import read_image

    img_train = read_image(root / "CUB_fixed" / "train" / rel).float() / 255
    corner = (slice(None), slice(0, 4), slice(0, 4))
    assert (img_test[corner] - img_train[corner]).abs().mean() > 0.1


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["voc2007", "coco2014", "waterbirds"])
def test_same_seed_same_bytes(tmp_path, kind):
    a = _digest(make(kind, tmp_path / "a", seed=5, **SMALL[kind]))
    b = _digest(make(kind, tmp_path / "b", seed=5, **SMALL[kind]))
    c = _digest(make(kind, tmp_path / "c", seed=6, **SMALL[kind]))
    assert a == b and len(a) > 10
    assert a != c


def test_make_replaces_its_own_output_but_refuses_foreign_folders(tmp_path):
    out = make("cub", tmp_path / "d", seed=0, per_class=2, num_classes=2)
    make("cub", out, seed=1, per_class=3, num_classes=2)
    assert len(load_dataset("cub", out, "train")) + len(load_dataset("cub", out, "test")) == 6
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        make("cub", tmp_path / "mine")
    with pytest.raises(ValueError, match="unknown option"):
        make("cub", tmp_path / "e", per_clas=3)


def test_kind_aliases():
    assert canonical("voc") == "voc2007" and canonical("coco") == "coco2014"
    assert set(KINDS) == {"voc2007", "coco2014", "waterbirds", "cub", "travelingbirds", "imagefolder", "hardimagenet"}
    with pytest.raises(ValueError, match="unknown synthetic dataset kind"):
        canonical("mnist")


def test_gallery_draws_every_kind(data, tmp_path):
    from PIL import Image

    from rightfocus.data.gallery import render_gallery

    out = render_gallery(next(iter(data.values())).parent, tmp_path / "g.png", per_kind=2, size=32)
    with Image.open(out) as im:
        w, h = im.size
    assert h > w  # one row per kind (7 rows), two columns
    with pytest.raises(FileNotFoundError, match="make-data all"):
        render_gallery(tmp_path / "empty", tmp_path / "x.png")


def test_cli_make_data_writes_a_loadable_dataset(tmp_path):
    from rightfocus.cli import main

    assert main(["make-data", "coco", "--out", str(tmp_path / "c"), "--seed", "2"]) == 0
    assert len(load_dataset("coco2014", tmp_path / "c", "test")) == 60  # the demo's test split
    assert main(["make-data", "mnist", "--out", str(tmp_path / "m")]) == 2


@pytest.mark.parametrize("kind", ["voc2007", "coco2014"])
def test_the_test_split_size_changes_no_train_or_val_image(tmp_path, kind):
    """The test split's size (the demo's: 60 images) changes no train or val image (so no trained model),
    and a smaller test split is the first images of a larger one."""
    small, large = (make(kind, tmp_path / str(n), seed=3, n_train=6, n_val=3, n_test=n, min_size=20, max_size=24)
                    for n in (2, 5))
    for split in ("train", "val", "test"):
        a, b = load_dataset(kind, small, split), load_dataset(kind, large, split)
        assert len(a) == (2 if split == "test" else len(b))
        for i in range(len(a)):
            x, y = a[i], b[i]
            assert torch.equal(x["image"], y["image"]) and torch.equal(x["boxes"], y["boxes"])
