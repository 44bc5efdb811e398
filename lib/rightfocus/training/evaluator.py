"""One evaluation pass's metrics for both papers, and the one metrics-row schema.

A task's ``evaluation_step(batch)`` returns an `EvalBatch` (logits, labels, groups, attribution maps
with their masks per key, AIM's stage masks); `Evaluator` accumulates the batches and `compute`s:
classification (F1 / mAP for multi-label sets, accuracy for single-label sets, per-group and
worst-group accuracy), per key (MG: a (tap, method) pair, AIM: an attribution method) EPG, IoU at
the selected threshold (MG Sec. 3.3), on-object EPG (MG B.4), the profile's metric suite, and AIM's
mask activity (Table 15). `metrics_row` turns one result into a ``metrics.jsonl`` row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

import torch
from torch import Tensor

from rightfocus.metrics import MAP_METRICS, MetricAccumulator, onobject_epg
from rightfocus.metrics.registry import functions as metric_functions
from rightfocus.training.distributed import all_gather, gather_lists


@dataclass
class Localisation:
    """Attribution maps of (image, class) pairs [P, H, W] (fp32, detached) and the object masks they
    are scored against [P, H, W]; `seg` [P, H, W] the pairs' segmentations, read for the pairs that
    `on_object` [P] (bool) marks (on-object EPG)."""

    maps: Tensor
    masks: Tensor
    seg: Tensor | None = None
    on_object: Tensor | None = None


@dataclass
class EvalBatch:
    """What an evaluation step returns for one batch."""

    logits: Tensor                 #: [N, K] fp32
    labels: Tensor                 #: [N, K] multi-hot or [N] class indices
    groups: Tensor | None = None   #: [N] group ids (Waterbirds), scored when given
    index: Tensor | None = None    #: [N] dataset indices (per-sample rows)
    localisation: dict[Hashable, Localisation] = field(default_factory=dict)
    stage_masks: Sequence[Tensor] = ()  #: AIM's binary stage masks, one [N, 1, h, w] per stage
    merged: Tensor | None = None   #: AIM's merged mask [N, 1, h, w]


class Evaluator:
    """Accumulates `EvalBatch` es and computes the metrics of one pass.

    `keys`: the localisation keys scored. IoU (`iou`): per key at `iou_thresholds[key]` when given (a
    test split: the threshold validation selected), else the best of `iou_candidates` on this pass (a
    validation split), else `metrics.DEFAULT_IOU_THRESHOLD`. `suite`: further registered metrics of the
    same maps and masks. `num_groups`: the number of groups (default: the largest group id + 1).
    """

    def __init__(self, keys: Sequence[Hashable] = (), *, num_groups: int | None = None, iou: bool = True,
                 iou_candidates: Sequence[float] = (), iou_thresholds: Mapping[Hashable, float] | None = None,
                 suite: Sequence[str] = ()) -> None:
        self.keys = list(keys)
        self.classification = MetricAccumulator(num_groups=num_groups)
        fixed = dict(iou_thresholds or {})
        fns = metric_functions(suite)

        def accumulator(key: Hashable) -> MetricAccumulator:
            if not iou:
                return MetricAccumulator(suite=fns, iou=False)
            if key in fixed:
                return MetricAccumulator(iou_threshold=fixed[key], iou_candidates=iou_candidates, suite=fns)
            if iou_candidates:
                return MetricAccumulator(iou_threshold=None, iou_candidates=iou_candidates, suite=fns)
            return MetricAccumulator(suite=fns)

        self.localisation = {k: accumulator(k) for k in self.keys}
        self.onobject: dict[Hashable, list[Tensor]] = {k: [] for k in self.keys}
        self.index: list[Tensor] = []
        self.stage_shares: list[tuple[float, ...]] = []  # per image: share of active elements per stage
        self.merged_shares: list[float] = []

    def add(self, out: EvalBatch) -> None:
        self.classification.add_classification(out.logits, out.labels, out.groups)
        if out.index is not None:
            self.index.append(torch.as_tensor(out.index).reshape(-1))
        if out.stage_masks:
            self.stage_shares.extend(zip(*[m.flatten(1).float().mean(1).cpu().tolist() for m in out.stage_masks]))
            if out.merged is not None:
                self.merged_shares.extend((out.merged.flatten(1) > 0).float().mean(1).tolist())
        for key, loc in out.localisation.items():
            self.localisation[key].add_localisation(loc.maps, loc.masks)
            if loc.on_object is not None and loc.on_object.any():
                h = loc.on_object
                self.onobject[key].append(onobject_epg(loc.maps[h], loc.masks[h], loc.seg[h]))

    def gather(self) -> None:
        """Under torchrun: every rank's values (in rank order) on every rank, so `compute` gives one
        process's metrics."""
        for acc in (self.classification, *self.localisation.values()):
            names = [k for k, v in vars(acc).items() if isinstance(v, list) and k.startswith("_")]
            for k, v in gather_lists({k: getattr(acc, k) for k in names}).items():
                setattr(acc, k, v)
            acc._degenerate = int(sum(all_gather(acc._degenerate)))
        self.onobject = {k: gather_lists({"v": v})["v"] for k, v in self.onobject.items()}

    def compute(self) -> dict[Hashable | None, dict[str, Any]]:
        """``{None: classification (+ mask activity), key: that + the key's localisation metrics}``."""
        base = self.classification.compute()
        if self.stage_shares:
            per_stage = torch.tensor(self.stage_shares, dtype=torch.float64)
            base["stage_active"] = per_stage.mean(0).tolist()
            base["mask_active"] = float(per_stage.mean())
        if self.merged_shares:
            base["merged_active"] = float(torch.tensor(self.merged_shares).mean())
        out: dict[Hashable | None, dict[str, Any]] = {None: base}
        for key in self.keys:
            res = dict(base)
            acc = self.localisation[key]
            res.update(acc.compute() if acc._epg else {})
            if self.onobject[key]:
                res["onobject_epg"] = float(torch.cat(self.onobject[key]).double().mean())
            out[key] = res
        return out

    def per_sample(self) -> list[dict[str, Any]]:
        """One row per image: dataset index, label, prediction, correctness, group, EPG per key
        (``epg_<key>``; keys that score every image once) and the mean stage-mask activity."""
        logits, labels, groups = self.classification.classified()
        index, preds = torch.cat(self.index), logits.argmax(1)
        correct = preds == labels
        epgs = {k: self.localisation[k].epg_values() for k in self.keys}
        rows = []
        for i in range(len(labels)):
            row = {"index": int(index[i]), "label": int(labels[i]), "pred": int(preds[i]),
                   "correct": int(correct[i]), "group": None if groups is None else int(groups[i])}
            row.update({f"epg_{k}": float(v[i]) for k, v in epgs.items()})
            if self.stage_shares:
                row["mask_active"] = float(sum(self.stage_shares[i]) / len(self.stage_shares[i]))
            rows.append(row)
        return rows


# ---- metrics rows -------------------------------------------------------------------------------
#: the metric columns of every row (`store.METRIC_COLUMNS`) -> the `Evaluator` result key they hold
METRIC_FIELDS: dict[str, str] = {
    "f1": "f1", "map": "map", "epg": "epg", "iou": "iou", "iou_threshold": "iou_threshold",
    "onobj_epg": "onobject_epg", "accuracy": "accuracy", "group_acc": "group_accuracy",
    "worst_group_acc": "worst_group_accuracy",
}
#: the columns each paper's rows add after them
MG_COLUMNS = ("pairs",)
AIM_COLUMNS = ("mask_active", "merged_active", "stage_active")


def _finite(value: Any) -> Any:
    """NaN (e.g. the accuracy of a group without examples) -> None, so metrics.jsonl is strict JSON."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def metrics_row(result: Mapping[str, Any], columns: Sequence[str] = (), **fields: Any) -> dict[str, Any]:
    """A metrics.jsonl row: the metric columns (`METRIC_FIELDS`) and the paper's `columns` from an
    `Evaluator` result, then the metric suite's values (`metrics.MAP_METRICS` order), then `fields`
    (epoch, split, tap, method, checkpoint, training statistics, ...)."""
    result = {k: _finite(v) for k, v in result.items()}
    row = {name: result.get(key) for name, key in METRIC_FIELDS.items()}
    row.update({c: result.get(c) for c in columns})
    row.update({k: result[k] for k in MAP_METRICS if k in result and k not in row})
    row.update(fields)
    return row
