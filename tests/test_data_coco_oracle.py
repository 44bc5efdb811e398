"""The COCO loader checked against pycocotools itself: category mapping (label index = rank of the
category id) and segmentation = annToMask of every annotation."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from rightfocus.data import load_dataset
from rightfocus.data.synthetic import make


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return make("coco2014", tmp_path_factory.mktemp("coco"), seed=11, n_train=8, n_val=4, n_test=6)


def _coco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.mark.parametrize("split,ann", [("train", "instances_train2014.json"), ("test", "instances_val2014.json")])
def test_labels_boxes_and_masks_match_pycocotools(coco_root, split, ann):
    coco = _coco(coco_root / "annotations" / ann)
    ds = load_dataset("coco2014", coco_root, split)
    cat_ids = sorted(coco.getCatIds())
    assert cat_ids != list(range(1, len(cat_ids) + 1)), "fixture must have non-contiguous ids"
    assert ds.classes == [coco.loadCats(c)[0]["name"] for c in cat_ids]
    by_file = {img["file_name"]: img["id"] for img in coco.loadImgs(coco.getImgIds())}
    for i in range(len(ds)):
        s = ds[i]
        img_id = by_file[ds.records[i].path.name]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=None))
        want_labels = torch.zeros(len(cat_ids))
        for a in anns:
            want_labels[cat_ids.index(a["category_id"])] = 1
        assert torch.equal(s["labels"], want_labels)
        want_boxes = sorted([cat_ids.index(a["category_id"]), a["bbox"][0], a["bbox"][1],
                             a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns)
        assert sorted(s["boxes"].tolist()) == want_boxes
        info = coco.loadImgs(img_id)[0]
        want_seg = np.zeros((info["height"], info["width"]), np.int64)
        for a in anns:  # later annotations on top
            want_seg[coco.annToMask(a) > 0] = cat_ids.index(a["category_id"]) + 1
        assert np.array_equal(s["seg"].numpy(), want_seg)


def test_drawn_pixels_are_the_annotation(coco_root):
    """The generator paints exactly annToMask's pixels: inside the mask the image has the class colour,
    so an image-level check of the seg is meaningful."""
    coco = _coco(coco_root / "annotations" / "instances_train2014.json")
    ds = load_dataset("coco2014", coco_root, "train")
    s = ds[0]
    obj = (s["seg"] > 0)
    if obj.any() and (~obj).any():
        inside = s["image"][:, obj].std(dim=1).mean()
        assert inside < 0.15  # one flat colour (plus light texture / JPEG noise)


def test_split_files_select_train2014_subsets(coco_root):
    train = load_dataset("coco2014", coco_root, "train")
    val = load_dataset("coco2014", coco_root, "val")
    every = load_dataset("coco2014", coco_root, "train2014")
    names = lambda d: {r.path.name for r in d.records}  # noqa: E731
    assert names(train).isdisjoint(names(val)) and names(train) | names(val) == names(every)
    assert (len(train), len(val)) == (8, 4)
    test = load_dataset("coco2014", coco_root, "test")
    assert all(r.path.parent.name == "val2014" for r in test.records) and len(test) == 6
