"""The run engine (training/engine.py) and what it shares between the papers: run ids unchanged by the
rehearsal caps unless set, the caps honoured, model guidance's localisation step against the loss
functions it wraps, and the run lock. (Resume == uninterrupted for each paper: test_training.py and
test_aim_training.py.)"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rightfocus.experiments import aim_grids, grids
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.training import engine
from rightfocus.training.runner import StopRequested, train_run

torch.set_num_threads(1)

#: sha256 of the sorted run ids of the demo grids (both papers). Unset rehearsal caps and runtime options
#: must leave every id as it is; a change of a demo setting that changes ids on purpose updates this hash,
#: with the reason in the commit message.
GRID_IDS_SHA256 = "285152529f4e7d4076842697928655a444ebb788c9d22d252d25c944ed021b65"


def test_run_ids_are_unchanged_while_the_caps_are_unset():
    ids = sorted({c.run_id for m in (grids, aim_grids) for c in m.all_configs("demo")})
    assert len(ids) == 135
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == GRID_IDS_SHA256


@pytest.mark.parametrize("field", ["max_steps_per_epoch", "max_eval_images"])
def test_a_set_cap_changes_the_id_and_round_trips(field):
    cfg = RunConfig()
    capped = replace(cfg, **{field: 3})
    assert capped.run_id != cfg.run_id
    assert replace(cfg, **{field: 4}).run_id != capped.run_id
    assert RunConfig.from_dict({**capped.to_dict(), field: "3"}) == capped  # YAML strings -> int
    with pytest.raises(ValueError, match=field):
        replace(cfg, **{field: 0})


def test_batches_and_eval_subset_honour_the_caps():
    cfg = RunConfig(max_steps_per_epoch=2, max_eval_images=3)
    assert list(engine.batches(range(10), cfg, "x", progress=False, train=True)) == [0, 1]
    assert list(engine.batches(range(10), cfg, "x", progress=False)) == list(range(10))  # eval: images capped
    assert [d for d in engine.eval_subset(list("abcdef"), cfg)] == ["a", "b", "c"]
    assert engine.steps_per_epoch(5, cfg) == 2 and engine.steps_per_epoch(1, cfg) == 1
    free = RunConfig()
    assert list(engine.batches(range(4), free, "x", progress=False, train=True)) == [0, 1, 2, 3]
    data = list("ab")
    assert engine.eval_subset(data, free) is data


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    from rightfocus.data.synthetic import make

    return make("voc2007", tmp_path_factory.mktemp("voc"), seed=0, n_train=12, n_val=6, n_test=6,
                min_size=24, max_size=28)


def test_mg_run_honours_both_caps(voc, tmp_path):
    """Adam's step count in the resume state = the capped steps; test rows score the first images only
    (F1 against scikit-learn on exactly those images)."""
    from sklearn.metrics import f1_score

    from rightfocus.data import collate, encode, load_dataset

    cfg = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=2, lr=1e-2,
                    batch_size=3, image_size=16, max_steps_per_epoch=2, max_eval_images=4)
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=1, progress=False)
    rdir = store.run_dir(tmp_path, "demo", cfg.run_id)
    state = torch.load(rdir / "ckpt" / "latest.pt", weights_only=True)
    steps = {int(s["step"]) for s in state["task"]["optimizer"]["state"].values()}
    assert steps == {2}  # 12 training images / batch 3 = 4 batches, capped at 2
    train_run(cfg, tmp_path, progress=False)
    model, _ = store.load_checkpoint(rdir, "selected")
    data = load_dataset("voc2007", voc, "test", size=16)
    batch = collate([data[i] for i in range(4)])
    with torch.no_grad():
        logits = model(encode(batch["image"], model.input_encoding))
    ours = f1_score(batch["labels"].numpy().ravel(), (logits >= 0).numpy().ravel().astype(int), zero_division=0)
    sel = store.read_done(rdir)["selected_epoch"]
    row = [r for r in store.read_metrics(rdir) if r["split"] == "test" and r["epoch"] == sel and r["tap"] is None]
    assert row and row[0]["f1"] == pytest.approx(ours, abs=1e-9)


@pytest.mark.parametrize("loss", ["energy", "l1", "ppce", "rrr"])
def test_localisation_step_is_the_loss_of_the_guided_images(loss):
    """Per-image loss = LOSSES[loss] of the attribution (from the same forward pass) for guided images,
    0 for the others; the logits are that forward pass's."""
    from rightfocus.attributions import attribution_context, attribution_from_tap
    from rightfocus.losses import LOSSES, localisation_loss
    from rightfocus.models import build_model
    from rightfocus.training.mg_task import localisation_step

    torch.manual_seed(0)
    model = build_model("bcos", "tiny", 4)
    images = torch.rand(5, 6, 16, 16)
    targets = torch.tensor([0, 2, -1, 1, 3])
    guided = torch.tensor([True, True, True, False, True])
    masks = (torch.rand(5, 16, 16) > 0.5).float()
    logits, per_image = localisation_step(model, images, targets, masks, "input", "bcos", loss, guided=guided)
    keep = torch.tensor([0, 1, 4])
    x = images.clone().requires_grad_(True)
    with attribution_context(model, "bcos"):
        ref_logits, acts = model.forward_taps(x, ["input"])
        maps = attribution_from_tap(ref_logits, acts["input"], targets.clamp_min(0), "bcos", create_graph=True)
    expected = LOSSES[loss](maps[keep], masks[keep])
    assert torch.allclose(logits, ref_logits)
    assert torch.allclose(per_image[keep], expected) and (per_image[[2, 3]] == 0).all()
    assert torch.allclose(per_image[keep].sum(), localisation_loss(loss, maps[keep], masks[keep]))
    # differentiable w.r.t. the parameters (the guidance gradient)
    grads = torch.autograd.grad(per_image.sum(), [p for p in model.parameters() if p.requires_grad])
    assert any(g.abs().sum() > 0 for g in grads)


def test_run_lock_serialises_two_holders(tmp_path):
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait()
        with engine.run_lock(tmp_path / "run"):
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    with engine.run_lock(tmp_path / "run"):
        inside.set()
        t.join(timeout=0.5)  # the second holder must still be waiting
        order.append("first")
    t.join()
    assert order == ["first", "second"]


def test_task_for_picks_the_paper():
    from rightfocus.training.aim_loop import AimTask
    from rightfocus.training.mg_task import MgTask
    from rightfocus.training.runner import task_for

    assert isinstance(task_for(RunConfig()), MgTask)
    aim = aim_grids.group_configs("aim-main", "demo")[0]
    assert isinstance(task_for(aim), AimTask)
    with pytest.raises(ValueError, match="paper='mg'"):
        MgTask(dataclasses.replace(aim))


@pytest.mark.parametrize("cap", [None, 2])
def test_progress_bar_does_not_change_the_batches(cap):
    """tqdm.auto iterates what it is given once in its constructor: a shuffled DataLoader wrapped
    as-is would draw a second permutation from the run's generator whenever progress is on."""
    from torch.utils.data import DataLoader

    from rightfocus.runs.config import RunConfig
    from rightfocus.training.engine import batches

    config = RunConfig(max_steps_per_epoch=cap)

    def order(progress: bool) -> list[int]:
        gen = torch.Generator().manual_seed(0)
        loader = DataLoader(list(range(12)), batch_size=3, shuffle=True, generator=gen)
        return [int(i) for b in batches(loader, config, "x", progress, train=True) for i in b]

    assert order(True) == order(False)
    assert len(order(False)) == (12 if cap is None else 6)
