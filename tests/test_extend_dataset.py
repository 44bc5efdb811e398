"""Adding a dataset is one file: a plug-in module registers a reader of a small on-disk format of its
own ("toyshapes": PNG images and one JSON index per split, written here) in `DATASETS`; then
`load_dataset` reads it, a variant of it (a preset of its options) resolves to it, a guided
model-guidance run trains on it, and ext.boxes_vs_masks (which draws one row per dataset present in
the results) draws it. Nothing under lib/ changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from extension_helpers import lib_fingerprint, load_plugin, train_pair

PLUGIN = '''
"""toyshapes: <root>/<split>.json lists {"file", "label", "box"}; images are PNGs beside it."""
import json
from pathlib import Path

import numpy as np

from rightfocus.data import DATASETS, DatasetSpec
from rightfocus.data.base import BoxDataset, Record

CALLS = []  # (split, options) of every load, so the test sees the reader being used


def load_toyshapes(root, split, shrink=0, **options):
    CALLS.append((split, shrink))
    index = Path(root) / f"{split}.json"
    records = []
    for item in json.loads(index.read_text()):
        x0, y0, x1, y1 = item["box"]
        box = np.array([[item["label"], x0 + shrink, y0 + shrink, x1 - shrink, y1 - shrink]], np.float32)
        records.append(Record(Path(root) / item["file"], [item["label"]], box))
    return BoxDataset(records, ["red", "blue"], name="toyshapes", split=split, source=str(index), **options)


DATASETS.register("toyshapes", DatasetSpec("toyshapes", load_toyshapes, aliases=("toys",)))
DATASETS.register("toyshapes_shrunk", DatasetSpec("toyshapes_shrunk", loader="toyshapes", options={"shrink": 1}))
'''
SIZE = 16


def write_toyshapes(root: Path, n: int = 8, seed: int = 0) -> Path:
    """A red or blue square (class 0 / 1) on dark noise per image; its box in the split's index."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for split in ("train", "val", "test"):
        items = []
        for i in range(n):
            label = i % 2
            img = (rng.random((SIZE, SIZE, 3)) * 60).astype(np.uint8)
            x0, y0 = int(rng.integers(0, SIZE - 8)), int(rng.integers(0, SIZE - 8))
            img[y0:y0 + 8, x0:x0 + 8] = (220, 30, 30) if label == 0 else (30, 30, 220)
            name = f"{split}_{i:03d}.png"
            Image.fromarray(img).save(root / name)
            items.append({"file": name, "label": label, "box": [x0, y0, x0 + 8, y0 + 8]})
        (root / f"{split}.json").write_text(json.dumps(items))
    return root


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    import sys

    from rightfocus.data import DATASETS

    before = lib_fingerprint()
    load_plugin(tmp_path_factory.mktemp("plugin"), "toy_dataset_plugin", PLUGIN)
    yield sys.modules["toy_dataset_plugin"]
    DATASETS.unregister("toyshapes_shrunk")
    DATASETS.unregister("toyshapes")
    sys.modules.pop("toy_dataset_plugin", None)
    assert lib_fingerprint() == before, "adding a dataset changed a file under lib/"


def test_load_dataset_reads_it_by_name_alias_and_variant(plugin, tmp_path):
    from rightfocus.data import load_dataset

    root = write_toyshapes(tmp_path / "toys")
    index = json.loads((root / "train.json").read_text())
    ds = load_dataset("toys", root, "train", size=SIZE)
    assert plugin.CALLS[-1] == ("train", 0) and len(ds) == len(index)
    sample = ds[1]
    assert sample["labels"].tolist() == [0.0, 1.0]
    assert sample["boxes"][0].tolist() == [1, *index[1]["box"]]
    shrunk = load_dataset("toyshapes_shrunk", root, "train", size=SIZE)[1]
    assert plugin.CALLS[-1] == ("train", 1)
    assert shrunk["boxes"][0, 1:].tolist() == [v + d for v, d in zip(index[1]["box"], (1, 1, -1, -1))]


def test_a_guided_run_trains_on_it_and_ext_boxes_vs_masks_draws_it(plugin, tmp_path):
    from rightfocus.runs import store
    from rightfocus.runs.config import RunConfig
    from rightfocus.figures import RenderContext, render_all
    from rightfocus.figures.ext_guidance import boxes_vs_masks

    root = write_toyshapes(tmp_path / "toys")
    base = RunConfig(dataset="toyshapes", data_root=str(root), model_kind="vanilla", arch="tiny", epochs=1,
                     lr=1e-3, batch_size=4, image_size=SIZE, seed=0)
    results = tmp_path / "results"
    del plugin.CALLS[:]
    run_ids = train_pair(base, results)
    assert {split for split, _ in plugin.CALLS} == {"train", "val", "test"}
    rows = store.load_metrics(results, "demo")
    assert set(rows["dataset"]) == {"toyshapes"} and rows["epg"].notna().any()
    store.write_group(results, "demo", "ext-masks", run_ids)

    fig = boxes_vs_masks(RenderContext("demo", results, "ext.boxes_vs_masks"))
    titles = [ax.get_title() for ax in fig.axes]
    assert "toyshapes: epg vs F1" in titles, titles
    out = tmp_path / "out"
    render_all("demo", results, only=["ext.boxes_vs_masks"], out=out)
    assert json.loads((out / "render_report.json").read_text())["ext.boxes_vs_masks"] == "rendered"


def test_the_documented_example_runs(tmp_path):
    """docs/extending.md "Add a dataset": the block registers a format and a variant and loads both."""
    from readme_blocks import run_block, runnable_blocks

    (block,) = runnable_blocks("tests/test_extend_dataset.py")
    out = run_block(block, tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "tensor([[ 1.,  2.,  2., 10., 10.]]) torch.Size([3, 8, 8])" in out.stdout, out.stdout
