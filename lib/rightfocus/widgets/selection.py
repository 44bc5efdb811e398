"""`Selection`: what the inspector shows: runs, split, image, class, attribution method and tap,
overlay, mask source, AIM mask epoch, checkpoint, guidance signal and extra readouts; each change is
validated against the registered choices before it is taken."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Sequence

from rightfocus.attributions.methods import get_method, native_method
from rightfocus.data.masks import LOCALISATION_SOURCES
from rightfocus.runs.config import RunConfig

#: a tap name resolved per model: the map the final classifier reads (AIM: ``aim``; others: ``final``),
#: where GradCAM is taken for EPG of AIM models (the paper does not name the layer)
CLASSIFIER_TAP = "classifier"
#: mask the EPG / IoU of a view is computed against ("auto": the paper's rule, `data.masks.localisation_source`)
MASK_SOURCES = LOCALISATION_SOURCES


def readout_choices() -> dict[str, str]:
    """Registered metrics the inspector can add to a panel's readout -> their short label."""
    from rightfocus.metrics import MAP_METRICS

    return {k: m.short or k for k, m in MAP_METRICS.items() if k not in ("epg", "iou")}


def default_attribution(configs: Sequence[RunConfig]) -> tuple[str, str]:
    """(method, tap) to show first: the first guided run's own; else, at the input, the native method
    of the first model whose native method runs on that model kind only (its own explanation: B-cos'
    ``bcos@input``); else GradCAM at the classifier tap."""
    guided = next((c for c in configs if c.method is not None), None)
    if guided is not None:
        return guided.method, guided.tap
    own = next((m for m in (get_method(native_method(c.model_kind)) for c in configs) if m.refuse_inexact), None)
    if own is not None:
        return own.name, "input"
    return "gradcam", CLASSIFIER_TAP


@dataclass
class Selection:
    """The inspector's selections; `update` validates every change before taking it."""

    runs: list[str] = field(default_factory=list)
    split: str = "test"
    index: int = 0
    target: int | None = None  # None: the image's first ground-truth class
    method: str = "gradcam"
    tap: str = CLASSIFIER_TAP
    alpha: float = 0.5
    cmap: str = "jet"
    mask_source: str = "auto"
    mask_epoch: int | None = None
    checkpoint: str | int = "selected"
    #: also show, per guided run, the guidance signal it was trained with (box, mask, teacher map)
    show_guidance: bool = False
    #: further registered metrics (`readout_choices`) in each panel's readout, beside EPG / IoU
    readout: tuple[str, ...] = ()

    @staticmethod
    def names() -> list[str]:
        """The selections `update` accepts (every field but ``runs``)."""
        return [f.name for f in fields(Selection) if f.name != "runs"]

    def checked(self, changes: dict[str, Any]) -> dict[str, Any]:
        """`changes` validated and normalised (a new split starts at image 0); raises ValueError naming
        the choices for an unknown selection, method, mask source or readout metric."""
        from rightfocus.attributions import METHODS

        changes = dict(changes)
        unknown = set(changes) - set(self.names())
        if unknown:
            raise ValueError(f"unknown selection(s) {sorted(unknown)}; choose from {sorted(self.names())}")
        if "method" in changes and changes["method"] not in METHODS:
            raise ValueError(f"unknown method {changes['method']!r}; choose one of {list(METHODS)}")
        if "mask_source" in changes and changes["mask_source"] not in MASK_SOURCES:
            raise ValueError(f"unknown mask_source {changes['mask_source']!r}; choose one of {MASK_SOURCES}")
        if "readout" in changes:
            changes["readout"] = tuple(changes["readout"] or ())
            bad = [m for m in changes["readout"] if m not in readout_choices()]
            if bad:
                raise ValueError(f"unknown readout metric(s) {bad}; choose from {list(readout_choices())}")
        if "alpha" in changes and not 0.0 <= float(changes["alpha"]) <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {changes['alpha']}")
        if "split" in changes and changes["split"] != self.split:
            changes.setdefault("index", 0)
        return changes

    def update(self, changes: dict[str, Any], num_images: Callable[[], int]) -> None:
        """Take `changes` (`checked`); a new image index must lie in [0, num_images())."""
        changes = self.checked(changes)
        for k, v in changes.items():
            setattr(self, k, v)
        if "index" in changes:
            n = num_images()
            if not 0 <= int(self.index) < n:
                raise IndexError(f"image index {self.index} out of range [0, {n}) for split {self.split!r}")
            self.index = int(self.index)

    def view_key(self, target: int) -> tuple:
        """Everything the drawn view depends on, with the inspected class resolved to `target`."""
        return ("png", tuple(self.runs), self.checkpoint, self.split, self.index, target, self.method,
                self.tap, float(self.alpha), self.cmap, self.mask_source, self.mask_epoch, self.show_guidance)
