"""Device, disk and time of a grid: what `rightfocus check` reports besides data and weights.

- Device: CUDA (name, memory) or CPU (a warning for the paper profile).
- Disk: free space where results go against the grid's checkpoint volume, estimated as parameter
  bytes (float32, counted on the model each run builds) x checkpoints a FINISHED run keeps
  (`kept_checkpoints`) summed over the runs, plus one running job's resume state (model + Adam's two
  moments + one transient copy: 4 x the largest model).
- Time: a few training steps of each distinct model of the grid (kind, arch, image size; MG guided
  steps at the INPUT tap with the run's native attribution and the Energy loss, the costliest tap:
  an upper bound for deeper taps) are timed on the current device at the grid's batch size (on CPU
  at `CPU_BATCH` images for models above 64 px, and on a GPU where the batch does not fit, at a
  halved batch: then scaled linearly to the grid's batch, i.e. extrapolated).
  GPU-hours of a group = sum over its runs of epochs x ceil(train images / batch) x step time:
  training steps only (validation and test passes come on top).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rightfocus.check.problems import ERROR, WARNING, Problem
from rightfocus.runs.config import NATIVE_METHOD, RunConfig

#: MG guided runs keep the checkpoints on their own validation Pareto front (the MG task's `keep`):
#: its size is not known before training; assumed here (a 3-D front over 10-50 epochs)
ASSUMED_FRONT = 10
#: reduced batch for timing on CPU
CPU_BATCH = 2
#: MG native attribution per model kind (`rightfocus.models.kinds.MODEL_KINDS`)
NATIVE = NATIVE_METHOD


def kept_checkpoints(c: RunConfig) -> int:
    """Model-sized files a finished run keeps: MG: latest.pt (weights only once done) + the selected
    checkpoint (baselines) or its Pareto front (guided, `ASSUMED_FRONT`); AIM: the best epoch only
    (latest.pt is deleted when the run is done)."""
    if c.paper == "aim":
        return 1
    return 2 if c.is_baseline else 1 + ASSUMED_FRONT


# ---- device -------------------------------------------------------------------------------------
@dataclass
class DeviceInfo:
    kind: str  # "cuda" | "cpu"
    name: str
    memory_gb: float | None

    def describe(self) -> str:
        mem = f", {self.memory_gb:.1f} GiB" if self.memory_gb else ""
        return f"{self.kind}: {self.name}{mem}"


def device_info() -> DeviceInfo:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        n = torch.cuda.device_count()
        return DeviceInfo("cuda", f"{props.name}" + (f" (x{n})" if n > 1 else ""), props.total_memory / 2**30)
    import os

    return DeviceInfo("cpu", f"{os.cpu_count()} CPU cores (no CUDA device)", None)


def device_problems(info: DeviceInfo, profile: str) -> list[Problem]:
    if info.kind == "cpu" and profile == "paper":
        return [Problem(WARNING, "device", "no CUDA device: the paper grids take GPU-days on a GPU and far longer "
                        "on CPU", "run on a machine with a CUDA GPU (torch.cuda.is_available() must be True)")]
    return []


# ---- model sizes --------------------------------------------------------------------------------
def build_for(c: RunConfig, num_classes: int) -> Any:
    """The model a run trains, without pretrained weights."""
    if c.paper == "aim":
        from rightfocus.training.aim_loop import build_run_model

        return build_run_model(c, num_classes, pretrained=False)
    from rightfocus.models import build_model

    return build_model(c.model_kind, c.arch, num_classes)


def model_key(c: RunConfig) -> tuple:
    """What decides a run's parameter count (AIM: also its pathway options)."""
    if c.paper == "aim":
        from rightfocus.training.aim_loop import model_options

        return (c.model_kind, c.arch, repr(sorted(model_options(c).items())))
    return (c.model_kind, c.arch)


def parameter_bytes(c: RunConfig, num_classes: int, cache: dict) -> int:
    """float32 bytes of the run's parameters and buffers (built on the meta device: no memory)."""
    import torch

    key = (*model_key(c), num_classes)
    if key not in cache:
        try:
            with torch.device("meta"):
                model = build_for(c, num_classes)
        except Exception:  # noqa: BLE001 - a builder that needs real tensors: build it on CPU
            model = build_for(c, num_classes)
        cache[key] = 4 * (sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers()))
    return cache[key]


def disk_estimate(configs: list[RunConfig], num_classes: dict[str, int], results: str | Path
                  ) -> tuple[dict[str, Any], list[Problem]]:
    """Free space at `results` (its nearest existing parent) against the checkpoint volume."""
    cache: dict = {}
    volume = 0
    largest = 0
    for c in configs:
        b = parameter_bytes(c, num_classes.get(c.dataset, 10), cache)
        volume += kept_checkpoints(c) * b
        largest = max(largest, b)
    volume += 4 * largest
    where = Path(results).resolve()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    info = {"free_gb": free / 1e9, "volume_gb": volume / 1e9, "at": str(where), "largest_model_mb": largest / 1e6}
    problems = []
    if free < 4 * largest:
        problems.append(Problem(ERROR, "disk", f"{free / 1e9:.1f} GB free at {where}: not even one run's "
                                f"checkpoints ({4 * largest / 1e9:.2f} GB) fit", "free disk space or set RESULTS "
                                "(--results) to a larger disk"))
    elif free < volume:
        problems.append(Problem(WARNING, "disk", f"{free / 1e9:.1f} GB free at {where}, the grid's checkpoints need "
                                f"~{volume / 1e9:.0f} GB (estimate, see `rightfocus.check.resources`)",
                                "free disk space or set RESULTS (--results) to a larger disk"))
    return info, problems


# ---- step time ----------------------------------------------------------------------------------
def step_key(c: RunConfig) -> tuple:
    """Runs whose training steps cost the same (up to the tap, see the module docstring)."""
    guided = c.paper == "mg" and not c.is_baseline
    return (c.paper, c.model_kind, c.arch, c.image_size, c.batch_size, "guided" if guided else "plain")


def _batch(c: RunConfig, n: int, num_classes: int) -> dict[str, Any]:
    import torch

    from rightfocus.data import collate

    g = torch.Generator().manual_seed(0)
    s = c.image_size
    samples = []
    for i in range(n):
        k = i % num_classes
        labels = torch.zeros(num_classes)
        labels[k] = 1.0
        samples.append({"image": torch.rand(3, s, s, generator=g), "labels": labels,
                        "boxes": torch.tensor([[k, s // 4, s // 4, 3 * s // 4, 3 * s // 4]], dtype=torch.float32),
                        "has_boxes": True, "invert_mask": False, "index": i})
    return collate(samples)


def _time_steps(c: RunConfig, num_classes: int, batch: int, steps: int, device: Any) -> tuple[float, float | None]:
    """Seconds per step at `batch` (after one warm-up step) and the peak CUDA memory (GiB)."""
    import torch

    model = build_for(c, num_classes).to(device)
    data = _batch(c, batch, num_classes)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if c.paper == "aim":
        from rightfocus.training.aim_loop import build_optimizer, train_one_epoch as aim_epoch

        optimizer, scheduler = build_optimizer(model, c, steps + 1)

        def run(n: int) -> None:
            aim_epoch(model, [data] * n, optimizer, scheduler, c, epoch=1)
    else:
        from rightfocus.training.mg_task import Guidance, train_one_epoch

        optimizer = torch.optim.Adam(model.parameters(), lr=c.lr)
        guidance = None if c.is_baseline else Guidance(NATIVE[c.model_kind], "input", "energy", 1.0)
        gen = torch.Generator().manual_seed(0)

        def run(n: int) -> None:
            train_one_epoch(model, [data] * n, optimizer, guidance, gen, device)
    run(1)  # warm-up (cuDNN autotuning, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return seconds, peak


@dataclass
class StepTime:
    key: tuple
    seconds: float  # per step at the grid's batch
    measured_batch: int
    grid_batch: int
    peak_gb: float | None
    extrapolated: bool

    def describe(self) -> str:
        _, kind, arch, size, _, step = self.key
        how = (f"measured at batch {self.measured_batch}, scaled to {self.grid_batch}" if self.extrapolated
               else f"measured at batch {self.grid_batch}")
        mem = f", peak {self.peak_gb:.1f} GiB" if self.peak_gb is not None else ""
        return f"{kind} {arch} {size}px {step}: {self.seconds:.3f} s/step ({how}{mem})"


def measure_steps(configs: list[RunConfig], num_classes: dict[str, int], steps: int = 2,
                  log: Callable[[str], None] = print) -> tuple[dict[tuple, StepTime], list[Problem]]:
    """Time every distinct step of the grid (see the module docstring)."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reps: dict[tuple, RunConfig] = {}
    for c in configs:
        reps.setdefault(step_key(c), c)
    out: dict[tuple, StepTime] = {}
    problems: list[Problem] = []
    for i, (key, c) in enumerate(reps.items(), 1):
        k = num_classes.get(c.dataset, 10)
        # CPU: demo-sized steps (<= 64 px) at their own batch, paper-sized ones at a reduced batch
        batch = c.batch_size if device.type == "cuda" or c.image_size <= 64 else min(CPU_BATCH, c.batch_size)
        log(f"  [{i}/{len(reps)}] timing {key[1]} {key[2]} at {key[3]} px, {key[5]} step, batch {batch} "
            f"on {device.type} ...")
        while True:
            try:
                seconds, peak = _time_steps(c, k, batch, steps, device)
                break
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch == 1:
                    problems.append(Problem(ERROR, "device", f"{key[1]} {key[2]} at {key[3]} px does not fit in GPU "
                                            "memory even at batch 1", "use a GPU with more memory"))
                    seconds, peak = math.nan, None
                    break
                batch //= 2
                if device.type == "cuda":
                    problems.append(Problem(WARNING, "device", f"{key[1]} {key[2]} at {key[3]} px, batch "
                                            f"{c.batch_size}: out of GPU memory (timed at batch {batch})",
                                            "use a GPU with more memory, or several (the paper's batch must fit)"))
        out[key] = StepTime(key, seconds * c.batch_size / batch, batch, c.batch_size, peak, batch != c.batch_size)
        log(f"      {out[key].describe()}")
    return out, problems


def run_hours(c: RunConfig, train_images: int | None, step: StepTime | None) -> float | None:
    """Training-step hours of one run (None when its train size or step time is unknown)."""
    if train_images is None or step is None or math.isnan(step.seconds):
        return None
    if c.paper == "aim":
        from rightfocus.aim_options import AimOptions

        train_images = train_images - max(1, round(AimOptions.from_config(c).val_fraction * train_images))
    return c.epochs * math.ceil(train_images / c.batch_size) * step.seconds / 3600
