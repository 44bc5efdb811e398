"""The one sample schema shared by every loader, and the dataset class that produces it.

A loader parses its on-disk format into `Record`s (image path, class indices, boxes in the original
image's pixels, an optional segmentation reader, extras such as group/place); `BoxDataset` turns a
record into a sample dict:

- ``image``: float [3, H, W] in [0, 1], not normalised (see `encoding.encode`)
- ``labels``: float [K] multi-hot (one-hot for single-label datasets)
- ``boxes``: float [n, 5] rows (class, x0, y0, x1, y1) in pixels of the returned image, end exclusive
- ``has_boxes``: bool, False when the image's boxes were withheld (`annotation_fraction`)
- ``invert_mask``: bool, True when the guidance mask is the complement of the boxes (Waterbirds "place")
- ``seg``: int64 [H, W] (class index + 1, or 1 for the object; 0 background; 255 void), only when the
  dataset has a segmentation for this image
- ``group`` / ``place``: ints, where defined (Waterbirds); ``index``: int, position in the dataset
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from rightfocus.data.annotations import annotation_subset
from rightfocus.data.boxes import as_boxes, clip_boxes, dilate_boxes, empty_boxes, round_boxes
from rightfocus.data.transforms import as_size, center_crop_geometry, make_train_transform, resize_seg

#: split names under which `dilation` may be used (coarse boxes are a training-time perturbation)
TRAINING_SPLITS = ("train", "trainval", "train2014")


@dataclass
class Record:
    """One image as parsed from disk. Boxes are in the ORIGINAL image's pixels, end exclusive."""

    path: Path
    labels: list[int]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    seg: Callable[[], np.ndarray] | None = None
    extra: dict[str, int] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # (H, W) when the annotation states it


def read_image(path: Path) -> Tensor:
    """Decode an image file to uint8 RGB [3, H, W]; errors name the file."""
    return decode_image(path)[0]


def decode_image(path: Path, size: tuple[int, int] | None = None, center_crop: float | None = None
                 ) -> tuple[Tensor, tuple[int, int]]:
    """Decode to uint8 RGB [3, H, W], optionally resized to `size` = (H, W) by PIL's bilinear
    (antialiased) resampling, as torchvision's Resize on PIL images (the MG reference). With
    `center_crop` (a ratio, `transforms.center_crop_geometry`) `size` is a centre crop's size instead:
    the image keeps its aspect ratio, its shorter side resized to max(size) / ratio, then cropped, as
    torchvision's Resize + CenterCrop on PIL images. Also returns the file's own (H, W). Errors name
    the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            orig = (im.size[1], im.size[0])
            window = None
            if size is not None and center_crop is not None:
                (rh, rw), (top, left) = center_crop_geometry(orig, size, center_crop)
                window = (top, left, size[0], size[1])
                if (rh, rw) != orig:
                    im = im.resize((rw, rh), Image.BILINEAR)
            elif size is not None and orig != tuple(size):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im)
            if window is not None:
                top, left, ch, cw = window
                arr = arr[top:top + ch, left:left + cw]
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot decode image {path} (corrupt or not an image: {exc}); "
                         "re-download or regenerate that file") from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous(), orig


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header without decoding the pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read image header of {path} (corrupt or not an image: {exc}); "
                         "re-download or regenerate that file") from exc
    return h, w


def read_label_png(path: Path) -> np.ndarray:
    """A palettised / grayscale label PNG as int64 indices (VOC: class ids, 255 void)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I"):
                im = im.convert("L")
            return np.asarray(im).astype(np.int64)
    except FileNotFoundError:
        raise FileNotFoundError(f"segmentation file not found: {path}") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot decode segmentation {path} (corrupt or not a PNG: {exc}); "
                         "re-download or regenerate that file") from exc


class BinaryMaskReader:
    """Reads a (soft) grayscale mask as {0, 1}: pixels strictly above `threshold` are the object.
    A picklable callable so DataLoader workers can use it."""

    def __init__(self, path: Path, threshold: int) -> None:
        self.path, self.threshold = Path(path), threshold

    def __call__(self) -> np.ndarray:
        try:
            with Image.open(self.path) as im:
                arr = np.asarray(im.convert("L"))
        except FileNotFoundError:
            raise FileNotFoundError(f"mask file not found: {self.path}") from None
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            raise ValueError(f"cannot decode mask {self.path} (corrupt or not an image: {exc}); "
                             "re-download or regenerate that file") from exc
        return (arr > self.threshold).astype(np.int64)


class LabelPngReader:
    """Picklable reader of a class-index PNG (VOC SegmentationClass)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __call__(self) -> np.ndarray:
        return read_label_png(self.path)


def check_root(root: Path | str, expected: str, must_exist: Sequence[str] = ()) -> Path:
    """Raise FileNotFoundError naming the expected layout when `root` or a required entry is missing."""
    root = Path(root)
    missing = [root] if not root.is_dir() else [root / m for m in must_exist if not (root / m).exists()]
    if missing:
        raise FileNotFoundError(f"dataset root incomplete: {missing[0]} does not exist. Expected layout:\n"
                                f"{expected}")
    return root


#: bytes the decoded-image caches of one process may hold together (every `BoxDataset` counts against
#: it; beyond it images are decoded on every use). 8 GiB holds VOC 2007 (1.9 GiB at 224 px), the bird
#: datasets and ~40k COCO images (COCO 2014 in full would need 23 GiB; benchmarks/bench_memory.py)
CACHE_BUDGET_BYTES = 8 * 2**30
_CACHE_USE = [0]  # bytes cached in this process so far (entries are never evicted)


def _compact_seg(seg: Tensor) -> Tensor:
    """A segmentation as uint8 when every id fits (class ids + 1 and void 255 in every release we
    read), else int64: an 8x smaller cache entry; samples still carry int64 (`__getitem__`)."""
    if seg.numel() and (int(seg.min()) < 0 or int(seg.max()) > 255):
        return seg.long()
    return seg.to(torch.uint8)


class BoxDataset(Dataset):
    """A dataset of `Record`s producing the shared sample schema (see the module docstring).

    Options (common to every loader):
      size: int or (H, W): resize without keeping the aspect ratio; boxes are scaled, rounded
        (`box_rounding`: "truncate" as in the MG reference code, or "outward") and clamped to the image.
        None keeps each image's own size (then batches need equal sizes).
      center_crop: None, or a ratio such as 0.875 (AIM: `aim_grids.EVAL_CENTER_CROP`): evaluation images
        keep their aspect ratio, the shorter side is resized to max(size) / ratio and the centre
        `size` window is cropped (torchvision's Resize + CenterCrop); boxes and segmentations are
        moved with the image (boxes left outside the crop are dropped). Needs `size`, no train transform.
      train_transform: True / dict / `TrainTransform`: random resized crop + horizontal flip moving boxes
        and masks with the image (output size = `size`, or the original size when `size` is None).
      annotation_fraction, annotation_seed: only a seeded subset of int(frac*N) images keeps its boxes
        (and segmentation); the others get empty boxes and ``has_boxes`` False.
      dilation: grow boxes by int(p*box side) on each side (coarse annotations), training splits only.
      cache: keep every decoded image (uint8, already resized when there is no train transform) and
        its segmentation (uint8 when its ids fit, else int64) in memory after the first load, so epochs
        do not re-decode JPEGs; `preload()` fills it at once. DataLoader workers read the entries
        present when they were started (call `preload()` before creating the loader: forked workers
        share them) and never add their own: a worker's copy would be lost when the worker exits at
        the end of the epoch. Measured (benchmarks/bench_memory.py): 196 KiB per image at 224 px with a
        segmentation (int64 segmentations: 539 KiB), i.e. ~23 GiB for COCO 2014's 123k images, 1.9 GiB
        for VOC 2007; the caches of a process stop growing at `CACHE_BUDGET_BYTES` (8 GiB), beyond
        which images are decoded on use (COCO: use DataLoader workers for those).
      with_seg: False skips reading segmentations.
    Clipping of boxes that extend past their image is counted in ONE warning per dataset.
    """

    def __init__(self, records: list[Record], classes: list[str], *, name: str, split: str,
                 source: str = "", size: int | tuple[int, int] | None = None,
                 train_transform: Any = None, annotation_fraction: float = 1.0,
                 annotation_seed: int = 0, dilation: float = 0.0, cache: bool = False,
                 box_rounding: str = "truncate", with_seg: bool = True, invert_masks: bool = False,
                 center_crop: float | None = None) -> None:
        if not records:
            raise ValueError(f"{name}: split {split!r} is empty (no images listed in {source or 'the split'}); "
                             "check the split name and the split file")
        self.records, self.classes, self.name, self.split = records, list(classes), name, split
        self.source = source  # the index that lists the images (errors name it)
        self.size = None if size is None else as_size(size)
        self.transform = make_train_transform(train_transform)
        if center_crop is not None and (self.size is None or self.transform is not None):
            raise ValueError(f"{name}: center_crop={center_crop} is an evaluation transform: it needs `size` (the "
                             "crop) and no train_transform; pass one or the other")
        if center_crop is not None:
            center_crop_geometry((1, 1), (1, 1), center_crop)  # validates the ratio early
        self.center_crop = center_crop
        if dilation and split not in TRAINING_SPLITS:
            raise ValueError(f"{name}: dilation={dilation} on split {split!r}; box dilation simulates coarse "
                             f"TRAINING annotations (MG Sec. 5.3), evaluate on exact boxes: pass dilation only "
                             f"for {TRAINING_SPLITS}")
        self.dilation = float(dilation)
        self.keep_boxes = annotation_subset(len(records), annotation_fraction, annotation_seed)
        self.annotation_fraction = annotation_fraction
        round_boxes(empty_boxes(), box_rounding)  # validates the name early
        self.box_rounding = box_rounding
        self.with_seg = with_seg
        self.invert_masks = invert_masks
        self.cache = cache
        self._cache: dict[int, tuple[Tensor, Tensor | None, tuple[int, int]]] = {}
        self.n_clipped = self._clip_original_boxes()

    # -- public ----------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.records)

    def preload(self) -> "BoxDataset":
        """Decode every image once into the in-memory cache (turns `cache` on)."""
        self.cache = True
        for i in range(len(self)):
            self._base(i)
        return self

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.name}/{self.split} of {len(self)} images")
        rec = self.records[index]
        image, seg, (oh, ow) = self._base(index)
        h0, w0 = image.shape[-2:]
        boxes = torch.from_numpy(rec.boxes).float().clone() if len(rec.boxes) else empty_boxes()
        if self.transform is None and self.size is not None and len(boxes):
            # `_base` already resized (and cropped) the image, so the cache holds it: move boxes alike
            (rh, rw), (top, left) = ((h0, w0), (0, 0)) if self.center_crop is None else \
                center_crop_geometry((oh, ow), self.size, self.center_crop)
            boxes[:, [1, 3]] = boxes[:, [1, 3]] * (rw / ow) - left
            boxes[:, [2, 4]] = boxes[:, [2, 4]] * (rh / oh) - top
        if self.transform is not None:
            image, boxes, seg = self.transform(image, boxes, seg, self.size or (h0, w0))
        h, w = image.shape[-2:]
        boxes, _ = clip_boxes(round_boxes(boxes, self.box_rounding), w, h)
        if self.dilation:
            boxes = dilate_boxes(boxes, self.dilation, (h, w))
        keep = bool(self.keep_boxes[index])
        sample: dict[str, Any] = {
            "image": image.float() / 255.0 if image.dtype == torch.uint8 else image,
            "labels": self._multi_hot(rec.labels),
            "boxes": boxes if keep else empty_boxes(),
            "has_boxes": keep,
            "invert_mask": self.invert_masks,
            "index": index,
        }
        if seg is not None and keep:
            sample["seg"] = seg.long()
        sample.update(rec.extra)
        return sample

    def __repr__(self) -> str:
        crop = f", center_crop={self.center_crop}" if self.center_crop is not None else ""
        return (f"{type(self).__name__}({self.name}, split={self.split!r}, n={len(self)}, "
                f"classes={self.num_classes}, size={self.size}{crop})")

    # -- internals -------------------------------------------------------------------------------
    def _multi_hot(self, labels: list[int]) -> Tensor:
        out = torch.zeros(len(self.classes), dtype=torch.float32)
        if labels:
            out[torch.as_tensor(sorted(set(labels)))] = 1.0
        return out

    def _read_seg(self, rec: Record) -> np.ndarray | None:
        return None if rec.seg is None else rec.seg()

    def _base(self, index: int) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """Decoded image (uint8) and seg; resized to `size` when there is no train transform (so the
        cache holds what every epoch needs), and the original (H, W)."""
        if index in self._cache:
            return self._cache[index]
        rec = self.records[index]
        early = self.size if self.transform is None else None  # resize while decoding (cheap, cached)
        try:
            image, orig = decode_image(rec.path, early, self.center_crop if early is not None else None)
            seg_np = self._read_seg(rec) if self.with_seg else None
        except FileNotFoundError as exc:  # a file the dataset's index lists is not there
            listed = f" (listed in {self.source})" if self.source else ""
            raise FileNotFoundError(f"{exc}{listed}; restore the file, or regenerate/re-download the dataset "
                                    f"so its index and files agree") from None
        seg = None if seg_np is None else _compact_seg(torch.from_numpy(np.ascontiguousarray(seg_np)))
        if seg is not None and tuple(seg.shape) != tuple(orig):
            raise ValueError(f"segmentation of {rec.path} has size {tuple(seg.shape)} but the image is "
                             f"{tuple(orig)}; the mask must match its image")
        if early is not None and seg is not None and self.center_crop is not None:
            (rh, rw), (top, left) = center_crop_geometry(orig, early, self.center_crop)
            seg = resize_seg(seg, (rh, rw))[top:top + early[0], left:left + early[1]]
        elif early is not None and seg is not None:
            seg = resize_seg(seg, early)
        if self.cache and get_worker_info() is None:  # a worker's own entries would die with it
            size = image.numel() * image.element_size() + (0 if seg is None else seg.numel() * seg.element_size())
            if _CACHE_USE[0] + size <= CACHE_BUDGET_BYTES:
                _CACHE_USE[0] += size
                self._cache[index] = (image, seg, orig)
        return image, seg, orig

    def _clip_original_boxes(self) -> int:
        """Clip every record's boxes to its image once, and warn once with the count."""
        n_clipped = 0
        for rec in self.records:
            if not len(rec.boxes):
                continue
            if rec.size is None:
                rec.size = image_size(rec.path)
            h, w = rec.size
            clipped, changed = clip_boxes(as_boxes(rec.boxes), w, h)
            if changed:
                n_clipped += changed
                rec.boxes = clipped.numpy()
        if n_clipped:
            warnings.warn(f"{self.name}/{self.split}: {n_clipped} box(es) extended past their image and were "
                          "clipped to it", stacklevel=3)
        return n_clipped
