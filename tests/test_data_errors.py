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
    with pytest.raises(ValueError, match=r"unknown class 'unicorn' in " + re.escape(str(ann)) + r";.*aeroplane, bicycle"):
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


# ---- every format, corrupted: the error names the file (and line / record) and the fix ------------
VOC = "VOCdevkit/VOC2007"
CUB = "CUB_200_2011"
WB = "waterbird_complete100_forest2water2/metadata.csv"


def _first_train_id(root: Path) -> str:
    return (root / VOC / "ImageSets/Main/train.txt").read_text().split()[0]


def _voc_xml(root: Path) -> Path:
    return root / VOC / "Annotations" / f"{_first_train_id(root)}.xml"


def _voc_seg(root: Path) -> Path:
    ids = (root / VOC / "ImageSets/Main/train.txt").read_text().split()
    return next(root / VOC / "SegmentationClass" / f"{i}.png" for i in ids
                if (root / VOC / "SegmentationClass" / f"{i}.png").exists())


def _edit(path: Path, fn) -> Path:
    path.write_text(fn(path.read_text()))
    return path


def _line(path: Path, n: int, fn) -> Path:
    """Replace line `n` (1-based) of a text file by fn(line)."""
    lines = path.read_text().splitlines()
    lines[n - 1] = fn(lines[n - 1])
    path.write_text("\n".join(lines) + "\n")
    return path


def _coco_json(root: Path, fn) -> Path:
    import json

    path = root / "annotations" / "instances_train2014.json"
    path.write_text(json.dumps(fn(json.loads(path.read_text()))))
    return path


def _drop_key(records: list, key: str) -> list:
    del records[0][key]
    return records


def _half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return path


# (kind, split, load options, corrupt(root) -> the file it broke, exception, regex after the file name)
CASES = {
    "voc-xml-syntax": ("voc2007", "train", {}, lambda r: _edit(_voc_xml(r), lambda t: t[: len(t) // 2]),
                       ValueError, r"malformed XML \(.*line \d+, column \d+\); fix the file or re-download"),
    "voc-xml-number": ("voc2007", "train", {}, lambda r: _edit(_voc_xml(r), lambda t: re.sub(r"<xmax>[^<]*<", "<xmax>wide<", t, count=1)),
                       ValueError, r"<xmax> in <bndbox> of object 1 \('\w+'\) is 'wide', expected a number; fix"),
    "voc-xml-missing-coordinate": ("voc2007", "train", {}, lambda r: _edit(_voc_xml(r), lambda t: re.sub(r"<ymin>[^<]*</ymin>", "", t, count=1)),
                                   ValueError, r"<ymin> in <bndbox> of object 1 .* is missing, expected a number"),
    "voc-missing-image-listed": ("voc2007", "train", {}, lambda r: _unlink(r / VOC / "JPEGImages" / f"{_first_train_id(r)}.jpg"),
                                 FileNotFoundError, r" \(listed in .*train\.txt\); restore the file"),
    "voc-corrupt-jpeg": ("voc2007", "train", {}, lambda r: _half(r / VOC / "JPEGImages" / f"{_first_train_id(r)}.jpg"),
                         ValueError, r" \(corrupt or not an image: .*\); re-download or regenerate"),
    "voc-corrupt-seg-png": ("voc2007", "train", {}, lambda r: _garbage(_voc_seg(r)),
                            ValueError, r" \(corrupt or not a PNG: .*\); re-download or regenerate"),
    "coco-json-syntax": ("coco2014", "train", {}, lambda r: _edit(r / "annotations/instances_train2014.json", lambda t: t[:-40]),
                         ValueError, r" line \d+ column \d+: not valid JSON .*; fix the file or re-download"),
    "coco-json-no-annotations": ("coco2014", "train", {}, lambda r: _coco_json(r, lambda d: {k: v for k, v in d.items() if k != "annotations"}),
                                 ValueError, r": no 'annotations' list \(keys found: .*\); fix the file"),
    "coco-json-annotation-without-bbox": ("coco2014", "train", {}, lambda r: _coco_json(r, lambda d: {**d, "annotations": _drop_key(d["annotations"], "bbox")}),
                                          ValueError, r": annotations\[0\] lacks \['bbox'\] .*; fix the file"),
    "coco-json-image-without-size": ("coco2014", "train", {}, lambda r: _coco_json(r, lambda d: {**d, "images": _drop_key(d["images"], "height")}),
                                     ValueError, r": images\[0\] lacks \['height'\]"),
    "coco-json-bad-bbox": ("coco2014", "train", {}, lambda r: _coco_json(r, lambda d: {**d, "annotations": [{**d["annotations"][0], "bbox": [1, 2]}] + d["annotations"][1:]}),
                           ValueError, r": annotations\[0\] \(id \d+\) has bbox \[1, 2\], expected \[x, y, width, height\]"),
    "coco-missing-image-listed": ("coco2014", "test", {}, lambda r: _unlink(sorted((r / "val2014").glob("*.jpg"))[0]),
                                  FileNotFoundError, r" \(listed in .*instances_val2014\.json\); restore the file"),
    "cub-short-bounding-boxes": ("cub", "train", {}, lambda r: _line(r / CUB / "bounding_boxes.txt", 2, lambda l: l.rsplit(" ", 1)[0]),
                                 ValueError, r" line 2: expected 5 fields 'id x y width height', got 4: .*; fix or delete that line"),
    "cub-short-images": ("cub", "train", {}, lambda r: _line(r / CUB / "images.txt", 3, lambda l: l.split()[0]),
                         ValueError, r" line 3: expected 2 fields 'id path', got 1"),
    "cub-short-labels": ("cub", "train", {}, lambda r: _line(r / CUB / "image_class_labels.txt", 1, lambda l: l.split()[0]),
                         ValueError, r" line 1: expected 2 fields 'id class', got 1"),
    "cub-short-split": ("cub", "test", {}, lambda r: _line(r / CUB / "train_test_split.txt", 4, lambda l: l.split()[0]),
                        ValueError, r" line 4: expected 2 fields 'id is_train', got 1"),
    "cub-box-not-a-number": ("cub", "train", {}, lambda r: _line(r / CUB / "bounding_boxes.txt", 1, lambda l: l.replace(l.split()[1], "left", 1)),
                             ValueError, r" line 1: fields 'id x y width height' must be int float float float float"),
    "cub-id-without-label": ("cub", "train", {}, lambda r: _line(r / CUB / "image_class_labels.txt", 2, lambda l: ""),
                             ValueError, r": no line for image id 2 of .*images\.txt"),
    "cub-label-out-of-range": ("cub", "train", {}, lambda r: _line(r / CUB / "image_class_labels.txt", 2, lambda l: l.split()[0] + " 999"),
                               ValueError, r": class 999 is not in .*classes\.txt"),
    "cub-corrupt-segmentation": ("cub", "train", {}, lambda r: _garbage(sorted((r / CUB / "segmentations").rglob("*.png"))[0]),
                                 ValueError, r" \(corrupt or not an image: .*\); re-download or regenerate"),
    "travelingbirds-short-images": ("travelingbirds", "test", {}, lambda r: _line(r / CUB / "images.txt", 2, lambda l: l.split()[0]),
                                    ValueError, r" line 2: expected 2 fields 'id path'"),
    "waterbirds-bad-row": ("waterbirds", "train", {}, lambda r: _line(r / WB, 3, lambda l: ",".join(v if k != 2 else "bird" for k, v in enumerate(l.split(",")))),
                           ValueError, r" line 3: column 'y' is 'bird', expected one of \(0, 1\); fix that row"),
    "waterbirds-short-row": ("waterbirds", "train", {}, lambda r: _line(r / WB, 2, lambda l: l.split(",")[0] + "," + l.split(",")[1]),
                             ValueError, r" line 2: column 'split' is None, expected one of \(0, 1, 2\)"),
    "waterbirds-missing-column": ("waterbirds", "train", {}, lambda r: _line(r / WB, 1, lambda l: l.replace(",place,", ",where,")),
                                  ValueError, r": no column\(s\) \['place'\] in the header"),
    "imagefolder-loc-csv-bad-coordinates": ("imagefolder", "val", {"loc_csv": True}, lambda r: _line(r / "LOC_val_solution.csv", 2, lambda l: re.sub(r" \d+", " x", l, count=1)),
                                            ValueError, r" line 2 \(ImageId '[^']+'\): coordinates must be numbers"),
    "imagefolder-loc-csv-missing-column": ("imagefolder", "val", {"loc_csv": True}, lambda r: _line(r / "LOC_val_solution.csv", 1, lambda l: "Image,Prediction"),
                                           ValueError, r": no column\(s\) \['ImageId', 'PredictionString'\]"),
    "hardimagenet-corrupt-mask": ("hardimagenet", "val", {}, lambda r: _garbage(sorted((r / "val").glob("*.png"))[0]),
                                  ValueError, r" \(corrupt or not an image: .*\); re-download or regenerate"),
}


def _unlink(path: Path) -> Path:
    path.unlink()
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_every_format_names_the_file_and_fix(fresh, case):
    kind, split, options, corrupt, exc, pattern = CASES[case]
    root = fresh(kind)
    broken = corrupt(root)
    with pytest.raises(exc) as err:
        ds = load_dataset(kind, root, split, **options)
        for i in range(len(ds)):  # images and masks are read per sample
            ds[i]
    msg = str(err.value)
    assert str(broken) in msg, msg
    assert re.search(re.escape(str(broken)) + ".*" + pattern, msg, re.S), msg
    assert err.value.__cause__ is None or str(broken) in msg  # never a bare parser exception


# ---- the perception study's response CSV ------------------------------------------------------------
def _responses(tmp_path: Path) -> Path:
    from rightfocus.widgets.study import plan_study, simulate_participant

    trials = plan_study(list(range(8)), "a", "b", "p1", n_subsets=2, seed=0)
    path = tmp_path / "responses_p1.csv"
    simulate_participant(trials, lambda i, r: float(i) * (r == "b"), "b").to_csv(path, index=False)
    return path


RESPONSE_CASES = {
    "not-an-integer": (lambda p: _line(p, 3, lambda l: ",".join(v if k != 2 else "third" for k, v in enumerate(l.split(",")))),
                       r" line 3: column 'trial' is 'third', expected an integer; fix or delete that row"),
    "not-a-bool": (lambda p: _line(p, 2, lambda l: ",".join(v if k != 8 else "maybe" for k, v in enumerate(l.split(",")))),
                   r" line 2: column 'preferred_is_b' is 'maybe', expected True or False"),
    "ragged-row": (lambda p: _line(p, 4, lambda l: l + ",extra,fields"),
                   r": not a readable CSV \(.*line 4.*\); fix or delete that row"),
    "missing-column": (lambda p: _line(p, 1, lambda l: l.replace("image_index", "image")),
                       r" lacks column\(s\) \['image_index'\]"),
    "empty": (lambda p: p.write_text("") or p, r" is empty \(not even a header\); delete it"),
}


@pytest.mark.parametrize("case", list(RESPONSE_CASES))
def test_bad_response_csv_names_file_line_and_fix(tmp_path, case):
    from rightfocus.widgets.study import load_responses

    path = _responses(tmp_path)
    assert len(load_responses(path)) == 4  # the intact file reads
    corrupt, pattern = RESPONSE_CASES[case]
    corrupt(path)
    with pytest.raises(ValueError) as err:
        load_responses(tmp_path)
    assert re.search(re.escape(str(path)) + pattern, str(err.value)), str(err.value)
