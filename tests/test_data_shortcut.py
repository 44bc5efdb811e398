"""The synthetic Waterbirds-100 shortcut is real: an unguided probe CNN takes the background cue (low
worst-group accuracy), yet the bird alone is learnable. Slow (trains two tiny CNNs on CPU)."""

from __future__ import annotations

import pytest

from rightfocus.data.synthetic import make
from rightfocus.data.synthetic.shortcut import shortcut_check


@pytest.mark.slow
def test_unguided_probe_takes_the_background_shortcut(tmp_path):
    root = make("waterbirds", tmp_path / "wb", seed=0)
    res = shortcut_check(root, size=32, epochs=30, seed=0)
    full, bird = res["full_image"], res["bird_only"]
    assert full["train_acc"] > 0.95
    # minority groups (landbird on water, waterbird on land) are mostly misclassified
    assert full["worst_group_acc"] < 0.35
    assert full["group_acc"][0] > 0.8 and full["group_acc"][3] > 0.8
    # the object cue alone is learnable: every group well above chance without the background
    assert bird["worst_group_acc"] > 0.75
