"""Synthetic PASCAL VOC 2007 in the real on-disk format (see `rightfocus.data.voc`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rightfocus.data.synthetic.draw import grow, save_jpeg, save_png, voc_palette, write_text
from rightfocus.data.synthetic.scenes import class_looks, draw_scene, sample_classes
from rightfocus.data.voc import VOC_CLASSES

#: default classes: few, with a person+bicycle co-occurrence shortcut
DEFAULT_CLASSES = ("bicycle", "bird", "car", "dog", "person", "tvmonitor")


def _xml(image_id: str, h: int, w: int, objects: list[tuple[str, tuple[int, int, int, int], bool, bool]]) -> str:
    lines = ["<annotation>", "\t<folder>VOC2007</folder>", f"\t<filename>{image_id}.jpg</filename>",
             "\t<source>\n\t\t<database>rightfocus synthetic</database>\n\t</source>",
             f"\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>",
             "\t<segmented>0</segmented>"]
    for name, (x0, y0, x1, y1), truncated, difficult in objects:
        lines += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>",
                  f"\t\t<truncated>{int(truncated)}</truncated>", f"\t\t<difficult>{int(difficult)}</difficult>",
                  # VOC boxes are 1-based and inclusive
                  f"\t\t<bndbox>\n\t\t\t<xmin>{x0 + 1}</xmin>\n\t\t\t<ymin>{y0 + 1}</ymin>\n"
                  f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>", "\t</object>"]
    return "\n".join(lines + ["</annotation>", ""])


def make_voc(out: Path, rng: np.random.Generator, n_train: int = 120, n_val: int = 60, n_test: int = 60,
             classes: tuple[str, ...] = DEFAULT_CLASSES, min_size: int = 56, max_size: int = 72,
             p_pair: float = 0.9, seg_fraction: float = 0.4) -> list[dict]:
    """Write VOCdevkit/VOC2007 under `out`; returns the manifest records. Splits are drawn in the order
    train, val, test from one generator, so `n_test` changes no train or val image. The demo's test split
    (60 images) is the size of val."""
    unknown = [c for c in classes if c not in VOC_CLASSES]
    if unknown:
        raise ValueError(f"unknown VOC class {unknown[0]!r}; known: {', '.join(VOC_CLASSES)}")
    voc = out / "VOCdevkit" / "VOC2007"
    looks = class_looks(len(classes))
    pairs = [(classes.index("bicycle"), classes.index("person"))] if {"bicycle", "person"} <= set(classes) else []
    palette = voc_palette()
    splits = {"train": [], "val": [], "test": []}
    seg_splits = {"train": [], "val": [], "test": []}
    records = []
    k = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for _ in range(n):
            k += 1
            image_id = f"{k:06d}"
            h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
            scene = draw_scene(rng, h, w, sample_classes(rng, len(classes), pairs, p_pair), looks)
            save_jpeg(scene.image, voc / "JPEGImages" / f"{image_id}.jpg")
            objs = [(classes[o.cls], o.box, o.truncated, bool(rng.random() < 0.05)) for o in scene.objects]
            write_text(voc / "Annotations" / f"{image_id}.xml", _xml(image_id, h, w, objs))
            splits[split].append(image_id)
            has_seg = bool(rng.random() < seg_fraction)
            if has_seg:
                cls_png = np.zeros((h, w), np.uint8)
                obj_png = np.zeros((h, w), np.uint8)
                union = np.zeros((h, w), bool)
                for j, o in enumerate(scene.objects):
                    cls_png[o.visible] = VOC_CLASSES.index(classes[o.cls]) + 1
                    obj_png[o.visible] = j + 1
                    union |= o.visible
                # VOC marks a thin band around objects as void (255)
                cls_png[grow(union) & ~union] = 255
                obj_png[grow(union) & ~union] = 255
                save_png(cls_png, voc / "SegmentationClass" / f"{image_id}.png", palette)
                save_png(obj_png, voc / "SegmentationObject" / f"{image_id}.png", palette)
                seg_splits[split].append(image_id)
            records.append({"file": f"VOCdevkit/VOC2007/JPEGImages/{image_id}.jpg", "split": split,
                            "size": [h, w], "has_seg": has_seg,
                            "objects": [{"class": classes[o.cls], "box": list(o.box)} for o in scene.objects]})
    splits["trainval"] = splits["train"] + splits["val"]
    seg_splits["trainval"] = seg_splits["train"] + seg_splits["val"]
    present = {r["file"].rsplit("/", 1)[1][:-4]: {o["class"] for o in r["objects"]} for r in records}
    for split, ids in splits.items():
        write_text(voc / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{i}\n" for i in ids))
        write_text(voc / "ImageSets" / "Segmentation" / f"{split}.txt", "".join(f"{i}\n" for i in seg_splits[split]))
        for c in classes:
            write_text(voc / "ImageSets" / "Main" / f"{c}_{split}.txt",
                       "".join(f"{i} {1 if c in present[i] else -1:2d}\n" for i in ids))
    return records
