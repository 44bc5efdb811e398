"""Joint image / box / mask transforms: resize, random resized crop and horizontal flip that MOVE the
boxes and the segmentation with the image (cropping the image alone would leave the boxes where they were).

Images are uint8 or float tensors [3, H, W]; boxes float [n, 5] (class, x0, y0, x1, y1), end exclusive,
kept as floats here (rounding happens once, at the end, in the dataset); seg int [H, W] or None.
Images are resized bilinearly with antialiasing (like PIL / torchvision `Resize`), masks with
"nearest-exact" (the source pixel under each output pixel's centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import functional as TF


def as_size(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(H, W) from an int (square) or a pair."""
    if isinstance(size, int):
        return (size, size)
    if len(size) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size!r}")
    return (int(size[0]), int(size[1]))


def center_crop_geometry(image_hw: tuple[int, int], size: tuple[int, int], ratio: float
                         ) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resize-shorter-side + centre crop, as torchvision's ``Resize(s)`` then ``CenterCrop(size)``
    compute it: the shorter side becomes ``s = round(max(size) / ratio)`` (ratio 0.875: torchvision's
    ImageNet evaluation presets, 256 -> 224 and 342 -> 299), the longer one
    ``int(s * long / short)`` (keeping the aspect ratio), and the crop window is centred with
    ``round((resized - crop) / 2)``. Returns ((resized H, resized W), (top, left))."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"center-crop ratio must be in (0, 1] (crop side / resized shorter side), got {ratio}")
    h, w = int(image_hw[0]), int(image_hw[1])
    ch, cw = size
    short = int(round(max(ch, cw) / ratio))
    rh, rw = (int(short * h / w), short) if w <= h else (short, int(short * w / h))
    return (rh, rw), (int(round((rh - ch) / 2.0)), int(round((rw - cw) / 2.0)))


def resize_seg(seg: Tensor, size: tuple[int, int]) -> Tensor:
    """Label map resized by "nearest-exact" (each output pixel takes the label under its centre)."""
    return F.interpolate(seg[None, None].float(), size=size, mode="nearest-exact")[0, 0].to(seg.dtype)


def resize(image: Tensor, boxes: Tensor, seg: Tensor | None, size: tuple[int, int]
           ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Resize to `size` = (H, W) without keeping the aspect ratio (as the MG reference code does);
    boxes are scaled by the same factors. uint8 images are returned as float in [0, 1] (resampling in
    float avoids a costly rounding step and keeps precision)."""
    h, w = image.shape[-2:]
    if (h, w) == tuple(size):
        return image, boxes, seg
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    out_h, out_w = size
    image = TF.resize(image, [out_h, out_w], antialias=True)
    boxes = boxes.clone()
    boxes[:, [1, 3]] *= out_w / w
    boxes[:, [2, 4]] *= out_h / h
    return image, boxes, None if seg is None else resize_seg(seg, size)


def resized_crop(image: Tensor, boxes: Tensor, seg: Tensor | None, top: int, left: int, height: int,
                 width: int, size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor | None]:
    """Crop the window (top, left, height, width) and resize it to `size`; boxes are shifted and scaled
    with the window (and may then extend past the image: the dataset clips them)."""
    image = image[..., top:top + height, left:left + width]
    boxes = boxes.clone()
    boxes[:, [1, 3]] -= left
    boxes[:, [2, 4]] -= top
    if seg is not None:
        seg = seg[top:top + height, left:left + width]
    return resize(image, boxes, seg, size)


def hflip(image: Tensor, boxes: Tensor, seg: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Mirror left-right: x -> W - x, so an end-exclusive box [x0, x1) becomes [W - x1, W - x0)."""
    w = image.shape[-1]
    boxes = boxes.clone()
    x0 = boxes[:, 1].clone()
    boxes[:, 1] = w - boxes[:, 3]
    boxes[:, 3] = w - x0
    return image.flip(-1), boxes, None if seg is None else seg.flip(-1)


@dataclass(frozen=True)
class TrainTransform:
    """Training augmentation (MG supplement D.1.2, Waterbirds: random cropping and horizontal
    flipping): torchvision's RandomResizedCrop parameters, then a flip with probability `flip`.
    Uses torch's global RNG, so DataLoader worker seeding makes it reproducible."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    crop: bool = True

    def __call__(self, image: Tensor, boxes: Tensor, seg: Tensor | None, size: tuple[int, int]
                 ) -> tuple[Tensor, Tensor, Tensor | None]:
        if self.crop:
            top, left, h, w = RandomResizedCrop.get_params(image, list(self.scale), list(self.ratio))
            image, boxes, seg = resized_crop(image, boxes, seg, top, left, h, w, size)
        else:
            image, boxes, seg = resize(image, boxes, seg, size)
        if self.flip > 0 and float(torch.rand(())) < self.flip:
            image, boxes, seg = hflip(image, boxes, seg)
        return image, boxes, seg


def make_train_transform(spec: bool | dict | TrainTransform | None) -> TrainTransform | None:
    """`train_transform` option: False/None (off), True (defaults) or a dict of `TrainTransform` fields."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return TrainTransform()
    if isinstance(spec, TrainTransform):
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"scale", "ratio", "flip", "crop"}
        if unknown:
            raise ValueError(f"unknown train_transform keys {sorted(unknown)}; use scale, ratio, flip, crop")
        return TrainTransform(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
    raise ValueError(f"train_transform must be True/False or a dict of scale/ratio/flip/crop, got {spec!r}")
