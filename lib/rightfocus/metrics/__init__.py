"""Evaluation metrics, batched on [N, H, W] maps and masks (any device).

`core`: EPG, IoU, on-object EPG (Rao et al. 2023) and the classification metrics with the streaming
`MetricAccumulator`; `localisation`: Pointing Game, Attribution Localisation, Top-K Intersection,
Relevance Mass / Rank Accuracy, AUC and Focus; `registry`: every mask metric by name (`MAP_METRICS`,
`score`) and the suite each profile writes into the runs' metric rows; `sanity`: the cascading
model-parameter randomisation check; `faithfulness`: deletion / insertion curves with their AUC.
"""

from rightfocus.metrics.core import (
    DEFAULT_IOU_THRESHOLD,
    EPG_EPS,
    IOU_THRESHOLDS,
    MetricAccumulator,
    accuracy,
    average_precision_per_class,
    best_iou_threshold,
    binarise,
    epg,
    f1,
    group_accuracies,
    iou,
    iou_per_threshold,
    mean_average_precision,
    no_positive_attribution,
    onobject_epg,
    select_iou_threshold,
    worst_group_accuracy,
)
from rightfocus.metrics.localisation import (
    attribution_localisation,
    auc,
    focus,
    pointing_game,
    quadrant_masks,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    top_k_intersection,
)
from rightfocus.metrics.registry import MAP_METRICS, PROFILE_SUITES, MapMetric, score, suite_for

__all__ = [
    "DEFAULT_IOU_THRESHOLD", "EPG_EPS", "IOU_THRESHOLDS", "MAP_METRICS", "MapMetric", "MetricAccumulator",
    "PROFILE_SUITES", "accuracy", "attribution_localisation", "auc", "average_precision_per_class",
    "best_iou_threshold", "binarise", "epg", "f1", "focus",
    "group_accuracies", "iou", "iou_per_threshold", "mean_average_precision", "no_positive_attribution",
    "onobject_epg", "pointing_game", "quadrant_masks", "relevance_mass_accuracy", "relevance_rank_accuracy",
    "score", "select_iou_threshold", "suite_for", "top_k_intersection", "worst_group_accuracy",
]
