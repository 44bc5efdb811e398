"""Tiny runs of both papers for the fault tests (tests/test_faults.py): configs, a `rightfocus train`
subprocess killed with SIGKILL at a named fault point (`store.fault_point`), and what must match
between an interrupted-and-resumed run and an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import rightfocus
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig, dump_config

LIB = str(Path(rightfocus.__file__).resolve().parents[1])
#: summary fields that differ between any two runs (wall clock)
CLOCK = ("finished_at", "train_time_s")


def mg_config(voc: Path) -> RunConfig:
    """A baseline MG run: 12 train images in batches of 6 = 2 steps per epoch, one val and test batch."""
    return RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=3,
                     lr=1e-2, batch_size=6, image_size=16, seed=0)


def aim_config(cub: Path) -> RunConfig:
    """An AIM run (ConvNeXt-tiny-shaped at 32 px, masks at stage 2): one training batch per epoch."""
    from rightfocus.experiments.aim_grids import make_config

    cfg = make_config("demo", "cub", "convnext_tiny", aim=True, stage=2, tau=0.25, anneal_epochs=1,
                      fixed_images=3)
    return replace(cfg, data_root=str(cub), epochs=2, batch_size=8)


def write_config(cfg: RunConfig, folder: Path) -> Path:
    path = folder / f"{cfg.run_id}.yaml"
    path.write_text(dump_config(cfg))
    return path


def env(**more: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != store.FAULT_ENV}
    out.update(PYTHONPATH=LIB, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **more)
    return out


def train_cmd(config: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "rightfocus", "train", str(config), "--results", str(results)]


def train(config: Path, results: Path, **more: str) -> subprocess.CompletedProcess:
    """`rightfocus train` to completion (or its error) in a fresh process."""
    return subprocess.run(train_cmd(config, results), env=env(**more), capture_output=True, text=True,
                          timeout=900)


def kill_at(config: Path, results: Path, point: str, timeout: float = 600) -> str:
    """Start `rightfocus train`, SIGKILL it once it pauses at fault point `point` ("<substring>@<n>");
    returns its stderr. Fails when the run never reaches the point."""
    proc = subprocess.Popen(train_cmd(config, results), env=env(**{store.FAULT_ENV: point}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    seen = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "fault-pause" in line:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
    finally:
        timer.cancel()
    err = "".join(seen)
    assert proc.returncode == -signal.SIGKILL, f"{point}: the run ended (rc {proc.returncode}) before the point:\n{err[-3000:]}"
    return err


def files(rdir: Path) -> set[str]:
    return {str(p.relative_to(rdir)) for p in rdir.rglob("*") if p.is_file() and p.name != "notebook.txt"}


def outcome(rdir: Path) -> dict[str, Any]:
    """Everything a finished run produced, clock fields dropped, tensors of every .pt file as lists."""
    rows = [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in store.read_metrics(rdir)]
    done = {k: v for k, v in json.loads((rdir / "done").read_text()).items() if k not in CLOCK}
    blobs = {}
    for path in sorted(rdir.rglob("*.pt")):
        blobs[str(path.relative_to(rdir))] = _plain(store.load_torch(path))
    csvs = {str(p.relative_to(rdir)): p.read_text() for p in sorted(rdir.rglob("*.csv"))}
    return {"rows": rows, "done": done, "files": files(rdir), "blobs": blobs, "csvs": csvs}


def _plain(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return (str(obj.dtype), tuple(obj.shape), obj.flatten().tolist())
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
