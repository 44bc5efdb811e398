"""Localisation scores of attribution maps as the inspector reads them out: EPG, IoU and on-object EPG
(`rightfocus.metrics`) of one map, and per-image EPG of a run over a split.

Masks follow `rightfocus.data.masks`: the union of the class's boxes (complemented for ``invert_mask``
samples), or the object segmentation where the paper's rule or the selection asks for it (Rao et al.
2023 Sec. 3.3 and supplement B.4; AIM's EPG against object masks).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rightfocus.data.masks import box_mask, localisation_mask, localisation_masks, localisation_source, object_mask


def map_metrics(heatmap: Tensor, sample: dict[str, Any], target: int, *, multi_label: bool, paper: str,
                mask_source: str, iou_threshold: float, readout: Sequence[str] = ()) -> dict[str, Any]:
    """EPG, IoU (at `iou_threshold`), on-object EPG (None without a segmentation, for inverted masks
    and for classes without a box), the mask EPG / IoU used ("boxes" | "seg") and each `readout` metric."""
    from rightfocus.metrics import epg, iou, onobject_epg, score

    box, obj = localisation_masks(sample, target, multi_label)
    source = localisation_source(paper, obj is not None, mask_source)
    mask = localisation_mask(box, obj, source)
    m = heatmap[None].float()
    onobj = None
    if obj is not None and not bool(sample.get("invert_mask", False)) and float(box.sum()) > 0:
        onobj = float(onobject_epg(m, box[None], obj[None])[0])
    out = {"epg": float(epg(m, mask[None])[0]), "iou": float(iou(m, mask[None], iou_threshold)[0]),
           "onobj_epg": onobj, "mask": source}
    out.update({k: float(v[0]) for k, v in score(tuple(readout), m, mask[None].float()).items()})
    return out


def image_epg(model: torch.nn.Module, dataset: Any, method: str, tap: str, *, multi_label: bool, paper: str,
              mask_source: str, device: str = "cpu", batch_size: int = 32) -> pd.DataFrame:
    """Per-image EPG over `dataset`: the mean over the image's ground-truth classes that have boxes (the
    evaluation's pairs); columns index, epg (NaN without such a class)."""
    from rightfocus.attributions import attribute_all_classes
    from rightfocus.data.encoding import encode
    from rightfocus.metrics import epg

    values = np.full(len(dataset), np.nan)
    for start in range(0, len(dataset), batch_size):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        images = encode(torch.stack([s["image"] for s in samples]).to(device), model.input_encoding)
        labels = torch.stack([s["labels"] for s in samples]).to(device)
        maps, ii, cc = attribute_all_classes(model, images, labels, method, layer=tap)
        per_image: dict[int, list[float]] = {}
        for p, (i, c) in enumerate(zip(ii.tolist(), cc.tolist())):
            box = box_mask(samples[i], c)
            if not bool(samples[i].get("invert_mask", False)) and float(box.sum()) == 0:
                continue  # no box of this class: not an evaluation pair
            obj = object_mask(samples[i].get("seg"), c, multi_label)
            mask = localisation_mask(box, obj, localisation_source(paper, obj is not None, mask_source))
            per_image.setdefault(i, []).append(float(epg(maps[p:p + 1].cpu(), mask[None])[0]))
        for i, v in per_image.items():
            values[start + i] = float(np.mean(v))
    return pd.DataFrame({"index": np.arange(len(dataset)), "epg": values})
