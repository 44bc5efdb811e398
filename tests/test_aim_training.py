"""AIM's task for the run engine (training/aim_loop.py, run by training/engine.py): loss wiring (Eq. 6/7) against hand-computed values, the
threshold schedule, the optimiser's parameter groups, shifted-center crops, a tiny end-to-end run on
synthetic CUB that writes the results layout (GradCAM EPG checked against captum's LayerGradCam),
resume == uninterrupted (through the engine's one resume path, with the run lock), the rehearsal caps,
and the training notebook through papermill."""

from __future__ import annotations

import json
from dataclasses import replace
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rightfocus.data.shifted_crop import DIRECTIONS, ShiftedCenterCrop, direction_for, shifted_center_crop, shifted_window
from rightfocus.runs import store
from rightfocus.experiments.aim_grids import group_configs, make_config
from rightfocus.losses import area_threshold
from rightfocus.training import aim_loop
from rightfocus.training.aim_loop import AimForward, aim_loss, threshold_at
from rightfocus.training.runner import StopRequested, train_run

EPOCHS = 2
torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared 2-core machine


# ----------------------------------------------------------------------------- loss and schedule


def _smoothed_ce(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Label-smoothed cross entropy written out: (1 - eps) * NLL + eps * mean_k(-log p_k)."""
    logp = logits.log_softmax(1)
    nll = -logp[torch.arange(len(y)), y]
    return ((1 - eps) * nll + eps * (-logp.mean(1))).mean()


def test_aim_loss_matches_hand_computation():
    torch.manual_seed(0)
    y = torch.tensor([0, 2, 1, 2])
    final, aux1, aux2 = (torch.randn(4, 3) for _ in range(3))
    m1 = torch.zeros(4, 1, 2, 2)
    m1[:, :, 0, :] = 1  # active share 0.5 in every image
    m2 = torch.zeros(4, 1, 2, 2)
    m2[:2, :, 0, 0] = 1  # shares 0.25, 0.25, 0, 0 -> batch mean 0.125
    fw = AimForward(final, [aux1, aux2], [m1, m2], None)
    cls = sum(_smoothed_ce(z, y, 0.05) for z in (final, aux1, aux2))
    total, parts = aim_loss(fw, y, tau=0.25, lam=6.0, label_smoothing=0.05)
    mask = (0.5 - 0.25) ** 2 + (0.125 - 0.25) ** 2
    assert parts["mask_loss"] == pytest.approx(mask)
    assert float(total) == pytest.approx(float(cls) + 6.0 * mask, rel=1e-6)
    # no annealing = no mask term at all; without aux losses only the final classifier counts
    total_none, parts_none = aim_loss(fw, y, tau=None, lam=6.0, label_smoothing=0.05)
    assert parts_none["mask_loss"] == 0.0 and float(total_none) == pytest.approx(float(cls), rel=1e-6)
    total_noaux, _ = aim_loss(fw, y, tau=None, lam=6.0, label_smoothing=0.05, aux_losses=False)
    assert float(total_noaux) == pytest.approx(float(_smoothed_ce(final, y, 0.05)), rel=1e-6)


def test_threshold_schedule_follows_config():
    opts = {"tau": 0.25, "anneal_start": 2, "anneal_epochs": 4}
    got = [threshold_at(opts, e) for e in range(1, 10)]  # 1-based training epochs
    assert got[:3] == [1.0, 1.0, 1.0]  # until the start epoch (0-based 2 = 3rd epoch) inclusive
    assert got[3] == pytest.approx(1.0 - 0.75 / 4)
    assert got[6:] == [0.25, 0.25, 0.25]
    assert got == [area_threshold(e - 1, 2, 4, 0.25) for e in range(1, 10)]
    assert threshold_at({**opts, "tau": None}, 5) is None


@pytest.mark.parametrize("profile,direction", [("demo", "top_down"), ("demo", "bottom_up"), ("paper", "top_down")])
def test_gumbel_noise_switch_and_lambda_follow_the_profile(profile, direction):
    """The profile's noise-off fraction reaches the model (DynConv: noise for the first part of the
    epochs, then none) and its mask-loss weight reaches the config."""
    from rightfocus.experiments.aim_grids import PROFILES

    kw = {"blocks": [1, 2, 3], "direction": "bottom_up"} if direction == "bottom_up" else {"stage": 1}
    config = make_config(profile, "cub", "convnext_tiny", pretrained=False, **kw)
    prof = PROFILES[profile]
    off = prof["extra"].get("noise_off_fraction", 0.8)
    assert config.lam == prof["lam"]
    model = aim_loop.build_run_model(replace(config, arch="tiny"), num_classes=3, pretrained=False)
    epochs = config.epochs
    noisy = [model.set_epoch(e, epochs)[1] for e in range(epochs)]
    first_off = next(i for i, n in enumerate(noisy) if not n)
    assert first_off == math.ceil(off * epochs) and not any(noisy[first_off:])


def test_optimizer_groups_and_cosine_schedule():
    cfg = make_config("demo", "cub", "convnext_tiny", stage=2, tau=0.25, topdown_lr=0.01)
    cfg.lr = 1e-3
    model = aim_loop.build_run_model(cfg, 5)
    opt, sched = aim_loop.build_optimizer(model, cfg, steps=10)
    backbone = {id(p) for p in model.stages.parameters()}
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 0.01]
    assert {id(p) for p in opt.param_groups[0]["params"]} == backbone
    assert not backbone & {id(p) for p in opt.param_groups[1]["params"]}
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 1e-4
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[1]["lr"] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))


def test_demo_grids_share_runs_and_respect_variants():
    main = {c.run_id: c for c in group_configs("aim-main", "demo")}
    centre = {c.run_id: c for c in group_configs("aim-centerbias", "demo")}
    assert set(main) & set(centre), "CUB runs of aim-main must be reused by aim-centerbias"
    bottom = [c for c in group_configs("aim-bottomup", "demo") if c.extra.get("direction") == "bottom_up"]
    assert bottom and all(c.extra["blocks"] for c in bottom)
    assert all(c.extra.get("shifted_offset") is not None for c in centre.values())
    with pytest.raises(ValueError, match="unknown AIM group"):
        group_configs("aim-nope", "demo")


# ----------------------------------------------------------------------------- shifted crops


@pytest.mark.parametrize("h,w,offset", [(40, 40, 0.15), (30, 44, 0.2), (33, 33, 0.1)])
def test_shifted_crop_moves_the_centre_by_the_offset(h, w, offset):
    d = round(offset * min(h, w))
    centred = shifted_window(h, w, 0.0, 0)
    c0 = (centred[1] + centred[3] / 2, centred[0] + centred[2] / 2)
    for k, (dx, dy) in enumerate(DIRECTIONS):
        top, left, side, side2 = shifted_window(h, w, offset, k)
        assert side == side2 == min(h, w) - 2 * d
        assert 0 <= top and top + side <= h and 0 <= left and left + side <= w
        c = (left + side / 2, top + side / 2)
        # same-size centred crop's centre + d along the direction
        cc = ((w - side) // 2 + side / 2, (h - side) // 2 + side / 2)
        assert (c[0] - cc[0], c[1] - cc[1]) == (dx * d, dy * d)
        assert abs(cc[0] - c0[0]) <= 0.5 and abs(cc[1] - c0[1]) <= 0.5
    with pytest.raises(ValueError, match="offset"):
        shifted_window(h, w, 0.5, 0)


def test_shifted_crop_content_and_segmentation_follow_the_window():
    h = w = 20
    img = torch.arange(3 * h * w, dtype=torch.float32).reshape(3, h, w) / (3 * h * w)
    seg = torch.zeros(h, w, dtype=torch.long)
    seg[2:6, 14:18] = 1
    sample = {"image": img, "seg": seg, "boxes": torch.tensor([[0.0, 14, 2, 18, 6]]), "index": 7}
    out = shifted_center_crop(sample, 0.25, 1)  # right: d = 5, side = 10 -> window x 10..20, y 5..15
    top, left, side, _ = shifted_window(h, w, 0.25, 1)
    assert (top, left, side) == (5, 10, 10)
    expected = F.interpolate(img[None, :, top:top + side, left:left + side], size=(h, w), mode="bilinear",
                             antialias=True)[0]
    assert torch.allclose(out["image"], expected.clamp(0, 1), atol=1e-5)
    assert out["boxes"][0, 1:].tolist() == [8.0, 0.0, 16.0, 2.0]  # (14-10, 2-5 -> 0 clipped) x 2
    assert out["shift_direction"] == 1
    wrapped = ShiftedCenterCrop([sample], 0.25, seed=3)[0]
    assert wrapped["shift_direction"] == direction_for(7, 3)
    assert len({direction_for(i, 0) for i in range(40)}) == 4  # every direction occurs


def test_randaugment_changes_images_only():
    sample = {"image": torch.rand(3, 16, 16), "seg": torch.ones(16, 16, dtype=torch.long),
              "boxes": torch.tensor([[0.0, 1, 1, 5, 5]]), "labels": torch.tensor([1.0, 0.0])}
    torch.manual_seed(0)
    out = aim_loop.RandAugmented([sample], 3, 9)[0]
    assert out["image"].shape == sample["image"].shape and not torch.equal(out["image"], sample["image"])
    assert out["seg"] is sample["seg"] and out["boxes"] is sample["boxes"]


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory) -> Path:
    from rightfocus.data import synthetic

    return synthetic.make("cub", tmp_path_factory.mktemp("data") / "cub", seed=0, per_class=6, num_classes=3)


def _cfg(cub_root: Path, aim: bool = True, **extra):
    cfg = make_config("demo", "cub", "convnext_tiny", aim=aim, stage=2, tau=0.25, anneal_epochs=1,
                      fixed_images=3, **extra)
    cfg.data_root = str(cub_root)
    cfg.epochs, cfg.batch_size = EPOCHS, 8
    return cfg


@pytest.fixture(scope="module")
def aim_run(cub_root, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    cfg = _cfg(cub_root)
    return train_run(cfg, results, progress=False), cfg, results


def test_evaluation_images_are_centre_cropped_and_training_images_resized_whole(cub_root):
    """AIM evaluates centre-cropped images (Sec. 6.2, App. A.6): val and test samples equal torchvision's
    Resize(round(size / 0.875)) + CenterCrop(size) of their files; training samples the whole image
    resized to size x size."""
    from PIL import Image
    from torchvision.transforms import CenterCrop, Resize
    from torchvision.transforms import functional as TF

    cfg = _cfg(cub_root, aim=False)
    train, val, test, _ = aim_loop.load_splits(cfg)
    size = cfg.image_size
    crop = lambda im: CenterCrop(size)(Resize(round(size / 0.875))(im))  # noqa: E731
    whole = lambda im: Resize([size, size])(im)  # noqa: E731
    for ds, sub, how in ((test, None, crop), (val, val, crop), (train, train, whole)):
        for i in range(min(3, len(ds))):
            rec = sub.dataset.records[sub.indices[i]] if sub is not None else ds.records[i]
            with Image.open(rec.path) as im:
                expected = TF.pil_to_tensor(how(im.convert("RGB"))).float() / 255.0
            assert torch.equal(ds[i]["image"], expected), (how, i)
        assert ds[0]["image"].shape[-2:] == (size, size)


def test_tiny_run_writes_the_results_layout(aim_run):
    rdir, cfg, _ = aim_run
    done = json.loads((rdir / "done").read_text())
    assert store.load_config(rdir).run_id == cfg.run_id == rdir.name
    rows = store.read_metrics(rdir)
    val = [r for r in rows if r["split"] == "val"]
    assert [r["epoch"] for r in val] == list(range(1, EPOCHS + 1))
    assert [r["tau"] for r in val] == [1.0, 0.25]
    test = [r for r in rows if r["split"] == "test"]
    assert [r["method"] for r in test] == ["gradcam"] and test[0]["epoch"] == done["selected_epoch"]
    assert test[0]["tap"] == "aim" and 0 <= test[0]["epg"] <= 1 and len(test[0]["stage_active"]) == 3
    assert [r for r in rows if r["split"] == "test_shifted"], "CUB runs also test on shifted-center crops"
    for e in range(EPOCHS + 1):
        masks = torch.load(rdir / "masks" / f"epoch_{e}.pt", weights_only=True)
        assert len(masks["stage_masks"]) == 3 and masks["stage_masks"][0].shape[0] == 3
    ex = torch.load(rdir / "examples.pt", weights_only=True)
    assert ex["stages"] == [4, 3, 2] and ex["gradcam"].shape == ex["object"].shape
    per = pd.read_csv(rdir / "per_sample.csv")
    n_test = len(aim_loop.load_splits(cfg)[2])
    assert len(per) == n_test and per["index"].is_unique
    assert per["correct"].mean() == pytest.approx(test[0]["accuracy"])
    assert per["epg_gradcam"].mean() == pytest.approx(test[0]["epg"])
    assert (rdir / "ckpt" / f"epoch_{done['selected_epoch']}.pt").exists()
    assert not (rdir / "ckpt" / "latest.pt").exists()


def test_resume_equals_uninterrupted(aim_run, tmp_path):
    rdir_full, cfg, _ = aim_run
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=1, progress=False)
    part = store.run_dir(tmp_path, cfg.profile, cfg.run_id)
    assert not (part / "done").exists() and (part / "ckpt" / "latest.pt").exists()
    assert (part / ".lock").exists(), "AIM runs take the run lock like MG runs"
    train_run(cfg, tmp_path, progress=False)
    drop = ("epoch_time_s",)
    a = [{k: v for k, v in r.items() if k not in drop} for r in store.read_metrics(rdir_full)]
    b = [{k: v for k, v in r.items() if k not in drop} for r in store.read_metrics(part)]
    assert a == b
    sel = json.loads((rdir_full / "done").read_text())["selected_epoch"]
    assert json.loads((part / "done").read_text())["selected_epoch"] == sel
    sa = torch.load(rdir_full / "ckpt" / f"epoch_{sel}.pt", weights_only=True)["model"]
    sb = torch.load(part / "ckpt" / f"epoch_{sel}.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (rdir_full / "per_sample.csv").read_text() == (part / "per_sample.csv").read_text()


def test_baseline_gradcam_epg_matches_captum(cub_root, tmp_path):
    from captum.attr import LayerAttribution, LayerGradCam

    cfg = _cfg(cub_root, aim=False)
    cfg.epochs = 1
    rdir = train_run(cfg, tmp_path, progress=False)
    model, _ = store.load_checkpoint(rdir)
    ex = torch.load(rdir / "examples.pt", weights_only=True)
    x = aim_loop._encode(model, ex["image"])
    cam = LayerGradCam(model, model.stages["final"]).attribute(x, target=ex["label"], relu_attributions=True)
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
    assert torch.allclose(cam, ex["gradcam"], atol=1e-5)
    pos = cam.clamp(min=0)
    epg = (pos * ex["object"]).flatten(1).sum(1) / pos.flatten(1).sum(1).clamp_min(1e-12)
    has = pos.flatten(1).sum(1) > 0
    assert torch.allclose(epg[has], ex["epg"][has].float(), atol=1e-5)
    # the per-sample predictions come from the selected checkpoint
    test = aim_loop.load_splits(cfg)[2]
    batch = aim_loop.collate([test[i] for i in range(len(test))])
    with torch.no_grad():
        preds = model(aim_loop._encode(model, batch["image"])).argmax(1)
    per = pd.read_csv(rdir / "per_sample.csv")
    assert per["pred"].tolist() == preds.tolist()


def test_train_notebook_runs_through_papermill(cub_root, tmp_path):
    import papermill as pm

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "aim_train.ipynb"
    cfg = _cfg(cub_root, aim=False)
    cfg.epochs = 1
    pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False, cwd=str(nb.parent),
                        parameters={"configs": [cfg.to_dict()], "results": str(tmp_path / "res")})
    assert (store.run_dir(tmp_path / "res", cfg.profile, cfg.run_id) / "done").exists()


def test_caps_limit_training_steps_and_evaluated_images(cub_root, tmp_path):
    """max_steps_per_epoch: the cosine schedule and the optimiser see only that many steps;
    max_eval_images: val/test rows and per-sample EPG cover only that many images."""
    import dataclasses

    cfg = dataclasses.replace(_cfg(cub_root, aim=False), epochs=1, batch_size=4, max_steps_per_epoch=2,
                              max_eval_images=5)
    rdir = train_run(cfg, tmp_path, progress=False)
    assert len(pd.read_csv(rdir / "per_sample.csv")) == 5
    train, val, test, _ = aim_loop.load_splits(cfg)
    assert len(train) > 2 * cfg.batch_size and len(test) > 5  # the caps bind
    from rightfocus.training.aim_loop import AimTask

    task = AimTask(cfg)
    task.load_data()
    task.build(torch.device("cpu"))
    assert task.scheduler.T_max == 2 * cfg.epochs
