"""Test INPUT data for the figure renderers: a small fake results tree written through the real
results store (`rightfocus.runs.store`), in exactly the results contract's format.

Values are made up but structured (guidance trades F1 for EPG/IoU; Energy gains most EPG, L1 most
IoU; deeper taps train faster) so that every renderer has something to draw. `flip` reverses the
loss ranking, so claim checks can be seen to fail. Checkpoints: by default none (qualitative figures
become placeholders); `write_checkpoints` adds untrained, seeded tiny models for the kept epochs of a
group's runs, so qualitative renderers can draw from a real dataset written by the generators.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from rightfocus import pareto
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig

EPOCHS = 4
MAIN = {"vanilla": "ixg", "xdnn": "intgrad", "bcos": "bcos"}
GAIN_EPG = {"energy": 0.30, "l1": 0.15, "ppce": 0.05, "rrr": 0.12}
GAIN_IOU = {"energy": 0.05, "l1": 0.20, "ppce": 0.02, "rrr": 0.04}
COST_F1 = {"energy": 0.02, "l1": 0.04, "ppce": 0.01, "rrr": 0.03}
ONOBJ = {"energy": 0.10, "l1": -0.05, "ppce": 0.0, "rrr": 0.05}
TIME = {"input": 2.0, "mid1": 1.8, "mid2": 1.2, "mid3": 1.0, "final": 0.9}
BASE = {"vanilla": (0.80, 0.35, 0.20), "xdnn": (0.79, 0.38, 0.22), "bcos": (0.78, 0.50, 0.30)}


def _metrics(kind: str, loss: str | None, lam_rank: int, epoch: int, tap: str, rng: np.random.Generator,
             flip: bool, dilation: float = 0.0, fraction: float = 1.0) -> dict:
    f1, epg, iou = BASE[kind]
    onobj = 0.5
    if loss is not None and epoch > 0:
        q = (1 - math.exp(-epoch / 1.5)) * (0.6 + 0.4 * lam_rank)
        gains = dict(GAIN_EPG)
        if flip:  # reverse the ranking of Energy and PPCE
            gains["energy"], gains["ppce"] = gains["ppce"], gains["energy"]
        robust = 1.0 if loss == "energy" else 1.0 - dilation
        q *= robust * (0.7 + 0.3 * fraction)
        epg += q * gains[loss]
        iou += q * GAIN_IOU[loss]
        f1 -= q * COST_F1[loss] * (1 if epoch % 2 else 1.5)
        onobj += q * ONOBJ[loss]
    noise = rng.normal(0, 0.004, 3)
    return {"f1": f1 + noise[0], "map": f1 + 0.05 + noise[0], "epg": epg + noise[1], "iou": iou + noise[2],
            "iou_threshold": 0.5, "onobj_epg": onobj, "accuracy": None, "group_acc": None,
            "worst_group_acc": None, "epoch_time_s": TIME[tap] * (1.0 if loss else 0.5)}


def _write_run(results: Path, profile: str, cfg: RunConfig, rows: list[dict]) -> str:
    rid = cfg.run_id
    rdir = store.run_dir(results, profile, rid)
    store.write_config(rdir, cfg)
    df = pd.DataFrame(rows)
    own = df[(df["split"] == "val") & (df["tap"] == (cfg.tap or df["tap"].iloc[0])) & (df["epoch"] >= 1)]
    if cfg.is_baseline:
        sel = int(df[df["split"] == "val"].sort_values("f1").iloc[-1]["epoch"])
        front = [sel]
    else:
        front = sorted(pareto.front_rows(own)["epoch"].astype(int).unique().tolist())
        sel = front[0]
    keep = set(front) | {sel, 0}
    rows = [r for r in rows if r["split"] == "val" or r["epoch"] in keep]
    for r in rows:
        r["checkpoint"] = f"epoch_{r['epoch']}.pt" if r["epoch"] in keep else None
    store.write_metrics(rdir, rows)
    store.write_done(rdir, {"front_epochs": front, "selected_epoch": sel})
    return rid


def _run(results: Path, profile: str, *, dataset: str, kind: str, arch: str = "tiny", method: str | None = None,
         tap: str | None = None, loss: str | None = None, lam: float = 0.0, lam_rank: int = 0,
         fraction: float = 1.0, dilation: float = 0.0, seed: int = 0, flip: bool = False,
         eval_taps: Iterable[str] = (), data_roots: dict | None = None, image_size: int = 224) -> str:
    root = (data_roots or {}).get(dataset, f"data/synthetic/{dataset}")
    cfg = RunConfig(paper="mg", dataset=dataset, model_kind=kind, arch=arch, method=method, tap=tap, loss=loss,
                    lam=lam, annotation_fraction=fraction, dilation=dilation, seed=seed, epochs=EPOCHS,
                    data_root=str(root), image_size=image_size)
    rng = np.random.default_rng(abs(hash(cfg.run_id)) % 2**32)
    taps = list(dict.fromkeys([*( [tap] if tap else []), *eval_taps]))
    rows = []
    for epoch in range(EPOCHS + 1 if loss else EPOCHS):
        for split in ("val", "test"):
            for t in taps:
                for m in ([method] if method else [MAIN[kind], "gradcam"] if t == "final" else [MAIN[kind]]):
                    eff_loss = loss if (t == tap or (kind == "bcos" and t == "input")) else None
                    row = _metrics(kind, eff_loss, lam_rank, epoch, t, rng, flip, dilation, fraction)
                    row["epoch_time_s"] = TIME[tap or "final"] * (1.0 if loss else 0.5)
                    # the training localisation loss falls over the guided epochs (operating-point check)
                    row["train_loc"] = 1.0 / (1 + epoch) if loss and epoch >= 1 else None
                    rows.append({"epoch": epoch, "split": split, "tap": t, "method": m, **row})
    return _write_run(results, profile, cfg, rows)


def _waterbirds(results: Path, profile: str, data_roots: dict | None = None, image_size: int = 224) -> list[str]:
    root = str((data_roots or {}).get("waterbirds", "data/synthetic/waterbirds"))
    rids = []
    for kind in MAIN:
        for task in ("bird", "place"):
            for loss, tap in ((None, None), ("energy", "input"), ("l1", "input"), ("energy", "final"), ("l1", "final")):
                for seed in (0, 1):
                    cfg = RunConfig(paper="mg", dataset="waterbirds", model_kind=kind, arch="tiny",
                                    method=MAIN[kind] if loss else None, tap=tap, loss=loss,
                                    lam=0.05 if loss else 0.0, annotation_fraction=0.1 if loss else 1.0,
                                    task=task, seed=seed, epochs=2, data_root=root, image_size=image_size)
                    rng = np.random.default_rng(seed + 7 * len(rids))
                    gain = {None: 0.0, "energy": 0.12, "l1": 0.07}[loss]
                    rows = []
                    for epoch in range(3):
                        g = np.array([0.99, 0.40 + gain, 0.45 + gain, 0.96]) + rng.normal(0, 0.01, 4)
                        for split in ("val", "test"):
                            rows.append({"epoch": epoch, "split": split, "tap": tap or "input",
                                         "method": MAIN[kind], "f1": None, "map": None, "epg": 0.4 + gain,
                                         "iou": 0.2, "iou_threshold": 0.5, "onobj_epg": None,
                                         "accuracy": float(g.mean()), "group_acc": g.tolist(),
                                         "worst_group_acc": float(g.min()), "epoch_time_s": 1.0,
                                         "checkpoint": "epoch_2.pt" if epoch == 2 else None})
                    rid = cfg.run_id
                    rdir = store.run_dir(results, profile, rid)
                    store.write_config(rdir, cfg)
                    store.write_metrics(rdir, rows)
                    store.write_done(rdir, {"front_epochs": [2], "selected_epoch": 2})
                    rids.append(rid)
    return rids


def write_fake_results(results: Path, profile: str = "demo", flip: bool = False,
                       groups: Iterable[str] | None = None, data_roots: dict | None = None,
                       image_size: int = 224, losses: Iterable[str] = ("energy", "l1", "ppce", "rrr")) -> Path:
    """Write the fake tree under `results/profile` and the group manifests; returns the profile dir.
    `data_roots` (dataset -> folder) and `image_size` go into the run configs; `losses`: those of the
    main groups' guided runs (each needs an entry in GAIN_EPG, GAIN_IOU, COST_F1 and ONOBJ)."""
    results = Path(results)
    run = functools.partial(_run, data_roots=data_roots, image_size=image_size)
    lams = (0.5, 1.0)
    want = set(groups) if groups is not None else None

    def wanted(g: str) -> bool:
        return want is None or g in want

    def baselines(dataset: str, kinds=MAIN, arch="tiny") -> list[str]:
        return [run(results, profile, dataset=dataset, kind=k, arch=arch, eval_taps=list(TIME)) for k in kinds]

    def guided_grid(dataset: str, kinds, taps, losses, methods=None, **kw) -> list[str]:
        out = []
        for k in kinds:
            for t in taps:
                for loss in losses:
                    for r, lam in enumerate(lams):
                        m = (methods or MAIN)[k] if isinstance(methods or MAIN, dict) else methods
                        extra_taps = ["input"] if k == "bcos" and t != "input" else []
                        out.append(run(results, profile, dataset=dataset, kind=k, method=m, tap=t, loss=loss,
                                        lam=lam, lam_rank=r, flip=flip, eval_taps=extra_taps, **kw))
        return out

    losses = tuple(losses)
    groups_written = {}
    if wanted("voc-main"):
        groups_written["voc-main"] = baselines("voc2007") + guided_grid("voc2007", MAIN, ("input", "final"), losses)
    if wanted("coco-main"):
        groups_written["coco-main"] = baselines("coco2014") + guided_grid("coco2014", MAIN, ("input", "final"), losses)
    if wanted("voc-gradcam"):
        groups_written["voc-gradcam"] = baselines("voc2007") + guided_grid(
            "voc2007", MAIN, ("final",), losses) + guided_grid("voc2007", MAIN, ("final",), losses, methods="gradcam")
    if wanted("coco-gradcam"):
        groups_written["coco-gradcam"] = baselines("coco2014") + guided_grid(
            "coco2014", MAIN, ("final",), losses) + guided_grid("coco2014", MAIN, ("final",), losses, methods="gradcam")
    if wanted("voc-layers"):
        groups_written["voc-layers"] = baselines("voc2007") + guided_grid(
            "voc2007", MAIN, ("input", "mid1", "mid2", "mid3", "final"), ("energy", "l1"))
    if wanted("voc-backbones"):
        bb = []
        for arch in ("tiny_densenet", "tiny_vit"):
            bb += [run(results, profile, dataset="voc2007", kind="bcos", arch=arch, eval_taps=["input"])]
            for loss in losses:
                for r, lam in enumerate(lams):
                    bb.append(run(results, profile, dataset="voc2007", kind="bcos", arch=arch, method="bcos",
                                   tap="input", loss=loss, lam=lam, lam_rank=r, flip=flip))
        groups_written["voc-backbones"] = bb
    if wanted("voc-limited"):
        lim = baselines("voc2007")
        for frac in (0.1, 0.5, 1.0):
            lim += guided_grid("voc2007", MAIN, ("input",), ("energy", "l1"), fraction=frac)
        groups_written["voc-limited"] = lim
    if wanted("voc-dilation"):
        dil = baselines("voc2007")
        for d in (0.0, 0.1, 0.25, 0.5):
            dil += guided_grid("voc2007", MAIN, ("input",), ("energy", "l1"), dilation=d)
        groups_written["voc-dilation"] = dil
    if wanted("coco-dilation"):
        dil = baselines("coco2014")
        for d in (0.0, 0.5):
            dil += guided_grid("coco2014", MAIN, ("input",), ("energy", "l1"), dilation=d)
        groups_written["coco-dilation"] = dil
    if wanted("waterbirds"):
        groups_written["waterbirds"] = _waterbirds(results, profile, data_roots, image_size)
    for g, rids in groups_written.items():
        store.write_group(results, profile, g, rids)
    return results / profile


def write_checkpoints(results: Path, profile: str, group: str, num_classes: int, seed: int = 0) -> int:
    """Save an untrained, seeded model (different per run) for every kept epoch of the group's runs,
    in the training loop's checkpoint format; returns the number of files written."""
    import torch

    from rightfocus.models import build_model
    from rightfocus.training.checkpoint import save_weights

    n = 0
    for i, rid in enumerate(store.list_runs(results, profile, group)):
        rdir = store.run_dir(results, profile, rid)
        cfg = store.load_config(rdir)
        kept = {r["epoch"] for r in store.read_metrics(rdir) if r.get("checkpoint")}
        torch.manual_seed(seed + i)
        model = build_model(cfg.model_kind, cfg.arch, num_classes).eval()
        for epoch in sorted(kept):
            save_weights(rdir / "ckpt" / f"epoch_{epoch}.pt", model, num_classes, epoch)
            n += 1
    return n
