"""The registry of explanation metrics: every metric that scores [N, H, W] attribution maps against
[N, H, W] masks, by name, with its direction, what it needs and a cost estimate.

`score(names, maps, masks)` evaluates several at once; `PROFILE_SUITES` says which ones each
profile's evaluation writes into the runs' metric rows (columns named like the metrics). Metrics with
other inputs (a model, or mosaics' quadrant labels) are listed in `OTHER_METRICS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from torch import Tensor

from rightfocus.metrics import core, localisation


@dataclass(frozen=True)
class MapMetric:
    """One registered metric: ``fn(maps, masks) -> [N]`` scores (higher = better localisation)."""

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]
    label: str
    reference: str
    #: CPU seconds per 1,000 maps of 224 x 224 px on one thread (the inputs of benchmarks/bench_metrics.py,
    #: 100 maps per call; measured on the project's 2-core build host)
    cpu_s_per_1k_224: float
    #: abbreviation where space is short (the inspector's panel titles)
    short: str = ""


def _top_k(maps: Tensor, masks: Tensor) -> Tensor:
    """Top-K Intersection with Quantus's default k = 1000, capped at the map's pixel count."""
    return localisation.top_k_intersection(maps, masks, k=min(1000, maps.shape[-2] * maps.shape[-1]))


def _rma_positive(maps: Tensor, masks: Tensor) -> Tensor:
    """Relevance Mass Accuracy of the positive part of the maps (Arras et al. count positive relevance;
    on signed maps the raw ratio is unbounded when the total is near 0)."""
    return localisation.relevance_mass_accuracy(maps.clamp_min(0), masks)


_ENTRIES = (
    MapMetric("epg", core.epg, "EPG", "Rao et al. 2023, Eq. (2)", 0.07, "EPG"),
    MapMetric("iou", core.iou, "IoU@0.5", "Rao et al. 2023, Sec. 3.3", 0.43, "IoU"),
    MapMetric("pointing_game", localisation.pointing_game, "Pointing Game", "Zhang et al. 2018", 0.10, "PG"),
    MapMetric("attribution_localisation", localisation.attribution_localisation, "Attribution Localisation",
              "Kohlbrenner et al. 2020", 0.30, "AL"),
    MapMetric("top_k_intersection", _top_k, "Top-K Intersection", "Theiner et al. 2021", 1.5, "TopK"),
    MapMetric("relevance_mass_accuracy", _rma_positive, "Relevance Mass Accuracy",
              "Arras et al. 2022", 0.33, "RMA"),
    MapMetric("relevance_rank_accuracy", localisation.relevance_rank_accuracy, "Relevance Rank Accuracy",
              "Arras et al. 2022", 2.05, "RRA"),
    MapMetric("auc", localisation.auc, "AUC", "Fawcett 2006", 6.45, "AUC"),
)

#: every mask metric by name
MAP_METRICS: dict[str, MapMetric] = {m.name: m for m in _ENTRIES}

#: metrics with other inputs than (maps, masks): on-object EPG (every run writes it), the model-based
#: ones (the `ext.sanity` renderer evaluates them) and Focus (needs 2x2 mosaics, which no dataset here
#: provides)
OTHER_METRICS: dict[str, str] = {
    "onobject_epg": "rightfocus.metrics.core.onobject_epg of maps, box masks and segmentations "
                    "(Rao et al. 2023, B.4; written per run as onobj_epg)",
    "randomisation": "rightfocus.metrics.sanity.cascading_randomisation (Adebayo et al. 2018)",
    "deletion": "rightfocus.metrics.faithfulness.deletion_insertion (Petsiuk et al. 2018)",
    "focus": "rightfocus.metrics.localisation.focus on 2x2 mosaics (Arias-Duart et al. 2022)",
}

#: the suite each profile's evaluation adds to every run's metric rows, beyond EPG / IoU / on-object
#: EPG (which every profile writes). The demo leaves out Top-K: its k = 1000 would be nearly all of a
#: 32 px map's 1,024 pixels; the others cost ~0.13 CPU-s per 1,000 pairs there.
PROFILE_SUITES: dict[str, tuple[str, ...]] = {
    "demo": ("pointing_game", "attribution_localisation", "relevance_mass_accuracy",
             "relevance_rank_accuracy", "auc"),
    "paper": ("pointing_game", "attribution_localisation", "top_k_intersection", "relevance_mass_accuracy",
              "relevance_rank_accuracy", "auc"),
    "rehearsal": ("pointing_game", "attribution_localisation", "top_k_intersection",
                  "relevance_mass_accuracy", "relevance_rank_accuracy", "auc"),
}


def suite_for(profile: str | None) -> tuple[str, ...]:
    """The metrics `profile`'s evaluation writes (an unknown or missing profile: none)."""
    return PROFILE_SUITES.get(profile or "", ())


def get(name: str) -> MapMetric:
    if name not in MAP_METRICS:
        raise KeyError(f"unknown metric {name!r}; registered: {sorted(MAP_METRICS)}")
    return MAP_METRICS[name]


def functions(names: Iterable[str]) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """{name: fn(maps, masks) -> [N]} of the named metrics (`MetricAccumulator`'s `suite`)."""
    return {n: get(n).fn for n in names}


def score(names: Iterable[str], maps: Tensor, masks: Tensor) -> dict[str, Tensor]:
    """Every named metric of `maps` against `masks`, {name: [N]}."""
    return {n: get(n).fn(maps, masks) for n in names}


def cost_estimate(names: Sequence[str], pairs: int, pixels: int) -> float:
    """Estimated CPU seconds to score `pairs` maps of `pixels` pixels with `names` (linear in the
    pixel count from the 224 px measurements; sorting metrics grow slightly faster)."""
    scale = pairs / 1000 * pixels / (224 * 224)
    return float(sum(get(n).cpu_s_per_1k_224 for n in names) * scale)


def labels(names: Iterable[str] | None = None) -> Mapping[str, str]:
    """Display label of each metric (all registered ones by default)."""
    return {n: get(n).label for n in (names if names is not None else MAP_METRICS)}
