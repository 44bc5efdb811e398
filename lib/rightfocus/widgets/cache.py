"""What the inspector loads and computes, each once: models, datasets and, in one bounded LRU cache,
samples, logits, attribution maps, AIM masks, guidance signals and drawn views.

Maps are keyed by (run, checkpoint, split, image, class, method, tap), so flipping between images
already seen costs a dictionary lookup; benchmarks/bench_inspector.py measures both paths.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Hashable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rightfocus.runs.config import RunConfig
from rightfocus.widgets import aim_masks, browse
from rightfocus.widgets.catalogue import RunCatalogue
from rightfocus.widgets.selection import CLASSIFIER_TAP, Selection

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


def class_names(dataset: Any) -> list[str]:
    """The dataset's class names (of the dataset a ``Subset`` wraps), else "0", "1", ..."""
    names = getattr(dataset, "classes", None) or getattr(getattr(dataset, "dataset", None), "classes", None)
    return list(names) if names else [str(k) for k in range(len(dataset[0]["labels"]))]


class AttributionCache:
    """Models, datasets and maps of the runs in `selection`; arguments left None take the selection's
    image, class, method and tap. Every run shown reads the dataset of the first selected run."""

    def __init__(self, catalogue: RunCatalogue, selection: Selection, model_loader: ModelLoader,
                 dataset_loader: DatasetLoader, cache_size: int = 256, device: str = "cpu") -> None:
        self.catalogue, self.selection = catalogue, selection
        self.device = device
        self.lru = LRUCache(cache_size)
        self._load_model, self._load_dataset = model_loader, dataset_loader
        self._models: dict[tuple[str, Any], torch.nn.Module] = {}
        self._datasets: dict[str, Any] = {}
        self.tables: dict[str, pd.DataFrame] = {}  # split -> `image_table`
        #: per-image EPG (`InspectorState.image_epg`) per run, checkpoint, split, method, tap and mask source
        self.image_scores: dict[tuple, pd.DataFrame] = {}
        self._sources: dict[str, Any] = {}  # run id -> its training's mask source (`guidance_signal`)

    def forget_data(self) -> None:
        """Drop the datasets and image tables (the selected runs read another dataset)."""
        self._datasets.clear()
        self.tables.clear()

    def model(self, run_id: str) -> torch.nn.Module:
        key = (run_id, self.selection.checkpoint)
        if key not in self._models:
            model, config = self._load_model(self.catalogue.run_dir(run_id), self.selection.checkpoint)
            self.catalogue.remember(run_id, config)
            self._models[key] = model.to(self.device).eval()
        return self._models[key]

    def reference_config(self) -> RunConfig:
        if not self.selection.runs:
            raise ValueError("no runs chosen yet: call set_runs([...]) first")
        return self.catalogue.config(self.selection.runs[0])

    def dataset(self, split: str | None = None) -> Any:
        split = split or self.selection.split
        if split not in self._datasets:
            config = self.reference_config()
            self._datasets[split] = self._load_dataset(config, split, self.catalogue.data_root_for(config))
        return self._datasets[split]

    def image_table(self, split: str | None = None) -> pd.DataFrame:
        """One row per image of `split` (default: the selected one): index, classes, group (`browse.image_table`)."""
        split = split or self.selection.split
        if split not in self.tables:
            self.tables[split] = browse.image_table(self.dataset(split))
        return self.tables[split]

    def sample(self, index: int | None = None) -> dict[str, Any]:
        """The dataset's sample (cached: a view reads it several times; decoding costs milliseconds)."""
        index = int(self.selection.index if index is None else index)
        cfg = self.reference_config()
        key = ("sample", cfg.dataset, cfg.image_size, self.catalogue.data_root_for(cfg), self.selection.split, index)
        return self.lru.get_or_compute(key, lambda: self.dataset()[index])

    def ground_truth(self, index: int | None = None) -> list[int]:
        return torch.nonzero(self.sample(index)["labels"] > 0).flatten().tolist()

    def resolve_target(self, index: int | None = None) -> int:
        """The inspected class: the chosen one, else the image's first ground-truth class."""
        if self.selection.target is not None:
            return int(self.selection.target)
        gt = self.ground_truth(index)
        return gt[0] if gt else 0

    def resolve_tap(self, run_id: str, tap: str | None = None) -> str:
        """`CLASSIFIER_TAP` -> the model's classifier tap (AIM ``aim``, else ``final``)."""
        tap = tap or self.selection.tap
        if tap == CLASSIFIER_TAP:
            return getattr(self.model(run_id), "classifier_tap", "final")
        return tap

    def encoded(self, run_id: str, index: int) -> Tensor:
        from rightfocus.data.encoding import encode

        image = self.sample(index)["image"][None].to(self.device)
        return encode(image, getattr(self.model(run_id), "input_encoding", "imagenet"))

    def logits(self, run_id: str, index: int | None = None) -> Tensor:
        index = int(self.selection.index if index is None else index)
        key = ("logits", run_id, self.selection.checkpoint, self.selection.split, index)

        def compute() -> Tensor:
            with torch.no_grad():
                return self.model(run_id)(self.encoded(run_id, index))[0].detach().cpu()

        return self.lru.get_or_compute(key, compute)

    def heatmap(self, run_id: str, index: int | None = None, target: int | None = None,
                method: str | None = None, tap: str | None = None) -> Tensor:
        """`attribute(model, image, target, method, tap)` at image resolution [H, W] (cached)."""
        from rightfocus.attributions import attribute

        index = int(self.selection.index if index is None else index)
        target = self.resolve_target(index) if target is None else int(target)
        method = method or self.selection.method
        tap = self.resolve_tap(run_id, tap)
        key = ("map", run_id, self.selection.checkpoint, self.selection.split, index, target, method, tap)

        def compute() -> Tensor:
            model = self.model(run_id)
            return attribute(model, self.encoded(run_id, index), torch.tensor([target]), method, layer=tap)[0]\
                .detach().cpu()

        return self.lru.get_or_compute(key, compute)

    def aim_masks(self, run_id: str, index: int | None = None, epoch: int | None = None) -> dict[str, np.ndarray]:
        """Per-stage binary masks ("S<l>", top stage first) and the merged mask at image resolution, from
        the checkpoint or, with `epoch`, from the masks the run stored at that epoch (`aim_masks`)."""
        index = int(self.selection.index if index is None else index)
        sel = self.selection
        key = ("aim", run_id, sel.checkpoint, sel.split, index, epoch)

        def compute() -> dict[str, np.ndarray]:
            if epoch is None:
                stages, merged = aim_masks.from_model(self.model(run_id), self.encoded(run_id, index))
            else:
                stages, merged = aim_masks.stored(self._stored_path(run_id, epoch), self.catalogue.mask_images(run_id),
                                                  self._stored_index(run_id, index))
            return aim_masks.at_image_size(stages, merged, tuple(self.sample(index)["image"].shape[-2:]))

        return self.lru.get_or_compute(key, compute)

    def _stored_path(self, run_id: str, epoch: int) -> Path:
        path = self.catalogue.run_dir(run_id) / "masks" / f"epoch_{epoch}.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path} missing; this run stored masks for epochs "
                                    f"{self.catalogue.mask_epochs(run_id)}")
        return path

    def _stored_index(self, run_id: str, index: int) -> int:
        positions = self.catalogue.mask_images(run_id)
        if self.selection.split != "test" or index not in positions:
            raise KeyError(f"{run_id} stored its per-epoch masks for test images {positions} only; "
                           f"pick one of those on split 'test'")
        return index

    def guidance_signal(self, run_id: str, index: int | None = None, target: int | None = None
                        ) -> tuple[str, np.ndarray] | None:
        """(name, mask [H, W] in [0, 1]) a guided model-guidance run was trained with for this image and
        class: its boxes, segmentation, teacher map or AIM mask (`training.mask_sources`, the training
        step's own code), or None for baselines, AIM runs and images without that annotation."""
        config = self.catalogue.config(run_id)
        if config.paper != "mg" or config.is_baseline:
            return None
        index = int(self.selection.index if index is None else index)
        target = self.resolve_target(index) if target is None else int(target)

        def compute() -> tuple[str, np.ndarray] | None:
            from rightfocus.data import collate
            from rightfocus.training.mask_sources import build_mask_source

            if run_id not in self._sources:
                self._sources[run_id] = build_mask_source(config, len(class_names(self.dataset())),
                                                          self.catalogue.results, self.device)
            batch = collate([self.sample(index)])
            masks, has = self._sources[run_id].masks(batch, batch["image"], torch.tensor([target]))
            return (config.mask_source, masks[0].numpy()) if bool(has[0]) else None

        return self.lru.get_or_compute(("guidance", run_id, self.selection.split, index, target), compute)
