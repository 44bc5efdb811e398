"""How a user reads a score: EPG, on-object EPG and IoU are fractions in [0, 1] in code and files
(`rightfocus.metrics`, results JSON), and percentages wherever they are shown (tables, notebooks,
the inspector, titles), as in both papers' tables."""

from __future__ import annotations

import math


def percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage to `digits` decimals (``0.6926 -> "69.3 %"``); "-" for None / NaN."""
    if fraction is None:
        return "-"
    value = float(fraction)
    return "-" if math.isnan(value) else f"{100.0 * value:.{digits}f} %"


def points(delta: float, digits: int = 1) -> str:
    """A change of a fraction in percentage points, signed (``0.05 -> "+5.0 pp"``)."""
    return f"{100.0 * float(delta):+.{digits}f} pp"
