"""The explanation-metric ids: registered as listed, the agreement table follows the results (the
fake tree's construction: Energy gains most EPG, L1 most IoU; `flip` swaps Energy and PPCE), and
the sanity figure renders from checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from fake_results import write_checkpoints, write_fake_results  # noqa: E402

from rightfocus.figures import FIGURES, RenderContext, render_all  # noqa: E402
from rightfocus.figures.ext_metrics import SANITY_IMAGES, agreement_frame  # noqa: E402
from rightfocus.figures.inventory import EXT_METRIC_IDS  # noqa: E402


def test_every_ext_metric_id_is_registered_with_its_kind_and_groups():
    for fig_id, (kind, groups) in EXT_METRIC_IDS.items():
        assert FIGURES[fig_id].kind == kind and FIGURES[fig_id].groups == groups, fig_id


@pytest.mark.parametrize("flip", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_agreement_table_follows_the_results(tmp_path, flip):
    results = tmp_path / "results"
    write_fake_results(results, groups=["voc-main"], flip=flip)
    frame, means = agreement_frame(RenderContext("demo", results))
    losses = frame[frame["ranking"].str.startswith("MG losses")].set_index("metric")
    cells = int(losses.loc["epg", "cells"])
    assert cells > 0 and losses.loc["epg", "same_best_as_epg"] == f"{cells}/{cells}"
    best_epg = "ppce" if flip else "energy"
    assert losses.loc["epg", "best_under_metric"] == f"{best_epg} ({cells}/{cells})"
    assert losses.loc["iou", "best_under_metric"] == f"l1 ({cells}/{cells})"  # L1 gains most IoU
    assert losses.loc["iou", "same_best_as_epg"] == f"0/{cells}"
    assert losses.loc["epg", "spearman_vs_epg"] == pytest.approx(1.0)
    out = tmp_path / "out"
    paths = render_all("demo", results, only=["ext.metric_agreement*"], out=out)
    assert paths.placeholders == {}
    assert (out / "ext.metric_agreement.csv").exists() and (out / "ext.metric_agreement_fig.png").exists()


def test_sanity_figure_renders_from_checkpoints(tmp_path):
    from rightfocus.data import load_dataset
    from rightfocus.data.synthetic import make

    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=4, n_val=2, n_test=10, min_size=36, max_size=40)
    k = len(load_dataset("voc2007", voc, "test", size=32)[0]["labels"])
    results = tmp_path / "results"
    write_fake_results(results, groups=["voc-main"], data_roots={"voc2007": str(voc)}, image_size=32)
    assert write_checkpoints(results, "demo", "voc-main", num_classes=k) > 0
    from rightfocus.figures.ext_metrics import sanity_curves

    curves = sanity_curves(RenderContext("demo", results))
    for kind, per_method in curves.items():
        for name, ys in per_method.items():
            # the maps against themselves: 1, or 0 for a constant map (no rank order)
            assert 0 <= ys[0] <= 1 and (ys[0] * SANITY_IMAGES) == pytest.approx(round(ys[0] * SANITY_IMAGES)), (kind, name)
            assert len(ys) > 2
    assert any(ys[0] == pytest.approx(1.0) for per in curves.values() for ys in per.values())
    import re

    for per in curves.values():
        for name in per:  # deletion / insertion AUCs of probabilities: in [0, 1]
            d, i = map(float, re.search(r"\(del ([\d.]+), ins ([\d.]+)\)", name).groups())
            assert 0 <= d <= 1 and 0 <= i <= 1, name
    out = tmp_path / "out"
    assert render_all("demo", results, only=["ext.sanity"], out=out).placeholders == {}
    assert (out / "ext.sanity.png").stat().st_size > 5000
