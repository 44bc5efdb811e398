"""The run engine: one run's life from its config to `done`, for both papers.

config -> lock -> build -> resume or start -> epochs (train, validate, select, checkpoint) -> test ->
`done`. The engine owns everything the papers share: the run lock, the device, seeding and RNG state,
the checkpoint format and the single resume path, the metrics writer, the caps of a rehearsal
(``max_steps_per_epoch``, ``max_eval_images``), the progress display and the step loops:
`train_one_epoch` (autocast, the non-finite loss check, backward, optimiser and scheduler steps,
the epoch's statistics) and `evaluate` (a task's evaluation steps into a `training.evaluator.Evaluator`).
A paper plugs in a `Task` (torchvision-reference / Lightning-module style): how to load data and
build its model, its training batches and ``training_step``, its validation rows, which epochs to
keep, the test phase. MG: `training.mg_task.MgTask`; AIM: `training.aim_loop.AimTask`;
`training.runner.train_run` picks one by ``config.paper``.

Checkpoints (``<run>/ckpt``): ``epoch_<e>.pt`` = {model, num_classes, epoch, model_options} for every
epoch the task keeps (what `store.load_checkpoint` reads); ``latest.pt`` = that plus the task's
optimiser/scheduler state, every RNG state, the metrics rows and the summary so far, written after
each epoch and deleted once ``done`` is written. A run that finds ``latest.pt`` resumes from it and
ends with the metrics an uninterrupted run has (same device and seed).

Faults: every file is written to a temporary file and renamed (a kill never leaves half a file; the
temporary files of a killed run are removed when it restarts). Writing ``latest.pt`` keeps the
previous one as ``latest.prev.pt``, so a truncated or corrupt ``latest.pt`` resumes from the epoch
before (the unreadable file is deleted); with neither readable the error names the files to delete. A non-finite training loss stops the run (`NonFiniteLoss`: run, epoch,
batch) before anything of that epoch is written, so the last good checkpoint stays. Ctrl-C raises
`RunInterrupted` (a KeyboardInterrupt) saying from which epoch the same command resumes.

Hardware (`training.runtime`): the engine resolves the run's `Runtime` (device, precision, memory
format, loader workers) and hands it to the task as ``task.runtime``. Under ``torchrun`` (WORLD_SIZE
> 1) every process runs this same life on its share of the data (`training.distributed`): rank 0
holds the lock and writes every file, all ranks meet at a barrier after each epoch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.training import checkpoint as ckpt
from rightfocus.training import distributed
from rightfocus.training.evaluator import EvalBatch, Evaluator
from rightfocus.training.runtime import Runtime, configure_backends, resolve_runtime


class NonFiniteLoss(FloatingPointError):
    """A training step's loss is NaN or Inf. The tasks raise it with the batch; the engine adds the
    run and epoch and keeps the last good checkpoint (nothing of the failing epoch is written)."""

    def __init__(self, batch: int, value: float, run_id: str = "", epoch: int = 0, latest: str = "") -> None:
        self.batch, self.value, self.run_id, self.epoch, self.latest = batch, value, run_id, epoch, latest
        where = f"run {run_id}, epoch {epoch}, " if run_id else ""
        kept = f"; the last good checkpoint is kept ({latest})" if latest else ""
        super().__init__(f"non-finite training loss ({value}) in {where}batch {batch} (1-based){kept}: "
                         f"lower the learning rate or the guidance weight (lam), or check the inputs")


class LossCheck:
    """Finiteness of every training step's loss. On CPU each step is checked at once; on an
    accelerator the first bad step is recorded on the device and read once by `raise_if_bad` (no
    host synchronisation per step). Under torchrun (`distributed`) every rank defers the check and
    `raise_if_bad` is collective: the earliest bad step of any rank stops all ranks together at the
    end of the epoch (a rank that stopped alone would leave the others waiting in the next all-reduce)."""

    def __init__(self, device: torch.device, distributed: bool = False) -> None:
        self.eager = device.type == "cpu" and not distributed
        self.distributed = distributed
        self.step = 0
        self.first = torch.full((), -1, dtype=torch.long, device=device)
        self.value = torch.zeros((), dtype=torch.float32, device=device)

    def update(self, loss: torch.Tensor) -> None:
        self.step += 1
        loss = loss.detach().float()
        if self.eager:
            if not bool(torch.isfinite(loss)):
                raise NonFiniteLoss(self.step, float(loss))
            return
        new = (~torch.isfinite(loss)) & (self.first < 0)
        self.first = torch.where(new, torch.full_like(self.first, self.step), self.first)
        self.value = torch.where(new, loss, self.value)

    def raise_if_bad(self) -> None:
        first, value = self.first, self.value
        if self.distributed:
            never = torch.iinfo(torch.long).max
            own = torch.where(first >= 0, first, torch.full_like(first, never))
            earliest = distributed.all_reduce_min(own.clone())
            # the loss of the rank(s) that failed at the earliest step (NaN + 0 stays NaN)
            value = distributed.all_reduce_sum(torch.where(own == earliest, value, torch.zeros_like(value)))
            first = torch.where(earliest == never, torch.full_like(earliest, -1), earliest)
        step = int(first)
        if step >= 0:
            raise NonFiniteLoss(step, float(value))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the message says from which epoch the same command resumes."""


class StopRequested(Exception):
    """Raised by `run(..., stop_after=k)` after epoch k's checkpoint is written (simulates an
    interruption; the next call resumes)."""


@dataclass
class TrainStep:
    """What a task's ``training_step(batch)`` returns (computed under the run's autocast)."""

    #: the step's loss, checked for NaN / Inf; its gradient is applied unless `backward` is given
    loss: Tensor
    #: [k] detached values summed over the epoch (the task's ``train_stats`` names them)
    stats: Tensor
    #: weight of this step in the epoch means (1 per batch, or the batch's image count)
    count: int = 1
    #: the tensor whose gradient is applied when it differs from `loss` (DDP: the rank's scaled share)
    backward: Tensor | None = None


class Task:
    """What one paper plugs into the engine (everything else is shared); MG: `mg_task.MgTask`, AIM:
    `aim_loop.AimTask`.

    Attributes set by `build`: ``model``, ``num_classes``, ``optimizer``, ``scheduler`` (stepped after
    every optimiser step; None: none) and ``generators``, the task's own torch generators (their states
    are saved with the run's RNG state for an exact resume). ``training_step(batch) -> TrainStep`` is
    set by `on_train_epoch_start` (forward and loss of one batch, run under the run's autocast).
    """

    config: RunConfig
    model: torch.nn.Module
    num_classes: int
    generators: dict[str, torch.Generator]
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    #: names of the values ``training_step`` returns in ``TrainStep.stats``
    train_stats: tuple[str, ...]
    training_step: Callable[[Any], TrainStep]
    #: set by the engine before `load_data`: device, precision, memory format, loaders, process group
    runtime: Any = None
    #: the results folder runs a task reads (MG's baseline, teacher and AIM mask sources) live in
    results: Path = Path("results")
    #: the ``RunConfig.paper`` whose runs this task trains
    paper: str = ""

    def __init__(self, config: RunConfig) -> None:
        if config.paper != self.paper:
            raise ValueError(f"{type(self).__name__} runs paper={self.paper!r} configs, got paper={config.paper!r}")
        self.config = config
        self.generators = {}

    def load_data(self) -> None:
        """Datasets of the run (before seeding, so data loading never moves the model's init)."""
        raise NotImplementedError

    def build(self, device: torch.device) -> None:
        """Model (seeded by the engine just before), optimiser, loaders."""
        raise NotImplementedError

    def model_options(self) -> dict[str, Any]:
        """Keyword options stored in checkpoints to rebuild the model (`store.load_checkpoint`)."""
        return {}

    def start(self, rdir: Path, results: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """A fresh run's first rows (e.g. epoch 0) and summary entries; not called on resume."""
        return [], {}

    def train_loader(self, epoch: int) -> Iterable:
        """The training batches of 1-based `epoch`."""
        raise NotImplementedError

    def on_train_epoch_start(self, epoch: int) -> None:
        """Called after `train_loader`, before the first step: training mode, ``training_step``."""
        raise NotImplementedError

    def on_train_epoch_end(self, epoch: int, means: dict[str, float]) -> dict[str, Any]:
        """The fields the epoch's validation rows carry, from the epoch means of ``train_stats``."""
        return {f"train_{k}": means[k] for k in self.train_stats}

    def validate(self, epoch: int, stats: dict[str, Any], progress: bool) -> list[dict[str, Any]]:
        """Validation rows of `epoch` (``checkpoint`` is filled in by the engine)."""
        raise NotImplementedError

    def keep(self, history: list[dict[str, Any]]) -> set[int]:
        """Epochs whose checkpoints are kept after the rows in `history` (selection so far)."""
        raise NotImplementedError

    def after_epoch(self, rdir: Path, epoch: int) -> None:
        """Per-epoch artefacts besides metrics (AIM: masks of fixed images); epoch 0 = fresh start."""

    def test(self, rdir: Path, history: list[dict[str, Any]], progress: bool
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Test rows and the ``done`` summary (selected epoch, front, ...) from the kept checkpoints."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Optimiser (and scheduler) state for ``latest.pt``."""
        state = {"optimizer": self.optimizer.state_dict()}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


# ---- the step loops ---------------------------------------------------------------------------
def train_one_epoch(training_step: Callable[[Any], TrainStep], loader: Iterable, optimizer: torch.optim.Optimizer,
                    runtime: Runtime, names: Sequence[str], scheduler: Any = None) -> dict[str, float]:
    """One pass over `loader`: per batch `training_step` under the run's autocast, the non-finite loss
    check (`LossCheck`), ``zero_grad``, ``backward`` (outside autocast), the optimiser step and the
    scheduler step. The statistics are summed on the device and read once at the end of the epoch;
    returns their means {name: sum / summed counts} (under torchrun: the sums of all ranks)."""
    rt = runtime
    totals = torch.zeros(len(names), dtype=torch.float64, device=rt.device)
    count = 0
    check = LossCheck(rt.device, rt.distributed)
    for batch in loader:
        with rt.autocast():
            step = training_step(batch)
        check.update(step.loss)  # NaN/Inf stops the run before the step (NonFiniteLoss)
        optimizer.zero_grad(set_to_none=True)
        (step.loss if step.backward is None else step.backward).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        totals += step.stats.double()
        count += step.count
    check.raise_if_bad()
    if rt.distributed:
        distributed.all_reduce_sum(totals)
    count = max(count, 1)
    return {k: v / count for k, v in zip(names, totals.tolist())}  # the epoch's one host synchronisation


def evaluate(evaluation_step: Callable[[Any], EvalBatch], loader: Iterable, evaluator: Evaluator,
             runtime: Runtime | None = None) -> dict[Any, dict[str, Any]]:
    """One evaluation pass: every batch's `evaluation_step` outputs into `evaluator` (under torchrun
    gathered from every rank), then its metrics (`Evaluator.compute`)."""
    for batch in loader:
        evaluator.add(evaluation_step(batch))
    if runtime is not None and runtime.distributed:
        evaluator.gather()
    return evaluator.compute()


# ---- shared policies --------------------------------------------------------------------------
def resolve_device(device: str) -> torch.device:
    """``config.device``: "auto" = CUDA when available, else CPU; or an explicit torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def run_lock(rdir: Path) -> Iterator[None]:
    """Exclusive lock on a run folder: `make -j` jobs (or groups sharing a run) never train the same
    run twice at once; the second waits (saying so) and then finds `done`. The lock is held by the
    process (``fcntl.flock``): a killed run releases it."""
    rdir.mkdir(parents=True, exist_ok=True)
    with open(rdir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[{rdir.name}] another process is training this run; waiting for it", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def batches(loader: Iterable, config: RunConfig, desc: str, progress: bool, train: bool = False) -> Iterable:
    """The batches of one pass: at most ``config.max_steps_per_epoch`` when training, with a tqdm bar
    when `progress` (mininterval keeps papermill's --log-output readable: few lines, not one per batch)."""
    total = len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    if train and config.max_steps_per_epoch is not None:
        loader = islice(loader, int(config.max_steps_per_epoch))
        total = None if total is None else min(total, int(config.max_steps_per_epoch))
    if os.environ.get(store.FAULT_ENV):
        loader = _with_fault_points(loader, "train" if train else desc)
    if not progress:
        return loader
    from tqdm.auto import tqdm

    # tqdm.auto's class calls iter() on an iterable in its constructor and again when iterated: a
    # DataLoader would be iterated twice (a second shuffle drawn from the run's generator, workers
    # started twice), so results would depend on `progress`. Hand it one iterator.
    return tqdm(iter(loader), total=total, desc=desc, leave=False, mininterval=5.0)


def _with_fault_points(loader: Iterable, name: str) -> Iterator:
    """The batches, with a `store.fault_point` ("<pass> batch") before each (kill tests only)."""
    for item in loader:
        store.fault_point(f"{name} batch")
        yield item


def steps_per_epoch(n_batches: int, config: RunConfig) -> int:
    """Training steps of one epoch under ``max_steps_per_epoch`` (for schedules over all steps)."""
    cap = config.max_steps_per_epoch
    return n_batches if cap is None else min(n_batches, int(cap))


def eval_subset(dataset: Dataset, config: RunConfig) -> Dataset:
    """The first ``config.max_eval_images`` images of a val/test set (all when None)."""
    cap = config.max_eval_images
    if cap is None or cap >= len(dataset):  # type: ignore[arg-type]
        return dataset
    return Subset(dataset, range(int(cap)))


def mark_checkpoints(history: list[dict[str, Any]], keep: set[int]) -> None:
    """Each row names the checkpoint of its epoch while that checkpoint is kept (else None)."""
    for row in history:
        row["checkpoint"] = f"epoch_{row['epoch']}.pt" if row["epoch"] in keep and row["epoch"] >= 1 else None


def _prune(ckdir: Path, keep: set[int]) -> None:
    """Delete epoch checkpoints no longer kept (a dominated epoch never returns to the front)."""
    for path in ckdir.glob("epoch_*.pt"):
        if int(path.stem.split("_")[1]) not in keep:
            path.unlink()


def _print_epoch(config: RunConfig, epoch: int, rows: list[dict[str, Any]], seconds: float) -> None:
    row = rows[0] if rows else {}
    shown = " ".join(f"{k} {row[k]:.3f}" for k in ("f1", "epg", "iou", "accuracy", "mask_active")
                     if isinstance(row.get(k), float))
    print(f"[{config.run_id}] epoch {epoch}/{config.epochs}: {shown} ({seconds:.1f}s)", flush=True)


# ---- the run ----------------------------------------------------------------------------------
def run(task: Task, results: str | Path = "results", *, stop_after: int | None = None,
        progress: bool = True, notebook: str | None = None) -> Path:
    """Train (or resume, or skip when done) the task's run; returns its folder. Under ``torchrun``
    (WORLD_SIZE > 1) every rank calls this: one run on several processes (`training.distributed`);
    rank 0 holds the run lock and writes every file."""
    config = task.config
    rdir = store.run_dir(results, config.profile, config.run_id)
    env, rank_device = distributed.setup(config.device)
    if distributed.broadcast(store.is_done(rdir)):
        return rdir
    with run_lock(rdir) if env.rank == 0 else contextlib.nullcontext():
        if distributed.broadcast(store.is_done(rdir)):
            return rdir
        device = rank_device or resolve_device(config.device)
        task.runtime = resolve_runtime(config, device, env.rank, env.world_size, env.local_world_size)
        try:
            _run_locked(task, Path(results), rdir, stop_after, progress and env.rank == 0)
        except StopRequested:
            distributed.barrier()
            raise
        distributed.barrier()  # rank 0's files are written before any rank goes on
        if notebook and env.rank == 0:
            store.atomic_write_text(rdir / "notebook.txt", f"{notebook}\n")
    return rdir


def _load_resume_state(ckdir: Path, device: torch.device) -> tuple[dict[str, Any] | None, str]:
    """The newest readable resume state: ``latest.pt``, else ``latest.prev.pt`` (the epoch before;
    a corrupt/truncated file or a kill between the two writes); (None, "") for a fresh run."""
    latest, prev = ckdir / "latest.pt", ckdir / "latest.prev.pt"
    problems = []
    for path in (latest, prev):
        if not path.exists():
            continue
        try:
            state = ckpt.load(path, device)
        except store.CheckpointError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(state, dict) or "task" not in state:
            problems.append(f"{path}: no resume state of a task (not a run engine checkpoint)")
            continue
        if problems:
            print(f"warning: {problems[0]}; resuming from {path.name} instead (deleting {latest.name})",
                  flush=True)
            latest.unlink(missing_ok=True)  # unreadable; the next save must not keep it as latest.prev.pt
        return state, path.name
    if problems:
        names = " and ".join(str(p) for p in (latest, prev) if p.exists())
        raise store.CheckpointError(f"cannot resume: {'; '.join(problems)}. Delete {names} to restart the "
                                    f"run from epoch 1 (kept epoch checkpoints are rewritten)")
    return None, ""


def _save_latest(latest: Path, save: Any) -> None:
    """Write ``latest.pt`` (atomically: the old one stays until the new one is complete), keeping the
    previous one as ``latest.prev.pt`` (a hard link, or a copy where links are not supported)."""
    if latest.exists():
        prev = latest.with_name("latest.prev.pt")
        tmp = latest.with_name(".latest.prev.pt.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(latest, tmp)
        except OSError:
            import shutil

            shutil.copyfile(latest, tmp)
        os.replace(tmp, prev)
    save(latest)


def _run_locked(task: Task, results: Path, rdir: Path, stop_after: int | None, progress: bool) -> None:
    config = task.config
    rt: Runtime = task.runtime
    device = rt.device
    main = rt.is_main
    if config.threads:
        torch.set_num_threads(config.threads)
    configure_backends(config, device)
    if main:
        store.remove_partial_writes(rdir)  # a killed run's temporary files (we hold the lock)
        store.write_config(rdir, config)
    ckdir = rdir / "ckpt"
    ckdir.mkdir(parents=True, exist_ok=True)
    task.load_data()
    task.results = results
    ckpt.seed_everything(config.seed)  # the fresh initialisation is part of the run's identity
    task.build(device)

    def save_weights(path: Path, epoch: int, **more: Any) -> None:
        if main:  # the unwrapped model's weights: the same file under any world size
            ckpt.save_weights(path, task.model, task.num_classes, epoch, task.model_options(), **more)

    latest = ckdir / "latest.pt"
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    start_epoch = 1
    state, source = _load_resume_state(ckdir, device)
    if state is not None:
        task.model.load_state_dict(state["model"])
        task.load_state_dict(state["task"])
        ckpt.set_rng_state(state["rng"], task.generators)
        history, summary, start_epoch = state["history"], state["summary"], state["epoch"] + 1
        if main:
            print(f"[{config.run_id}] resuming {config.run_id} from epoch {start_epoch} "
                  f"(epochs 1-{state['epoch']} restored from ckpt/{source})", flush=True)
    else:
        history, summary = task.start(rdir, results)
        if main:
            task.after_epoch(rdir, 0)

    if main and state is not None:
        _prune(ckdir, task.keep(history))  # a kill between latest.pt and the pruning of its epoch
    saved = [start_epoch - 1]  # the epoch latest.pt holds
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            _epoch(task, rdir, epoch, history, summary, stop_after, progress, save_weights, saved)
        epoch = config.epochs + 1
        _finish(task, rdir, history, summary, progress)
    except KeyboardInterrupt as exc:
        if isinstance(exc, RunInterrupted):
            raise
        if saved[0] >= config.epochs:
            what = "finish its test phase (training is complete)"
        else:
            what = f"resume from epoch {saved[0] + 1}" if saved[0] else "start again from epoch 1"
        raise RunInterrupted(f"[{config.run_id}] interrupted; re-run the same command to {what}") from None
    except NonFiniteLoss as exc:
        kept = str(latest) if latest.exists() else "none yet: the run starts from epoch 1 when re-run"
        raise NonFiniteLoss(exc.batch, exc.value, config.run_id, epoch, kept) from None


def _epoch(task: Task, rdir: Path, epoch: int, history: list[dict[str, Any]], summary: dict[str, Any],
           stop_after: int | None, progress: bool, save_weights: Any, saved: list[int]) -> None:
    """Train, validate, keep and checkpoint one epoch (nothing is written when training fails);
    `saved[0]` becomes `epoch` once ``latest.pt`` holds it."""
    config = task.config
    main = task.runtime.is_main
    ckdir = rdir / "ckpt"
    t0 = time.perf_counter()
    loader = batches(task.train_loader(epoch), config, f"epoch {epoch}/{config.epochs}", progress, train=True)
    task.on_train_epoch_start(epoch)
    means = train_one_epoch(task.training_step, loader, task.optimizer, task.runtime, task.train_stats,
                            task.scheduler)
    stats = task.on_train_epoch_end(epoch, means)
    seconds = time.perf_counter() - t0
    rows = task.validate(epoch, {"epoch_time_s": seconds, **stats}, progress)
    history += rows
    keep = task.keep(history)
    if epoch in keep:
        save_weights(ckdir / f"epoch_{epoch}.pt", epoch)
    mark_checkpoints(history, keep)
    if main:
        task.after_epoch(rdir, epoch)
        store.write_metrics(rdir, history)
        _save_latest(ckdir / "latest.pt", lambda path: save_weights(
            path, epoch, task=task.state_dict(), rng=ckpt.rng_state(task.generators), history=history,
            summary=summary))
        saved[0] = epoch
        _prune(ckdir, keep)  # only after latest.pt points at the new selection
    distributed.barrier()  # every rank sees this epoch's checkpoints before going on
    saved[0] = epoch
    if progress:
        _print_epoch(config, epoch, rows, seconds)
    if stop_after is not None and epoch >= stop_after and epoch < config.epochs:
        raise StopRequested(f"stopped after epoch {epoch} as requested; the next call resumes")


def _finish(task: Task, rdir: Path, history: list[dict[str, Any]], summary: dict[str, Any], progress: bool) -> None:
    """Test phase and ``done`` (the run's completion marker), then the resume state goes."""
    config = task.config
    rt: Runtime = task.runtime
    main = rt.is_main
    latest = rdir / "ckpt" / "latest.pt"
    test_rows, test_summary = task.test(rdir, history, progress)
    history += test_rows
    train_time = {r["epoch"]: r["epoch_time_s"] for r in history if r.get("epoch_time_s") is not None}
    summary = {**test_summary, **summary, "run_id": config.run_id, "epochs": config.epochs,
               "train_time_s": float(sum(train_time.values())),
               "precision": rt.precision, "world_size": rt.world_size,
               "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if main:
        store.write_metrics(rdir, history)
        store.write_done(rdir, summary)
        latest.unlink(missing_ok=True)  # resume state is no longer needed
        latest.with_name("latest.prev.pt").unlink(missing_ok=True)
