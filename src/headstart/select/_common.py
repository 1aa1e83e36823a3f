"""Input checks and small helpers shared by the transferability scores.

Every score validates its inputs here and raises ``ValueError`` with a message naming the
argument, so a wrong shape or a NaN fails loudly instead of returning a meaningless number.
"""

from __future__ import annotations

import numpy as np


def check_features(features: object, name: str = "features") -> np.ndarray:
    """``features`` as a finite float64 array of shape ``(N, D)`` with ``N >= 2``."""
    try:
        f = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array, got {type(features).__name__}") from err
    if f.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {f.shape}")
    if f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"{name} needs at least 2 rows and 1 column, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return f


def encode_labels(labels: object, n: int | None = None, name: str = "labels") -> np.ndarray:
    """Map any 1-D labels (integers, strings, integral floats) to codes ``0..C-1``.

    Codes follow the order in which each class first appears, not the sort order of the
    label values, so a score computed on the codes is unchanged (bit for bit) when the
    classes are renamed or permuted. Requires length ``n`` (when given) and ``C >= 2``.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got shape {y.shape}")
    if n is not None and len(y) != n:
        raise ValueError(f"{name} has {len(y)} entries but features/probabilities have {n} rows")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must be class labels; got non-integral floats")
    elif y.dtype.kind not in "biuUSO":
        raise ValueError(f"{name} must be integers or strings, got dtype {y.dtype}")
    try:
        _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    except TypeError as err:
        raise ValueError(f"{name} mixes types that cannot be compared") from err
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    codes = rank[inverse.reshape(-1)]
    if len(first) < 2:
        raise ValueError(f"{name} must contain at least 2 classes, got {len(first)}")
    return codes


def class_sums(a: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Row sums of ``a`` (N, ...) per class: ``(C, ...)`` for codes ``0..C-1``, all present."""
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(int(codes.max()) + 1))
    return np.add.reduceat(a[order], starts, axis=0)


def check_probabilities(probs: object, name: str = "source_probs") -> np.ndarray:
    """``probs`` as a float64 ``(N, Z)`` array of rows on the simplex (renormalised to sum 1).

    Rows must be finite, non-negative and sum to 1 within ``1e-3``: softmax outputs, not
    logits.
    """
    p = check_features(probs, name)
    if (p < 0).any():
        raise ValueError(f"{name} has negative entries; pass softmax probabilities, not logits")
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=1e-3):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(
            f"{name} rows must sum to 1 (softmax outputs, not logits); off by up to {worst:.3g}"
        )
    return p / sums[:, None]


def balanced_subset(labels: np.ndarray, size: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``size`` rows of ``labels`` (``(N,)``), spread evenly over
    the classes: a seeded shuffle, then classes taken in turn (the first of each class, the
    second of each, ...) until ``size`` rows. ``size=None`` (or ``>= N``) keeps every row."""
    y = np.asarray(labels)
    if size is None or size >= len(y):
        return np.arange(len(y))
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    order = np.random.default_rng(seed).permutation(len(y))
    turn = np.zeros(len(y), dtype=np.int64)  # position of each row within its class
    seen: dict[object, int] = {}
    for i in order:
        key = y[i].item() if hasattr(y[i], "item") else y[i]
        turn[i] = seen.get(key, 0)
        seen[key] = turn[i] + 1
    picked = order[np.argsort(turn[order], kind="stable")][:size]
    return np.sort(picked)
