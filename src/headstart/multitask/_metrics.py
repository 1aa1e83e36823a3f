r"""Multi-task metrics: pure functions, arrays in, numbers out.

* :func:`masked_accuracy`: accuracy of one task over the rows that have its label
  (``-1`` marks a missing label).
* :func:`delta_m`: the mean relative improvement of a multi-task model over single-task
  models trained on the same splits (Maninis et al., 2019; LibMTL's :math:`\Delta_m`):

  .. math:: \Delta_m = \frac{1}{T}\sum_{t=1}^{T} (-1)^{l_t}\,\frac{M_{m,t} - M_{b,t}}{M_{b,t}}

  with :math:`l_t = 0` when higher is better (accuracy), 1 when lower is better (a loss).
  Positive: sharing helped on average; a task whose own term is negative lost from it
  (:func:`relative_gains`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def masked_accuracy(pred: Any, y: Any) -> float:
    """Accuracy of ``pred`` ``(N,)`` against ``y`` ``(N,)`` over the rows with ``y >= 0``;
    ``nan`` when no row has a label."""
    pred, y = np.asarray(pred), np.asarray(y)
    keep = y >= 0
    return float((pred[keep] == y[keep]).mean()) if keep.any() else float("nan")


def relative_gains(
    multi: Sequence[float], single: Sequence[float], higher_better: Sequence[bool] | None = None
) -> list[float]:
    r"""Per task :math:`(-1)^{l_t}(M_{m,t} - M_{b,t}) / M_{b,t}`."""
    m, b = np.asarray(multi, dtype=np.float64), np.asarray(single, dtype=np.float64)
    if m.shape != b.shape or m.ndim != 1 or not len(m):
        raise ValueError(f"one score per task on both sides, not {m.shape} and {b.shape}")
    if (b == 0).any():
        raise ValueError("a single-task score of 0: the relative improvement is undefined")
    sign = (
        np.ones(len(m)) if higher_better is None else np.where(np.asarray(higher_better), 1.0, -1.0)
    )
    return [float(v) for v in sign * (m - b) / b]


def delta_m(
    multi: Sequence[float], single: Sequence[float], higher_better: Sequence[bool] | None = None
) -> float:
    r""":math:`\Delta_m`, the mean of :func:`relative_gains` (see the module docstring)."""
    return float(np.mean(relative_gains(multi, single, higher_better)))


__all__ = ["delta_m", "masked_accuracy", "relative_gains"]
