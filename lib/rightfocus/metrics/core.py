"""Evaluation metrics: localisation (EPG, IoU, on-object EPG; Rao et al. 2023 Sec. 3.3, B.4) and
classification (micro F1, macro mAP, accuracy, per-group and worst-group accuracy), batched, plus a
streaming `MetricAccumulator` over a data loader.

Localisation metrics take the raw attribution maps ALREADY upsampled to the masks' size [N, H, W]
(``attribute(..., upsample=True)``) and binary masks [N, H, W].
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

#: positive attribution sums below this make EPG degenerate: counted as 0 (reference code)
EPG_EPS = 1e-7
#: the IoU binarisation threshold of the reference code, used where none was selected
DEFAULT_IOU_THRESHOLD = 0.5
#: the candidate IoU thresholds a training run selects from on its validation split (MG Sec. 3.3: "the
#: threshold parameter is selected via a held-out set"); a run config overrides them with
#: ``extra.iou_thresholds``
IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


def _same_shape(maps: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    if maps.dim() != 3 or maps.shape != masks.shape:
        raise ValueError(
            f"maps and masks must both be [N, H, W] of one size, got {tuple(maps.shape)} and "
            f"{tuple(masks.shape)}; upsample the maps first (attribute(..., upsample=True))"
        )
    return maps, masks.to(maps.dtype)


# ----------------------------------------------------------------------------- localisation


def no_positive_attribution(maps: Tensor) -> Tensor:
    """Bool [N]: maps whose positive sum is < 1e-7 (EPG counts them as 0; count them with ``.sum()``)."""
    return torch.relu(maps).flatten(1).sum(1) < EPG_EPS


def epg(maps: Tensor, masks: Tensor) -> Tensor:
    """Energy pointing game, Eq. (2): sum(M * A+) / sum(A+) per map [N]; 0 when sum(A+) < 1e-7."""
    maps, masks = _same_shape(maps, masks)
    positive = torch.relu(maps)
    inside = (masks * positive).flatten(1).sum(1)
    total = positive.flatten(1).sum(1)
    return torch.where(total < EPG_EPS, torch.zeros_like(total), inside / total.clamp_min(EPG_EPS))


def onobject_epg(maps: Tensor, box_masks: Tensor, seg_masks: Tensor) -> Tensor:
    """On-object EPG (Rao et al. 2023, supplement B.4): the positive attribution inside the object's
    segmentation AND its box, relative to the positive attribution inside the box [N]. Attributions
    outside the box do not count. 0 when the in-box positive sum is < 1e-7."""
    maps, box_masks = _same_shape(maps, box_masks)
    _, seg_masks = _same_shape(maps, seg_masks)
    in_box = torch.relu(maps) * box_masks
    on_object = (in_box * seg_masks).flatten(1).sum(1)
    total = in_box.flatten(1).sum(1)
    return torch.where(total < EPG_EPS, torch.zeros_like(total), on_object / total.clamp_min(EPG_EPS))


def _normalised(maps: Tensor) -> Tensor:
    """Positive part, min-max normalised per map (a constant map becomes all 0)."""
    positive = torch.relu(maps)
    low = positive.flatten(1).amin(1)[:, None, None]
    span = positive.flatten(1).amax(1)[:, None, None] - low
    return (positive - low) / torch.where(span > 0, span, torch.ones_like(span))


def binarise(maps: Tensor, threshold: float = DEFAULT_IOU_THRESHOLD) -> Tensor:
    """Positive part, min-max normalised per map, strictly above `threshold` -> bool [N, H, W].
    A constant map (e.g. all zero) has nothing above any threshold in [0, 1)."""
    return _normalised(maps) > threshold


def _iou_of(predicted: Tensor, target: Tensor, dtype: torch.dtype) -> Tensor:
    inter = (predicted & target).flatten(1).sum(1)
    union = (predicted | target).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter, dtype=dtype)).to(dtype)


def iou(maps: Tensor, masks: Tensor, threshold: float = DEFAULT_IOU_THRESHOLD) -> Tensor:
    """IoU of the binarised map (`binarise`) with the mask, per map [N]; 0 when the union is empty.

    The reference code fixes ``threshold = 0.5``; the paper text selects it on held-out data
    (`select_iou_threshold`; training runs do, `MetricAccumulator`)."""
    maps, masks = _same_shape(maps, masks)
    return _iou_of(binarise(maps, threshold), masks > 0, maps.dtype)


def iou_per_threshold(maps: Tensor, masks: Tensor, thresholds: Sequence[float]) -> Tensor:
    """IoU of every map at every threshold [N, T] (the maps normalised once)."""
    maps, masks = _same_shape(maps, masks)
    normalised, target = _normalised(maps), masks > 0
    return torch.stack([_iou_of(normalised > t, target, maps.dtype) for t in thresholds], dim=1)


def best_iou_threshold(ious: Tensor, candidates: Sequence[float]) -> float:
    """The candidate with the highest mean of `ious` [N, len(candidates)] (per-map IoU at each
    candidate); ties go to the first candidate."""
    if len(candidates) == 0:
        raise ValueError("selecting an IoU threshold needs at least one candidate threshold")
    if ious.dim() != 2 or ious.shape[1] != len(candidates) or ious.shape[0] == 0:
        raise ValueError(f"ious must be [N > 0, {len(candidates)}] (maps x candidates), got {tuple(ious.shape)}")
    return float(candidates[int(torch.argmax(ious.double().mean(0)))])


def select_iou_threshold(maps: Tensor, masks: Tensor, candidates: Sequence[float]) -> float:
    """The candidate threshold with the highest mean IoU on (held-out) maps, as the paper text says
    (Sec. 3.3, following [20]); ties go to the first candidate."""
    if len(candidates) == 0:
        raise ValueError("select_iou_threshold needs at least one candidate threshold")
    return best_iou_threshold(iou_per_threshold(maps, masks, candidates), candidates)


# ----------------------------------------------------------------------------- classification


def f1(logits: Tensor, labels: Tensor) -> float:
    """Micro F1 over all image x class cells, prediction = logit >= 0 (reference code)."""
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must have one shape")
    predicted, target = logits >= 0, labels > 0
    tp = int((predicted & target).sum())
    wrong = int((predicted ^ target).sum())  # false positives + false negatives
    return 2 * tp / (2 * tp + wrong) if (2 * tp + wrong) > 0 else 0.0


def _dense_ranks(scores: Tensor) -> Tensor:
    """Per column, scores -> ranks in [0, 1] keeping order and ties (torchmetrics applies a sigmoid to
    scores outside [0, 1], which would tie large logits in float32)."""
    ranks = torch.empty_like(scores, dtype=torch.float64)
    for k in range(scores.shape[1]):
        _, inverse = torch.unique(scores[:, k], return_inverse=True)
        ranks[:, k] = inverse.double() / max(int(inverse.max()) + 1, 1)
    return ranks


def average_precision_per_class(scores: Tensor, labels: Tensor) -> Tensor:
    """Average precision of every class [K] (scikit-learn's definition, via torchmetrics); NaN for
    classes without a positive example."""
    if scores.shape != labels.shape or scores.dim() != 2:
        raise ValueError(f"scores and labels must both be [N, K], got {tuple(scores.shape)} and {tuple(labels.shape)}")
    # imported here: torchmetrics costs ~2.4 s of imports (scipy.signal, its audio metrics), which AIM
    # runs and other callers without AP need not pay
    from torchmetrics.functional.classification import multilabel_average_precision

    target = (labels > 0).long()
    with warnings.catch_warnings():  # classes without positives are set to NaN below
        warnings.filterwarnings("ignore", message="No positive samples")
        ap = multilabel_average_precision(_dense_ranks(scores), target, num_labels=scores.shape[1], average="none")
    return torch.where(target.sum(0) > 0, ap.double(), torch.full_like(ap, float("nan"), dtype=torch.float64))


def mean_average_precision(scores: Tensor, labels: Tensor) -> float:
    """Macro mAP: the mean of per-class average precision over classes with at least one positive
    (the paper's Fig. B3; not in the reference code)."""
    ap = average_precision_per_class(scores, labels)
    present = ~torch.isnan(ap)
    if not bool(present.any()):
        raise ValueError("mean_average_precision: no class has a positive example")
    return float(ap[present].mean())


def _class_index(values: Tensor) -> Tensor:
    """Logits/one-hot [N, K>1] -> argmax; a single logit [N] or [N, 1] -> (logit >= 0); ints stay."""
    if values.dim() == 2 and values.shape[1] > 1:
        return values.argmax(1)
    values = values.reshape(-1)
    return (values >= 0).long() if values.is_floating_point() else values.long()


def _class_labels(labels: Tensor) -> Tensor:
    if labels.dim() == 2 and labels.shape[1] > 1:
        return labels.argmax(1)
    return labels.reshape(-1).long()


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy of a single-label task (`logits` [N, K] or [N]; `labels` indices or one-hot)."""
    return float((_class_index(logits) == _class_labels(labels)).double().mean())


def group_accuracies(logits: Tensor, labels: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """Accuracy within each group [num_groups] (float64); NaN for a group without examples."""
    correct = (_class_index(logits) == _class_labels(labels)).double()
    groups = groups.reshape(-1).long()
    if groups.numel() and (int(groups.min()) < 0 or int(groups.max()) >= num_groups):
        raise ValueError(f"group ids must lie in [0, {num_groups}), got {sorted(set(groups.tolist()))}")
    hits = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, groups, correct)
    counts = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, groups, torch.ones_like(correct))
    return torch.where(counts > 0, hits / counts.clamp_min(1), torch.full_like(hits, float("nan")))


def worst_group_accuracy(logits: Tensor, labels: Tensor, groups: Tensor, num_groups: int) -> float:
    """Minimum accuracy over the groups that have examples (AIM's definition; MG Table 1 reports group 3
    instead, read it from `group_accuracies`)."""
    accs = group_accuracies(logits, labels, groups, num_groups)
    return float(accs[~torch.isnan(accs)].min())


# ----------------------------------------------------------------------------- streaming


class MetricAccumulator:
    """Collects per-batch results over a data loader and returns one dict.

    ``add_classification(logits, labels, groups=None)`` per batch of images and
    ``add_localisation(maps, masks, seg_masks=None)`` per batch of (image, class) pairs; `compute()`
    returns whichever of f1, map (multi-label), accuracy (single-label), group_accuracy,
    worst_group_accuracy, epg, epg_degenerate, iou, iou_threshold, iou_by_threshold, onobject_epg and
    pairs apply. EPG and IoU are averaged flat over all pairs (reference code). IoU is kept for every
    candidate threshold so that one can be selected without storing maps: ``iou_threshold=None``
    selects the candidate with the best mean IoU over the pairs seen (a validation split, MG Sec. 3.3;
    `best_iou_threshold`), a number fixes it (a test split, with the value selected on validation);
    ``iou`` / ``iou_threshold`` report the IoU at that threshold and the threshold (``iou=False``: no
    IoU is computed or reported). `suite`: further
    metrics ``{name: fn(maps, masks) -> [N]}`` (`rightfocus.metrics.registry.functions`) averaged over
    the pairs (keys = names).
    """

    def __init__(
        self, iou_threshold: float | None = DEFAULT_IOU_THRESHOLD, iou_candidates: Sequence[float] = (),
        num_groups: int | None = None, suite: Mapping[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        iou: bool = True,
    ) -> None:
        if iou and iou_threshold is None and len(iou_candidates) == 0:
            raise ValueError("MetricAccumulator(iou_threshold=None) selects among iou_candidates: give some "
                             "(e.g. metrics.IOU_THRESHOLDS)")
        self.iou_threshold = None if iou_threshold is None else float(iou_threshold)
        self.candidates = sorted({float(c) for c in iou_candidates})
        fixed = set() if self.iou_threshold is None else {self.iou_threshold}
        self.thresholds = sorted({*fixed, *self.candidates}) if iou else []
        self.num_groups = num_groups
        self._logits: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._groups: list[Tensor] = []
        self._epg: list[Tensor] = []
        self._degenerate = 0
        self._iou: list[Tensor] = []
        self._onobject: list[Tensor] = []
        self.suite = dict(suite or {})
        self._suite: list[Tensor] = []  # [pairs, len(suite)] per batch

    def add_classification(self, logits: Tensor, labels: Tensor, groups: Tensor | None = None) -> None:
        self._logits.append(logits.detach().cpu())
        self._labels.append(labels.detach().cpu())
        if groups is not None:
            self._groups.append(groups.detach().cpu().reshape(-1))

    def add_localisation(self, maps: Tensor, masks: Tensor, seg_masks: Tensor | None = None) -> None:
        maps, masks = maps.detach(), masks.detach()
        self._epg.append(epg(maps, masks).cpu())
        self._degenerate += int(no_positive_attribution(maps).sum())
        if self.thresholds:
            self._iou.append(iou_per_threshold(maps, masks, self.thresholds).cpu())
        if seg_masks is not None:
            self._onobject.append(onobject_epg(maps, masks, seg_masks.detach()).cpu())
        if self.suite:
            self._suite.append(torch.stack([fn(maps.float(), masks) for fn in self.suite.values()], 1).cpu())

    def classified(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """(logits, labels, groups or None) of every image added so far, in order."""
        groups = torch.cat(self._groups) if self._groups else None
        return torch.cat(self._logits), torch.cat(self._labels), groups

    def epg_values(self) -> Tensor:
        """EPG of every (image, class) pair added so far, in order [P]."""
        return torch.cat(self._epg)

    def iou_by_threshold(self) -> dict[float, float]:
        """Mean IoU over all pairs at every kept threshold."""
        means = torch.cat(self._iou).double().mean(0)
        return {t: float(v) for t, v in zip(self.thresholds, means)}

    def compute(self) -> dict:
        out: dict = {}
        if self._logits:
            logits, labels = torch.cat(self._logits), torch.cat(self._labels)
            if logits.dim() == 2 and logits.shape == labels.shape and labels.shape[1] > 1:
                out["f1"] = f1(logits, labels)
                out["map"] = mean_average_precision(logits, labels)
            single_label = labels.dim() == 1 or labels.shape[1] == 1 or bool((labels.sum(1) == 1).all())
            if single_label:
                out["accuracy"] = accuracy(logits, labels)
            if self._groups:
                groups = torch.cat(self._groups)
                n = self.num_groups if self.num_groups is not None else int(groups.max()) + 1
                accs = group_accuracies(logits, labels, groups, n)
                out["group_accuracy"] = [float(a) for a in accs]
                out["worst_group_accuracy"] = float(accs[~torch.isnan(accs)].min())
        if self._epg:
            out["pairs"] = int(sum(len(e) for e in self._epg))
            out["epg"] = float(torch.cat(self._epg).double().mean())
            out["epg_degenerate"] = self._degenerate
        if self._iou:
            by_threshold = self.iou_by_threshold()
            chosen = self.iou_threshold
            if chosen is None:  # selected on these pairs (validation)
                columns = [self.thresholds.index(c) for c in self.candidates]
                chosen = best_iou_threshold(torch.cat(self._iou)[:, columns], self.candidates)
            out["iou"] = by_threshold[chosen]
            out["iou_threshold"] = chosen
            out["iou_by_threshold"] = by_threshold
        if self._onobject:
            out["onobject_epg"] = float(torch.cat(self._onobject).double().mean())
        if self._suite:
            means = torch.cat(self._suite).double().mean(0)
            out.update({name: float(v) for name, v in zip(self.suite, means)})
        return out
