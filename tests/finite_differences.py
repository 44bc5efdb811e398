"""Central finite differences, the oracle for every guidance-gradient test (float64 models)."""

from __future__ import annotations

from typing import Callable, Iterable

import pytest
import torch


def assert_matches_central_differences(param: torch.Tensor, analytic: torch.Tensor, loss: Callable[[], float],
                                       indices: Iterable[int], h: float = 1e-6, rel: float = 1e-4,
                                       abs: float = 1e-8, label: object = None) -> None:
    """For each flat index i of `param`: (loss(p + h e_i) - loss(p - h e_i)) / 2h equals
    `analytic` [flat, from double backprop] at i; `param` is restored after each probe."""
    flat = param.view(-1)
    for i in indices:
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                flat[i] += sign * h
            values.append(float(loss()))
            with torch.no_grad():
                flat[i] -= sign * h
        numeric = (values[0] - values[1]) / (2 * h)
        assert numeric == pytest.approx(float(analytic[i]), rel=rel, abs=abs), (label, i)
