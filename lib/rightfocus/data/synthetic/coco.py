"""Synthetic MS COCO 2014 in the real on-disk format (see `rightfocus.data.coco`): polygon
segmentations rasterised by pycocotools, non-contiguous category ids, train/val split files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rightfocus.data.synthetic.draw import save_jpeg, write_json, write_text
from rightfocus.data.synthetic.scenes import class_looks, draw_scene, sample_classes

#: real COCO (id, name) pairs: non-contiguous ids as in the release
DEFAULT_CATEGORIES = ((1, "person"), (2, "bicycle"), (3, "car"), (16, "bird"), (18, "dog"), (44, "bottle"))


def make_coco(out: Path, rng: np.random.Generator, n_train: int = 150, n_val: int = 50, n_test: int = 60,
              categories: tuple[tuple[int, str], ...] = DEFAULT_CATEGORIES, min_size: int = 56,
              max_size: int = 72, p_pair: float = 0.9, p_empty: float = 0.03) -> list[dict]:
    """Write train2014/, val2014/, annotations/ and splits/ under `out`; returns manifest records.
    train2014 (train, then val) is drawn before val2014 (test) from one generator, so `n_test` changes
    no train or val image (the demo writes 60)."""
    names = [n for _, n in categories]
    looks = class_looks(len(categories))
    pairs = [(names.index("bicycle"), names.index("person"))] if {"bicycle", "person"} <= set(names) else []
    records = []
    ann_id = 1
    image_id = 0
    for folder, n_images in (("train2014", n_train + n_val), ("val2014", n_test)):
        images, anns = [], []
        for k in range(n_images):
            image_id += int(rng.integers(1, 9))  # sparse ids, as in the release
            h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
            classes = [] if rng.random() < p_empty else sample_classes(rng, len(names), pairs, p_pair)
            scene = draw_scene(rng, h, w, classes, looks)
            fname = f"COCO_{folder}_{image_id:012d}.jpg"
            save_jpeg(scene.image, out / folder / fname)
            images.append({"id": image_id, "file_name": fname, "height": h, "width": w})
            objs = []
            for o in scene.objects:
                x0, y0, x1, y1 = o.box
                anns.append({"id": ann_id, "image_id": image_id, "category_id": categories[o.cls][0],
                             "segmentation": [[float(v) for v in o.polygon.reshape(-1)]],
                             "area": float(o.visible.sum()), "bbox": [float(x0), float(y0), float(x1 - x0),
                                                                      float(y1 - y0)], "iscrowd": 0})
                ann_id += 1
                objs.append({"class": names[o.cls], "box": [x0, y0, x1, y1]})
            split = "test" if folder == "val2014" else ("train" if k < n_train else "val")
            records.append({"file": f"{folder}/{fname}", "split": split, "size": [h, w], "image_id": image_id,
                            "objects": objs})
        write_json(out / "annotations" / f"instances_{folder}.json", {
            "info": {"description": "rightfocus synthetic COCO 2014"}, "licenses": [], "images": images,
            "annotations": anns, "categories": [{"id": i, "name": n, "supercategory": "synthetic"}
                                                for i, n in categories]})
    for split in ("train", "val"):
        write_text(out / "splits" / f"{split}.txt",
                   "".join(f"{r['image_id']}\n" for r in records if r["split"] == split))
    return records
