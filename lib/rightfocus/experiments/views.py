"""Quick looks at finished runs for the training notebook: validation curves and a few heatmaps.

These read results only (the store and kept checkpoints); they never train. The paper's figures
are rendered by `rightfocus.figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from rightfocus.runs import store


def curves(results: str | Path, profile: str, run_ids: Sequence[str], metrics: Sequence[str] = ("f1", "epg", "iou")):
    """One panel per metric: validation value vs epoch for each run at its own tap/method
    (baselines: F1 / accuracy per epoch). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    frames = []
    for rid in run_ids:
        rdir = store.run_dir(results, profile, rid)
        rows = pd.DataFrame(store.read_metrics(rdir))
        if rows.empty:
            continue
        cfg = store.load_config(rdir)
        rows = rows[rows["split"] == "val"]
        if cfg.is_baseline:
            rows = rows[rows["tap"].isna()]
        else:
            rows = rows[(rows["tap"] == cfg.tap) & (rows["method"] == cfg.method)]
        frames.append(rows.assign(run_id=rid))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for df in frames:
            if df[metric].notna().any():
                ax.plot(df["epoch"], df[metric], marker="o", label=df["run_id"].iloc[0][:40])
        ax.set_xlabel("epoch")
        ax.set_title(f"val {metric}")
    if frames and len(frames) <= 8:
        axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def heatmaps(results: str | Path, profile: str, run_ids: Sequence[str], n_images: int = 4, split: str = "test"):
    """Attributions (at the input resolution) of each run's selected checkpoint for the first ground-truth
    class of `n_images` images: rows = runs, columns = images. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    import torch

    from rightfocus.attributions import attribute
    from rightfocus.data import collate, encode, load_dataset
    from rightfocus.attributions.methods import native_method

    run_ids = [r for r in run_ids if store.is_done(store.run_dir(results, profile, r))]
    fig, axes = plt.subplots(max(len(run_ids), 1), n_images + 1, figsize=(1.6 * (n_images + 1), 1.6 * max(len(run_ids), 1)),
                             squeeze=False)
    for row, rid in enumerate(run_ids):
        model, cfg = store.load_checkpoint(store.run_dir(results, profile, rid), "selected")
        opts = {"task": cfg.task} if cfg.task else {}
        data = load_dataset(cfg.dataset, cfg.data_root, split, size=cfg.image_size, **opts)
        batch = collate([data[i] for i in range(min(n_images, len(data)))])
        targets = batch["labels"].argmax(1)
        method = cfg.method or native_method(cfg.model_kind)
        tap = cfg.tap or "input"
        x = encode(batch["image"], model.input_encoding)
        maps = attribute(model, x, targets, method, layer=tap).detach()
        axes[row][0].text(0, 0.5, rid[:32], fontsize=5, va="center")
        for col in range(len(targets)):
            ax = axes[row][col + 1]
            ax.imshow(batch["image"][col].permute(1, 2, 0).numpy())
            m = maps[col]
            ax.imshow(torch.relu(m).numpy(), cmap="jet", alpha=0.5)
            for b in batch["boxes"][col].tolist():
                ax.add_patch(plt.Rectangle((b[1], b[2]), b[3] - b[1], b[4] - b[2], fill=False, color="w", lw=0.8))
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig
