"""The explanation-metric suite against Quantus 0.6.0 (and scipy / scikit-learn), element by element
on the same random and edge-case maps. Where our convention differs on purpose (empty masks, constant
maps, ties at the k-th value), the test asserts the documented difference instead."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

quantus = pytest.importorskip("quantus")

from rightfocus.metrics import (  # noqa: E402
    MAP_METRICS,
    attribution_localisation,
    auc,
    epg,
    focus,
    pointing_game,
    quadrant_masks,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    score,
    top_k_intersection,
)
from rightfocus.metrics.faithfulness import curve_auc, perturbation_curve  # noqa: E402
from rightfocus.metrics.sanity import cascading_randomisation, spearman  # noqa: E402

QKW = dict(normalise=False, abs=False, disable_warnings=True)
H, W = 12, 10


def _q(metric, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Quantus scores of maps / masks [N, H, W] (one channel), as float (NaN kept)."""
    a, s = maps[:, None].astype(np.float64), masks[:, None].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(model=None, x_batch=np.zeros_like(a), y_batch=np.zeros(len(a), int), a_batch=a,
                     s_batch=s, channel_first=True)
    return np.asarray(out, dtype=np.float64)


def _random(seed: int, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Tie-free Gaussian maps and masks: random pixels, boxes, a 1x1 box, a 2x2 box, a full mask."""
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(n, H, W))
    masks = np.zeros((max(n, 5), H, W))
    masks[0] = rng.random((H, W)) < 0.3
    masks[1, 3:9, 2:7] = 1
    masks[2, 5, 4] = 1  # tiny box: one pixel
    masks[3, 0:2, 8:10] = 1  # tiny box in a corner
    masks[4] = 1  # full image
    masks = masks[:n]
    for i in range(5, n):
        y0, x0 = rng.integers(0, H - 2), rng.integers(0, W - 2)
        masks[i, y0:y0 + rng.integers(2, H - y0 + 1), x0:x0 + rng.integers(2, W - x0 + 1)] = 1
    return maps, masks


def _t(a: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(a, dtype=dtype)


def _close(ours: torch.Tensor, theirs: np.ndarray, atol: float = 1e-10) -> None:
    np.testing.assert_allclose(ours.double().cpu().numpy(), theirs, rtol=1e-7 if atol < 1e-6 else 1e-4, atol=atol)


SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_pointing_game_matches_quantus(seed):
    maps, masks = _random(seed)
    theirs = _q(quantus.PointingGame(**QKW), maps, masks)
    _close(pointing_game(_t(maps), _t(masks)), theirs)
    # `weighted` (a hit scores 1 - mask area share): Quantus 0.6.0 raises on it (a 2-d value assigned
    # through a boolean index), so the oracle is its unweighted hit times the area share from numpy
    with pytest.raises(TypeError):
        _q(quantus.PointingGame(weighted=True, **QKW), maps, masks)
    area = masks.reshape(len(masks), -1).mean(1)
    _close(pointing_game(_t(maps), _t(masks), weighted=True), theirs * (1 - area))


def test_pointing_game_constant_map_and_empty_mask_convention():
    maps, masks = _random(0, n=4)
    maps[0] = 0.0  # constant map, non-empty mask: Quantus counts every pixel as the maximum -> hit
    masks[1] = 0  # empty mask: Quantus 0.6.0 assigns NaN into a bool array -> True
    theirs = _q(quantus.PointingGame(**QKW), maps, masks)
    ours = pointing_game(_t(maps), _t(masks))
    assert theirs[0] == 1 and ours[0] == 0
    assert theirs[1] == 1 and ours[1] == 0
    _close(ours[2:], theirs[2:])


def test_pointing_game_ties_count_any_maximum():
    maps = np.zeros((2, H, W))
    maps[:, 0, 0] = maps[:, 5, 5] = 1.0  # two maxima
    masks = np.zeros((2, H, W))
    masks[0, 5, 5] = 1  # the second maximum is inside
    masks[1, 9, 9] = 1  # neither is inside
    _close(pointing_game(_t(maps), _t(masks)), _q(quantus.PointingGame(**QKW), maps, masks))


@pytest.mark.parametrize("tolerance", [1.0, 2.5, 15.0])
def test_pointing_game_tolerance_against_distance_transform(tolerance):
    from scipy.ndimage import distance_transform_edt

    maps, masks = _random(3, n=10)
    masks[4] = 0
    masks[4, 2:4, 2:4] = 1  # no full mask here: every map has a pixel outside
    ours = pointing_game(_t(maps), _t(masks), tolerance=tolerance)
    for i in range(len(maps)):
        dist = distance_transform_edt(masks[i] == 0)  # distance of every pixel to the mask
        y, x = np.unravel_index(maps[i].argmax(), maps[i].shape)
        assert ours[i] == float(dist[y, x] <= tolerance), i


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("positive", [True, False])
def test_attribution_localisation_matches_quantus(seed, positive):
    maps, masks = _random(seed)
    theirs = _q(quantus.AttributionLocalisation(positive_attributions=positive, **QKW), maps, masks)
    ours = attribution_localisation(_t(maps), _t(masks), positive_only=positive)
    finite = np.isfinite(theirs)
    _close(ours[finite], theirs[finite])
    assert (ours[~finite] == 0).all()  # Quantus NaN (ratio above 1) -> 0
    if positive:
        assert finite.all()
        big = epg(_t(maps), _t(masks))  # EPG is the same ratio without the 1e-9 in the denominator
        _close(big, theirs, atol=1e-7)


def test_attribution_localisation_weighted_is_the_ratio_times_the_area_share():
    maps, masks = _random(2)
    theirs = _q(quantus.AttributionLocalisation(positive_attributions=True, **QKW), maps, masks)
    area = masks.reshape(len(masks), -1).mean(1)
    _close(attribution_localisation(_t(maps), _t(masks), weighted=True), theirs * area)


def test_attribution_localisation_all_zero_map_and_empty_mask():
    maps, masks = _random(1, n=4)
    maps[0] = 0.0
    masks[1] = 0
    theirs = _q(quantus.AttributionLocalisation(positive_attributions=True, **QKW), maps, masks)
    ours = attribution_localisation(_t(maps), _t(masks))
    assert theirs[0] == 0 and ours[0] == 0
    assert np.isnan(theirs[1]) and ours[1] == 0
    _close(ours[2:], theirs[2:])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 7, 60, 119])
@pytest.mark.parametrize("concept_influence", [False, True])
def test_top_k_intersection_matches_quantus(seed, k, concept_influence):
    maps, masks = _random(seed)
    theirs = _q(quantus.TopKIntersection(k=k, concept_influence=concept_influence, **QKW), maps, masks)
    _close(top_k_intersection(_t(maps), _t(masks), k=k, concept_influence=concept_influence), theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_relevance_mass_accuracy_matches_quantus(seed):
    maps, masks = _random(seed)
    for m in (maps, np.maximum(maps, 0)):
        _close(relevance_mass_accuracy(_t(m), _t(masks)), _q(quantus.RelevanceMassAccuracy(**QKW), m, masks))


def test_registry_relevance_mass_accuracy_is_quantus_on_the_positive_part():
    maps, masks = _random(0)
    ours = MAP_METRICS["relevance_mass_accuracy"].fn(_t(maps), _t(masks))
    _close(ours, _q(quantus.RelevanceMassAccuracy(**QKW), np.maximum(maps, 0), masks))


def test_relevance_mass_accuracy_zero_total_and_empty_mask():
    maps, masks = _random(2, n=4)
    maps[0] = 0.0
    masks[1] = 0
    theirs = _q(quantus.RelevanceMassAccuracy(**QKW), maps, masks)
    ours = relevance_mass_accuracy(_t(maps), _t(masks))
    assert np.isnan(theirs[:2]).all() and (ours[:2] == 0).all()
    _close(ours[2:], theirs[2:])


@pytest.mark.parametrize("seed", SEEDS)
def test_relevance_rank_accuracy_matches_quantus(seed):
    maps, masks = _random(seed)
    _close(relevance_rank_accuracy(_t(maps), _t(masks)), _q(quantus.RelevanceRankAccuracy(**QKW), maps, masks))


def _tie_bounds(maps: np.ndarray, masks: np.ndarray, make) -> tuple[np.ndarray, np.ndarray]:
    """Quantus's score when ties break towards the mask and when they break away from it."""
    bias = 1e-9 * masks
    return _q(make(), maps + bias, masks), _q(make(), maps - bias, masks)


@pytest.mark.parametrize("name", ["top_k", "rank"])
def test_ties_count_as_the_expectation_over_random_orders(name):
    rng = np.random.default_rng(5)
    maps, masks = _random(5)
    maps = np.round(maps)  # few levels: many ties, also at the k-th value
    maps[6] = 0.0  # all zero: only ties
    if name == "top_k":
        k = 15
        ours = top_k_intersection(_t(maps), _t(masks), k=k).numpy()
        best, worst = _tie_bounds(maps, masks, lambda: quantus.TopKIntersection(k=k, **QKW))
        area = masks.reshape(len(masks), -1).mean(1)
    else:
        ours = relevance_rank_accuracy(_t(maps), _t(masks)).numpy()
        best, worst = _tie_bounds(maps, masks, lambda: quantus.RelevanceRankAccuracy(**QKW))
        area = masks.reshape(len(masks), -1).mean(1)
    assert (worst <= ours + 1e-12).all() and (ours <= best + 1e-12).all()
    assert (best > worst).any()  # the edge case really has ties at the k-th value
    assert ours[6] == pytest.approx(area[6])  # a constant map: the mask's area share
    # the expectation over random tie orders, estimated by Quantus on randomly tie-broken maps
    draws = [_q(quantus.TopKIntersection(k=15, **QKW) if name == "top_k" else quantus.RelevanceRankAccuracy(**QKW),
                maps + 1e-9 * rng.random(maps.shape), masks) for _ in range(200)]
    np.testing.assert_allclose(ours, np.mean(draws, 0), atol=0.05)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_matches_quantus_with_ties(seed):
    maps, masks = _random(seed)
    maps[5:] = np.round(maps[5:] * 2) / 2  # ties
    maps[7] = 0.0  # all tied
    theirs = _q(quantus.AUC(**QKW), maps, masks)
    ours = auc(_t(maps), _t(masks))
    full = masks.reshape(len(masks), -1).all(1)
    assert np.isnan(theirs[full]).all() and (ours[torch.as_tensor(full)] == 0.5).all()
    _close(ours[torch.as_tensor(~full)], theirs[~full])


def test_auc_empty_mask_is_chance():
    maps, masks = _random(4, n=3)
    masks[0] = 0
    assert np.isnan(_q(quantus.AUC(**QKW), maps, masks)[0])
    assert auc(_t(maps), _t(masks))[0] == 0.5


def test_focus_matches_quantus_batch_formula():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(6, 1, H, W))
    quads = (rng.random((6, 4)) < 0.5).astype(int)
    quads[0] = 0
    metric = quantus.Focus(**QKW)
    theirs = np.asarray(metric.evaluate_batch(a_batch=maps, c_batch=quads), dtype=np.float64)
    _close(focus(_t(maps[:, 0]), torch.tensor(quads)), theirs)
    masks = quadrant_masks(torch.tensor(quads), (H, W))
    _close(attribution_localisation(_t(maps[:, 0]), masks.double()), np.where(quads.any(1), theirs, 0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_registry_scores_every_metric_in_the_maps_dtype_without_nan(dtype):
    maps, masks = _random(0)
    maps[1] = 0.0
    masks[2] = 0
    out = score(MAP_METRICS, _t(maps, dtype), _t(masks, dtype))
    for name, values in out.items():
        assert values.shape == (len(maps),) and values.dtype == dtype, name
        assert torch.isfinite(values).all(), name


def test_float32_agrees_with_quantus_within_float_tolerance():
    maps, masks = _random(1)
    m32 = _t(maps, torch.float32)
    ok = ~masks.reshape(len(masks), -1).all(1)
    theirs = _q(quantus.AUC(**QKW), m32.double().numpy(), masks)
    _close(auc(m32, _t(masks, torch.float32))[torch.as_tensor(ok)], theirs[ok], atol=1e-6)
    theirs = _q(quantus.AttributionLocalisation(positive_attributions=True, **QKW), m32.double().numpy(), masks)
    _close(attribution_localisation(m32, _t(masks, torch.float32)), theirs, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    maps, masks = _random(0)
    cpu = score(MAP_METRICS, _t(maps), _t(masks))
    gpu = score(MAP_METRICS, _t(maps).cuda(), _t(masks).cuda())
    for name in cpu:
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], msg=name)


# ----------------------------------------------------------------------------- model-based checks


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv(x)))).mean((2, 3)))


def _saliency(model, inputs, targets, **_):
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).requires_grad_(True)
    y = torch.as_tensor(np.asarray(targets)).long()
    model(x)[torch.arange(len(y)), y].sum().backward()
    return (x.grad * x).detach()[:, 0]


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a, b = np.round(rng.normal(size=(5, 30))), rng.normal(size=(5, 30))
    ours = spearman(torch.tensor(a), torch.tensor(b))
    theirs = [spearmanr(a[i], b[i])[0] for i in range(5)]
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-10)
    assert spearman(torch.zeros(1, 4), torch.arange(4.0)[None])[0] == 0  # scipy: NaN


def test_cascading_randomisation_matches_quantus_mprt():
    torch.manual_seed(0)
    model = _Tiny().eval()
    x = torch.randn(4, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 1])
    ours = cascading_randomisation(model, x, y, lambda m, xx, yy: _saliency(m, xx, yy), seed=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mprt = quantus.MPRT(layer_order="top_down", seed=42, abs=True, normalise=False, disable_warnings=True)
        theirs = mprt(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None, channel_first=True,
                      explain_func=lambda model, inputs, targets, **kw: _saliency(model, inputs, targets).numpy()[:, None],
                      device="cpu")
    assert list(ours) == list(theirs)  # "original", then fc, conv2, conv
    for name in theirs:
        np.testing.assert_allclose(ours[name].numpy(), theirs[name], rtol=1e-6, atol=1e-9, err_msg=name)
    assert float(ours["conv"].mean()) < 0.9  # randomising everything changes the maps


@pytest.mark.parametrize("step", [1, 8])
def test_deletion_curve_matches_quantus_pixel_flipping(step):
    torch.manual_seed(1)
    model = _Tiny().eval()
    x = torch.randn(3, 1, 8, 8)
    y = torch.tensor([2, 0, 1])
    maps = torch.randn(3, 8, 8)  # tie-free order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = quantus.PixelFlipping(features_in_step=step, perturb_baseline="black", abs=False, normalise=False,
                                   disable_warnings=True)
        theirs = np.asarray(pf(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps[:, None].numpy(),
                               channel_first=True, softmax=True, device="cpu"), dtype=np.float64)
    curve = perturbation_curve(model, x, y, maps, pixels_per_step=step)
    np.testing.assert_allclose(curve.numpy(), theirs, rtol=1e-5, atol=1e-6)
    # Quantus's return_auc_per_sample calls np.trapz, which numpy 2.4 removed: numpy's trapezoid instead
    np.testing.assert_allclose(curve_auc(curve.double()).numpy(), np.trapezoid(theirs, dx=1, axis=1), rtol=1e-5)
