"""One epoch of guided training and one evaluation pass (Rao et al. 2023, Eq. (1), Sec. 3.5 and 4).

Torchvision-reference style: `train_one_epoch` and `evaluate` take a model, a loader and settings and
return plain dicts; the run loop (`rightfocus.training.runner`) owns checkpoints and results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rightfocus.attributions import attribute_all_classes, attribution_context, attribution_from_tap
from rightfocus.data.boxes import boxes_to_masks
from rightfocus.data.collate import SEG_VOID
from rightfocus.data.encoding import encode
from rightfocus.losses import localisation_loss
from rightfocus.metrics import MetricAccumulator, onobject_epg


@dataclass(frozen=True)
class Guidance:
    """What the localisation term of Eq. (1) is: method at tap, loss, weight lambda. (Samples
    flagged ``invert_mask`` are guided to everything OUTSIDE their boxes: Waterbirds reversed task.)"""

    method: str
    tap: str
    loss: str
    lam: float


def _progress(iterable: Iterable, desc: str, enabled: bool) -> Iterable:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    # mininterval keeps papermill's --log-output readable (few lines, not one per batch)
    return tqdm(iterable, desc=desc, leave=False, mininterval=5.0)


def random_positive_class(labels: Tensor, generator: torch.Generator) -> Tensor:
    """One ground-truth class per image, drawn uniformly (Sec. 3.5); -1 for images without one."""
    noise = torch.rand(labels.shape, generator=generator)
    scores = torch.where(labels.cpu() > 0, noise, torch.full_like(noise, -1.0))
    choice = scores.argmax(1)
    return torch.where((labels.cpu() > 0).any(1), choice, torch.full_like(choice, -1))


def _has_box_of(boxes: Sequence[Tensor], classes: Tensor) -> Tensor:
    return torch.tensor([bool((b[:, 0].long() == int(c)).any()) if len(b) else False
                         for b, c in zip(boxes, classes.tolist())], dtype=torch.bool)


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    guidance: Guidance | None,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "train",
) -> dict[str, float]:
    """One pass over `loader`: BCE (mean) + lambda * SUM over the batch of the localisation loss.

    ONE forward pass per batch yields the logits and the tap's activation; the attribution of one
    random ground-truth class per image comes from those with ``create_graph=True`` (B-cos: forward
    and attribution inside the explanation mode, ``backward`` outside). Images whose chosen class has
    no box (limited annotations) contribute only to BCE. Returns mean losses and the epoch's time.
    """
    model.train()
    start = time.perf_counter()
    totals = {"loss": 0.0, "bce": 0.0, "loc": 0.0}
    batches = 0
    for batch in _progress(loader, desc, progress):
        images = encode(batch["image"].to(device), model.input_encoding)
        labels = batch["labels"].to(device)
        if guidance is None:
            logits = model(images)
            bce = F.binary_cross_entropy_with_logits(logits, labels)
            loc = torch.zeros((), device=device)
        else:
            targets = random_positive_class(labels, generator)
            use = (targets >= 0) & _has_box_of(batch["boxes"], targets)
            if guidance.tap == "input":
                images = images.requires_grad_(True)
            with attribution_context(model, guidance.method):
                logits, acts = model.forward_taps(images, [guidance.tap])
                maps = attribution_from_tap(logits, acts[guidance.tap], targets.clamp_min(0).to(device),
                                            guidance.method, create_graph=True) if use.any() else None
            bce = F.binary_cross_entropy_with_logits(logits, labels)
            if maps is None:
                loc = torch.zeros((), device=device)
            else:
                keep = use.nonzero().flatten()
                masks = boxes_to_masks([batch["boxes"][i] for i in keep.tolist()], targets[keep],
                                       tuple(images.shape[-2:]), invert=batch["invert_mask"][keep]).to(device)
                loc = localisation_loss(guidance.loss, maps[keep.to(device)], masks, reduction="sum")
        loss = bce + (guidance.lam * loc if guidance is not None else 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # outside the explanation mode (FACTS.md: exact guidance gradient)
        optimizer.step()
        totals["loss"] += float(loss.detach())
        totals["bce"] += float(bce.detach())
        totals["loc"] += float(loc.detach())
        batches += 1
    out = {k: v / max(batches, 1) for k, v in totals.items()}
    out["epoch_time_s"] = time.perf_counter() - start
    return out


def _seg_masks(batch: dict[str, Any], image_index: Tensor, class_index: Tensor, binary: bool
               ) -> tuple[Tensor, Tensor] | None:
    """(pairs that have a segmentation, their object masks), or None when the batch has none.
    `binary`: the segmentation marks the object with 1 (CUB/Waterbirds), else with class index + 1."""
    seg = batch.get("seg")
    if seg is None or not torch.is_tensor(seg):
        return None
    seg = seg[image_index]
    has = (seg != SEG_VOID).flatten(1).any(1)  # collate fills images without one with void
    target = torch.ones_like(class_index) if binary else class_index + 1
    return has, (seg == target[:, None, None]).float()


@torch.no_grad()
def _classify(model: torch.nn.Module, images: Tensor) -> Tensor:
    return model(images)


def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    pairs: Sequence[tuple[str, str]] = (),
    device: torch.device | str = "cpu",
    num_groups: int | None = None,
    binary_seg: bool = False,
    progress: bool = True,
    desc: str = "eval",
) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    """Classification metrics and, per (tap, method) in `pairs`, EPG / IoU / on-object EPG over
    EVERY ground-truth class of every image (Sec. 3.3; flat average over pairs).

    Returns ``{(None, None): classification, (tap, method): classification + localisation}``.
    Samples flagged ``invert_mask`` (Waterbirds reversed task) are scored against the complement of
    their boxes. `binary_seg`: segmentations mark the object with 1 (else class index + 1).
    """
    model.eval()
    cls_acc = MetricAccumulator(num_groups=num_groups)
    loc_acc = {p: MetricAccumulator() for p in pairs}
    onobj: dict[tuple[str, str], list[Tensor]] = {p: [] for p in pairs}
    for batch in _progress(loader, desc, progress):
        images = encode(batch["image"].to(device), model.input_encoding)
        labels = batch["labels"].to(device)
        groups = batch.get("group")
        cls_acc.add_classification(_classify(model, images), labels,
                                   torch.as_tensor(groups) if groups is not None and num_groups else None)
        for tap, method in pairs:
            maps, image_index, class_index = attribute_all_classes(model, images, labels, method, layer=tap)
            if not len(image_index):
                continue
            # pairs without a box of their class have no mask to score against
            sel = _has_box_of([batch["boxes"][i] for i in image_index.tolist()], class_index).nonzero().flatten()
            if not len(sel):
                continue
            ii, cc = image_index[sel], class_index[sel]
            invert = batch["invert_mask"][ii]
            masks = boxes_to_masks([batch["boxes"][i] for i in ii.tolist()], cc, tuple(images.shape[-2:]),
                                   invert=invert).to(maps.device)
            maps_sel = maps[sel.to(maps.device)]
            loc_acc[(tap, method)].add_localisation(maps_sel, masks)
            seg = _seg_masks(batch, ii, cc, binary_seg)
            if seg is not None:
                has = (seg[0] & ~invert).to(maps.device)  # on-object EPG is undefined for inverted masks
                if has.any():
                    onobj[(tap, method)].append(onobject_epg(maps_sel[has], masks[has], seg[1].to(maps.device)[has]))
    base = cls_acc.compute()
    out: dict[tuple[str | None, str | None], dict[str, Any]] = {(None, None): base}
    for p in pairs:
        res = dict(base)
        res.update(loc_acc[p].compute() if loc_acc[p]._epg else {})
        if onobj[p]:
            res["onobject_epg"] = float(torch.cat(onobj[p]).double().mean())
        out[p] = res
    return out


def _finite(value: Any) -> Any:
    """NaN (e.g. the accuracy of a group without examples) -> None, so metrics.jsonl is strict JSON."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def metrics_row(result: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A metrics.jsonl row (results contract) from an `evaluate` entry plus epoch/split/tap/... fields."""
    result = {k: _finite(v) for k, v in result.items()}
    row = {
        "f1": result.get("f1"),
        "map": result.get("map"),
        "epg": result.get("epg"),
        "iou": result.get("iou"),
        "iou_threshold": result.get("iou_threshold"),
        "onobj_epg": result.get("onobject_epg"),
        "accuracy": result.get("accuracy"),
        "group_acc": result.get("group_accuracy"),
        "worst_group_acc": result.get("worst_group_accuracy"),
        "pairs": result.get("pairs"),
    }
    row.update(fields)
    return row
