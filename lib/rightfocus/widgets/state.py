"""The heatmap inspector's logic, without widgets: selections in, a `View` (maps, predictions, metrics,
AIM masks) and a figure out. `HeatmapInspector` (inspector.py) is a thin ipywidgets layer over it;
tests and notebooks drive this class directly.

Maps are what the papers evaluate: `rightfocus.attributions.attribute` on the run's stored checkpoint,
for one image and one class, upsampled to the image (Rao et al. 2023 Sec. 3.2); EPG / IoU / on-object
EPG are `rightfocus.metrics` on that map with the evaluation's masks (union of the class's boxes,
complemented for the Waterbirds "place" task; on-object: the class's segmentation inside its boxes,
Sec. 3.3 and supplement B.4). AIM runs add their per-stage masks and the merged mask (AIM Figs. 6-7).

Attributions are computed on demand and kept in an LRU cache keyed by
(run, checkpoint, split, image, class, method, tap), so flipping between images already seen costs a
dictionary lookup; benchmarks/bench_inspector.py measures both paths.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rightfocus import project
from rightfocus.experiments import store
from rightfocus.experiments.config import RunConfig
from rightfocus.units import percent

#: datasets whose labels are multi-hot (sigmoid scores, per-class segmentation ids)
MULTI_LABEL_DATASETS = ("voc2007", "coco2014")
#: a tap name resolved per model: the map the final classifier reads (AIM: ``aim``; others: ``final``),
#: where GradCAM is taken for EPG of AIM models (the paper does not name the layer; here: the map the final classifier reads)
CLASSIFIER_TAP = "classifier"
#: mask the EPG / IoU of a view is computed against
MASK_SOURCES = ("auto", "boxes", "seg")

ModelLoader = Callable[[Path, Any], tuple[torch.nn.Module, RunConfig]]
DatasetLoader = Callable[[RunConfig, str, "str | None"], Any]


class LRUCache:
    """A bounded mapping that forgets the least recently used entry; counts hits and misses."""

    def __init__(self, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise ValueError(f"cache size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if key in self._data:
            self.hits += 1
            self._data.move_to_end(key)
            return self._data[key]
        self.misses += 1
        value = compute()
        self._data[key] = value
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        self._data.clear()


def default_dataset_loader(config: RunConfig, split: str, data_root: str | None = None) -> Any:
    """The run's evaluation dataset of `split` at its training resolution, loaded as its training
    loop loads it (MG: `training.runner.build_datasets`' options; AIM: `aim_loop.load_split(s)`, test =
    the dataset's test split, val = the run's seeded 20 % of train, both centre-cropped)."""
    import dataclasses

    from rightfocus.data import load_dataset

    if data_root is not None:
        config = dataclasses.replace(config, data_root=data_root)
    from rightfocus.data.registry import DATASETS

    if config.paper == "aim" and config.dataset in DATASETS:  # AIM names (waterbirds95, ...) -> loader + options
        if split == "val":
            from rightfocus.training.aim_loop import load_splits

            return load_splits(config)[1]
        from rightfocus.training.aim_loop import load_split

        return load_split(config, split)  # centre-cropped, as the run evaluated it
    options: dict[str, Any] = {"size": config.image_size}
    if config.task is not None:
        options["task"] = config.task
    options.update(config.extra.get("data_options", {}))
    if config.dataset == "waterbirds" and split == "val":
        options["modified_val"] = True
    return load_dataset(config.dataset, config.data_root, split, **options)


def default_model_loader(rdir: Path, which: Any, device: str = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """A run's model from a kept checkpoint (either paper: `store.load_checkpoint`)."""
    return store.load_checkpoint(rdir, which, device=device)


def _short_label(config: RunConfig) -> str:
    if config.model_kind == "aim":
        return f"AIM {config.arch}"
    if config.is_baseline:
        return f"baseline {config.model_kind}-{config.arch}"
    return f"{config.loss} {config.method}@{config.tap} λ={config.lam:g}"


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


def readout_choices() -> dict[str, str]:
    """Registered metrics the inspector can add to a panel's readout -> their short label."""
    from rightfocus.metrics import MAP_METRICS

    return {k: m.short or k for k, m in MAP_METRICS.items() if k not in ("epg", "iou")}


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
        self.results, self.profile = project.resolve(results), profile
        self.data_root = data_root
        #: run folders `available_runs` left out, with why (unfinished, no checkpoint)
        self.skipped: dict[str, str] = {}
        self.checkpoint = checkpoint
        self.device = device
        self._load_model = model_loader or (lambda rdir, which: default_model_loader(rdir, which, device))
        self._load_dataset = dataset_loader or default_dataset_loader
        self.cache = LRUCache(cache_size)
        self._models: dict[tuple[str, Any], torch.nn.Module] = {}
        self._configs: dict[str, RunConfig] = {}
        self._datasets: dict[str, Any] = {}
        self._tables: dict[str, pd.DataFrame] = {}
        self._scores: dict[tuple, pd.DataFrame] = {}
        self._iou_thresholds: dict[tuple, float] = {}
        self._roots: dict[str, str] = {}  # data root as given -> as found
        # selections
        self.runs: list[str] = []
        self.split = split
        self.index = 0
        self.target: int | None = None  # None: the image's first ground-truth class
        self.method = "gradcam"
        self.tap = CLASSIFIER_TAP
        self.alpha = 0.5
        self.cmap = "jet"
        self.mask_source = "auto"
        self.mask_epoch: int | None = None
        #: also show, per guided run, the guidance signal it was trained with (box, mask, teacher map)
        self.show_guidance = False
        self._sources: dict[str, Any] = {}
        #: further registered metrics (`readout_choices`) in each panel's readout, beside EPG / IoU
        self.readout: tuple[str, ...] = ()
        if runs:
            self.set_runs(runs)

    # ---- runs ----------------------------------------------------------------------------------
    def available_runs(self, group: str | None = None) -> list[str]:
        """Finished run ids in the store (of one group's manifest when given). Folders without a
        config, a ``done`` file or a kept checkpoint (a failed or running `rightfocus train`) are left
        out and noted in `skipped` (run id -> why)."""
        found, self.skipped = [], {}
        for r in store.list_runs(self.results, self.profile, group, unfinished=True):
            why = self._unfinished(r)
            if why is None:
                found.append(r)
            else:
                self.skipped[r] = why
        return found

    def _unfinished(self, run_id: str) -> str | None:
        """Why a run folder cannot be shown (None: it can)."""
        rdir = self.run_dir(run_id)
        if not (rdir / "config.yaml").exists():
            return "no config.yaml"
        if not store.is_done(rdir):
            return "not finished (no done file)"
        if not any((rdir / "ckpt").glob("epoch_*.pt")):
            return "no kept checkpoint"
        return None

    def skipped_note(self) -> str:
        """One line on the run folders `available_runs` left out ("" when none)."""
        if not self.skipped:
            return ""
        shown = ", ".join(f"{r} ({why})" for r, why in list(self.skipped.items())[:3])
        more = f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
        return f"skipped {len(self.skipped)} unfinished run folder(s): {shown}{more}"

    def nothing_found(self) -> str:
        """The message for a store without finished runs: where it looked and what to do."""
        where = self.results / self.profile / "runs"
        note = f" ({self.skipped_note()})" if self.skipped else ""
        return (f"no finished runs under {where}{note}. Train some first (`make demo` in the project root "
                f"{project.project_root()}) or pass results=<folder holding {self.profile}/runs> (a relative one "
                f"is taken from the working directory {Path.cwd()} if it exists there, else from the project root).")

    def run_dir(self, run_id: str) -> Path:
        return store.run_dir(self.results, self.profile, run_id)

    def config(self, run_id: str) -> RunConfig:
        if run_id not in self._configs:
            self._configs[run_id] = store.load_config(self.run_dir(run_id))
        return self._configs[run_id]

    def label(self, run_id: str) -> str:
        return _short_label(self.config(run_id))

    def set_runs(self, runs: Sequence[str]) -> "InspectorState":
        """Choose the runs shown side by side; picks a default method/tap from the first guided run."""
        runs = list(dict.fromkeys(runs))
        if not runs:
            raise ValueError("choose at least one run (InspectorState.available_runs() lists them)")
        missing = [r for r in runs if not (self.run_dir(r) / "config.yaml").exists()]
        if missing:
            raise FileNotFoundError(f"run(s) {missing} not found under {self.results / self.profile / 'runs'}")
        configs = [self.config(r) for r in runs]
        keys = {(c.dataset, c.image_size) for c in configs}
        if len(keys) > 1:
            raise ValueError(f"the chosen runs use different datasets / image sizes {sorted(keys)}; "
                             "compare runs trained on the same data")
        if self.runs and configs[0].dataset != self.config(self.runs[0]).dataset:
            self._datasets.clear()
            self._tables.clear()
        self.runs = runs
        guided = next((c for c in configs if c.method is not None), None)
        if guided is not None:
            self.method, self.tap = guided.method, guided.tap
        elif any(c.model_kind == "bcos" for c in configs):
            self.method, self.tap = "bcos", "input"
        else:
            self.method, self.tap = "gradcam", CLASSIFIER_TAP
        return self

    def select(self, **changes: Any) -> "InspectorState":
        """Set selections by name (split, index, target, method, tap, alpha, cmap, mask_source,
        mask_epoch, checkpoint, show_guidance), validating each; ``runs=`` goes through `set_runs`."""
        from rightfocus.attributions import METHODS

        if "runs" in changes:
            self.set_runs(changes.pop("runs"))
        allowed = {"split", "index", "target", "method", "tap", "alpha", "cmap", "mask_source", "mask_epoch",
                   "checkpoint", "show_guidance", "readout"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown selection(s) {sorted(unknown)}; choose from {sorted(allowed)}")
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
        for k, v in changes.items():
            setattr(self, k, v)
        if "index" in changes:
            n = self.num_images
            if not 0 <= int(self.index) < n:
                raise IndexError(f"image index {self.index} out of range [0, {n}) for split {self.split!r}")
            self.index = int(self.index)
        return self

    # ---- models and data -----------------------------------------------------------------------
    def model(self, run_id: str) -> torch.nn.Module:
        key = (run_id, self.checkpoint)
        if key not in self._models:
            model, config = self._load_model(self.run_dir(run_id), self.checkpoint)
            self._configs.setdefault(run_id, config)
            self._models[key] = model.to(self.device).eval()
        return self._models[key]

    def _reference_config(self) -> RunConfig:
        if not self.runs:
            raise ValueError("no runs chosen yet: call set_runs([...]) first")
        return self.config(self.runs[0])

    def data_root_for(self, config: RunConfig) -> str:
        """The data root to read `config`'s dataset from: `data_root` (this state's override) or the
        run's own, a relative one looked up from the working directory, the project root and the
        folder holding `results` (where `make` trained it); the first that exists."""
        root = self.data_root if self.data_root is not None else config.data_root
        if root in self._roots:
            return self._roots[root]
        tried = project.candidates(root, self.results.parent)
        for path in tried:
            if path.exists():
                self._roots[root] = str(path)
                return str(path)
        source = "data_root" if self.data_root is not None else f"the run's data_root {root!r}"
        raise FileNotFoundError(
            f"dataset of {config.dataset} not found: {source} is none of {[str(p) for p in tried]}; "
            f"pass data_root=<folder> (e.g. InspectorState(..., data_root='/path/to/{Path(root).name}')) "
            "or recreate it (`make data` in the project root for the synthetic data)")

    def dataset(self, split: str | None = None) -> Any:
        split = split or self.split
        if split not in self._datasets:
            config = self._reference_config()
            self._datasets[split] = self._load_dataset(config, split, self.data_root_for(config))
        return self._datasets[split]

    @property
    def num_images(self) -> int:
        return len(self.dataset())

    @property
    def class_names(self) -> list[str]:
        ds = self.dataset()
        names = getattr(ds, "classes", None) or getattr(getattr(ds, "dataset", None), "classes", None)  # Subset
        return list(names) if names else [str(k) for k in range(len(ds[0]["labels"]))]

    def sample(self, index: int | None = None) -> dict[str, Any]:
        """The dataset's sample (cached: a view reads it several times; decoding costs milliseconds)."""
        index = int(self.index if index is None else index)
        cfg = self._reference_config()
        key = ("sample", cfg.dataset, cfg.image_size, self.data_root_for(cfg), self.split, index)
        return self.cache.get_or_compute(key, lambda: self.dataset()[index])

    def ground_truth(self, index: int | None = None) -> list[int]:
        return torch.nonzero(self.sample(index)["labels"] > 0).flatten().tolist()

    def resolve_target(self, index: int | None = None) -> int:
        """The inspected class: the chosen one, else the image's first ground-truth class."""
        if self.target is not None:
            return int(self.target)
        gt = self.ground_truth(index)
        return gt[0] if gt else 0

    def resolve_tap(self, run_id: str, tap: str | None = None) -> str:
        """`CLASSIFIER_TAP` -> the model's classifier tap (AIM ``aim``, else ``final``)."""
        tap = tap or self.tap
        if tap == CLASSIFIER_TAP:
            return getattr(self.model(run_id), "classifier_tap", "final")
        return tap

    def _encoded(self, run_id: str, index: int) -> Tensor:
        from rightfocus.data.encoding import encode

        image = self.sample(index)["image"][None].to(self.device)
        return encode(image, getattr(self.model(run_id), "input_encoding", "imagenet"))

    # ---- computations (cached) -----------------------------------------------------------------
    def logits(self, run_id: str, index: int | None = None) -> Tensor:
        index = int(self.index if index is None else index)
        key = ("logits", run_id, self.checkpoint, self.split, index)

        def compute() -> Tensor:
            with torch.no_grad():
                return self.model(run_id)(self._encoded(run_id, index))[0].detach().cpu()

        return self.cache.get_or_compute(key, compute)

    def scores(self, run_id: str, index: int | None = None) -> Tensor:
        """Class scores [K]: sigmoid for multi-label datasets, softmax otherwise."""
        logits = self.logits(run_id, index)
        multi = self.config(run_id).dataset in MULTI_LABEL_DATASETS or logits.numel() == 1
        return torch.sigmoid(logits) if multi else torch.softmax(logits, 0)

    def heatmap(self, run_id: str, index: int | None = None, target: int | None = None,
                method: str | None = None, tap: str | None = None) -> Tensor:
        """`attribute(model, image, target, method, tap)` at image resolution [H, W] (cached)."""
        from rightfocus.attributions import attribute

        index = int(self.index if index is None else index)
        target = self.resolve_target(index) if target is None else int(target)
        method = method or self.method
        tap = self.resolve_tap(run_id, tap)
        key = ("map", run_id, self.checkpoint, self.split, index, target, method, tap)

        def compute() -> Tensor:
            model = self.model(run_id)
            return attribute(model, self._encoded(run_id, index), torch.tensor([target]), method, layer=tap)[0]\
                .detach().cpu()

        return self.cache.get_or_compute(key, compute)

    def masks_for(self, sample: dict[str, Any], target: int, multi_label: bool) -> tuple[Tensor, Tensor | None]:
        """(box mask, object segmentation or None) of `target` in `sample`, [H, W] each.

        Boxes as in evaluation: union of the class's boxes, complemented when ``invert_mask``.
        Segmentation ids are class index + 1 on multi-label datasets, 1 for the object otherwise
        (data/base.py). Which of the two EPG uses: `_localisation_mask`.
        """
        from rightfocus.data.boxes import boxes_to_masks

        size = tuple(sample["image"].shape[-2:])
        box = boxes_to_masks(sample["boxes"], int(target), size, invert=bool(sample.get("invert_mask", False)))
        seg = sample.get("seg")
        obj = None
        if seg is not None:  # single-label datasets: any object pixel (AIM's `object_masks` rule)
            obj = (seg == target + 1).float() if multi_label else ((seg > 0) & (seg != 255)).float()
        return box, obj

    def resolve_mask_source(self, run_id: str, obj: Tensor | None) -> str:
        """"boxes" or "seg": ``mask_source``, with ``"auto"`` = seg on AIM runs whose image has one (the
        AIM paper's EPG uses the datasets' object masks), boxes otherwise (MG, Sec. 3.3)."""
        if self.mask_source == "auto":
            return "seg" if (self.config(run_id).paper == "aim" and obj is not None) else "boxes"
        return self.mask_source

    def _localisation_mask(self, run_id: str, box: Tensor, obj: Tensor | None) -> Tensor:
        """The mask EPG / IoU use (`resolve_mask_source`)."""
        source = self.resolve_mask_source(run_id, obj)
        if source == "seg":
            if obj is None:
                raise ValueError("mask_source='seg' but this image has no segmentation; use 'boxes'")
            return obj
        return box

    def map_metrics(self, run_id: str, heatmap: Tensor, index: int | None = None, target: int | None = None,
                    method: str | None = None, tap: str | None = None) -> dict[str, float | None]:
        """EPG, IoU and on-object EPG of one map (`rightfocus.metrics`) of `method` at `tap` (default: the
        selection), IoU at the threshold the run's evaluation selected for them (`iou_threshold`)."""
        from rightfocus.metrics import epg, iou, onobject_epg, score

        sample = self.sample(index)
        target = self.resolve_target(index) if target is None else int(target)
        multi = self.config(run_id).dataset in MULTI_LABEL_DATASETS
        box, obj = self.masks_for(sample, target, multi)
        mask = self._localisation_mask(run_id, box, obj)
        m = heatmap[None].float()
        onobj = None
        if obj is not None and not bool(sample.get("invert_mask", False)) and float(box.sum()) > 0:
            onobj = float(onobject_epg(m, box[None], obj[None])[0])
        out = {"epg": float(epg(m, mask[None])[0]), "iou": float(iou(m, mask[None], self.iou_threshold(run_id, method, tap))[0]),
               "onobj_epg": onobj, "mask": self.resolve_mask_source(run_id, obj)}
        out.update({k: float(v[0]) for k, v in score(self.readout, m, mask[None].float()).items()})
        return out

    def iou_threshold(self, run_id: str, method: str | None = None, tap: str | None = None) -> float:
        """The IoU threshold the run's evaluation used for the shown checkpoint and (tap, method): the
        one validation selected there (its metrics.jsonl rows; MG Sec. 3.3), else the run's latest for
        that pair, else `metrics.DEFAULT_IOU_THRESHOLD`."""
        from rightfocus.metrics import DEFAULT_IOU_THRESHOLD

        tap = self.resolve_tap(run_id, tap)
        method = method or self.method
        key = (run_id, self.checkpoint, method, tap)
        if key not in self._iou_thresholds:
            rows = [r for r in store.read_metrics(self.run_dir(run_id))
                    if r.get("iou_threshold") is not None and (r.get("tap"), r.get("method")) == (tap, method)]
            epoch = self._checkpoint_epoch(run_id)
            at = [r for r in rows if r.get("epoch") == epoch]
            chosen = (at or rows)[-1]["iou_threshold"] if (at or rows) else DEFAULT_IOU_THRESHOLD
            self._iou_thresholds[key] = float(chosen)
        return self._iou_thresholds[key]

    def _checkpoint_epoch(self, run_id: str) -> int | None:
        """The epoch of the checkpoint shown (`checkpoint`: "selected", an epoch, or "latest": None)."""
        if self.checkpoint == "latest":
            return None
        if self.checkpoint in (None, "selected"):
            return store.read_done(self.run_dir(run_id)).get("selected_epoch")
        return int(self.checkpoint)

    # ---- AIM masks -----------------------------------------------------------------------------
    def is_aim(self, run_id: str) -> bool:
        return hasattr(self.model(run_id), "forward_aim")

    def mask_epochs(self, run_id: str) -> list[int]:
        """Epochs whose masks the run stored (``runs/<id>/masks/epoch_<e>.pt``; AIM Fig. 7)."""
        folder = self.run_dir(run_id) / "masks"
        found = [re.fullmatch(r"epoch_(\d+)\.pt", p.name) for p in folder.glob("epoch_*.pt")] if folder.exists() else []
        return sorted(int(m.group(1)) for m in found if m)

    def mask_images(self, run_id: str) -> list[int]:
        """Test-split positions of the images whose masks the run stored every epoch (``masks/images.pt``)."""
        path = self.run_dir(run_id) / "masks" / "images.pt"
        if not path.exists():
            return []
        return [int(i) for i in store.load_torch(path)["positions"]]

    def aim_masks(self, run_id: str, index: int | None = None, epoch: int | None = None) -> dict[str, np.ndarray]:
        """Per-stage binary masks ("S<l>", top stage first) and the merged mask, at image resolution
        (nearest upsampling), from the checkpoint (`forward_aim` in eval mode: no Gumbel noise, hard
        threshold) or, with `epoch`, from the masks the run stored at that epoch."""
        index = int(self.index if index is None else index)
        key = ("aim", run_id, self.checkpoint, self.split, index, epoch)
        return self.cache.get_or_compute(key, lambda: self._aim_masks(run_id, index, epoch))

    def _aim_masks(self, run_id: str, index: int, epoch: int | None) -> dict[str, np.ndarray]:
        import torch.nn.functional as F

        size = tuple(self.sample(index)["image"].shape[-2:])
        if epoch is None:
            with torch.no_grad():
                out = self.model(run_id).forward_aim(self._encoded(run_id, index))
            stages = {f"S{k}": v[0] for k, v in out.masks.items()}
            merged = out.merged_mask[0] if out.merged_mask is not None else None
        else:
            stages, merged = self._stored_masks(run_id, index, epoch)
        result = {}
        for name, m in stages.items():
            result[name] = F.interpolate(m[None].float(), size=size, mode="nearest")[0, 0].numpy()
        if merged is not None:
            merged = F.interpolate(merged[None].float(), size=size, mode="nearest")[0, 0]
            top = float(merged.max())
            # values 0..number of masks: scale to [0, 1] for display
            result["merged"] = (merged / top if top > 0 else merged).numpy()
        return result

    def _stored_masks(self, run_id: str, index: int, epoch: int) -> tuple[dict[str, Tensor], Tensor | None]:
        """Masks the AIM loop stored at `epoch` for fixed test images (training/aim_loop.py
        ``_store_masks``: ``stage_masks`` top stage first, ``stages``, ``merged``)."""
        path = self.run_dir(run_id) / "masks" / f"epoch_{epoch}.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path} missing; this run stored masks for epochs {self.mask_epochs(run_id)}")
        positions = self.mask_images(run_id)
        if self.split != "test" or index not in positions:
            raise KeyError(f"{run_id} stored its per-epoch masks for test images {positions} only; "
                           f"pick one of those on split 'test'")
        blob = store.load_torch(path)
        row = positions.index(index)
        stages = {f"S{k}": torch.as_tensor(m)[row] for k, m in zip(blob["stages"], blob["stage_masks"])}
        merged = blob.get("merged")
        return stages, (torch.as_tensor(merged)[row] if merged is not None else None)

    # ---- the guidance signal ---------------------------------------------------------------------
    def guidance_signal(self, run_id: str, index: int | None = None, target: int | None = None
                        ) -> tuple[str, np.ndarray] | None:
        """(name, mask [H, W] in [0, 1]) a guided model-guidance run was trained with for this image and
        class: its boxes, segmentation, teacher map or AIM mask (`training.mask_sources`, the training
        step's own code), or None for baselines, AIM runs and images without that annotation."""
        config = self.config(run_id)
        if config.paper != "mg" or config.is_baseline:
            return None
        index = int(self.index if index is None else index)
        target = self.resolve_target(index) if target is None else int(target)

        def compute() -> tuple[str, np.ndarray] | None:
            from rightfocus.data import collate
            from rightfocus.training.mask_sources import build_mask_source

            if run_id not in self._sources:
                self._sources[run_id] = build_mask_source(config, len(self.class_names), self.results, self.device)
            source = self._sources[run_id]
            batch = collate([self.sample(index)])
            masks, has = source.masks(batch, batch["image"], torch.tensor([target]))
            return (config.mask_source, masks[0].numpy()) if bool(has[0]) else None

        return self.cache.get_or_compute(("guidance", run_id, self.split, index, target), compute)

    # ---- the view ------------------------------------------------------------------------------
    def panel(self, run_id: str) -> Panel:
        index = self.index
        target = self.resolve_target()
        names = self.class_names
        scores = self.scores(run_id)
        pred = int(torch.argmax(scores))
        label = self.label(run_id)
        masks: dict[str, np.ndarray] = {}
        epoch = None
        if self.is_aim(run_id):
            stored = self.mask_epoch in self.mask_epochs(run_id) and self.split == "test" \
                and index in self.mask_images(run_id)
            epoch = self.mask_epoch if stored else None  # otherwise: the checkpoint's own masks
            masks = self.aim_masks(run_id, index, epoch)
        if self.show_guidance:
            signal = self.guidance_signal(run_id, index, target)
            if signal is not None:
                masks = {**masks, f"trained on {signal[0].split(':')[0]}": signal[1]}
        try:
            tap = self.resolve_tap(run_id)
            heat = self.heatmap(run_id)
            metrics = self.map_metrics(run_id, heat)
            error = None
        except ValueError as exc:  # e.g. method 'bcos' on a vanilla model: show why, keep the others
            tap, heat, metrics, error = str(self.tap), torch.zeros(self.sample()["image"].shape[-2:]), \
                {"epg": float("nan"), "iou": float("nan"), "onobj_epg": None, "mask": None}, str(exc)
        return Panel(run_id, label, heat, pred, names[pred] if pred < len(names) else str(pred),
                     float(scores[pred]), float(scores[target]) if target < len(scores) else float("nan"),
                     metrics, tap, masks, epoch, error)

    def view(self) -> View:
        """The current view: image, boxes, segmentation and one `Panel` per chosen run."""
        sample = self.sample()
        target = self.resolve_target()
        names = self.class_names
        return View(self.index, sample["image"], sample["boxes"], sample.get("seg"), target,
                    names[target] if target < len(names) else str(target), names, self.split, self.method,
                    self.tap, [self.panel(r) for r in self.runs])

    def figure(self, view: View | None = None):
        from rightfocus.widgets.render import inspector_figure

        return inspector_figure(view or self.view(), cmap=self.cmap, alpha=self.alpha)

    def view_key(self) -> tuple:
        """Everything the drawn view depends on (the PNG cache's key)."""
        return ("png", tuple(self.runs), self.checkpoint, self.split, self.index, self.resolve_target(), self.method,
                self.tap, float(self.alpha), self.cmap, self.mask_source, self.mask_epoch, self.show_guidance)

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

    # ---- browsing ------------------------------------------------------------------------------
    def image_table(self, split: str | None = None) -> pd.DataFrame:
        """One row per image: index, classes (ground-truth ids), group (or -1). Read from the loader's
        records when it has them (no image decoding), else from the samples."""
        split = split or self.split
        if split not in self._tables:
            ds = self.dataset(split)
            records = getattr(ds, "records", None)
            if records is not None:
                rows = [(i, sorted(set(r.labels)), int(r.extra.get("group", -1))) for i, r in enumerate(records)]
            else:
                rows = []
                for i in range(len(ds)):
                    s = ds[i]
                    rows.append((i, torch.nonzero(s["labels"] > 0).flatten().tolist(), int(s.get("group", -1))))
            self._tables[split] = pd.DataFrame(rows, columns=["index", "classes", "group"])
        return self._tables[split]

    def image_epg(self, run_id: str, method: str | None = None, tap: str | None = None,
                  batch_size: int = 32) -> pd.DataFrame:
        """Per-image EPG of a run on the current split: the mean over the image's ground-truth classes
        that have boxes (the evaluation's pairs), columns index, epg (NaN without such a class)."""
        from rightfocus.attributions import attribute_all_classes
        from rightfocus.data.encoding import encode
        from rightfocus.metrics import epg

        method = method or self.method
        tap = self.resolve_tap(run_id, tap)
        key = (run_id, self.checkpoint, self.split, method, tap, self.mask_source)
        if key in self._scores:
            return self._scores[key]
        model = self.model(run_id)
        ds = self.dataset()
        multi = self.config(run_id).dataset in MULTI_LABEL_DATASETS
        values = np.full(len(ds), np.nan)
        for start in range(0, len(ds), batch_size):
            samples = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
            images = encode(torch.stack([s["image"] for s in samples]).to(self.device), model.input_encoding)
            labels = torch.stack([s["labels"] for s in samples]).to(self.device)
            maps, ii, cc = attribute_all_classes(model, images, labels, method, layer=tap)
            per_image: dict[int, list[float]] = {}
            for p, (i, c) in enumerate(zip(ii.tolist(), cc.tolist())):
                box, obj = self.masks_for(samples[i], c, multi)
                if not bool(samples[i].get("invert_mask", False)) and float(box.sum()) == 0:
                    continue  # no box of this class: not an evaluation pair
                mask = self._localisation_mask(run_id, box, obj)
                per_image.setdefault(i, []).append(float(epg(maps[p:p + 1].cpu(), mask[None])[0]))
            for i, v in per_image.items():
                values[start + i] = float(np.mean(v))
        df = pd.DataFrame({"index": np.arange(len(ds)), "epg": values})
        self._scores[key] = df
        return df

    def filter_images(self, cls: int | None = None, group: int | None = None,
                      epg_range: tuple[float, float] | None = None, run_id: str | None = None) -> list[int]:
        """Image indices of the current split with class `cls`, in `group`, and whose per-image EPG
        (of `run_id`, default the first chosen run) lies in `epg_range` (inclusive)."""
        table = self.image_table()
        keep = np.ones(len(table), dtype=bool)
        if cls is not None:
            keep &= table["classes"].map(lambda cs: int(cls) in cs).to_numpy(dtype=bool)
        if group is not None:
            keep &= (table["group"] == int(group)).to_numpy()
        if epg_range is not None:
            lo, hi = epg_range
            scores = self.image_epg(run_id or self._reference_run())["epg"].to_numpy()
            keep &= (scores >= lo) & (scores <= hi)
        return table["index"][keep].astype(int).tolist()

    def _reference_run(self) -> str:
        if not self.runs:
            raise ValueError("no runs chosen yet: call set_runs([...]) first")
        return self.runs[0]

    def epg_change(self, run_a: str | None = None, run_b: str | None = None, absolute: bool = False) -> pd.DataFrame:
        """Images ranked by EPG change from `run_a` (default: first run) to `run_b` (default: last run):
        columns index, epg_a, epg_b, change; largest gain first (`absolute`: largest |change| first)."""
        run_a = run_a or self._reference_run()
        run_b = run_b or self.runs[-1]
        a, b = self.image_epg(run_a), self.image_epg(run_b)
        df = pd.DataFrame({"index": a["index"], "epg_a": a["epg"], "epg_b": b["epg"]})
        df["change"] = df["epg_b"] - df["epg_a"]
        df = df.dropna(subset=["change"])
        order = df["change"].abs() if absolute else df["change"]
        return df.loc[order.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)

    # ---- perception study ----------------------------------------------------------------------
    def study_renderer(self, method: str = "gradcam", tap: str = CLASSIFIER_TAP) -> Callable[[int, str], tuple[Tensor, Tensor]]:
        """``render(image_index, run_id) -> (image [3, H, W], map [H, W])`` for `PerceptionStudy`: the
        map of the image's ground-truth class (AIM D.6: GradCAM of the baseline and AIM)."""

        def render(index: int, run_id: str) -> tuple[Tensor, Tensor]:
            target = self.ground_truth(index)
            return self.sample(index)["image"], self.heatmap(run_id, index, target[0] if target else 0, method, tap)

        return render

    def study_epg(self, method: str = "gradcam", tap: str = CLASSIFIER_TAP) -> Callable[[int, str], float]:
        """``epg(image_index, run_id) -> float``: EPG of the map `study_renderer` shows, for
        `simulate_participant` (a simulated participant prefers the higher-EPG map)."""

        def value(index: int, run_id: str) -> float:
            gt = self.ground_truth(index)
            target = gt[0] if gt else 0
            heat = self.heatmap(run_id, index, target, method, tap)
            return float(self.map_metrics(run_id, heat, index, target)["epg"])

        return value

