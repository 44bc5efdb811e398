"""One run from its config to `done` (Rao et al. 2023, Sec. 4 and supplement D.1).

Baselines train the classifier only and keep the checkpoint with the best validation F1 (Waterbirds:
accuracy on the modified validation split). Guided runs start from a baseline's selected checkpoint,
record the baseline itself as epoch 0 (val and test), validate every epoch, keep the checkpoints on
their own validation Pareto front in (F1, EPG, IoU) and delete the others, evaluate the front and the
representative model on test, and write `done` last. A run that finds its own unfinished folder
resumes from ``ckpt/latest.pt`` (model, optimiser, RNG states, epoch, metrics so far) and ends with the
metrics an uninterrupted run has. The CLI (`rightfocus train`) and the notebook call `train_run`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd
import torch
from torch.utils.data import DataLoader, RandomSampler

from rightfocus.experiments import store
from rightfocus.experiments.config import RunConfig, load_config_file
from rightfocus.pareto import front_rows, representative
from rightfocus.training import checkpoint as ckpt
from rightfocus.training.engine import Guidance, evaluate, metrics_row, train_one_epoch

#: the attribution method that is native to each model kind (Sec. 3.2)
NATIVE_METHOD = {"vanilla": "ixg", "xdnn": "intgrad", "bcos": "bcos"}


class StopRequested(Exception):
    """Raised by `train_run(..., stop_after_epochs=k)` after epoch k's checkpoint is written
    (simulates an interruption; the next call resumes)."""


# ---- small helpers ----------------------------------------------------------------------------
def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def selection_metric(config: RunConfig) -> str:
    """The validation metric a baseline is chosen by: F1, or accuracy for Waterbirds (D.1.2)."""
    return "accuracy" if config.dataset == "waterbirds" else "f1"


def eval_pairs(config: RunConfig, taps: Sequence[str]) -> list[tuple[str, str]]:
    """(tap, method) pairs a run is evaluated with. Guided: its own; B-cos guided at a deeper tap also
    at the input (Fig. 8). Baselines: the native method at every tap plus GradCAM at the final tap,
    so every guided configuration has its baseline point."""
    if not config.is_baseline:
        pairs = [(str(config.tap), str(config.method))]
        if config.model_kind == "bcos" and config.tap != "input":
            pairs.append(("input", "bcos"))
        return pairs
    native = NATIVE_METHOD.get(config.model_kind)
    if native is None:
        return []
    return [(t, native) for t in taps] + [("final", "gradcam")]


@contextlib.contextmanager
def run_lock(rdir: Path) -> Iterator[None]:
    """Exclusive lock on a run folder: `make -j` jobs (or groups sharing a run) never train the same
    run twice at once; the second waits and then finds `done`."""
    rdir.mkdir(parents=True, exist_ok=True)
    with open(rdir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_datasets(config: RunConfig) -> dict[str, Any]:
    """train / val / test datasets of the run (training options on train only)."""
    from rightfocus.data import load_dataset

    common: dict[str, Any] = {"size": config.image_size, "cache": True}
    if config.task is not None:
        common["task"] = config.task
    common.update(config.extra.get("data_options", {}))
    train_opts = dict(common, annotation_fraction=config.annotation_fraction,
                      annotation_seed=int(config.extra.get("annotation_seed", 0)), dilation=config.dilation)
    if config.dataset == "waterbirds":
        train_opts["train_transform"] = config.extra.get("train_transform", True)
    val_opts = dict(common, modified_val=True) if config.dataset == "waterbirds" else common
    return {"train": load_dataset(config.dataset, config.data_root, "train", **train_opts),
            "val": load_dataset(config.dataset, config.data_root, "val", **val_opts),
            "test": load_dataset(config.dataset, config.data_root, "test", **common)}


def _loader(dataset: Any, config: RunConfig, shuffle: bool, generator: torch.Generator | None = None) -> DataLoader:
    from rightfocus.data import collate

    sampler = RandomSampler(dataset, generator=generator) if shuffle else None
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, shuffle=False,
                      collate_fn=collate, num_workers=config.num_workers)


def resolve_init(config: RunConfig, results: str | Path) -> tuple[str, Path]:
    """The baseline run a guided run starts from; for a list, the best on validation (D.1.1)."""
    ids = [config.init_from] if isinstance(config.init_from, str) else list(config.init_from or [])
    if not ids:
        raise ValueError(f"guided run {config.run_id} needs init_from (a baseline run id); got none")
    metric = selection_metric(config)
    best: tuple[float, str] | None = None
    for rid in ids:
        rdir = store.run_dir(results, config.profile, rid)
        if not store.is_done(rdir):
            raise FileNotFoundError(
                f"baseline {rid} is not finished ({rdir}/done missing): train it first "
                f"(`rightfocus train {rdir}/config.yaml`, or `make mg`, which orders baselines first)")
        score = float(store.read_done(rdir)["selected_val"][metric])
        if best is None or score > best[0]:
            best = (score, rid)
    assert best is not None
    return best[1], store.run_dir(results, config.profile, best[1])


# ---- the run ----------------------------------------------------------------------------------
def train_run(
    config: RunConfig,
    results: str | Path = "results",
    *,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    notebook: str | None = None,
) -> Path:
    """Train (or resume, or skip when done) one run; returns its folder."""
    rdir = store.run_dir(results, config.profile, config.run_id)
    if store.is_done(rdir):
        return rdir
    with run_lock(rdir):
        if store.is_done(rdir):
            return rdir
        _train_locked(config, Path(results), rdir, stop_after_epochs, progress)
        if notebook:
            store.atomic_write_text(rdir / "notebook.txt", f"{notebook}\n")
    return rdir


def _train_locked(config: RunConfig, results: Path, rdir: Path, stop_after: int | None, progress: bool) -> None:
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    store.write_config(rdir, config)
    ckdir = rdir / "ckpt"
    ckdir.mkdir(exist_ok=True)
    data = build_datasets(config)
    num_classes = int(data["train"].num_classes)

    ckpt.seed_everything(config.seed)
    from rightfocus.models import build_model

    weights = config.extra.get("weights") if config.is_baseline else None
    model = build_model(config.model_kind, config.arch, num_classes, weights=weights).to(device)
    gens = {"data": torch.Generator().manual_seed(config.seed), "classes": torch.Generator().manual_seed(config.seed + 1)}
    guidance = None if config.is_baseline else Guidance(str(config.method), str(config.tap), str(config.loss), config.lam)
    pairs = eval_pairs(config, model.taps)
    num_groups = 4 if config.dataset == "waterbirds" else None
    loaders = {s: _loader(data[s], config, shuffle=False) for s in ("val", "test")}
    train_loader = _loader(data["train"], config, shuffle=True, generator=gens["data"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)  # fixed lr, no weight decay (D.1)

    def run_eval(split: str, with_pairs: bool) -> dict:
        return evaluate(model, loaders[split], pairs if with_pairs else (), device=device,
                        num_groups=num_groups, binary_seg=config.dataset == "waterbirds",
                        progress=progress, desc=split)

    latest = ckdir / "latest.pt"
    history: list[dict[str, Any]] = []
    start_epoch = 1
    extra_summary: dict[str, Any] = {}
    if latest.exists():
        state = ckpt.load(latest, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ckpt.set_rng_state(state["rng"], gens)
        history, start_epoch, extra_summary = state["history"], state["epoch"] + 1, state["summary"]
    elif not config.is_baseline:
        init_id, init_dir = resolve_init(config, results)
        init = ckpt.load(store.checkpoint_path(init_dir, "selected"), device)
        model.load_state_dict(init["model"])
        extra_summary = {"init_from_resolved": init_id, "init_epoch": int(init["epoch"])}
        # epoch 0 = the baseline checkpoint, the figures' reference; the baseline already evaluated it
        # with the same code on val and test, so its rows are copied when it has every pair needed
        history += _epoch0_rows(init_dir, int(init["epoch"]), pairs) or [
            metrics_row(run_eval(split, True)[p], epoch=0, split=split, tap=p[0], method=p[1],
                        epoch_time_s=None, checkpoint=None)
            for split in ("val", "test") for p in pairs]

    for epoch in range(start_epoch, config.epochs + 1):
        stats = train_one_epoch(model, train_loader, optimizer, guidance, gens["classes"], device,
                                progress=progress, desc=f"epoch {epoch}/{config.epochs}")
        res = run_eval("val", not config.is_baseline)
        keys = [(None, None)] if config.is_baseline else pairs
        history += [metrics_row(res[p], epoch=epoch, split="val", tap=p[0], method=p[1],
                                epoch_time_s=stats["epoch_time_s"], train_loss=stats["loss"],
                                train_bce=stats["bce"], train_loc=stats["loc"], checkpoint=None) for p in keys]
        keep = _kept_epochs(config, history)
        if epoch in keep:
            ckpt.save_weights(ckdir / f"epoch_{epoch}.pt", model, num_classes, epoch)
        _prune(ckdir, keep)
        _mark_checkpoints(history, keep)
        ckpt.save_latest(latest, model=model.state_dict(), optimizer=optimizer.state_dict(),
                         rng=ckpt.rng_state(gens), epoch=epoch, history=history, summary=extra_summary,
                         num_classes=num_classes)
        store.write_metrics(rdir, history)
        if progress:
            _print_epoch(epoch, config, history)
        if stop_after is not None and epoch >= stop_after and epoch < config.epochs:
            raise StopRequested(f"stopped after epoch {epoch} as requested; the next call resumes")

    summary = _finish(config, model, history, ckdir, num_classes, run_eval, pairs, device)
    epoch_times = {r["epoch"]: r["epoch_time_s"] for r in history if r.get("epoch_time_s") is not None}
    summary.update(extra_summary, run_id=config.run_id, epochs=config.epochs,
                   train_time_s=float(sum(epoch_times.values())))
    store.write_metrics(rdir, history)
    # the finished run never resumes: drop the optimiser state to bound disk use
    ckpt.save_latest(latest, model=model.state_dict(), epoch=config.epochs, num_classes=num_classes)
    store.write_done(rdir, summary)


def _epoch0_rows(init_dir: Path, init_epoch: int, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The baseline's own val/test rows of its selected checkpoint for `pairs`, as epoch 0 (or [])."""
    found = {(r["split"], r["tap"], r["method"]): r for r in store.read_metrics(init_dir) if r["epoch"] == init_epoch}
    want = [(split, tap, method) for split in ("val", "test") for tap, method in pairs]
    if not all(k in found for k in want):
        return []
    return [dict(found[k], epoch=0, epoch_time_s=None, checkpoint=None) for k in want]


def _val_frame(config: RunConfig, history: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(history)
    df = df[(df["split"] == "val") & (df["epoch"] >= 1)]
    if config.is_baseline:
        return df[df["tap"].isna()]
    return df[(df["tap"] == config.tap) & (df["method"] == config.method)]


def _selection(config: RunConfig, history: list[dict[str, Any]]) -> tuple[list[int], int]:
    """(front epochs, selected epoch) from the validation rows so far."""
    df = _val_frame(config, history)
    metric = selection_metric(config)
    if config.is_baseline or config.dataset == "waterbirds":
        # baselines: best val F1 (accuracy); Waterbirds guided: best val accuracy too (D.1.2). The
        # modified val split (groups 0 and 3 only) is solved by the background shortcut alone, so
        # its accuracy saturates and ties are common: on Waterbirds ties go to the LATER epoch (the
        # one trained longest under guidance), elsewhere to the earlier one.
        later = config.dataset == "waterbirds"
        best = int(df.sort_values([metric, "epoch"], ascending=[False, not later]).iloc[0]["epoch"])
        return [best], best
    front = front_rows(df, ("f1", "epg", "iou"))
    base = pd.DataFrame(history)
    base_f1 = base[(base["epoch"] == 0) & (base["split"] == "val")]["f1"]
    baseline_f1 = float(base_f1.iloc[0]) if len(base_f1) else float(df["f1"].max())
    chosen = int(representative(front, baseline_f1)["epoch"])
    return sorted(int(e) for e in front["epoch"]), chosen


def _kept_epochs(config: RunConfig, history: list[dict[str, Any]]) -> set[int]:
    front, chosen = _selection(config, history)
    return set(front) | {chosen}


def _prune(ckdir: Path, keep: set[int]) -> None:
    """Delete epoch checkpoints no longer on the front (a dominated epoch never returns to it)."""
    for path in ckdir.glob("epoch_*.pt"):
        if int(path.stem.split("_")[1]) not in keep:
            path.unlink()


def _mark_checkpoints(history: list[dict[str, Any]], keep: set[int]) -> None:
    for row in history:
        row["checkpoint"] = f"epoch_{row['epoch']}.pt" if row["epoch"] in keep and row["epoch"] >= 1 else None


def _finish(config, model, history, ckdir, num_classes, run_eval, pairs, device) -> dict[str, Any]:
    """Test rows for the front and the selected checkpoint (baselines: every pair, val and test)."""
    front, chosen = _selection(config, history)
    for epoch in sorted(set(front) | {chosen}):
        state = ckpt.load(ckdir / f"epoch_{epoch}.pt", device)
        model.load_state_dict(state["model"])
        splits = ("val", "test") if config.is_baseline else ("test",)
        for split in splits:
            res = run_eval(split, True)
            keys = [(None, None)] + list(pairs) if config.is_baseline and split == "test" else list(pairs)
            history += [metrics_row(res[p], epoch=epoch, split=split, tap=p[0], method=p[1], epoch_time_s=None,
                                    checkpoint=f"epoch_{epoch}.pt") for p in keys]
    model.load_state_dict(ckpt.load(ckdir / f"epoch_{chosen}.pt", device)["model"])
    sel = _val_frame(config, history)
    sel_row = sel[sel["epoch"] == chosen].iloc[0]
    return {
        "selected_epoch": chosen,
        "front_epochs": front,
        "selected_val": {k: (None if pd.isna(sel_row.get(k)) else float(sel_row[k]))
                         for k in ("f1", "map", "epg", "iou", "accuracy") if k in sel_row},
        "eval_pairs": [list(p) for p in pairs],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _print_epoch(epoch: int, config: RunConfig, history: list[dict[str, Any]]) -> None:
    row = [r for r in history if r["epoch"] == epoch and r["split"] == "val"][0]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"[{config.run_id}] epoch {epoch}/{config.epochs}: f1 {fmt(row['f1'])} "
          f"epg {fmt(row['epg'])} iou {fmt(row['iou'])} acc {fmt(row['accuracy'])} "
          f"({row['epoch_time_s']:.1f}s)", flush=True)


def train_runs(configs: Iterable[RunConfig], results: str | Path = "results", *, progress: bool = True,
               notebook: str | None = None) -> list[Path]:
    """Train several runs in order (baselines must come before the runs that start from them)."""
    configs = list(configs)
    ordered = [c for c in configs if c.is_baseline] + [c for c in configs if not c.is_baseline]
    return [train_run(c, results, progress=progress, notebook=notebook) for c in ordered]


def train_from_file(config: str | Path, overrides: Sequence[str] = (), results: str | Path = "results") -> Path:
    """`rightfocus train CONFIG [--set key=value ...]`: load, override, train (or resume)."""
    cfg = load_config_file(config, overrides)
    if cfg.paper != "mg":
        from rightfocus.training.aim_loop import train_aim  # AIM's loop lives beside this one

        return train_aim(cfg, results)
    rdir = train_run(cfg, results)
    print(json.dumps({"run_id": cfg.run_id, "dir": str(rdir), "done": store.is_done(rdir)}))
    return rdir
