"""The explanation-metric suite in the evaluators: the streaming accumulator against the registry on
the concatenated batches, Attribution Localisation against EPG on the same evaluated pairs (the same
ratio up to the denominator guard), the suite's columns in the metric rows, and the cost estimate."""

from __future__ import annotations

import pytest
import torch

from rightfocus.metrics import MAP_METRICS, PROFILE_SUITES, MetricAccumulator, score
from rightfocus.metrics.registry import cost_estimate, functions, suite_for


def _batches(seed: int = 0, n: int = 3):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        maps = torch.randn(5, 9, 11, generator=g)
        masks = (torch.rand(5, 9, 11, generator=g) < 0.4).float()
        yield maps, masks


def test_accumulator_suite_is_the_mean_of_the_registry_scores_over_all_pairs():
    names = tuple(MAP_METRICS)
    acc = MetricAccumulator(suite=functions(names))
    maps, masks = [], []
    for m, k in _batches():
        acc.add_localisation(m, k)
        maps.append(m)
        masks.append(k)
    out = acc.compute()
    ref = score(names, torch.cat(maps), torch.cat(masks))
    for name in names:
        assert out[name] == pytest.approx(float(ref[name].double().mean()), abs=1e-6), name
    assert "auc" not in MetricAccumulator().compute()  # no suite: no columns


def test_every_profile_suite_is_registered_and_the_cost_estimate_scales():
    for profile, names in PROFILE_SUITES.items():
        assert set(names) <= set(MAP_METRICS), profile
    assert suite_for("no such profile") == ()
    one = cost_estimate(("auc",), pairs=1000, pixels=224 * 224)
    assert one == pytest.approx(MAP_METRICS["auc"].cpu_s_per_1k_224)
    assert cost_estimate(("auc",), pairs=2000, pixels=112 * 112) == pytest.approx(one / 2)
    with pytest.raises(KeyError, match="registered"):
        score(["no_such_metric"], torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    from rightfocus.data.synthetic import make

    return make("voc2007", tmp_path_factory.mktemp("voc"), seed=0, n_train=4, n_val=2, n_test=8,
                min_size=36, max_size=40)


def test_mg_evaluate_writes_the_suite_and_attribution_localisation_equals_epg(voc):
    from rightfocus.data import collate, load_dataset
    from rightfocus.models import build_model
    from rightfocus.training.mg_task import evaluate, metrics_row

    torch.manual_seed(0)
    model = build_model("vanilla", "tiny", 20)
    loader = torch.utils.data.DataLoader(load_dataset("voc2007", voc, "test", size=32), batch_size=4,
                                         collate_fn=collate)
    suite = ("attribution_localisation", "pointing_game", "auc")
    res = evaluate(model, loader, [("final", "ixg")], suite=suite)[("final", "ixg")]
    assert res["pairs"] > 0
    # equal on every pair but EPG's degenerate ones (positive sum < 1e-7), where the two may differ by <= 1
    slack = res["epg_degenerate"] / res["pairs"]
    assert abs(res["attribution_localisation"] - res["epg"]) <= slack + 1e-6
    row = metrics_row(res, epoch=1, split="test", tap="final", method="ixg")
    for name in suite:
        assert 0.0 <= row[name] <= 1.0, name


def test_check_states_the_suite_and_its_cost():
    from rightfocus.check import metric_cost_line
    from rightfocus.experiments.grids import group_configs

    configs = group_configs("voc-main", "paper", "data")
    line = metric_cost_line("paper", configs)
    for name in PROFILE_SUITES["paper"]:
        assert name in line
    expected = cost_estimate(PROFILE_SUITES["paper"], pairs=1000, pixels=224 * 224)
    assert f"~{expected:.2f} CPU-s per 1,000" in line and "224 px" in line
