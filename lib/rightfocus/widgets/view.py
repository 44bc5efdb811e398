"""What the inspector shows for the current selections: a `View` (image, boxes, segmentation) with one
`Panel` per run (its map, prediction, scores, AIM masks, guidance signal), built from an `InspectorState`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from rightfocus.units import percent
from rightfocus.widgets.selection import readout_choices


@dataclass
class Panel:
    """One run's part of the view."""

    run_id: str
    label: str
    heatmap: Tensor  # [H, W], raw (signed) map at image resolution
    predicted: int
    predicted_name: str
    confidence: float  # score of the predicted class (sigmoid for multi-label, softmax otherwise)
    target_score: float  # score of the inspected class
    metrics: dict[str, Any]  # epg, iou, onobj_epg, mask ("boxes" | "seg": what EPG / IoU were computed against)
    tap: str  # the tap actually used (CLASSIFIER_TAP resolved)
    # AIM: "S<l>" per stage and "merged"; with show_guidance: "trained on <source>" (its guidance signal)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    mask_epoch: int | None = None  # AIM: stored epoch shown (None: the checkpoint's own masks)
    error: str | None = None  # why the map could not be computed for this run (e.g. bcos on vanilla)

    def title(self) -> str:
        if self.error:
            return f"{self.label}\n{self.error}"
        m = self.metrics
        against = " (seg)" if m.get("mask") == "seg" else ""
        parts = [f"EPG{against} {percent(m['epg'])}", f"IoU {percent(m['iou'])}"]
        if m.get("onobj_epg") is not None:
            parts.append(f"on-obj {percent(m['onobj_epg'])}")
        short = readout_choices()
        parts += [f"{short[k]} {m[k]:.2f}" for k in short if m.get(k) is not None]
        return f"{self.label}\npred {self.predicted_name} ({self.confidence:.2f})\n" + " ".join(parts)


@dataclass
class View:
    """Everything the inspector shows for the current selections."""

    index: int
    image: Tensor  # [3, H, W] in [0, 1]
    boxes: Tensor  # [n, 5]
    seg: Tensor | None
    target: int
    target_name: str
    class_names: list[str]
    split: str
    method: str
    tap: str
    panels: list[Panel]

    @property
    def caption(self) -> str:
        return f"{self.split} image {self.index}, class {self.target_name}, {self.method} at {self.tap}"


def panel_masks(state: Any, run_id: str, index: int, target: int) -> tuple[dict[str, np.ndarray], int | None]:
    """(masks drawn over the run's map, the stored AIM epoch shown or None): AIM runs' stage and merged
    masks (of `state.mask_epoch` where the run stored that image's masks then, else the checkpoint's own),
    and with `state.show_guidance` the run's guidance signal."""
    masks: dict[str, np.ndarray] = {}
    epoch = None
    if state.is_aim(run_id):
        stored = state.mask_epoch in state.mask_epochs(run_id) and state.split == "test" \
            and index in state.mask_images(run_id)
        epoch = state.mask_epoch if stored else None
        masks = state.aim_masks(run_id, index, epoch)
    if state.show_guidance:
        signal = state.guidance_signal(run_id, index, target)
        if signal is not None:
            masks = {**masks, f"trained on {signal[0].split(':')[0]}": signal[1]}
    return masks, epoch


def panel_map(state: Any, run_id: str) -> tuple[str, Tensor, dict[str, Any], str | None]:
    """(tap used, map, scores, error): a method the model cannot do (e.g. 'bcos' on a vanilla model)
    gives a blank map, NaN scores and the reason, so the other runs' panels still draw."""
    try:
        tap = state.resolve_tap(run_id)
        heat = state.heatmap(run_id)
        return tap, heat, state.map_metrics(run_id, heat), None
    except ValueError as exc:
        blank = torch.zeros(state.sample()["image"].shape[-2:])
        return str(state.tap), blank, {"epg": float("nan"), "iou": float("nan"), "onobj_epg": None, "mask": None}, \
            str(exc)


def build_panel(state: Any, run_id: str) -> Panel:
    """One run's `Panel` for the selections of `state` (an `InspectorState`)."""
    index, target, names = state.index, state.resolve_target(), state.class_names
    scores = state.scores(run_id)
    pred = int(torch.argmax(scores))
    masks, epoch = panel_masks(state, run_id, index, target)
    tap, heat, metrics, error = panel_map(state, run_id)
    return Panel(run_id, state.label(run_id), heat, pred, names[pred] if pred < len(names) else str(pred),
                 float(scores[pred]), float(scores[target]) if target < len(scores) else float("nan"),
                 metrics, tap, masks, epoch, error)


def build_view(state: Any) -> View:
    """The `View` of `state` (an `InspectorState`): image, boxes, segmentation, one `Panel` per run."""
    sample = state.sample()
    target = state.resolve_target()
    names = state.class_names
    return View(state.index, sample["image"], sample["boxes"], sample.get("seg"), target,
                names[target] if target < len(names) else str(target), names, state.split, state.method,
                state.tap, [build_panel(state, r) for r in state.runs])


def study_renderer(state: Any, method: str, tap: str) -> Callable[[int, str], tuple[Tensor, Tensor]]:
    """``render(image_index, run_id) -> (image [3, H, W], map [H, W])`` for `PerceptionStudy`: the map
    of the image's first ground-truth class (AIM D.6: GradCAM of the baseline and AIM), from `state`."""

    def render(index: int, run_id: str) -> tuple[Tensor, Tensor]:
        target = state.ground_truth(index)
        return state.sample(index)["image"], state.heatmap(run_id, index, target[0] if target else 0, method, tap)

    return render


def study_epg(state: Any, method: str, tap: str) -> Callable[[int, str], float]:
    """``epg(image_index, run_id) -> float``: EPG of the map `study_renderer` shows, for
    `simulate_participant` (a simulated participant prefers the higher-EPG map)."""

    def value(index: int, run_id: str) -> float:
        gt = state.ground_truth(index)
        target = gt[0] if gt else 0
        heat = state.heatmap(run_id, index, target, method, tap)
        return float(state.map_metrics(run_id, heat, index, target)["epg"])

    return value
