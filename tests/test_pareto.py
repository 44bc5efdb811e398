"""Pareto fronts and the representative model on hand-made points (Rao et al. 2023, Sec. 4)."""

import numpy as np
import pandas as pd
import pytest

from rightfocus.pareto import front_rows, pareto_front, pooled_fronts, representative, front_test_rows


def test_front_by_hand_2d():
    # (1,1) dominated by (2,2); (3,0) and (0,3) and (2,2) are mutually non-dominated
    pts = [[1, 1], [2, 2], [3, 0], [0, 3], [2, 1.5]]
    assert pareto_front(pts, bins=None).tolist() == [False, True, True, True, False]


def test_front_3d_by_hand():
    pts = [[0.8, 0.5, 0.2], [0.8, 0.6, 0.1], [0.7, 0.6, 0.1], [0.9, 0.4, 0.3]]
    # point 2 is dominated by point 1 (equal F1? no: 0.8>0.7, equal EPG, equal IoU)
    assert pareto_front(pts, bins=None).tolist() == [True, True, False, True]


def test_bins_merge_small_differences():
    # 0.801 vs 0.800 round to the same 0.005 bin: neither dominates, both stay
    pts = [[0.801, 0.5, 0.2], [0.800, 0.5, 0.2]]
    assert pareto_front(pts, bins=0.005).tolist() == [True, True]
    assert pareto_front(pts, bins=None).tolist() == [True, False]
    # 0.806 rounds to 0.805 > 0.800: it dominates
    pts = [[0.806, 0.5, 0.2], [0.800, 0.5, 0.2]]
    assert pareto_front(pts, bins=0.005).tolist() == [True, False]


def test_nan_never_on_front_and_bad_shape():
    assert pareto_front([[np.nan, 1.0], [0.0, 0.0]], bins=None).tolist() == [False, True]
    with pytest.raises(ValueError, match="2-D"):
        pareto_front([1.0, 2.0])


def test_front_matches_brute_force():
    rng = np.random.default_rng(0)
    pts = rng.random((40, 3)).round(2)
    mask = pareto_front(pts, bins=None)
    for i, p in enumerate(pts):
        dominated = any((q >= p).all() and (q > p).any() for q in pts)
        assert mask[i] == (not dominated)


def test_representative_highest_epg_within_5pp():
    df = pd.DataFrame({"f1": [0.80, 0.77, 0.74, 0.60], "epg": [0.5, 0.6, 0.9, 0.95]})
    # baseline 0.80: 0.74 is a 6 p.p. drop -> excluded; best EPG within 5 p.p. is 0.6
    assert representative(df, baseline_f1=0.80).epg == 0.6
    assert representative(df, baseline_f1=0.79).epg == 0.9  # 0.74 is exactly 5 p.p. below
    # nothing qualifies -> smallest drop
    assert representative(df, baseline_f1=0.99).f1 == 0.80


def test_pooled_front_and_test_rows():
    rows = []
    for run, lam, vals in [("a", 0.1, [(0.8, 0.5, 0.2), (0.7, 0.4, 0.1)]), ("b", 1.0, [(0.6, 0.9, 0.3)])]:
        for e, (f1, epg, iou) in enumerate(vals, start=1):
            for split in ("val", "test"):
                rows.append(dict(run_id=run, lam=lam, epoch=e, split=split, tap="input", method="bcos",
                                 config_tap="input", config_method="bcos", f1=f1, epg=epg, iou=iou,
                                 is_baseline=False, loss="energy", model_kind="bcos", dataset="voc2007"))
    df = pd.DataFrame(rows)
    front = pooled_fronts(df)
    assert sorted(zip(front.run_id, front.epoch)) == [("a", 1), ("b", 1)]
    test = front_test_rows(front, df)
    assert set(test.split) == {"test"} and len(test) == 2
    assert len(front_rows(df[df.split == "val"], ("f1", "epg"))) == 2
