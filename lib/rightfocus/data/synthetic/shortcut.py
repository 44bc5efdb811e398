"""Check that the synthetic Waterbirds shortcut works as intended: an unguided tiny CNN trained on the
100 % split takes the background cue (low worst-group accuracy on test), while the bird itself is
learnable (the same CNN trained on bird-only images, background replaced by grey, classifies the test
birds well). Run: ``python -m rightfocus.data.synthetic.shortcut --data DIR`` (prints JSON).

Measured (defaults: seed 0, 160 train images, 32 px, 30 epochs): full images -> train 1.00, test
group accuracies [1.00, 0.00, 0.00, 1.00] (worst 0.00: the probe uses only the background); bird only
-> test groups [1.00, 1.00, 1.00, 1.00]. `tests/test_data_shortcut.py` (slow) asserts this pattern.

The CNN is a throwaway sanity probe defined here, not one of the project's models (data knows no model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from rightfocus.data.collate import collate


def _probe(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, num_classes))


def _tensors(ds, object_only: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b = collate([ds[i] for i in range(len(ds))])
    x = b["image"]
    if object_only:
        bird = ((b["seg"] > 0) & (b["seg"] != 255)).unsqueeze(1)
        x = torch.where(bird, x, torch.full_like(x, 0.5))
    return x, b["labels"].argmax(1), b["group"]


def shortcut_check(data: str | Path, size: int = 32, epochs: int = 40, seed: int = 0) -> dict[str, object]:
    """Accuracies per test group for a probe trained on (a) waterbirds-100 train images and (b) the
    same images with the background removed. Returns a JSON-able dict."""
    from rightfocus.data import load_dataset

    out: dict[str, object] = {"size": size, "epochs": epochs, "seed": seed}
    train = load_dataset("waterbirds", data, "train", confounder=100, size=size)
    test = load_dataset("waterbirds", data, "test", confounder=100, size=size)
    for name, object_only in (("full_image", False), ("bird_only", True)):
        torch.manual_seed(seed)
        xtr, ytr, _ = _tensors(train, object_only)
        xte, yte, gte = _tensors(test, object_only)
        model = _probe(2)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(epochs):
            perm = torch.randperm(len(xtr))
            for k in range(0, len(xtr), 32):
                idx = perm[k:k + 32]
                loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            pred = model(xte).argmax(1)
        groups = [float((pred[gte == g] == yte[gte == g]).float().mean()) for g in range(4)]
        out[name] = {"train_acc": float((model(xtr).argmax(1) == ytr).float().mean()),
                     "test_acc": float((pred == yte).float().mean()), "group_acc": groups,
                     "worst_group_acc": min(groups)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True, help="a folder written by `rightfocus make-data waterbirds`")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(json.dumps(shortcut_check(a.data, a.size, a.epochs, a.seed), indent=1))


if __name__ == "__main__":
    main()
