"""Limited annotations (Rao et al. 2023, Sec. 5.4 / R7): only a seeded random subset of training
images keeps its boxes; the others still train the classifier but get no localisation loss."""

from __future__ import annotations

import numpy as np


def annotation_subset(n: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask [n]: True for the int(fraction * n) images that keep boxes, drawn with `seed`.

    The same (n, seed) gives nested subsets as the fraction grows (a prefix of one permutation), so
    a 10 % budget contains the 1 % budget's images.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"annotation_fraction must be in [0, 1] (e.g. 0.01 for 1 %), got {fraction}")
    keep = np.zeros(n, dtype=bool)
    k = int(fraction * n)
    if k:
        keep[np.random.default_rng(seed).permutation(n)[:k]] = True
    return keep
