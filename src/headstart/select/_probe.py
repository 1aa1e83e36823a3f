"""Direct probes: how well simple classifiers on the frozen features predict the labels."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from headstart.select._common import check_features, encode_labels

_CHUNK = 1024  # rows of the distance matrix held at once: 1024 x N floats


def _standardise(f: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per feature; constant features become 0."""
    std = f.std(axis=0)
    return (f - f.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _neighbours(z: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Indices ``(N, k)`` of each row's ``k`` nearest other rows, nearest first."""
    if metric == "cosine":
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        z = z / np.where(norms > 0, norms, 1.0)
        sq = np.zeros(len(z))  # distance 1 - cos: ranking by -z_i . z_j is enough
    else:
        sq = np.einsum("ij,ij->i", z, z)
    out = np.empty((len(z), k), dtype=np.int64)
    for start in range(0, len(z), _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, len(z)))
        dist = sq[None, :] - 2.0 * (z[rows] @ z.T)  # + |z_i|^2, constant per row
        dist[np.arange(len(rows)), rows] = np.inf  # leave one out
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
        out[rows] = np.take_along_axis(part, order, axis=1)
    return out


def knn_loo_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    k: int = 5,
    metric: Literal["euclidean", "cosine"] = "euclidean",
) -> float:
    r"""Leave-one-out accuracy of a ``k``-nearest-neighbour vote on standardised features.

    Features are standardised per dimension (``z = (f - mean) / std`` over all ``N`` rows,
    constant dimensions set to 0). Each sample is classified by a majority vote of its ``k``
    nearest *other* samples, under Euclidean distance ``|z_i - z_j|`` or cosine distance
    ``1 - z_i . z_j / (|z_i| |z_j|)``; a tied vote goes to the tied class of the nearest
    neighbour, so the score does not depend on how classes are named. Under cosine a row
    that standardises to the zero vector is equally far from every other row.

    .. math::
        \mathrm{acc} = \frac1N \sum_i 1\left[\operatorname{vote}(\mathcal{N}_k(i)) = y_i\right]

    Args:
        features: ``(N, D)`` features of the target data.
        labels: ``(N,)`` target labels (any integers or strings, ``C >= 2`` classes).
        k: neighbours per vote, ``1 <= k <= N - 1``.
        metric: ``"euclidean"`` or ``"cosine"``.

    Returns:
        Accuracy in ``[0, 1]``. Memory ``O(min(N, 1024) N)``; time ``O(N^2 D)``.
    """
    f = check_features(features)
    y = encode_labels(labels, len(f))
    if not 1 <= k <= len(f) - 1:
        raise ValueError(f"k must be in [1, N - 1] = [1, {len(f) - 1}], got {k}")
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    with threadpool_limits(1):  # one BLAS thread: see headstart.select
        votes = y[_neighbours(_standardise(f), k, metric)]  # (N, k), nearest first
    counts = np.zeros((len(f), int(y.max()) + 1), dtype=np.int64)
    np.add.at(counts, (np.arange(len(f))[:, None], votes), 1)
    tied = counts == counts.max(axis=1, keepdims=True)
    first = np.argmax(np.take_along_axis(tied, votes, axis=1), axis=1)
    pred = votes[np.arange(len(f)), first]
    return float(np.mean(pred == y))


def linear_probe_accuracy(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    r"""Stratified ``folds``-fold cross-validated accuracy of logistic regression.

    Each fold fits ``StandardScaler`` then multinomial ``LogisticRegression`` (L2, ``C=1``,
    lbfgs) on the training part and scores accuracy on the held-out part; the score is
    the mean over folds. Folds come from ``StratifiedKFold(shuffle=True,
    random_state=seed)`` on class codes in order of first appearance, so renaming classes
    gives the same folds. The fit runs on one BLAS thread (much faster for problems this
    size on a busy machine).

    .. math::
        \mathrm{acc} = \frac{1}{K} \sum_{k=1}^{K} \frac{1}{|T_k|}
        \sum_{i \in T_k} 1\left[\hat y^{(-k)}(x_i) = y_i\right]

    Args:
        features: ``(N, D)`` features of the target data.
        labels: ``(N,)`` target labels; every class needs at least ``folds`` samples.
        folds: number of folds ``K >= 2``.
        seed: seed of the fold shuffle.

    Returns:
        Mean held-out accuracy in ``[0, 1]``.
    """
    f = check_features(features)
    y = encode_labels(labels, len(f))
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    smallest = int(np.bincount(y).min())
    if smallest < folds:
        raise ValueError(
            f"every class needs at least folds={folds} samples; the smallest has {smallest}"
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):
        scores = cross_val_score(model, f, y, cv=cv, scoring="accuracy")
    return float(np.mean(scores))
