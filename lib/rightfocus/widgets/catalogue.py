"""`RunCatalogue`: what the results store holds for the inspector: which runs are finished (and why
others are left out), their folders, configs and labels, their kept checkpoints' epochs, the IoU
thresholds their evaluation recorded, the epochs whose AIM masks they stored, and where their data lives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from rightfocus import project
from rightfocus.data.registry import DATASETS, canonical_name
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig

#: datasets whose labels are multi-hot (sigmoid scores, per-class segmentation ids), from the registry
MULTI_LABEL_DATASETS = tuple(name for name, spec in DATASETS.items() if spec.multi_label)


def short_label(config: RunConfig) -> str:
    """A run's name in a panel title: ``AIM <arch>``, ``baseline <kind>-<arch>`` or ``<loss> <method>@<tap> λ=<lam>``."""
    if config.model_kind == "aim":
        return f"AIM {config.arch}"
    if config.is_baseline:
        return f"baseline {config.model_kind}-{config.arch}"
    return f"{config.loss} {config.method}@{config.tap} λ={config.lam:g}"


class RunCatalogue:
    """The runs of ``<results>/<profile>/runs`` and what each recorded.

    `results` resolves as `rightfocus.project.resolve` does (the working directory if it exists there,
    else the project root); `data_root` overrides the runs' own data roots.
    """

    def __init__(self, results: str | Path = "results", profile: str = "demo", data_root: str | None = None) -> None:
        self.results, self.profile = project.resolve(results), profile
        self.data_root = data_root
        #: run folders `available_runs` left out, with why (unfinished, no checkpoint)
        self.skipped: dict[str, str] = {}
        self._configs: dict[str, RunConfig] = {}
        self._iou_thresholds: dict[tuple, float] = {}
        self._roots: dict[str, str] = {}  # data root as given -> as found

    def available_runs(self, group: str | None = None) -> list[str]:
        """Finished run ids in the store (of one group's manifest when given). Folders without a
        config, a ``done`` file or a kept checkpoint (a failed or running `rightfocus train`) are left
        out and noted in `skipped` (run id -> why)."""
        found, self.skipped = [], {}
        for r in store.list_runs(self.results, self.profile, group, unfinished=True):
            why = self.unfinished(r)
            if why is None:
                found.append(r)
            else:
                self.skipped[r] = why
        return found

    def unfinished(self, run_id: str) -> str | None:
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

    def remember(self, run_id: str, config: RunConfig) -> None:
        """Keep `config` as the run's config unless one was read already (a model loader returns both)."""
        self._configs.setdefault(run_id, config)

    def multi_label(self, run_id: str) -> bool:
        """Whether the run's dataset has multi-hot labels (its `rightfocus.data.DATASETS` entry)."""
        name = canonical_name(self.config(run_id).dataset)
        return name is not None and DATASETS[name].multi_label

    def label(self, run_id: str) -> str:
        return short_label(self.config(run_id))

    def comparable(self, runs: Sequence[str]) -> list[RunConfig]:
        """The configs of `runs`; raises unless they exist and share one dataset and image size."""
        missing = [r for r in runs if not (self.run_dir(r) / "config.yaml").exists()]
        if missing:
            raise FileNotFoundError(f"run(s) {missing} not found under {self.results / self.profile / 'runs'}")
        configs = [self.config(r) for r in runs]
        keys = {(c.dataset, c.image_size) for c in configs}
        if len(keys) > 1:
            raise ValueError(f"the chosen runs use different datasets / image sizes {sorted(keys)}; "
                             "compare runs trained on the same data")
        return configs

    def checkpoint_epoch(self, run_id: str, checkpoint: str | int | None) -> int | None:
        """The epoch of `checkpoint` ("selected", an epoch, or "latest": None)."""
        if checkpoint == "latest":
            return None
        if checkpoint in (None, "selected"):
            return store.read_done(self.run_dir(run_id)).get("selected_epoch")
        return int(checkpoint)

    def iou_threshold(self, run_id: str, checkpoint: str | int | None, method: str, tap: str) -> float:
        """The IoU threshold the run's evaluation used for `checkpoint` and (tap, method): the one
        validation selected there (its metrics.jsonl rows; MG Sec. 3.3), else the run's latest for that
        pair, else `metrics.DEFAULT_IOU_THRESHOLD`."""
        from rightfocus.metrics import DEFAULT_IOU_THRESHOLD

        key = (run_id, checkpoint, method, tap)
        if key not in self._iou_thresholds:
            rows = [r for r in store.read_metrics(self.run_dir(run_id))
                    if r.get("iou_threshold") is not None and (r.get("tap"), r.get("method")) == (tap, method)]
            epoch = self.checkpoint_epoch(run_id, checkpoint)
            at = [r for r in rows if r.get("epoch") == epoch]
            chosen = (at or rows)[-1]["iou_threshold"] if (at or rows) else DEFAULT_IOU_THRESHOLD
            self._iou_thresholds[key] = float(chosen)
        return self._iou_thresholds[key]

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

    def data_root_for(self, config: RunConfig) -> str:
        """The data root to read `config`'s dataset from: `data_root` (the override) or the run's own,
        a relative one looked up from the working directory, the project root and the folder holding
        `results` (where `make` trained it); the first that exists."""
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
