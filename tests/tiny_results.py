"""A tiny results tree for the inspector and the study (tests/test_widgets.py, tests/test_browser.py):
a VOC-format dataset of 32 px images written here, and finished MG / AIM runs in the store's format
written with the store's and the training loops' own writers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE = 32
CLASSES = ("cat", "dog")  # VOC names; the loader keeps the ones that occur, in VOC order (cat=0, dog=1)
VOC_IDS = {"cat": 8, "dog": 12}


# ---- a tiny VOC-format dataset ---------------------------------------------------------------------
def _write_voc(root: Path, n_per_split: int = 6, seed: int = 0) -> Path:
    """VOCdevkit/VOC2007 with 32 px images: one or two coloured squares (cat red, dog blue) on noise,
    their boxes in the XML and their pixels in SegmentationClass (VOC ids, inner 1 px ring void)."""
    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages", "SegmentationClass"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    counter = 0
    for split in ("train", "val", "test"):
        ids = []
        for j in range(n_per_split):
            counter += 1
            name = f"{counter:06d}"
            img = (rng.random((SIZE, SIZE, 3)) * 80).astype(np.uint8)
            seg = np.zeros((SIZE, SIZE), np.uint8)
            objs = [CLASSES[j % 2]] + ([CLASSES[1 - j % 2]] if j % 3 == 0 else [])
            ann = ET.Element("annotation")
            sz = ET.SubElement(ann, "size")
            ET.SubElement(sz, "width").text, ET.SubElement(sz, "height").text = str(SIZE), str(SIZE)
            ET.SubElement(sz, "depth").text = "3"
            for k, cls in enumerate(objs):
                x0, y0 = (2 + 16 * k, 3 + 12 * k)
                w = 10
                colour = (220, 30, 30) if cls == "cat" else (30, 30, 220)
                img[y0:y0 + w, x0:x0 + w] = colour
                seg[y0 + 2:y0 + w - 2, x0 + 2:x0 + w - 2] = VOC_IDS[cls]  # object smaller than its box
                o = ET.SubElement(ann, "object")
                ET.SubElement(o, "name").text = cls
                ET.SubElement(o, "difficult").text = "0"
                bb = ET.SubElement(o, "bndbox")
                for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (x0 + 1, y0 + 1, x0 + w, y0 + w)):
                    ET.SubElement(bb, tag).text = str(v)
            ET.ElementTree(ann).write(voc / "Annotations" / f"{name}.xml")
            Image.fromarray(img).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
            Image.fromarray(seg, mode="L").save(voc / "SegmentationClass" / f"{name}.png")
            ids.append(name)
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def _mg_config(data_root: Path, **fields):
    from rightfocus.runs.config import RunConfig

    base = dict(paper="mg", dataset="voc2007", data_root=str(data_root), model_kind="vanilla", arch="tiny",
                epochs=1, lr=1e-3, batch_size=6, image_size=SIZE, seed=0, profile="demo")
    base.update(fields)
    return RunConfig(**base)


def _write_aim_run(results: Path, data_root: Path, num_classes: int, epochs: int = 2) -> str:
    """An AIM run on the same data, in the store's format, written with the AIM loop's own pieces:
    its model builder, checkpoint writer and per-epoch mask writer (masks/epoch_<e>.pt)."""
    from rightfocus.data import load_dataset
    from rightfocus.runs import store
    from rightfocus.runs.config import RunConfig
    from rightfocus.training import aim_loop
    from rightfocus.training.checkpoint import save_weights

    config = RunConfig(paper="aim", dataset="voc2007", data_root=str(data_root), model_kind="aim", arch="tiny",
                       epochs=epochs, image_size=SIZE, seed=0, profile="demo", lam=6.0,
                       extra={"pretrained": False, "stage": 1, "drop_path": None})
    rdir = store.run_dir(results, "demo", config.run_id)
    store.write_config(rdir, config)
    torch.manual_seed(0)
    model = aim_loop.build_run_model(config, num_classes, pretrained=False).eval()
    test = load_dataset("voc2007", data_root, "test", size=SIZE)
    for epoch in range(1, epochs + 1):
        with torch.no_grad():  # a different model per epoch, so the stored masks evolve
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        save_weights(rdir / "ckpt" / f"epoch_{epoch}.pt", model, num_classes, epoch, aim_loop.model_options(config))
        aim_loop._store_masks(model, test, [0, 1, 2], rdir, epoch)
    store.write_metrics(rdir, [{"epoch": epochs, "split": "test", "tap": "aim", "method": "gradcam", "epg": 0.5,
                                "iou_threshold": 0.5, "checkpoint": f"epoch_{epochs}.pt"}])
    store.write_done(rdir, {"selected_epoch": epochs, "front_epochs": [epochs]})
    return config.run_id


def _write_mg_run(results: Path, config, model, num_classes: int) -> str:
    """A finished MG run in the store's format, written with the store's and the loop's own writers."""
    from rightfocus.runs import store
    from rightfocus.training.checkpoint import save_weights

    rdir = store.run_dir(results, "demo", config.run_id)
    store.write_config(rdir, config)
    save_weights(rdir / "ckpt" / "epoch_1.pt", model, num_classes, 1)
    store.write_metrics(rdir, [{"epoch": 1, "split": "test", "tap": config.tap or "input",
                                "method": config.method or "ixg", "epg": 0.5, "iou_threshold": 0.5,
                                "checkpoint": "epoch_1.pt"}])
    store.write_done(rdir, {"selected_epoch": 1, "front_epochs": [1]})
    return config.run_id


def write_tree(results: Path, data: Path) -> dict[str, str]:
    """Under `results` (profile demo): a vanilla baseline, an Energy/IxG-guided run and an AIM run on the
    VOC-format dataset at `data` (written here). The checkpoints are untrained (seeded, the guided one
    perturbed) to keep the suites fast. Returns the three run ids."""
    from rightfocus.models import build_model

    _write_voc(data)
    k = len(CLASSES)
    base = _mg_config(data)
    guided = _mg_config(data, method="ixg", tap="input", loss="energy", lam=1.0, init_from=base.run_id)
    torch.manual_seed(0)
    model = build_model("vanilla", "tiny", k).eval()
    _write_mg_run(results, base, model, k)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    _write_mg_run(results, guided, model, k)
    aim = _write_aim_run(results, data, num_classes=k)
    return {"baseline": base.run_id, "guided": guided.run_id, "aim": aim}
