"""Entry points: one run, several runs, or a config file, for either paper (the CLI's `rightfocus train`
and the training notebooks call these). Each picks the paper's task (`MgTask`, `AimTask`) and hands it
to the run engine (`training.engine.run`), which owns the run's life from config to `done`."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from rightfocus.runs import store
from rightfocus.runs.config import RunConfig, load_config_file
from rightfocus.training.engine import StopRequested, Task, run

__all__ = ["StopRequested", "task_for", "train_from_file", "train_run", "train_runs"]


def task_for(config: RunConfig) -> Task:
    """The paper's task for `config` (``config.paper``: "mg" or "aim"); each paper's module is imported
    when its first run starts."""
    if config.paper == "aim":
        from rightfocus.training.aim_loop import AimTask

        return AimTask(config)
    from rightfocus.training.mg_task import MgTask

    return MgTask(config)


def train_run(config: RunConfig, results: str | Path = "results", *, stop_after_epochs: int | None = None,
              progress: bool = True, notebook: str | None = None) -> Path:
    """Train (or resume, or skip when done) one run of either paper; returns its folder.
    `stop_after_epochs=k` raises `StopRequested` after epoch k (tests of resuming). The config's
    `weights_root` (when set) is where its pretrained weights files are looked up, over $WEIGHTS_ROOT."""
    with weights_root(config.weights_root):
        return run(task_for(config), results, stop_after=stop_after_epochs, progress=progress, notebook=notebook)


@contextmanager
def weights_root(root: str | None) -> Iterator[None]:
    """$WEIGHTS_ROOT set to `root` (relative: from the project root) for the block; None: unchanged."""
    from rightfocus import project
    from rightfocus.models.weights import WEIGHTS_ENV

    if root is None:
        yield
        return
    before = os.environ.get(WEIGHTS_ENV)
    os.environ[WEIGHTS_ENV] = str(project.resolve(root))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(WEIGHTS_ENV, None)
        else:
            os.environ[WEIGHTS_ENV] = before


def train_runs(configs: Iterable[RunConfig], results: str | Path = "results", *, progress: bool = True,
               notebook: str | None = None) -> list[Path]:
    """Train several runs in order (MG baselines before the guided runs that start from them)."""
    configs = list(configs)
    ordered = [c for c in configs if c.is_baseline] + [c for c in configs if not c.is_baseline]
    return [train_run(c, results, progress=progress, notebook=notebook) for c in ordered]


def train_from_file(config: str | Path, overrides: Sequence[str] = (), results: str | Path = "results") -> Path:
    """`rightfocus train CONFIG [--set key=value ...]`: load, override, train (or resume). Under
    ``torchrun --nproc_per_node N -m rightfocus train CONFIG`` the N processes train the run together
    (`training.distributed`; ``batch_size`` is the global batch); rank 0 reports."""
    cfg = load_config_file(config, overrides)
    rdir = train_run(cfg, results)
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({"run_id": cfg.run_id, "dir": str(rdir), "done": store.is_done(rdir)}))
    return rdir
