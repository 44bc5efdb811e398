"""Multi-label scenes shared by the synthetic VOC and COCO writers: 1-4 objects per image, each class a
fixed (shape, colour) so a tiny CNN tells them apart at 32-64 px, and a co-occurrence cue (e.g. a
bicycle almost always comes with a person, as in MG's Fig. 1) so that context is a shortcut."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rightfocus.data.synthetic.draw import COLOURS, SHAPES, background, paint, place_objects, tight_box

#: (shape, colour) per class, in the order classes are picked
LOOKS = [("circle", "red"), ("triangle", "blue"), ("cross", "yellow"), ("star", "magenta"),
         ("diamond", "cyan"), ("hexagon", "orange"), ("ellipse", "white"), ("pentagon", "black"),
         ("circle", "purple"), ("triangle", "green"), ("cross", "orange"), ("star", "cyan")]


@dataclass
class SceneObject:
    cls: int
    polygon: np.ndarray
    box: tuple[int, int, int, int]  # tight box of the object's FULL mask, end exclusive
    visible: np.ndarray  # mask of the pixels still showing after later objects are drawn
    truncated: bool


@dataclass
class Scene:
    image: np.ndarray  # float [h, w, 3]
    objects: list[SceneObject] = field(default_factory=list)


def class_looks(num_classes: int) -> list[tuple[str, tuple[float, float, float]]]:
    if num_classes > len(LOOKS):
        raise ValueError(f"synthetic scenes support at most {len(LOOKS)} classes, got {num_classes}")
    assert all(s in SHAPES and c in COLOURS for s, c in LOOKS)
    return [(s, COLOURS[c]) for s, c in LOOKS[:num_classes]]


def draw_scene(rng: np.random.Generator, h: int, w: int, classes: list[int],
               looks: list[tuple[str, tuple[float, float, float]]]) -> Scene:
    """Objects of `classes` (drawing order = list order) on a neutral textured background."""
    img = background(rng, h, w, "noise")
    placed = place_objects(rng, h, w, [looks[c] for c in classes])
    objs: list[SceneObject] = []
    for cls, (poly, mask) in zip(classes, placed):
        box = tight_box(mask)
        if box is None:
            continue
        for o in objs:  # later objects occlude earlier ones
            o.visible &= ~mask
        paint(img, mask, looks[cls][1], rng)
        truncated = box[0] == 0 or box[1] == 0 or box[2] == w or box[3] == h
        objs.append(SceneObject(cls, poly, box, mask.copy(), truncated))
    return Scene(img, objs)


def sample_classes(rng: np.random.Generator, num_classes: int, pairs: list[tuple[int, int]],
                   p_pair: float, max_objects: int = 4) -> list[int]:
    """1..max_objects object classes; when a pair's first class is drawn, its partner joins with
    probability `p_pair` (the co-occurrence shortcut)."""
    n = int(rng.choice(np.arange(1, max_objects + 1), p=np.array([0.4, 0.3, 0.2, 0.1])[:max_objects]
                       / np.array([0.4, 0.3, 0.2, 0.1])[:max_objects].sum()))
    out = [int(c) for c in rng.integers(0, num_classes, n)]
    for a, b in pairs:
        if a in out and b not in out and rng.random() < p_pair and len(out) < max_objects:
            out.insert(0, b)  # the partner is drawn first (behind), like a rider behind a bicycle
    return out
