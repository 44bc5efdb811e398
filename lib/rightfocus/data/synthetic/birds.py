"""Synthetic CUB-200-2011, Waterbirds (95 % / 100 %) and TravelingBirds in their real on-disk formats.

A "bird" is a species-specific polygon; Waterbirds' two bird types differ in shape family (round vs
pointy) and colour family. Waterbirds pastes the CUB bird (same pixels, same position,
same image size, like the real dataset) onto a land or water background that is correlated with the
bird type in train (confounder 0.95 / 1.0) and balanced per class in val / test; the background covers
most of the image and differs in colour, so it is an easier cue than the bird's shape (an unguided
model takes the shortcut). TravelingBirds gives each species its own background in the train tree
and the next species' background in the test tree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rightfocus.data.synthetic.draw import (COLOURS, background, grow, paint, place_objects, save_jpeg, save_png,
                                            tight_box, write_text)

#: (class dir, shape, colour, is waterbird); the two bird types differ by shape family (round vs pointy)
SPECIES = [
    ("001.Black_footed_Albatross", "circle", "white", 1),
    ("002.Laysan_Albatross", "ellipse", "black", 1),
    ("003.California_Gull", "hexagon", "yellow", 1),
    ("004.Brown_Pelican", "pentagon", "orange", 1),
    ("005.Cardinal", "triangle", "red", 0),
    ("006.Blue_Jay", "star", "cyan", 0),
    ("007.Baird_Sparrow", "cross", "magenta", 0),
    ("008.Bay_breasted_Warbler", "diamond", "purple", 0),
]


def _file_name(class_dir: str, k: int) -> str:
    return f"{class_dir}/{class_dir.split('.', 1)[1]}_{k:04d}_{k}.jpg"


#: bird colours by type for Waterbirds: the bird's own cue (colour family + shape family) is learnable
TYPE_COLOURS = {0: ("red", "orange", "yellow", "magenta"), 1: ("white", "black", "cyan", "purple")}


def _bird_colour(rng: np.random.Generator, colouring: str, species: tuple) -> tuple[float, float, float]:
    if colouring == "species":
        return COLOURS[species[2]]
    if colouring == "type":
        fam = TYPE_COLOURS[species[3]]
        return COLOURS[fam[int(rng.integers(0, len(fam)))]]
    # "mostly_species": the species colour 70 % of the time, else any colour (a weaker object cue)
    if rng.random() < 0.7:
        return COLOURS[species[2]]
    return COLOURS[list(COLOURS)[int(rng.integers(0, len(COLOURS)))]]


def make_cub_base(out: Path, rng: np.random.Generator, per_class: int | list[int], num_classes: int, min_size: int,
                  max_size: int, train_fraction: float = 0.6, colouring: str = "species",
                  write_images: bool = True) -> list[dict]:
    """Write CUB_200_2011 (metadata, segmentations and, optionally, images) under `out`. Returns one
    record per image with the bird's mask, box and image size for the derived datasets.
    colouring: "species" (fixed colour per species), "type" (a colour from the bird type's family),
    "mostly_species" (species colour 70 % of the time)."""
    if not 1 <= num_classes <= len(SPECIES):
        raise ValueError(f"num_classes must be in 1..{len(SPECIES)}, got {num_classes}")
    cub = out / "CUB_200_2011"
    species = SPECIES[:num_classes]
    counts = per_class if isinstance(per_class, list) else [per_class] * num_classes
    recs = []
    for c, (cdir, shape, colour, water) in enumerate(species):
        for k in range(counts[c]):
            h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
            col = _bird_colour(rng, colouring, species[c])
            (_, mask), = place_objects(rng, h, w, [(shape, col)], r_range=(0.2, 0.3), margin=1.0)
            recs.append({"id": len(recs) + 1, "file": _file_name(cdir, k + 1), "class": c, "y": water,
                         "size": [h, w], "mask": mask, "colour": col, "box": list(tight_box(mask)),
                         "train": bool(k < round(train_fraction * counts[c]))})
    for r in recs:
        h, w = r["size"]
        if write_images:
            img = background(rng, h, w, "noise")
            save_jpeg(paint(img, r["mask"], r["colour"], rng), cub / "images" / r["file"])
        # soft annotator-average style mask: 255 on the bird, a faint halo (< 128) that binarises away
        soft = np.where(r["mask"], 255, 0).astype(np.uint8)
        halo = grow(r["mask"]) & ~r["mask"]
        soft[halo] = 60
        save_png(soft, cub / "segmentations" / Path(r["file"]).with_suffix(".png"))
    write_text(cub / "images.txt", "".join(f"{r['id']} {r['file']}\n" for r in recs))
    write_text(cub / "image_class_labels.txt", "".join(f"{r['id']} {r['class'] + 1}\n" for r in recs))
    write_text(cub / "train_test_split.txt", "".join(f"{r['id']} {int(r['train'])}\n" for r in recs))
    write_text(cub / "classes.txt", "".join(f"{c + 1} {s[0]}\n" for c, s in enumerate(species)))
    write_text(cub / "bounding_boxes.txt", "".join(
        f"{r['id']} {float(r['box'][0])} {float(r['box'][1])} {float(r['box'][2] - r['box'][0])} "
        f"{float(r['box'][3] - r['box'][1])}\n" for r in recs))
    return recs


def _manifest(recs: list[dict], prefix: str) -> list[dict]:
    return [{"file": f"{prefix}/{r['file']}", "split": "train" if r["train"] else "test", "size": r["size"],
             "objects": [{"class": r["class"], "box": r["box"]}]} for r in recs]


def make_cub(out: Path, rng: np.random.Generator, per_class: int = 20, num_classes: int = 8,
             min_size: int = 56, max_size: int = 80) -> list[dict]:
    """Synthetic CUB-200-2011: species differ by shape and colour, neutral backgrounds."""
    return _manifest(make_cub_base(out, rng, per_class, num_classes, min_size, max_size), "CUB_200_2011/images")


def _counts(n: int, fractions: list[float]) -> list[int]:
    c = [int(round(f * n)) for f in fractions]
    c[0] += n - sum(c)
    return c


def make_waterbirds(out: Path, rng: np.random.Generator, n_train: int = 160, n_val: int = 48, n_test: int = 96,
                    min_size: int = 56, max_size: int = 72, landbird_fraction: float = 0.75) -> list[dict]:
    """CUB_200_2011 + waterbird_complete95_forest2water2 + waterbird_complete100_forest2water2.

    Every split has `landbird_fraction` landbirds (as the release: ~3:1). Train: place = bird type
    except for 5 % (95 folder) / 0 % (100 folder). Val / test: each bird type split evenly over land and
    water (the release's design)."""
    fracs = {0: landbird_fraction, 1: 1 - landbird_fraction}
    need = {y: sum(int(round(f * m)) for m in (n_train, n_val, n_test)) for y, f in fracs.items()}
    per_class = [-(-need[s[3]] // 4) for s in SPECIES]
    # the bird type shows in its shape family and colour family; colours vary within a type
    recs = make_cub_base(out, rng, per_class, 8, min_size, max_size, colouring="type", write_images=True)
    land = [r for r in recs if r["y"] == 0]
    water = [r for r in recs if r["y"] == 1]
    rng.shuffle(land)
    rng.shuffle(water)
    chosen: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for pool, frac in ((land, fracs[0]), (water, fracs[1])):
        tr, va, te = (int(round(frac * m)) for m in (n_train, n_val, n_test))
        if tr + va + te > len(pool):
            raise ValueError("not enough synthetic birds for the requested split sizes")
        chosen["train"] += pool[:tr]
        chosen["val"] += pool[tr:tr + va]
        chosen["test"] += pool[tr + va:tr + va + te]
    places: dict[int, dict[int, int]] = {95: {}, 100: {}}
    for split, rs in chosen.items():
        for y in (0, 1):
            ry = [r for r in rs if r["y"] == y]
            if split == "train":
                n_flip = int(round(0.05 * len(ry)))
                flip = set(rng.permutation(len(ry))[:n_flip].tolist())
                for j, r in enumerate(ry):
                    places[100][r["id"]] = y
                    places[95][r["id"]] = 1 - y if j in flip else y
            else:
                half = set(rng.permutation(len(ry))[:len(ry) // 2].tolist())
                for j, r in enumerate(ry):
                    places[100][r["id"]] = places[95][r["id"]] = int(j in half)
    split_code = {"train": 0, "val": 1, "test": 2}
    manifest = []
    backgrounds: dict[tuple[int, int], np.ndarray] = {}
    for conf, folder in ((95, "waterbird_complete95_forest2water2"), (100, "waterbird_complete100_forest2water2")):
        rows = ["img_id,img_filename,y,split,place,place_filename"]
        for split, rs in chosen.items():
            for r in sorted(rs, key=lambda r: r["id"]):
                place = places[conf][r["id"]]
                key = (r["id"], place)
                if key not in backgrounds:  # one background per (bird, place): both folders share it
                    h, w = r["size"]
                    img = background(rng, h, w, "water" if place else "land")
                    backgrounds[key] = paint(img, r["mask"], r["colour"], rng)
                save_jpeg(backgrounds[key], out / folder / r["file"])
                pf = f"/o/ocean/{r['id']:08d}.jpg" if place else f"/b/bamboo_forest/{r['id']:08d}.jpg"
                rows.append(f"{r['id']},{r['file']},{r['y']},{split_code[split]},{place},{pf}")
                manifest.append({"file": f"{folder}/{r['file']}", "confounder": conf, "split": split,
                                 "y": r["y"], "place": place, "group": 2 * r["y"] + place, "size": r["size"],
                                 "objects": [{"class": r["y"], "box": r["box"]}]})
        write_text(out / folder / "metadata.csv", "\n".join(rows) + "\n")
    return manifest


#: class-specific background colours and stripe angles for TravelingBirds
_TB_BACKGROUNDS = [("green", 0.0), ("blue", 1.57), ("orange", 0.78), ("purple", 2.36), ("yellow", 0.4),
                   ("cyan", 1.2), ("red", 2.0), ("white", 2.8)]


def make_travelingbirds(out: Path, rng: np.random.Generator, per_class: int = 20, num_classes: int = 6,
                        min_size: int = 56, max_size: int = 72) -> list[dict]:
    """CUB_200_2011 metadata + CUB_fixed/{train,test}: every image in both trees, species k on
    background k in train and on background k+1 (mod K) in test. Birds have their species' shape and,
    70 % of the time, its colour: a weaker cue than the background, which is perfect in train."""
    recs = make_cub_base(out, rng, per_class, num_classes, min_size, max_size, colouring="mostly_species",
                         write_images=False)
    manifest = []
    for tree, shift in (("train", 0), ("test", 1)):
        for r in recs:
            colour, angle = _TB_BACKGROUNDS[(r["class"] + shift) % num_classes]
            h, w = r["size"]
            img = background(rng, h, w, "stripes", COLOURS[colour], angle)
            save_jpeg(paint(img, r["mask"], r["colour"], rng), out / "CUB_fixed" / tree / r["file"])
            if r["train"] == (tree == "train"):
                manifest.append({"file": f"CUB_fixed/{tree}/{r['file']}", "split": tree, "size": r["size"],
                                 "objects": [{"class": r["class"], "box": r["box"]}]})
    return manifest
