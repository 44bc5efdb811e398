"""Bad inputs give clear errors that name the problem (and the fix): missing roots, missing or corrupt
images, unknown classes, empty splits; boxes outside the image are clipped with ONE warning."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from rightfocus.data import load_dataset
from rightfocus.data.synthetic import make

SMALL = {
    "voc2007": {"n_train": 4, "n_val": 2, "n_test": 2},
    "coco2014": {"n_train": 4, "n_val": 2, "n_test": 2},
    "waterbirds": {"n_train": 8, "n_val": 4, "n_test": 8},
    "cub": {"per_class": 2, "num_classes": 2},
    "travelingbirds": {"per_class": 2, "num_classes": 2},
    "imagefolder": {"n_train": 2, "n_val": 1, "num_classes": 2},
    "hardimagenet": {"n_train": 2, "n_val": 1, "num_classes": 2},
}


@pytest.fixture()
def fresh(tmp_path):
    def _make(kind):
        return make(kind, tmp_path / kind, seed=0, **SMALL[kind])
    return _make


@pytest.mark.parametrize("kind", list(SMALL))
def test_missing_root_names_expected_layout(tmp_path, kind):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(kind, tmp_path / "nowhere", "train")
    assert "nowhere" in str(err.value) or "Expected layout" in str(err.value)
    assert "Expected layout" in str(err.value) or "pass cub_root" in str(err.value)


def test_unknown_dataset_and_split(fresh):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist", ".", "train")
    root = fresh("voc2007")
    with pytest.raises(ValueError, match="unknown VOC split 'training'"):
        load_dataset("voc", root, "training")
    with pytest.raises(ValueError, match="unknown Waterbirds task"):
        load_dataset("waterbirds", root, "train", task="species")


def test_missing_and_corrupt_images_name_the_file(fresh):
    root = fresh("voc2007")
    ds = load_dataset("voc2007", root, "train")
    broken, gone = ds.records[0].path, ds.records[1].path
    broken.write_bytes(b"this is not a jpeg")
    gone.unlink()
    with pytest.raises(ValueError, match=re.escape(str(broken))):
        ds[0]
    with pytest.raises(FileNotFoundError, match=re.escape(str(gone))):
        ds[1]


def test_unknown_voc_class_lists_known_ones(fresh):
    root = fresh("voc2007")
    ann = sorted((root / "VOCdevkit/VOC2007/Annotations").glob("*.xml"))[0]
    text = ann.read_text()
    ann.write_text(re.sub(r"<name>[a-z]+</name>", "<name>unicorn</name>", text, count=1))
    with pytest.raises(ValueError, match=r"unknown class 'unicorn'.*aeroplane, bicycle"):
        load_dataset("voc2007", root, "train")
    with pytest.raises(ValueError, match=r"unknown VOC class 'dragon'.*tvmonitor"):
        load_dataset("voc2007", fresh("voc2007"), "test", classes=["person", "dragon"])


def test_unknown_imagenet_class_in_boxes(fresh):
    root = fresh("imagefolder")
    csv = root / "LOC_val_solution.csv"
    lines = csv.read_text().splitlines()
    lines[1] = re.sub(r",n\d+", ",n99999999", lines[1])
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"unknown class 'n99999999'.*known classes: n0"):
        load_dataset("imagefolder", root, "val", loc_csv=True)


def test_empty_split_names_split_and_file(fresh):
    root = fresh("voc2007")
    f = root / "VOCdevkit/VOC2007/ImageSets/Main/val.txt"
    f.write_text("")
    with pytest.raises(ValueError, match=r"split 'val' is empty.*val\.txt"):
        load_dataset("voc2007", root, "val")
    c = fresh("coco2014")
    (c / "splits" / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"split 'val' is empty.*val\.txt"):
        load_dataset("coco2014", c, "val")
    (c / "splits" / "train.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"split file for 'train'"):
        load_dataset("coco2014", c, "train")
    with pytest.raises(ValueError, match="needs val_fraction"):
        load_dataset("cub", fresh("cub"), "val")


def test_fraction_zero_keeps_no_boxes(fresh):
    ds = load_dataset("waterbirds", fresh("waterbirds"), "train", annotation_fraction=0.0, size=16)
    assert all(ds[i]["boxes"].shape == (0, 5) and not ds[i]["has_boxes"] and "seg" not in ds[i]
               for i in range(len(ds)))
    with pytest.raises(ValueError, match=r"annotation_fraction must be in \[0, 1\]"):
        load_dataset("waterbirds", fresh("waterbirds"), "train", annotation_fraction=10)


def test_boxes_outside_image_are_clipped_with_one_warning(fresh):
    root = fresh("voc2007")
    anns = sorted((root / "VOCdevkit/VOC2007/Annotations").glob("*.xml"))
    train_ids = (root / "VOCdevkit/VOC2007/ImageSets/Main/train.txt").read_text().split()
    for a in anns:
        if a.stem in train_ids[:2]:
            t = a.read_text()
            t = re.sub(r"<xmax>\d+</xmax>", "<xmax>500</xmax>", t, count=1)
            a.write_text(re.sub(r"<ymin>\d+</ymin>", "<ymin>-7</ymin>", t, count=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("voc2007", root, "train")
    msgs = [str(w.message) for w in caught if "clipped" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("voc2007/train: 2 box(es)")
    for i in range(2):
        s = ds[i]
        h, w = s["image"].shape[-2:]
        b = s["boxes"]
        assert (b[:, 1:] >= 0).all() and (b[:, 3] <= w).all() and (b[:, 4] <= h).all()
    assert ds[0]["boxes"][0, 3] == ds[0]["image"].shape[-1]


def test_hardimagenet_mask_without_image(fresh):
    root = fresh("hardimagenet")
    img = next((root / "imagenet" / "val").rglob("*.JPEG"))
    img.unlink()
    with pytest.raises(FileNotFoundError, match="image for Hard-ImageNet mask"):
        load_dataset("hardimagenet", root, "val")


def test_waterbirds_without_cub_metadata(fresh):
    root = fresh("waterbirds")
    shutil.rmtree(root / "CUB_200_2011")
    with pytest.raises(FileNotFoundError, match="pass cub_root"):
        load_dataset("waterbirds", root, "train")


def test_collate_refuses_mixed_sizes(fresh):
    from rightfocus.data import collate

    ds = load_dataset("cub", fresh("cub"), "train")
    sizes = {tuple(ds[i]["image"].shape) for i in range(len(ds))}
    assert len(sizes) > 1
    with pytest.raises(ValueError, match="pass size="):
        collate([ds[i] for i in range(len(ds))])
    with pytest.raises(ValueError, match="empty"):
        collate([])
    assert torch.is_tensor(collate([ds[0]])["image"])
