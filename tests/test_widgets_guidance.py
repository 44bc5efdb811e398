"""The inspector shows the guidance signal a run was trained with beside its attribution: the box mask
(drawn here with numpy from the sample's boxes), the segmentation (the PNG's palette index read with
PIL) and a teacher's map (the teacher's own attribution, normalised), and nothing for baselines."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from rightfocus.widgets.state import InspectorState
from tiny_results import CLASSES, VOC_IDS, _mg_config, _write_mg_run, write_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from rightfocus.models import build_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("guidance")
    data, results = root / "voc", root / "results"
    ids = write_tree(results, data)
    k = len(CLASSES)
    base = _mg_config(data)
    guided = _mg_config(data, method="ixg", tap="input", loss="energy", lam=1.0, init_from=base.run_id)
    torch.manual_seed(1)
    model = build_model("vanilla", "tiny", k).eval()
    ids["seg"] = _write_mg_run(results, replace(guided, mask_source="segmentation"), model, k)
    ids["teacher_of"] = ids["guided"]
    ids["student"] = _write_mg_run(results, replace(guided, loss="distill", mask_source=f"teacher:{ids['guided']}"),
                                   model, k)
    return {"data": data, "results": results, **ids}


def _state(tree, *runs):
    s = InspectorState(tree["results"], "demo", [tree[r] for r in runs], split="test")
    return s.select(index=0, show_guidance=True)


def test_box_and_segmentation_signals_equal_independently_drawn_masks(tree):
    s = _state(tree, "guided", "seg")
    sample = s.sample(0)
    target = s.resolve_target(0)
    name, box = s.guidance_signal(tree["guided"])
    want = np.zeros(box.shape, bool)
    for c, x0, y0, x1, y1 in sample["boxes"].tolist():
        if int(c) == target:
            want[int(y0):int(y1), int(x0):int(x1)] = True
    assert name == "boxes"
    np.testing.assert_array_equal(box.astype(bool), want)
    name, seg = s.guidance_signal(tree["seg"])
    stem = s.dataset().records[0].path.stem
    with Image.open(tree["data"] / "VOCdevkit/VOC2007/SegmentationClass" / f"{stem}.png") as im:
        raw = np.asarray(im)
    assert name == "segmentation"
    np.testing.assert_array_equal(seg.astype(bool), raw == VOC_IDS[CLASSES[target]])
    assert not np.array_equal(seg, box)  # the tree's objects are smaller than their boxes


def test_teacher_signal_is_the_teachers_normalised_map_and_panels_show_it(tree):
    from rightfocus.attributions import attribute
    from rightfocus.data.encoding import encode

    s = _state(tree, "baseline", "student")
    assert s.guidance_signal(tree["baseline"]) is None
    name, signal = s.guidance_signal(tree["student"])
    assert name.startswith("teacher:")
    teacher = s.model(tree["teacher_of"])
    x = encode(s.sample(0)["image"][None], teacher.input_encoding)
    m = attribute(teacher, x, torch.tensor([s.resolve_target(0)]), "ixg")[0].detach().clamp_min(0)
    np.testing.assert_allclose(signal, (m / m.max()).numpy(), rtol=1e-5, atol=1e-6)
    view = s.view()
    student = next(p for p in view.panels if p.run_id == tree["student"])
    np.testing.assert_array_equal(student.masks["trained on teacher"], signal)
    assert next(p for p in view.panels if p.run_id == tree["baseline"]).masks == {}
    assert s.png()[:4] == b"\x89PNG"
    s.select(show_guidance=False)
    assert all("trained on teacher" not in p.masks for p in s.view().panels)
