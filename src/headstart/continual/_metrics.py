r"""Continual-learning metrics: pure functions of the accuracy matrix.

The accuracy matrix ``R`` has shape ``(T, T)``: ``R[i, j]`` is the test accuracy on task
``j`` (the classes first learned at step ``j``) after training step ``i``; entries with
``j > i`` (tasks not seen yet) are ignored and may be ``nan``. With ``T`` steps
(Lopez-Paz & Ranzato, 2017; Chaudhry et al., 2018):

* average accuracy, after the last step:
  :math:`\mathrm{ACC} = \frac{1}{T} \sum_{j=1}^{T} R_{T,j}`
* backward transfer:
  :math:`\mathrm{BWT} = \frac{1}{T-1} \sum_{j=1}^{T-1} (R_{T,j} - R_{j,j})`
  (negative: forgetting; positive: later steps helped earlier tasks)
* forgetting:
  :math:`F = \frac{1}{T-1} \sum_{j=1}^{T-1} \max_{l \in \{j, \dots, T-1\}} (R_{l,j} - R_{T,j})`,
  the drop of each old task from its best accuracy before the last step

(1-based in the formulas, 0-based in the code). With a single step, BWT and forgetting
are ``nan`` (there is no old task).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _matrix(r: Any) -> np.ndarray:
    m = np.asarray(r, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square (T, T), not {m.shape}")
    if not np.isfinite(m[np.tril_indices(m.shape[0])]).all():
        raise ValueError("the accuracy matrix has a missing entry on or below its diagonal")
    return m


def average_accuracy(r: Any, step: int | None = None) -> float:
    r"""ACC after ``step`` (default the last): :math:`\frac{1}{i+1}\sum_{j \le i} R_{i,j}`."""
    m = _matrix(r)
    i = m.shape[0] - 1 if step is None else step
    return float(m[i, : i + 1].mean())


def backward_transfer(r: Any) -> float:
    r"""BWT: :math:`\frac{1}{T-1}\sum_{j<T-1} (R_{T-1,j} - R_{j,j})` (0-based)."""
    m = _matrix(r)
    t = m.shape[0]
    if t < 2:
        return float("nan")
    return float(np.mean([m[t - 1, j] - m[j, j] for j in range(t - 1)]))


def forgetting(r: Any) -> float:
    r"""Forgetting: :math:`\frac{1}{T-1}\sum_{j<T-1} \max_{j \le l < T-1} R_{l,j} - R_{T-1,j}`
    (0-based)."""
    m = _matrix(r)
    t = m.shape[0]
    if t < 2:
        return float("nan")
    return float(np.mean([m[j : t - 1, j].max() - m[t - 1, j] for j in range(t - 1)]))


def continual_metrics(r: Any) -> dict[str, Any]:
    """ACC, BWT and forgetting of ``r``, and ACC after every step (``acc_per_step``)."""
    m = _matrix(r)
    return {
        "acc": average_accuracy(m),
        "bwt": backward_transfer(m),
        "forgetting": forgetting(m),
        "acc_per_step": [average_accuracy(m, i) for i in range(m.shape[0])],
    }


__all__ = ["average_accuracy", "backward_transfer", "continual_metrics", "forgetting"]
