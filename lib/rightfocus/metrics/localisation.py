"""Localisation metrics beyond EPG and IoU, batched over [N, H, W] attribution maps and binary masks
of one size (any device; pass float64 maps for float64 arithmetic).

Each function returns one score per map [N] in the maps' dtype and never NaN. Quantus 0.6.0
(Hedstroem et al., JMLR 2023) returns NaN where a score is undefined; here the convention is:

* an empty mask scores 0 (there is nothing to point at), except AUC, which is 0.5 there (chance);
* a mask covering the whole map: AUC 0.5 (no negative pixel to rank against);
* a constant map (e.g. all zero) points nowhere: Pointing Game 0; Top-K / Relevance Rank Accuracy
  count ties fractionally (below), which for a constant map is the mask's area share;
* a zero denominator (no relevance at all) gives 0.

Ties among the top-ranked values (Top-K Intersection, Relevance Rank Accuracy) are counted as the
expectation over a uniformly random order of the tied pixels: a pixel tied at the k-th value counts
(free slots) / (tied pixels). Quantus takes numpy's argsort order instead, which depends on pixel
positions. Without ties both agree exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rightfocus.metrics.core import _same_shape

#: denominator guard of Attribution Localisation and Focus (as Quantus 0.6.0 adds it)
RATIO_EPS = 1e-9


def _flat(maps: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    maps, masks = _same_shape(maps, masks)
    return maps.flatten(1), masks.flatten(1) > 0


def _disk(radius: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    r = int(math.floor(radius))
    ax = torch.arange(-r, r + 1, device=device, dtype=dtype)
    return ((ax[:, None] ** 2 + ax[None, :] ** 2) <= radius**2).to(dtype)


def pointing_game(maps: Tensor, masks: Tensor, tolerance: float = 0.0, weighted: bool = False) -> Tensor:
    """Pointing Game (Zhang et al., IJCV 2018, "Top-down neural attention by excitation backprop"):
    1 if a pixel of maximal attribution lies in the mask, else 0 [N].

    `tolerance`: pixels within this Euclidean distance of the mask count as inside (the original
    protocol uses 15 px); Quantus 0.6.0 has no tolerance (it is the `tolerance=0` case).
    `weighted` (Quantus's option): a hit scores 1 - mask area / map area instead of 1.
    All maxima count (a hit if any of them is inside); a constant map scores 0 (Quantus: 1 when the
    mask is non-empty). An empty mask scores 0 (Quantus 0.6.0 writes NaN into a bool array, i.e. 1)."""
    maps, masks = _same_shape(maps, masks)
    target = masks > 0
    if tolerance > 0:
        k = _disk(tolerance, maps.dtype, maps.device)
        pad = k.shape[-1] // 2
        grown = F.conv2d(target[:, None].to(maps.dtype), k[None, None], padding=pad)[:, 0]
        target = grown > 0.5
    flat, tflat = maps.flatten(1), target.flatten(1)
    top = flat.amax(1, keepdim=True)
    constant = flat.amin(1) == top[:, 0]
    hit = ((flat == top) & tflat).any(1) & ~constant
    score = hit.to(maps.dtype)
    if weighted:
        area = (masks > 0).flatten(1).sum(1).to(maps.dtype) / flat.shape[1]
        score = score * (1 - area)
    return score


def attribution_localisation(maps: Tensor, masks: Tensor, weighted: bool = False,
                             positive_only: bool = True) -> Tensor:
    """Attribution Localisation (Kohlbrenner et al., IJCNN 2020, "Towards best practice in explaining
    neural network decisions with LRP"): the share of (positive) attribution inside the mask,
    sum(M * A+) / (sum(A+) + 1e-9) [N]; `weighted` multiplies by the mask's area share. EPG without
    its 1e-7 degenerate-map rule. An empty mask scores 0 (Quantus: NaN); with `positive_only=False` a
    ratio above 1 (negative total) is clipped to 0 (Quantus: NaN). Quantus 0.6.0's `weighted` divides
    the mask area by the size of ``x_batch[2:]`` (the batch without its first two inputs), not by the
    map's pixel count; here the weight is the mask's area share of the map."""
    flat, target = _flat(maps, masks)
    if positive_only:
        flat = flat.clamp_min(0)
    inside = (flat * target).sum(1)
    ratio = inside / (flat.sum(1) + RATIO_EPS)
    area = target.sum(1)
    ratio = torch.where((area == 0) | (ratio > 1), torch.zeros_like(ratio), ratio)
    if weighted:
        ratio = ratio * area.to(flat.dtype) / flat.shape[1]
    return ratio


def _top_count_hits(flat: Tensor, target: Tensor, k: Tensor) -> Tensor:
    """Expected number of mask pixels among the k largest values per row (ties at the k-th value
    shared by a uniformly random order). `k` [N] integers in [0, P]."""
    p = flat.shape[1]
    kk = k.clamp(1, p)
    largest = flat.topk(int(kk.max()), dim=1).values  # sorted, descending
    kth = largest.gather(1, (kk - 1)[:, None])  # the k-th largest value
    above = flat > kth
    tied = flat == kth
    n_above = above.sum(1)
    n_tied = tied.sum(1)
    free = (kk - n_above).to(flat.dtype)
    hits = (above & target).sum(1).to(flat.dtype) + (tied & target).sum(1).to(flat.dtype) * free / n_tied.to(flat.dtype)
    return torch.where(k > 0, hits, torch.zeros_like(hits))


def top_k_intersection(maps: Tensor, masks: Tensor, k: int = 1000, concept_influence: bool = False) -> Tensor:
    """Top-K Intersection (Theiner et al., 2021, "Interpretable semantic photo geolocation"): the share
    of the k highest-attributed pixels that lie in the mask [N]. `concept_influence` divides by the
    mask's area share (Quantus's option). Ties: see the module docstring. Empty mask: 0 (Quantus:
    NaN)."""
    flat, target = _flat(maps, masks)
    n, p = flat.shape
    if not 1 <= k <= p:
        raise ValueError(f"top_k_intersection: k={k} must lie in [1, {p}] (the pixels per map)")
    kk = torch.full((n,), k, device=flat.device, dtype=torch.long)
    score = _top_count_hits(flat, target, kk) / k
    area = target.sum(1)
    if concept_influence:
        score = score * p / area.clamp_min(1).to(flat.dtype)
    return torch.where(area == 0, torch.zeros_like(score), score)


def relevance_mass_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """Relevance Mass Accuracy (Arras et al., Information Fusion 2022, "CLEVR-XAI"): the relevance
    inside the mask over the total relevance, sum(M * A) / sum(A) [N], on the map as given (pass
    the positive part for the paper's positive-relevance variant). A zero total or an empty mask
    scores 0 (Quantus: NaN)."""
    flat, target = _flat(maps, masks)
    inside = (flat * target).sum(1)
    total = flat.sum(1)
    ok = (total != 0) & (target.sum(1) > 0)
    return torch.where(ok, inside / torch.where(ok, total, torch.ones_like(total)), torch.zeros_like(total))


def relevance_rank_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """Relevance Rank Accuracy (Arras et al., Information Fusion 2022, "CLEVR-XAI"): with K the mask's
    pixel count, the share of the K highest-attributed pixels inside the mask [N]. Ties: see the
    module docstring. Empty mask: 0 (Quantus: NaN)."""
    flat, target = _flat(maps, masks)
    area = target.sum(1)
    hits = _top_count_hits(flat, target, area)
    return torch.where(area > 0, hits / area.clamp_min(1).to(flat.dtype), torch.zeros_like(hits))


def sorted_average_ranks(flat: Tensor) -> tuple[Tensor, Tensor]:
    """Rows sorted ascending -> (1-based ranks in sorted order with ties given their average rank,
    as scipy's rankdata 'average'; the sorting indices). One sort and two scans per row."""
    ordered, index = flat.sort(1)
    p = flat.shape[1]
    pos = torch.arange(p, device=flat.device).expand_as(ordered)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, pos, torch.zeros_like(pos)).cummax(1).values
    last = torch.where(ends, pos, torch.full_like(pos, p - 1)).flip(1).cummin(1).values.flip(1)
    return (first + last + 2).to(flat.dtype) / 2, index


def auc(maps: Tensor, masks: Tensor) -> Tensor:
    """AUC (Fawcett, Pattern Recognition Letters 2006, "An introduction to ROC analysis"): the area
    under the ROC curve of the attribution as a score for the mask's pixels [N], computed as the
    Mann-Whitney statistic (ties count 1/2), which equals scikit-learn's roc_curve + auc used by
    Quantus. An empty or full mask scores 0.5 (Quantus: NaN)."""
    flat, target = _flat(maps, masks)
    work = flat if flat.dtype == torch.float64 else flat.float()
    ranks, index = sorted_average_ranks(work)
    pos = target.sum(1).to(work.dtype)
    neg = target.shape[1] - pos
    u = (ranks * target.gather(1, index)).sum(1) - pos * (pos + 1) / 2
    ok = (pos > 0) & (neg > 0)
    score = torch.where(ok, u / torch.where(ok, pos * neg, torch.ones_like(pos)), torch.full_like(pos, 0.5))
    return score.to(flat.dtype)


def quadrant_masks(quadrants: Tensor, size: tuple[int, int]) -> Tensor:
    """Masks [N, H, W] of a 2x2 mosaic's target quadrants: `quadrants` [N, 4] (0/1, order top-left,
    top-right, bottom-left, bottom-right; the top/left halves have H//2, W//2 pixels)."""
    if quadrants.dim() != 2 or quadrants.shape[1] != 4:
        raise ValueError(f"quadrants must be [N, 4] (one 0/1 flag per mosaic quadrant), got {tuple(quadrants.shape)}")
    h, w = size
    hh, hw = h // 2, w // 2
    q = quadrants.bool()
    out = torch.zeros(len(q), h, w, dtype=torch.bool, device=quadrants.device)
    out[:, :hh, :hw] = q[:, 0, None, None]
    out[:, :hh, hw:] = q[:, 1, None, None]
    out[:, hh:, :hw] = q[:, 2, None, None]
    out[:, hh:, hw:] = q[:, 3, None, None]
    return out


def focus(maps: Tensor, quadrants: Tensor) -> Tensor:
    """Focus (Arias-Duart et al., 2022, "Focus! Rating XAI methods and finding biases"): on 2x2
    mosaics, the share of positive attribution in the quadrants that hold the target class,
    sum(M * A+) / (sum(A+) + 1e-9) [N], with `quadrants` [N, 4] as in `quadrant_masks`."""
    if maps.dim() != 3:
        raise ValueError(f"focus: maps must be [N, H, W], got {tuple(maps.shape)}")
    masks = quadrant_masks(quadrants.to(maps.device), tuple(maps.shape[-2:]))
    positive = maps.clamp_min(0).flatten(1)
    return (positive * masks.flatten(1)).sum(1) / (positive.sum(1) + RATIO_EPS)
