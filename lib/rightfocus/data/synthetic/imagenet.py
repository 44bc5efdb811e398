"""Synthetic ImageFolder (ImageWoof-like, with ILSVRC ``LOC_*_solution.csv`` boxes) and Hard-ImageNet
(images + ``<wnid>_<file>`` masks) in their real on-disk formats (see `rightfocus.data.imagefolder`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rightfocus.data.synthetic.draw import (COLOURS, background, paint, place_objects, save_jpeg, save_png,
                                            tight_box, write_text)
from rightfocus.data.synthetic.scenes import class_looks

#: ImageWoof's ten wnids (dog breeds)
WOOF_WNIDS = ("n02086240", "n02087394", "n02088364", "n02089973", "n02093754", "n02096294", "n02099601",
              "n02105641", "n02111889", "n02115641")
#: Hard-ImageNet-like class wnids (names are not needed by the format)
HARD_WNIDS = ("n02098105", "n02101388", "n02690373", "n02786058", "n03388043", "n03594945", "n03637318")


def make_imagefolder(out: Path, rng: np.random.Generator, n_train: int = 16, n_val: int = 6,
                     num_classes: int = 8, min_size: int = 56, max_size: int = 72) -> list[dict]:
    """{train,val}/<wnid>/*.JPEG with one object of the class (shape + colour) per image, and
    LOC_{train,val}_solution.csv with its box (ILSVRC style: ImageId,PredictionString)."""
    if not 1 <= num_classes <= len(WOOF_WNIDS):
        raise ValueError(f"num_classes must be in 1..{len(WOOF_WNIDS)}, got {num_classes}")
    looks = class_looks(num_classes)
    manifest = []
    for split, n in (("train", n_train), ("val", n_val)):
        rows = ["ImageId,PredictionString"]
        k = 0
        for c, wnid in enumerate(WOOF_WNIDS[:num_classes]):
            for j in range(n):
                k += 1
                stem = f"{wnid}_{j + 1}" if split == "train" else f"ILSVRC2012_val_{k:08d}"
                h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
                img = background(rng, h, w, "noise")
                (_, mask), = place_objects(rng, h, w, [looks[c]], margin=1.0)
                paint(img, mask, looks[c][1], rng)
                save_jpeg(img, out / split / wnid / f"{stem}.JPEG")
                box = tight_box(mask)
                rows.append(f"{stem},{wnid} {box[0]} {box[1]} {box[2]} {box[3]} ")
                manifest.append({"file": f"{split}/{wnid}/{stem}.JPEG", "split": split, "size": [h, w],
                                 "objects": [{"class": wnid, "box": list(box)}]})
        write_text(out / f"LOC_{split}_solution.csv", "\n".join(rows) + "\n")
    return manifest


def make_hardimagenet(out: Path, rng: np.random.Generator, n_train: int = 16, n_val: int = 6,
                      num_classes: int = 5, min_size: int = 56, max_size: int = 72, p_cue: float = 0.9
                      ) -> list[dict]:
    """imagenet/{train,val}/<wnid>/<wnid>_<k>.JPEG and masks {train,val}/<wnid>_<wnid>_<k>.png (object =
    255). Like Hard-ImageNet's spurious features, each class has its own background in train with
    probability `p_cue` (random otherwise); val backgrounds are random."""
    if not 1 <= num_classes <= len(HARD_WNIDS):
        raise ValueError(f"num_classes must be in 1..{len(HARD_WNIDS)}, got {num_classes}")
    looks = class_looks(num_classes)
    bg_colours = ["green", "blue", "orange", "purple", "yellow", "cyan", "red"]
    manifest = []
    for split, n in (("train", n_train), ("val", n_val)):
        for c, wnid in enumerate(HARD_WNIDS[:num_classes]):
            for j in range(n):
                name = f"{wnid}_{j + 1 + (0 if split == 'train' else 10_000)}"
                h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
                cue = c if (split == "train" and rng.random() < p_cue) else int(rng.integers(0, num_classes))
                img = background(rng, h, w, "stripes", COLOURS[bg_colours[cue]], 0.6 * cue)
                (_, mask), = place_objects(rng, h, w, [looks[c]], margin=1.0)
                paint(img, mask, looks[c][1], rng)
                save_jpeg(img, out / "imagenet" / split / wnid / f"{name}.JPEG")
                save_png(np.where(mask, 255, 0).astype(np.uint8), out / split / f"{wnid}_{name}.png")
                manifest.append({"file": f"imagenet/{split}/{wnid}/{name}.JPEG", "split": split, "size": [h, w],
                                 "objects": [{"class": wnid, "box": list(tight_box(mask))}]})
    return manifest
