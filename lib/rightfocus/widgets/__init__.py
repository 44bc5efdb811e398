"""Interactive inspection: the heatmap inspector and the perception study (AIM supplement D.6).

Logic is plain Python (`InspectorState`, `PerceptionStudy`); the ipywidgets layers
(`HeatmapInspector`, `PerceptionStudy.widget`) only forward selections and draw.
"""

from rightfocus.widgets.state import CLASSIFIER_TAP, InspectorState, LRUCache, Panel, View
from rightfocus.widgets.study import (
    RESPONSE_COLUMNS,
    PerceptionStudy,
    Trial,
    load_responses,
    plan_study,
    simulate_participant,
    simulate_study,
    split_subsets,
    study_images,
    summarize,
)


def __getattr__(name: str):
    # ipywidgets is imported only when the widget layer is used (headless code needs none of it)
    if name == "HeatmapInspector":
        from rightfocus.widgets.inspector import HeatmapInspector

        return HeatmapInspector
    raise AttributeError(f"module 'rightfocus.widgets' has no attribute {name!r}")


__all__ = [
    "CLASSIFIER_TAP", "HeatmapInspector", "InspectorState", "LRUCache", "Panel", "PerceptionStudy",
    "RESPONSE_COLUMNS", "Trial", "View", "load_responses", "plan_study", "simulate_participant",
    "simulate_study", "split_subsets", "study_images", "summarize",
]
