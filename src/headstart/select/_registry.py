"""A registry of the scores by name and one dispatcher, ``score``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from headstart.select._common import check_probabilities
from headstart.select._hscore import h_score, shrinkage_h_score
from headstart.select._logme import logme
from headstart.select._probe import knn_loo_accuracy, linear_probe_accuracy
from headstart.select._source import leep, nce

SCORES: dict[str, Callable[..., float]] = {
    "logme": logme,
    "h_score": h_score,
    "shrinkage_h_score": shrinkage_h_score,
    "knn_loo_accuracy": knn_loo_accuracy,
    "linear_probe_accuracy": linear_probe_accuracy,
    "leep": leep,
    "nce": nce,
}
"""Every score by name. Larger is better for all of them."""

NEEDS_SOURCE_PROBS: frozenset[str] = frozenset({"leep", "nce"})
"""Scores computed from the source model's softmax on the target data, not from features:
they need a model with its source classification head."""


def score(
    name: str,
    features: np.ndarray | None,
    labels: np.ndarray,
    source_probs: np.ndarray | None = None,
    **options: Any,
) -> float:
    """Compute the score ``name`` (a key of :data:`SCORES`) on the target data.

    Feature scores (``logme``, ``h_score``, ``shrinkage_h_score``, ``knn_loo_accuracy``,
    ``linear_probe_accuracy``) read ``features`` ``(N, D)``. ``leep`` and ``nce`` read
    ``source_probs`` ``(N, Z)``, the source model's softmax over its ``Z`` source classes
    (NCE uses its argmax), and ignore ``features``. ``options`` go to the score function
    (e.g. ``k=`` for ``knn_loo_accuracy``, ``folds=`` for ``linear_probe_accuracy``).
    """
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; choose one of {', '.join(sorted(SCORES))}")
    if name in NEEDS_SOURCE_PROBS:
        if source_probs is None:
            raise ValueError(
                f"score {name!r} needs source_probs: the source model's softmax outputs "
                "(N, Z) on the target data; feature-only scores are "
                + ", ".join(sorted(set(SCORES) - NEEDS_SOURCE_PROBS))
            )
        if name == "nce":
            return nce(check_probabilities(source_probs).argmax(axis=1), labels, **options)
        return leep(source_probs, labels, **options)
    if features is None:
        raise ValueError(f"score {name!r} needs features (N, D)")
    return SCORES[name](features, labels, **options)
