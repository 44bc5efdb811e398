"""Finding images to inspect: a table of each image's classes and group, filters on it and on
per-image EPG, and images ranked by how much EPG changed between two runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch


def image_table(dataset: Any) -> pd.DataFrame:
    """One row per image: index, classes (ground-truth ids), group (or -1). Read from the loader's
    records when it has them (no image decoding), else from the samples."""
    records = getattr(dataset, "records", None)
    if records is not None:
        rows = [(i, sorted(set(r.labels)), int(r.extra.get("group", -1))) for i, r in enumerate(records)]
    else:
        rows = []
        for i in range(len(dataset)):
            s = dataset[i]
            rows.append((i, torch.nonzero(s["labels"] > 0).flatten().tolist(), int(s.get("group", -1))))
    return pd.DataFrame(rows, columns=["index", "classes", "group"])


def filter_images(table: pd.DataFrame, cls: int | None = None, group: int | None = None,
                  epg_range: tuple[float, float] | None = None, epg: pd.DataFrame | None = None) -> list[int]:
    """Indices of `table`'s images with class `cls`, in `group`, and whose per-image EPG (`epg`, a frame
    with one row per image of the table) lies in `epg_range` (inclusive)."""
    keep = np.ones(len(table), dtype=bool)
    if cls is not None:
        keep &= table["classes"].map(lambda cs: int(cls) in cs).to_numpy(dtype=bool)
    if group is not None:
        keep &= (table["group"] == int(group)).to_numpy()
    if epg_range is not None:
        if epg is None:
            raise ValueError("filtering by EPG needs the per-image EPG (epg=...)")
        lo, hi = epg_range
        scores = epg["epg"].to_numpy()
        keep &= (scores >= lo) & (scores <= hi)
    return table["index"][keep].astype(int).tolist()


def epg_change(a: pd.DataFrame, b: pd.DataFrame, absolute: bool = False) -> pd.DataFrame:
    """Images ranked by EPG change from per-image EPG `a` to `b`: columns index, epg_a, epg_b, change;
    largest gain first (`absolute`: largest |change| first); images without EPG in either are dropped."""
    df = pd.DataFrame({"index": a["index"], "epg_a": a["epg"], "epg_b": b["epg"]})
    df["change"] = df["epg_b"] - df["epg_a"]
    df = df.dropna(subset=["change"])
    order = df["change"].abs() if absolute else df["change"]
    return df.loc[order.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)
