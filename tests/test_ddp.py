"""One run on several processes (issue 12, part 2; `training.distributed`), on CPU with the gloo
backend and 2 processes: a guided run (double backward through DDP) ends with the metrics of the
same run on one process, and a run interrupted after epoch 1 resumes under another world size (2 -> 1,
1 -> 2) with the final metrics of the uninterrupted run.

Tolerances: the X-DNN tiny has no batch norm, so two processes differ from one only by the order of
floating-point sums (gradient all-reduce, gathered metrics): 1e-3 (absolute and relative; TIGHT). The B-cos tiny has batch norm,
which normalises with each rank's half of the batch (SyncBatchNorm has no double backward): runs
drift apart; its first epoch is checked within 0.05. The resume and batch-norm checks are slow
(spawning processes on CPU: ~45 s each)."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from rightfocus.experiments import store
from rightfocus.experiments.config import RunConfig
from rightfocus.training.runner import StopRequested, train_run

torch.set_num_threads(1)

#: without batch norm (X-DNN): measured after 2 epochs (lr 1e-2), 2 processes vs 1: epoch 1 agrees to
#: 1e-8, epoch 2's train_loc to 2.4e-4 (7e-5 relative; Adam carries the round-off on), EPG to 4e-6
TIGHT = 1e-3
FIELDS = ("f1", "map", "epg", "iou", "train_loss", "train_bce", "train_loc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg: dict, results: str, stop_after: int | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        train_run(RunConfig.from_dict(cfg), results, stop_after_epochs=stop_after, progress=False)
    except StopRequested:
        pass
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _run(cfg: RunConfig, results: Path, world: int, stop_after: int | None = None) -> Path:
    if world == 1:
        try:
            train_run(cfg, results, stop_after_epochs=stop_after, progress=False)
        except StopRequested:
            pass
    else:
        mp.start_processes(_worker, args=(world, _free_port(), cfg.to_dict(), str(results), stop_after),
                           nprocs=world, join=True, start_method="spawn")
    return store.run_dir(results, cfg.profile, cfg.run_id)


def _rows(rdir: Path) -> dict[tuple, dict]:
    return {(r["epoch"], r["split"], r["tap"], r["method"]): r for r in store.read_metrics(rdir)}


def _assert_close(a: Path, b: Path, atol: float, rtol: float = 0.0) -> float:
    ra, rb = _rows(a), _rows(b)
    assert ra.keys() == rb.keys()
    worst = 0.0
    for key in ra:
        for f in FIELDS:
            x, y = ra[key].get(f), rb[key].get(f)
            assert (x is None) == (y is None), (key, f)
            if x is not None:
                worst = max(worst, abs(x - y))
                assert x == pytest.approx(y, abs=atol, rel=rtol), (key, f, x, y)
    assert store.read_done(a)["selected_epoch"] == store.read_done(b)["selected_epoch"]
    return worst


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("ddp"), ("xdnn",))


def prepare(root: Path, kinds: tuple[str, ...] = ("xdnn", "bcos")) -> tuple[Path, dict[str, RunConfig]]:
    """Synthetic VOC, X-DNN / B-cos baselines (one process), the guided configs."""
    from rightfocus.data.synthetic import make

    voc = make("voc2007", root / "voc", seed=0, n_train=16, n_val=4, n_test=4, min_size=20, max_size=24)
    base = RunConfig(dataset="voc2007", data_root=str(voc), arch="tiny", epochs=1, lr=1e-2, batch_size=8,
                     image_size=16, device="cpu")
    guided = {}
    for kind, tap, method in (("xdnn", "mid2", "intgrad"), ("bcos", "input", "bcos")):
        if kind not in kinds:
            continue
        b = replace(base, model_kind=kind)
        train_run(b, root / "results", progress=False)
        guided[kind] = replace(b, method=method, tap=tap, loss="energy", lam=1.0, epochs=2,
                               annotation_fraction=0.5, init_from=b.run_id)
    return root, guided


def _fresh(root: Path, name: str, baseline_of: RunConfig) -> Path:
    """A results folder holding (a copy of) the baseline the guided run starts from."""
    import shutil

    out = root / name
    src = store.run_dir(root / "results", baseline_of.profile, str(baseline_of.init_from))
    shutil.copytree(src, store.run_dir(out, baseline_of.profile, str(baseline_of.init_from)))
    return out


def test_two_processes_equal_one_without_batch_norm(setup):
    root, guided = setup
    cfg = guided["xdnn"]
    one = _run(cfg, _fresh(root, "x1", cfg), 1)
    two = _run(cfg, _fresh(root, "x2", cfg), 2)
    assert store.read_done(two)["world_size"] == 2
    _assert_close(one, two, atol=TIGHT, rtol=TIGHT)


@pytest.mark.slow
def test_batch_norm_model_runs_and_its_first_epoch_is_close(tmp_path):
    """B-cos (explanation mode + double backward through DDP) with batch norm: each rank normalises
    with its half of the batch, so the runs drift apart over training (measured at 32 px, 16 images,
    lr 1e-2: epoch 1 val mAP / EPG / IoU within 0.021 / 0.007 / 0.004 of one process, epoch 2 up to
    0.08); epoch 1 is checked within 0.05."""
    root, guided = prepare(tmp_path, ("bcos",))
    cfg = guided["bcos"]
    one = _run(cfg, _fresh(root, "b1", cfg), 1)
    two = _run(cfg, _fresh(root, "b2", cfg), 2)
    ra, rb = _rows(one), _rows(two)
    assert store.is_done(two)  # (the selected epoch may differ)
    val1 = [k for k in ra if k[0] == 1 and k[1] == "val"]
    assert val1 and all(k in rb for k in val1)
    for key in val1:
        for f in ("f1", "map", "epg", "iou"):
            assert ra[key][f] == pytest.approx(rb[key][f], abs=0.05), (key, f)


@pytest.mark.slow
@pytest.mark.parametrize("first,second", [(2, 1), (1, 2)])
def test_resume_under_another_world_size(setup, first, second):
    root, guided = setup
    cfg = guided["xdnn"]
    whole = _run(cfg, _fresh(root, f"w{first}{second}", cfg), 1)
    results = _fresh(root, f"r{first}{second}", cfg)
    rdir = _run(cfg, results, first, stop_after=1)
    assert (rdir / "ckpt" / "latest.pt").exists() and not store.is_done(rdir)
    _run(cfg, results, second)
    assert store.is_done(rdir)
    _assert_close(whole, rdir, atol=TIGHT, rtol=TIGHT)
