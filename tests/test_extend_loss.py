"""Adding a localisation loss is one file: a toy module written to a temporary folder registers an
"outside mass" loss; without any change under lib/, a guided model-guidance run trains with it, its
label reaches the plots, and the ``ext.metric_agreement`` table (which reads the losses from the
results) ranks it. The registry keeps the built-in losses' names and order."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from rightfocus.runs.config import FROM_INIT, RunConfig
from rightfocus.losses import LOCALISATION_LOSSES, LOSSES, get_loss, localisation_loss

sys.path.insert(0, str(Path(__file__).parent))
from extension_helpers import import_toy, lib_fingerprint  # noqa: E402

BUILT_IN = ("energy", "l1", "ppce", "rrr", "distill")

TOY = '''
"""Outside mass: the share of the positive attribution outside the mask (a toy loss for the tests)."""
from rightfocus.losses import register_loss
from rightfocus.losses.base import prepare, upsample

CALLS = []


@register_loss("toy_outside", "Outside mass", soft_mask="pixels weighted by 1 - m")
def outside_mass(attributions, masks):
    a, m = prepare(attributions, masks)
    CALLS.append(bool(a.requires_grad))
    positive = upsample(a, m).relu().flatten(1)
    return ((1 - m.flatten(1)) * positive).sum(1) / positive.sum(1).clamp_min(1e-7)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    yield import_toy(tmp_path, "toy_loss", TOY, monkeypatch)
    LOCALISATION_LOSSES.unregister("toy_outside")
    sys.modules.pop("toy_loss", None)


def test_the_registry_keeps_the_built_in_losses_in_order():
    from rightfocus.experiments import grids
    from rightfocus.runs import config
    from rightfocus.figures import mg_common, style

    assert tuple(LOSSES) == BUILT_IN == tuple(config.LOSSES)
    assert set(grids.LOSS_ORDER) <= set(LOSSES) and set(mg_common.LOSSES) <= set(LOSSES)
    assert [style.loss_label(n) for n in mg_common.LOSSES] == ["Energy", "L1", "PPCE", "RRR*"]
    assert all(get_loss(n).soft_mask for n in LOSSES)  # every loss says what a soft mask means for it


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_registered_loss_is_per_image_and_reduces(name):
    torch.manual_seed(0)
    a, m = torch.randn(3, 4, 4, dtype=torch.float64), (torch.rand(3, 8, 8) > 0.5).double()
    per_image = LOSSES[name](a, m)
    assert per_image.shape == (3,) and torch.isfinite(per_image).all()
    torch.testing.assert_close(localisation_loss(name, a, m), per_image.sum())
    torch.testing.assert_close(localisation_loss(name, a, m, "mean"), per_image.mean())


def test_a_loss_in_a_file_trains_and_renders_without_changes_to_lib(toy, tmp_path, monkeypatch):
    from rightfocus.data.synthetic import make
    from rightfocus.runs import config, store
    from rightfocus.figures import style
    from rightfocus.training.runner import train_run

    before = lib_fingerprint()
    assert "toy_outside" in LOSSES and list(config.LOSSES)[-1] == "toy_outside"
    assert style.loss_label("toy_outside") == "Outside mass" and style.loss_style("toy_outside")["marker"]
    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=6, n_val=4, n_test=4, min_size=24, max_size=28)
    cfg = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=1, lr=1e-3,
                    batch_size=6, image_size=16, seed=0, method="ixg", tap="input", loss="toy_outside",
                    lam=1.0, init_from=FROM_INIT)
    rdir = train_run(cfg, tmp_path / "results", progress=False)
    assert store.is_done(rdir) and store.load_config(rdir).loss == "toy_outside"
    assert True in toy.CALLS  # the training step: the loss of maps in the graph
    rows = [json.loads(line) for line in (rdir / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" and r["epoch"] == 1 for r in rows)

    # (b) ext.metric_agreement reads the losses from the results: the toy loss is ranked there
    import fake_results

    for table, value in ((fake_results.GAIN_EPG, 0.5), (fake_results.GAIN_IOU, 0.01),
                         (fake_results.COST_F1, 0.01), (fake_results.ONOBJ, 0.0)):
        monkeypatch.setitem(table, "toy_outside", value)
    from rightfocus.figures import render_all

    results = tmp_path / "fake"
    fake_results.write_fake_results(results, groups=["voc-main"],
                                    losses=("energy", "l1", "ppce", "rrr", "toy_outside"))
    out = tmp_path / "out"
    assert render_all("demo", results, only=["ext.metric_agreement"], out=out).placeholders == {}
    table = pd.read_csv(out / "ext.metric_agreement.csv")
    epg = table[(table["ranking"].str.startswith("MG losses")) & (table["metric"] == "epg")].iloc[0]
    assert epg["best_under_metric"].startswith("toy_outside")  # the largest EPG gain of the fake tree
    assert lib_fingerprint() == before
