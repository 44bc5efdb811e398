"""Drawing primitives for the synthetic datasets: polygon shapes rasterised with pycocotools (so a COCO
polygon and its annToMask are the drawn pixels exactly), textured backgrounds, and file writers whose
bytes depend only on the inputs (same seed -> same files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

#: shapes whose polygon leaves background inside the bounding box (so on-object EPG means something)
SHAPES = ("circle", "triangle", "diamond", "cross", "star", "hexagon", "ellipse", "pentagon")
COLOURS = {
    "red": (0.85, 0.15, 0.15), "green": (0.15, 0.75, 0.2), "blue": (0.2, 0.3, 0.9),
    "yellow": (0.95, 0.85, 0.1), "magenta": (0.85, 0.2, 0.8), "cyan": (0.1, 0.8, 0.85),
    "orange": (0.95, 0.55, 0.1), "white": (0.95, 0.95, 0.95), "black": (0.08, 0.08, 0.08),
    "purple": (0.45, 0.15, 0.65),
}


def _regular(n: int, r: float, start: float, ry: float | None = None) -> np.ndarray:
    a = start + 2 * np.pi * np.arange(n) / n
    return np.stack([r * np.cos(a), (ry if ry is not None else r) * np.sin(a)], 1)


def shape_polygon(shape: str, cx: float, cy: float, r: float, angle: float = 0.0) -> np.ndarray:
    """Vertices [m, 2] (x, y) of `shape` with outer radius r around (cx, cy), rotated by `angle` rad."""
    if shape == "circle":
        v = _regular(24, r, 0.0)
    elif shape == "ellipse":
        v = _regular(24, r, 0.0, ry=0.55 * r)
    elif shape == "hexagon":
        v = _regular(6, r, 0.0)
    elif shape == "pentagon":
        v = _regular(5, r, -np.pi / 2)
    elif shape == "triangle":
        v = _regular(3, r, -np.pi / 2)
    elif shape == "diamond":
        v = np.array([[0, -r], [0.6 * r, 0], [0, r], [-0.6 * r, 0]], float)
    elif shape == "star":
        a = -np.pi / 2 + np.pi * np.arange(10) / 5
        rad = np.where(np.arange(10) % 2 == 0, r, 0.42 * r)
        v = np.stack([rad * np.cos(a), rad * np.sin(a)], 1)
    elif shape == "cross":
        t = 0.3 * r
        v = np.array([[-t, -r], [t, -r], [t, -t], [r, -t], [r, t], [t, t], [t, r], [-t, r], [-t, t],
                      [-r, t], [-r, -t], [-t, -t]], float)
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")
    c, s = np.cos(angle), np.sin(angle)
    v = v @ np.array([[c, s], [-s, c]])
    return v + np.array([cx, cy])


def rasterise(polygon: np.ndarray, h: int, w: int) -> np.ndarray:
    """Boolean mask [h, w] of a polygon, by pycocotools (the same rasteriser as COCO's annToMask)."""
    rle = mask_utils.merge(mask_utils.frPyObjects([polygon.reshape(-1).astype(float).tolist()], h, w))
    return mask_utils.decode(rle).astype(bool)


def grow(mask: np.ndarray) -> np.ndarray:
    """Mask dilated by one pixel (4-neighbourhood)."""
    g = mask.copy()
    g[1:] |= mask[:-1]
    g[:-1] |= mask[1:]
    g[:, 1:] |= mask[:, :-1]
    g[:, :-1] |= mask[:, 1:]
    return g


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end exclusive, of the True pixels; None when there are none."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _smooth(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    grid = rng.random((cells + 1, cells + 1, channels))
    ys = np.linspace(0, cells, h)
    xs = np.linspace(0, cells, w)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    g = grid
    top = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    bot = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def background(rng: np.random.Generator, h: int, w: int, style: str = "noise",
               colour: tuple[float, float, float] | None = None, angle: float = 0.0) -> np.ndarray:
    """Float image [h, w, 3] in [0, 1].

    noise: muted random colours (neutral scene); water: blue horizontal waves; land: green / brown
    patches; stripes: oriented stripes of `colour` (class-specific backgrounds)."""
    fine = rng.normal(0, 0.03, (h, w, 3))
    if style == "noise":
        img = 0.3 + 0.4 * _smooth(rng, h, w, 3, 3)
    elif style == "water":
        yy = np.arange(h)[:, None, None]
        xx = np.arange(w)[None, :, None]
        wave = np.sin(2 * np.pi * yy / rng.uniform(5, 8) + 0.4 * np.sin(xx / 4.0) + rng.uniform(0, 6.3))
        img = np.array([0.12, 0.35, 0.72]) + 0.12 * wave * np.array([0.5, 0.8, 1.0])
    elif style == "land":
        t = _smooth(rng, h, w, 5)
        img = np.array([0.25, 0.5, 0.15]) * (1 - t) + np.array([0.5, 0.36, 0.16]) * t
    elif style == "stripes":
        if colour is None:
            raise ValueError("stripes background needs a colour")
        yy, xx = np.mgrid[0:h, 0:w]
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / 3.5
        s = (np.sin(phase + rng.uniform(0, 6.3)) > 0)[..., None]
        img = np.asarray(colour) * (0.55 + 0.35 * s)
    else:
        raise ValueError(f"unknown background style {style!r}")
    return np.clip(img + fine, 0, 1)


def paint(img: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float],
          rng: np.random.Generator) -> np.ndarray:
    """Fill `mask` with `colour` plus a little texture (in place); returns img."""
    tex = rng.normal(0, 0.04, (int(mask.sum()), 3))
    img[mask] = np.clip(np.asarray(colour) + tex, 0, 1)
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_jpeg(img: np.ndarray, path: Path) -> None:
    """JPEG at quality 92 (what the real releases ship); deterministic for equal pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(img)).save(path, format="JPEG", quality=92)


def save_png(arr: np.ndarray, path: Path, palette: list[int] | None = None) -> None:
    """A uint8 PNG; palettised when `palette` (flat RGB list) is given (VOC label images)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="L")
    if palette is not None:
        im = im.convert("P")
        im.putpalette(palette)
    im.save(path, format="PNG")


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (bit-interleaved class colours; 255 = void in white-ish)."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True))


def place_objects(rng: np.random.Generator, h: int, w: int, specs: list[tuple[str, tuple[float, float, float]]],
                  r_range: tuple[float, float] = (0.16, 0.28), margin: float = 0.5
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Polygons and their full masks for objects (shape, colour); centres drawn so that at least
    `margin` of the radius stays inside the image. Returns [(polygon, mask)] in drawing order."""
    out = []
    side = min(h, w)
    for shape, _ in specs:
        r = rng.uniform(*r_range) * side
        cx = rng.uniform(r * margin, w - r * margin)
        cy = rng.uniform(r * margin, h - r * margin)
        ang = rng.uniform(-0.3, 0.3) if shape in ("triangle", "star", "pentagon", "diamond", "cross") else \
            rng.uniform(0, np.pi)
        poly = shape_polygon(shape, cx, cy, r, ang)
        poly[:, 0] = np.clip(poly[:, 0], 0, w)
        poly[:, 1] = np.clip(poly[:, 1], 0, h)
        mask = rasterise(poly, h, w)
        out.append((poly, mask))
    return out
