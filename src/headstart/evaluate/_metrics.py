"""Classification metrics as pure functions: arrays in, numbers out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of items of true class ``i`` predicted as ``j``; shape ``(K, K)``."""
    c = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(c, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return c


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of items with ``y_pred == y_true``; ``nan`` for no items."""
    y_true = np.asarray(y_true)
    return float(np.mean(y_true == np.asarray(y_pred))) if len(y_true) else float("nan")


def per_class(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision ``C[k,k] / sum_i C[i,k]``, recall ``C[k,k] / sum_j C[k,j]``, their harmonic
    mean F1, and support ``sum_j C[k,j]``, per class (0 where undefined)."""
    tp = np.diag(c).astype(float)
    pred = c.sum(0).astype(float)
    support = c.sum(1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true``."""
    c = confusion(y_true, y_pred, n_classes)
    _, _, f1, support = per_class(c)
    present = support > 0
    return float(f1[present].mean()) if present.any() else float("nan")


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """``accuracy``, ``macro_f1``, per-class precision/recall/F1/support, the confusion
    matrix, and ``n`` (items scored)."""
    k = len(classes)
    c = confusion(y_true, y_pred, k)
    precision, recall, f1, support = per_class(c)
    return {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, k),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion": c.tolist(),
    }
