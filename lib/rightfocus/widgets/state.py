"""The heatmap inspector's logic, without widgets: selections in, a `View` (maps, predictions, metrics,
AIM masks) and a figure out. `HeatmapInspector` (inspector.py) is a thin ipywidgets layer over it;
tests and notebooks drive `InspectorState` directly.

Maps are what the papers evaluate: `rightfocus.attributions.attribute` on the run's stored checkpoint,
for one image and one class, upsampled to the image (Rao et al. 2023 Sec. 3.2); EPG / IoU / on-object
EPG are `rightfocus.metrics` on that map with the evaluation's masks (`rightfocus.data.masks`; Sec. 3.3
and supplement B.4). AIM runs add their per-stage masks and the merged mask (AIM Figs. 6-7).

`InspectorState` composes three parts: the runs in the store (`catalogue.RunCatalogue`), the
selections (`selection.Selection`) and what is loaded and computed for them (`cache.AttributionCache`);
its attributes and methods read and write those parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from rightfocus.data.masks import localisation_masks, localisation_source
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.widgets import browse, scores
from rightfocus.widgets import view as views
from rightfocus.widgets.cache import AttributionCache, DatasetLoader, LRUCache, ModelLoader, class_names
from rightfocus.widgets.catalogue import MULTI_LABEL_DATASETS, RunCatalogue
from rightfocus.widgets.selection import CLASSIFIER_TAP, MASK_SOURCES, Selection, default_attribution, readout_choices
from rightfocus.widgets.view import Panel, View

__all__ = ["CLASSIFIER_TAP", "MASK_SOURCES", "MULTI_LABEL_DATASETS", "DatasetLoader", "InspectorState", "LRUCache",
           "ModelLoader", "Panel", "View", "default_dataset_loader", "default_model_loader", "readout_choices"]


def default_dataset_loader(config: RunConfig, split: str, data_root: str | None = None) -> Any:
    """The run's evaluation dataset of `split` at its training resolution, loaded as its training
    loop loads it (MG: `training.mg_task.eval_dataset`, without the decoded-image cache; AIM:
    `aim_loop.load_split(s)`, test = the dataset's test split, val = the run's seeded 20 % of train,
    both centre-cropped)."""
    import dataclasses

    if data_root is not None:
        config = dataclasses.replace(config, data_root=data_root)
    from rightfocus.data.registry import DATASETS

    if config.paper == "aim" and config.dataset in DATASETS:  # AIM names (waterbirds95, ...) -> loader + options
        if split == "val":
            from rightfocus.training.aim_loop import load_splits

            return load_splits(config)[1]
        from rightfocus.training.aim_loop import load_split

        return load_split(config, split)  # centre-cropped, as the run evaluated it
    from rightfocus.training.mg_task import eval_dataset

    return eval_dataset(config, split, cache=False)


def default_model_loader(rdir: Path, which: Any, device: str = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """A run's model from a kept checkpoint (either paper: `store.load_checkpoint`)."""
    return store.load_checkpoint(rdir, which, device=device)


class _On:
    """An attribute of `InspectorState` kept on one of its parts: reading or setting it reads or sets the
    part's attribute of the same name (a method: the part's bound method)."""

    def __init__(self, part: str, cls: type | None = None) -> None:
        self.part, self.cls = part, cls

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:  # on the class: the part's function (its signature and docstring)
            return getattr(self.cls, self.name) if self.cls is not None else self
        return getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(getattr(obj, self.part), self.name, value)


class InspectorState:
    """Selections and the computations behind the heatmap inspector.

    Parameters
    ----------
    results, profile : the results store to read (``<results>/<profile>/runs/...``); a relative
        `results` resolves from the working directory if it exists there, else from the project root
        (`rightfocus.project.resolve`), so ``"results"`` works from ``notebooks/`` too.
    runs : run ids shown side by side (baseline, guided, AIM); all must use one dataset and image size.
    split : dataset split to browse (``val`` | ``test``).
    data_root : overrides the runs' ``data_root`` (datasets moved since training). Without it a run's
        relative root (``data/synthetic/...``) is looked up from the working directory, the project
        root and the folder holding `results` (`data_root_for`).
    checkpoint : which kept checkpoint to load ("selected", "latest" or an epoch number).
    cache_size : maps (and logits) kept in the LRU cache.
    model_loader, dataset_loader : injection points (default: `store.load_checkpoint`,
        `default_dataset_loader`).
    """

    # the runs in the store (`RunCatalogue`)
    results, profile, data_root, skipped = _On("catalogue"), _On("catalogue"), _On("catalogue"), _On("catalogue")
    available_runs, skipped_note = _On("catalogue", RunCatalogue), _On("catalogue", RunCatalogue)
    nothing_found, run_dir = _On("catalogue", RunCatalogue), _On("catalogue", RunCatalogue)
    config, label = _On("catalogue", RunCatalogue), _On("catalogue", RunCatalogue)
    data_root_for = _On("catalogue", RunCatalogue)
    mask_epochs, mask_images = _On("catalogue", RunCatalogue), _On("catalogue", RunCatalogue)
    # the selections (`Selection`)
    runs, split, index, target = _On("selection"), _On("selection"), _On("selection"), _On("selection")
    method, tap, alpha, cmap = _On("selection"), _On("selection"), _On("selection"), _On("selection")
    mask_source, mask_epoch, checkpoint = _On("selection"), _On("selection"), _On("selection")
    show_guidance, readout = _On("selection"), _On("selection")
    # what is loaded and computed (`AttributionCache`)
    device, model, dataset = _On("computed"), _On("computed", AttributionCache), _On("computed", AttributionCache)
    sample, ground_truth = _On("computed", AttributionCache), _On("computed", AttributionCache)
    resolve_target, resolve_tap = _On("computed", AttributionCache), _On("computed", AttributionCache)
    logits, heatmap = _On("computed", AttributionCache), _On("computed", AttributionCache)
    aim_masks, guidance_signal = _On("computed", AttributionCache), _On("computed", AttributionCache)
    image_table = _On("computed", AttributionCache)

    def __init__(
        self,
        results: str | Path = "results",
        profile: str = "demo",
        runs: Sequence[str] = (),
        split: str = "test",
        data_root: str | None = None,
        checkpoint: str | int = "selected",
        cache_size: int = 256,
        device: str = "cpu",
        model_loader: ModelLoader | None = None,
        dataset_loader: DatasetLoader | None = None,
    ) -> None:
        self.catalogue = RunCatalogue(results, profile, data_root)
        self.selection = Selection(split=split, checkpoint=checkpoint)
        load_model = model_loader or (lambda rdir, which: default_model_loader(rdir, which, device))
        self.computed = AttributionCache(self.catalogue, self.selection, load_model,
                                         dataset_loader or default_dataset_loader, cache_size, device)
        if runs:
            self.set_runs(runs)

    @property
    def cache(self) -> LRUCache:
        """The LRU cache of samples, logits, maps, masks and drawn views."""
        return self.computed.lru

    def set_runs(self, runs: Sequence[str]) -> "InspectorState":
        """Choose the runs shown side by side; picks a default method/tap from the first guided run."""
        runs = list(dict.fromkeys(runs))
        if not runs:
            raise ValueError("choose at least one run (InspectorState.available_runs() lists them)")
        configs = self.catalogue.comparable(runs)
        if self.runs and (configs[0].dataset, configs[0].image_size) != \
                (self.config(self.runs[0]).dataset, self.config(self.runs[0]).image_size):
            self.computed.forget_data()
        self.runs = runs
        self.method, self.tap = default_attribution(configs)
        return self

    def select(self, **changes: Any) -> "InspectorState":
        """Set selections by name (`Selection.names`: split, index, target, method, tap, alpha, cmap,
        mask_source, mask_epoch, checkpoint, show_guidance, readout), validating each; ``runs=`` goes
        through `set_runs`."""
        if "runs" in changes:
            self.set_runs(changes.pop("runs"))
        self.selection.update(changes, lambda: self.num_images)
        return self

    @property
    def num_images(self) -> int:
        return len(self.dataset())

    @property
    def class_names(self) -> list[str]:
        return class_names(self.dataset())

    def is_aim(self, run_id: str) -> bool:
        return hasattr(self.model(run_id), "forward_aim")

    def scores(self, run_id: str, index: int | None = None) -> Tensor:
        """Class scores [K]: sigmoid for multi-label datasets, softmax otherwise."""
        logits = self.logits(run_id, index)
        multi = self.catalogue.multi_label(run_id) or logits.numel() == 1
        return torch.sigmoid(logits) if multi else torch.softmax(logits, 0)

    #: (box mask, object segmentation or None) of a class in a sample (`data.masks.localisation_masks`)
    masks_for = staticmethod(localisation_masks)

    def resolve_mask_source(self, run_id: str, obj: Tensor | None) -> str:
        """"boxes" or "seg": what EPG / IoU of `run_id` use given the image's object mask `obj`
        (`mask_source`; "auto": the run's paper's rule, `data.masks.localisation_source`)."""
        return localisation_source(self.config(run_id).paper, obj is not None, self.mask_source)

    def iou_threshold(self, run_id: str, method: str | None = None, tap: str | None = None) -> float:
        """The IoU threshold the run's evaluation used for the shown checkpoint and (tap, method)
        (default: the selection's; `RunCatalogue.iou_threshold`)."""
        tap = self.resolve_tap(run_id, tap)
        return self.catalogue.iou_threshold(run_id, self.checkpoint, method or self.method, tap)

    def map_metrics(self, run_id: str, heatmap: Tensor, index: int | None = None, target: int | None = None,
                    method: str | None = None, tap: str | None = None) -> dict[str, float | None]:
        """EPG, IoU and on-object EPG of one map of `method` at `tap` (default: the selection;
        `scores.map_metrics`), IoU at the threshold the run's evaluation selected (`iou_threshold`)."""
        target = self.resolve_target(index) if target is None else int(target)
        return scores.map_metrics(heatmap, self.sample(index), target, multi_label=self.catalogue.multi_label(run_id),
                                  paper=self.config(run_id).paper, mask_source=self.mask_source,
                                  iou_threshold=self.iou_threshold(run_id, method, tap), readout=self.readout)

    def panel(self, run_id: str) -> Panel:
        return views.build_panel(self, run_id)

    def view(self) -> View:
        """The current view: image, boxes, segmentation and one `Panel` per chosen run."""
        return views.build_view(self)

    def figure(self, view: View | None = None):
        from rightfocus.widgets.render import inspector_figure

        return inspector_figure(view or self.view(), cmap=self.cmap, alpha=self.alpha)

    def view_key(self) -> tuple:
        """Everything the drawn view depends on (the PNG cache's key)."""
        return self.selection.view_key(self.resolve_target())

    def png(self) -> bytes:
        """The current view drawn as PNG bytes, cached: revisiting a view costs a lookup, not a redraw
        (drawing and encoding take longer than the maps of tiny models; bench_inspector.py)."""
        import io

        from rightfocus.widgets.render import save_png

        def draw() -> bytes:
            buf = io.BytesIO()
            save_png(self.figure(), buf)
            return buf.getvalue()

        return self.cache.get_or_compute(self.view_key(), draw)

    def export_png(self, path: str | Path) -> Path:
        """Save the current view as a PNG."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.png())
        return path

    def image_epg(self, run_id: str, method: str | None = None, tap: str | None = None,
                  batch_size: int = 32) -> pd.DataFrame:
        """Per-image EPG of a run on the current split (`scores.image_epg`): columns index, epg."""
        method = method or self.method
        tap = self.resolve_tap(run_id, tap)
        key = (run_id, self.checkpoint, self.split, method, tap, self.mask_source)
        if key not in self.computed.image_scores:
            self.computed.image_scores[key] = scores.image_epg(
                self.model(run_id), self.dataset(), method, tap, multi_label=self.catalogue.multi_label(run_id),
                paper=self.config(run_id).paper, mask_source=self.mask_source, device=self.device,
                batch_size=batch_size)
        return self.computed.image_scores[key]

    def filter_images(self, cls: int | None = None, group: int | None = None,
                      epg_range: tuple[float, float] | None = None, run_id: str | None = None) -> list[int]:
        """Image indices of the current split with class `cls`, in `group`, and whose per-image EPG
        (of `run_id`, default the first chosen run) lies in `epg_range` (inclusive)."""
        epg = self.image_epg(run_id or self._reference_run()) if epg_range is not None else None
        return browse.filter_images(self.image_table(), cls, group, epg_range, epg)

    def _reference_run(self) -> str:
        if not self.runs:
            raise ValueError("no runs chosen yet: call set_runs([...]) first")
        return self.runs[0]

    def epg_change(self, run_a: str | None = None, run_b: str | None = None, absolute: bool = False) -> pd.DataFrame:
        """Images ranked by EPG change from `run_a` (default: first run) to `run_b` (default: last run):
        columns index, epg_a, epg_b, change; largest gain first (`absolute`: largest |change| first)."""
        run_a = run_a or self._reference_run()
        run_b = run_b or self.runs[-1]
        return browse.epg_change(self.image_epg(run_a), self.image_epg(run_b), absolute)

    def study_renderer(self, method: str = "gradcam", tap: str = CLASSIFIER_TAP) -> Callable[[int, str], tuple[Tensor, Tensor]]:
        """``render(image_index, run_id) -> (image, map)`` for `PerceptionStudy` (`views.study_renderer`)."""
        return views.study_renderer(self, method, tap)

    def study_epg(self, method: str = "gradcam", tap: str = CLASSIFIER_TAP) -> Callable[[int, str], float]:
        """``epg(image_index, run_id) -> float`` of the map `study_renderer` shows (`views.study_epg`)."""
        return views.study_epg(self, method, tap)
