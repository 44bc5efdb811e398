"""Input encodings applied between data and model (Rao et al. 2023, Sec. 5 / supplement D; B-cos v2).

Datasets return images in [0, 1]; models never normalise internally, so the ``input`` tap is exactly
the encoded tensor. A model names its encoding in ``model.input_encoding``.
"""

from __future__ import annotations

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODINGS = ("imagenet", "bcos", "none")


def encode(images: Tensor, encoding: str) -> Tensor:
    """Encode images [N, 3, H, W] (or [3, H, W]) in [0, 1].

    "imagenet": (x - mean) / std per channel (vanilla and X-DNN models);
    "bcos": the 6 channels [r, g, b, 1-r, 1-g, 1-b] (B-cos networks, no normalisation);
    "none": unchanged.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown input encoding {encoding!r}; use one of {ENCODINGS}")
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"encode expects RGB images [N, 3, H, W] or [3, H, W], got {tuple(images.shape)}")
    if encoding == "none":
        return images
    if encoding == "bcos":
        return torch.cat([images, 1.0 - images], dim=-3)
    shape = (3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images - mean) / std
