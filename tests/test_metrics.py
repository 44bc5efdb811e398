"""Metrics: F1 / mAP / accuracy against scikit-learn (and torchmetrics), EPG / IoU / on-object EPG on
hand-made maps with hand-computed values and edge cases, and the streaming accumulator against the
metrics on the concatenated data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from rightfocus.metrics import (
    MetricAccumulator,
    accuracy,
    average_precision_per_class,
    epg,
    f1,
    group_accuracies,
    iou,
    mean_average_precision,
    no_positive_attribution,
    onobject_epg,
    select_iou_threshold,
    worst_group_accuracy,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)[None]


def _multilabel(seed=0, n=40, k=6):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, k, generator=g) < 0.3).float()
    labels[torch.arange(k), torch.arange(k)] = 1  # every class has a positive
    logits = torch.randn(n, k, generator=g) + 1.5 * labels
    return logits, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_equals_sklearn_micro(seed):
    logits, labels = _multilabel(seed)
    logits[0, :3] = 0.0  # logit exactly 0 counts as positive
    expected = f1_score(labels.numpy(), (logits >= 0).numpy(), average="micro")
    assert f1(logits, labels) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_map_equals_sklearn_macro(scale):
    logits, labels = _multilabel(3)
    logits = logits * scale  # at 60x, float32 sigmoids tie; ranks must not
    expected = average_precision_score(labels.numpy(), logits.double().numpy(), average="macro")
    assert mean_average_precision(logits, labels) == pytest.approx(expected, abs=1e-6)  # torchmetrics: float32


def test_map_with_ties_and_a_class_without_positives():
    logits, labels = _multilabel(4)
    logits = torch.round(logits)  # many ties
    labels[:, 2] = 0
    ap = average_precision_per_class(logits, labels)
    assert torch.isnan(ap[2]) and not torch.isnan(ap[[0, 1, 3, 4, 5]]).any()
    keep = [0, 1, 3, 4, 5]
    expected = average_precision_score(labels[:, keep].numpy(), logits[:, keep].numpy(), average="macro")
    assert mean_average_precision(logits, labels) == pytest.approx(expected, abs=1e-6)  # torchmetrics: float32


def test_accuracy_and_groups_equal_sklearn():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(50, 2, generator=g)
    labels = torch.randint(0, 2, (50,), generator=g)
    groups = torch.randint(0, 4, (50,), generator=g)
    preds = logits.argmax(1)
    assert accuracy(logits, labels) == pytest.approx(accuracy_score(labels, preds))
    assert accuracy(logits, torch.nn.functional.one_hot(labels, 2)) == pytest.approx(accuracy_score(labels, preds))
    accs = group_accuracies(logits, labels, groups, 5)
    for k in range(4):
        sel = groups == k
        assert float(accs[k]) == pytest.approx(accuracy_score(labels[sel], preds[sel]))
    assert torch.isnan(accs[4])  # an empty group
    assert worst_group_accuracy(logits, labels, groups, 5) == pytest.approx(float(accs[:4].min()))
    # one logit per image: positive when >= 0
    assert accuracy(torch.tensor([0.0, -1.0, 2.0]), torch.tensor([1, 1, 1])) == pytest.approx(2 / 3)


def test_epg_hand_values_and_degenerate_maps():
    assert float(epg(t([[1, 2], [3, -4]]), t([[1, 0], [0, 0]]))[0]) == pytest.approx(1 / 6)
    assert float(epg(t([[1, 2], [3, -4]]), t([[1, 1], [1, 1]]))[0]) == pytest.approx(1.0)
    assert float(epg(t([[1, 2], [3, -4]]), t([[0, 0], [0, 0]]))[0]) == 0.0
    zero = t([[0, 0], [0, -1]])
    assert float(epg(zero, t([[1, 0], [0, 0]]))[0]) == 0.0
    maps = torch.cat([t([[1, 2], [3, -4]]), zero, t([[1e-8, 0], [0, 0]])])
    assert no_positive_attribution(maps).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="upsample"):
        epg(torch.zeros(1, 2, 2), torch.zeros(1, 4, 4))


def test_iou_hand_values():
    m = t([[0, 1], [1, 0]])
    a = t([[0, 1], [0.6, 0.4]])
    assert float(iou(a, m)[0]) == pytest.approx(1.0)
    assert float(iou(a, m, 0.7)[0]) == pytest.approx(0.5)
    assert float(iou(a, m, 0.3)[0]) == pytest.approx(2 / 3)
    # strictly above the threshold: a normalised value of exactly .5 is out
    assert float(iou(t([[1, 0.5], [0, 0]]), t([[1, 1], [0, 0]]))[0]) == pytest.approx(0.5)
    # positive part BEFORE min-max: raw min-max would give [0, 1, .917, .833] and 2/3 at .4
    assert float(iou(t([[-5, 1], [0.5, 0]]), m, 0.4)[0]) == pytest.approx(1.0)
    assert float(iou(t([[0, 0], [0, 0]]), m)[0]) == 0.0  # constant map: nothing selected
    assert float(iou(t([[0, 0], [0, 0]]), t([[0, 0], [0, 0]]))[0]) == 0.0  # empty union


def test_select_iou_threshold():
    a, m = t([[0, 1], [0.6, 0.4]]), t([[0, 1], [1, 0]])
    assert select_iou_threshold(a, m, [0.3, 0.5, 0.7]) == 0.5
    assert select_iou_threshold(a, m, [0.7, 0.3]) == 0.3


def _sklearn_iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float) -> np.ndarray:
    """Per-map IoU by scikit-learn's Jaccard score of (positive part, min-max normalised, > threshold)."""
    from sklearn.metrics import jaccard_score

    out = []
    for a, m in zip(maps.numpy(), masks.numpy()):
        pos = np.maximum(a, 0)
        span = pos.max() - pos.min()
        pred = ((pos - pos.min()) / (span if span > 0 else 1)) > threshold
        out.append(jaccard_score(m.ravel() > 0, pred.ravel(), zero_division=0))
    return np.array(out)


def test_accumulator_selects_the_iou_threshold_on_validation_and_applies_it_on_test():
    """Maps whose object pixels sit at ~0.3 of the peak: 0.5 is not the best threshold. With
    iou_threshold=None the accumulator picks the candidate with scikit-learn's best mean IoU on these
    (validation) pairs; a test accumulator given that threshold reports scikit-learn's IoU there."""
    g = torch.Generator().manual_seed(3)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        masks = (torch.rand(n, 12, 12, generator=g) < 0.35).float()
        peak = torch.rand(n, 12, 12, generator=g) < 0.08
        inside = 0.3 + 0.05 * torch.rand(n, 12, 12, generator=g) + 0.65 * peak.float()
        maps = torch.where(masks > 0, inside, 0.12 * torch.rand(n, 12, 12, generator=g))
        return maps, masks

    candidates = [0.1, 0.25, 0.5, 0.75]
    maps, masks = split(10)
    oracle = {c: _sklearn_iou(maps, masks, c).mean() for c in candidates}
    best = max(candidates, key=lambda c: oracle[c])
    assert best != 0.5 and oracle[best] > oracle[0.5] + 0.1
    val = MetricAccumulator(iou_threshold=None, iou_candidates=candidates)
    val.add_localisation(maps[:4], masks[:4])
    val.add_localisation(maps[4:], masks[4:])
    out = val.compute()
    assert out["iou_threshold"] == best == select_iou_threshold(maps, masks, candidates)
    assert out["iou"] == pytest.approx(oracle[best], abs=1e-6)
    test_maps, test_masks = split(6)
    test = MetricAccumulator(iou_threshold=out["iou_threshold"])
    test.add_localisation(test_maps, test_masks)
    res = test.compute()
    assert res["iou_threshold"] == best
    assert res["iou"] == pytest.approx(_sklearn_iou(test_maps, test_masks, best).mean(), abs=1e-6)
    with pytest.raises(ValueError, match="iou_candidates"):
        MetricAccumulator(iou_threshold=None)


def test_onobject_epg_hand_value():
    box, seg = t([[1, 1], [1, 0]]), t([[1, 0], [0, 1]])
    assert float(onobject_epg(t([[1, 2], [3, 4]]), box, seg)[0]) == pytest.approx(1 / 6)
    # attributions outside the box do not count
    assert float(onobject_epg(t([[1, 2], [3, 400]]), box, seg)[0]) == pytest.approx(1 / 6)
    assert float(onobject_epg(t([[0, 0], [0, 4]]), box, seg)[0]) == 0.0


def test_accumulator_equals_metrics_on_concatenated_batches():
    logits, labels = _multilabel(6, n=20)
    g = torch.Generator().manual_seed(7)
    maps = torch.randn(9, 8, 8, generator=g)
    maps[3] = 0
    masks = (torch.rand(9, 8, 8, generator=g) < 0.4).float()
    acc = MetricAccumulator(iou_threshold=0.5, iou_candidates=[0.3, 0.7])
    acc.add_classification(logits[:12], labels[:12])
    acc.add_classification(logits[12:], labels[12:])
    acc.add_localisation(maps[:4], masks[:4])
    acc.add_localisation(maps[4:], masks[4:])
    out = acc.compute()
    assert out["f1"] == pytest.approx(f1(logits, labels))
    assert out["map"] == pytest.approx(mean_average_precision(logits, labels))
    assert "accuracy" not in out  # multi-label
    assert out["pairs"] == 9 and out["epg_degenerate"] == 1
    assert out["epg"] == pytest.approx(float(epg(maps, masks).mean()), abs=1e-6)
    assert out["iou"] == pytest.approx(float(iou(maps, masks).mean()), abs=1e-6)
    assert out["iou_by_threshold"][0.3] == pytest.approx(float(iou(maps, masks, 0.3).mean()), abs=1e-6)
    assert out["iou_threshold"] == 0.5


def test_accumulator_groups():
    logits = torch.tensor([[2.0, 0], [0, 1], [1, 0], [0, 3]])
    labels = torch.tensor([0, 1, 1, 0])
    acc = MetricAccumulator(num_groups=4)
    acc.add_classification(logits, labels, groups=torch.tensor([0, 0, 3, 3]))
    out = acc.compute()
    assert out["accuracy"] == 0.5
    assert out["group_accuracy"][0] == 1.0 and out["group_accuracy"][3] == 0.0
    assert np.isnan(out["group_accuracy"][1]) and out["worst_group_accuracy"] == 0.0
