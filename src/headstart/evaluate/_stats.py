"""Intervals for the numbers a comparison reports, as pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_ci(
    values: Sequence[float],
    level: float = 0.95,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> dict[str, float]:
    """Mean and Student-t confidence interval of independent runs (e.g. seeds).

    ``mean ± t_{(1+level)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (``ddof=1``), clipped to ``bounds`` (``(0, 1)`` for an accuracy). With one value the
    interval is the point (``std`` is ``nan``). Returns ``{"mean", "lo", "hi", "std", "n"}``.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "lo": mean, "hi": mean, "std": float("nan"), "n": 1}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    lo, hi = max(bounds[0], mean - half), min(bounds[1], mean + half)
    return {"mean": mean, "lo": lo, "hi": hi, "std": std, "n": n}


def paired_ci(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean difference ``a - b`` of paired observations and its normal-approximation interval.

    For per-item correctness (0/1) of two classifiers on the same test items this is the
    interval of their accuracy difference: ``d_i = a_i - b_i``,
    ``mean(d) ± z * sd(d) / sqrt(n)``. Returns ``{"mean", "lo", "hi", "std", "n"}``.
    """
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n == 0:
        raise ValueError("paired_ci needs at least one pair")
    mean = float(d.mean())
    std = float(d.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.norm.ppf((1 + level) / 2)) * std / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "std": std, "n": n}


def wilson_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n`` (an accuracy on ``n`` items).

    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``; ``(nan, nan)`` for ``n == 0``.
    """
    from scipy import stats

    if n == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf((1 + level) / 2))
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


__all__ = ["mean_ci", "paired_ci", "wilson_interval"]
