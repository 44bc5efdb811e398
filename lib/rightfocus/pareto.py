"""Pareto-dominant checkpoints and the representative model (Rao et al. 2023, Sec. 4, Fig. 4, D.1.1).

Checkpoints are compared on validation in (F1, EPG, IoU), all maximised, each rounded to bins of
0.005 first (as the reference code does), so differences below half a bin never make one checkpoint
dominate another. Fronts are taken over the fine-tuning epochs (epoch >= 1) of a run, and pooled over
lambda (and epochs) for a configuration; the baseline (epoch 0) is a reference point, not a member.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

OBJECTIVES: tuple[str, ...] = ("f1", "epg", "iou")

#: the configuration that a pooled front is taken over (everything that is not lambda or the seed)
CONFIG_KEYS: tuple[str, ...] = (
    "dataset", "task", "model_kind", "arch", "config_method", "config_tap", "loss",
    "annotation_fraction", "dilation",
)


def pareto_front(points: np.ndarray | Sequence[Sequence[float]], bins: float | None = 0.005) -> np.ndarray:
    """Boolean mask of the points no other point dominates (all coordinates maximised).

    Point q dominates p when q >= p in every coordinate and q > p in at least one, after rounding
    every coordinate to the nearest multiple of `bins` (None: no rounding). Points equal after
    rounding do not dominate each other, so both stay. NaN coordinates make a point never dominant
    and always dominated.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array [n, objectives]; got shape {p.shape}")
    if bins is not None:
        if bins <= 0:
            raise ValueError(f"bins must be positive (or None); got {bins}")
        p = np.round(p / bins) * bins
    bad = np.isnan(p).any(axis=1)
    q = np.where(np.isnan(p), -np.inf, p)
    ge = (q[:, None, :] >= q[None, :, :]).all(axis=2)  # ge[i, j]: i >= j everywhere
    gt = (q[:, None, :] > q[None, :, :]).any(axis=2)
    dominated = ((ge & gt) & ~bad[:, None]).any(axis=0)
    return ~dominated & ~bad


def front_rows(df: pd.DataFrame, objectives: Sequence[str] = OBJECTIVES, bins: float | None = 0.005) -> pd.DataFrame:
    """The rows of `df` on the Pareto front of `objectives`."""
    if df.empty:
        return df
    return df[pareto_front(df[list(objectives)].to_numpy(dtype=float), bins=bins)]


def representative(df: pd.DataFrame, baseline_f1: float, max_drop: float = 0.05) -> pd.Series:
    """The model shown in pictures: highest EPG among rows whose F1 is at most `max_drop` below the
    baseline's (5 p.p., Sec. D.1.1); ties go to the higher F1. When no row qualifies, the row with
    the highest F1 (the smallest drop) is returned."""
    if df.empty:
        raise ValueError("representative(): no candidate rows (is the front empty?)")
    ok = df[df["f1"] >= baseline_f1 - max_drop - 1e-12]
    if ok.empty:
        return df.sort_values(["f1", "epg"], ascending=False).iloc[0]
    return ok.sort_values(["epg", "f1"], ascending=False).iloc[0]


def pooled_fronts(
    metrics: pd.DataFrame,
    by: Sequence[str] = CONFIG_KEYS,
    objectives: Sequence[str] = OBJECTIVES,
    bins: float | None = 0.005,
    tap: str | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """Validation rows on each configuration's front pooled over lambda and epochs (Fig. 4).

    `metrics` is `rightfocus.runs.store.load_metrics(...)`. Rows are the guided runs'
    fine-tuning epochs (epoch >= 1) evaluated at the run's own tap/method (or at `tap`/`method`,
    e.g. ``tap="input"`` for Fig. 8). A pure function of the results.
    """
    df = metrics[(~metrics["is_baseline"]) & (metrics["split"] == "val") & (metrics["epoch"] >= 1)]
    df = df[df["tap"] == (df["config_tap"] if tap is None else tap)]
    df = df[df["method"] == (df["config_method"] if method is None else method)]
    keys = [k for k in by if k in df.columns]
    parts = [front_rows(g, objectives, bins) for _, g in df.groupby(keys, dropna=False)] if keys else [front_rows(df, objectives, bins)]
    return pd.concat(parts) if parts else df


def front_test_rows(front: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The TEST rows of the checkpoints in `front` (same run, epoch, tap, method): what the figures
    plot. Every run writes test rows for its own front, which contains any pooled-front member."""
    key = ["run_id", "epoch", "tap", "method"]
    test = metrics[metrics["split"] == "test"]
    return test.merge(front[key].drop_duplicates(), on=key, how="inner")
