"""H-score and its shrinkage-regularised version: between-class over total feature covariance."""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf
from threadpoolctl import threadpool_limits

from headstart.select._common import check_features, class_sums, encode_labels


def _class_means_factor(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``M`` (C, D) with ``M^T M = cov(E[f | y])``: rows ``sqrt(n_c / N) (mu_c - mu)``."""
    counts = np.bincount(y).astype(np.float64)
    centred = class_sums(f, y) / counts[:, None] - f.mean(axis=0)
    return np.sqrt(counts / len(f))[:, None] * centred


def _trace_inv_times(cov: np.ndarray, m: np.ndarray) -> float:
    """``tr(pinv(cov) M^T M)`` for symmetric PSD ``cov`` (D, D), with eigenvalues below
    ``max_eig * D * eps`` treated as zero (numpy's default pseudo-inverse cutoff)."""
    eig, vec = np.linalg.eigh(cov)
    keep = eig > max(eig[-1], 0.0) * len(eig) * np.finfo(np.float64).eps
    proj = m @ vec[:, keep]  # (C, k)
    return float(np.sum(proj**2 / eig[keep]))


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    r"""H-score (Bao et al., ICIP 2019).

    .. math::
        \mathcal{H}(f) = \operatorname{tr}\left(\operatorname{cov}(f)^{+}\,
        \operatorname{cov}(\mathbb{E}[f \mid y])\right)

    where ``cov(f)`` is the ``(D, D)`` feature covariance, ``E[f | y]`` replaces each row by
    its class mean, and ``+`` is the pseudo-inverse. Both covariances use ``1/N`` (the
    normalisation cancels). The score lies in ``[0, min(C - 1, D)]``; larger is better.
    When ``D >= N - 1`` the sample covariance is singular and the score (generically) is
    ``C - 1`` whatever the features or labels: use :func:`shrinkage_h_score` there.

    Args:
        features: ``(N, D)`` features of the target data.
        labels: ``(N,)`` target labels (any integers or strings, ``C >= 2`` classes).

    Returns:
        The H-score as a float.
    """
    f = check_features(features)
    y = encode_labels(labels, len(f))
    centred = f - f.mean(axis=0)
    with threadpool_limits(1):  # one BLAS thread: see headstart.select
        cov = centred.T @ centred / len(f)
        return _trace_inv_times(cov, _class_means_factor(f, y))


def shrinkage_h_score(features: np.ndarray, labels: np.ndarray) -> float:
    r"""Shrinkage-regularised H-score (Ibrahim et al., "Newer is not always better", 2022).

    The feature covariance is replaced by its Ledoit-Wolf shrinkage estimate
    ``cov_a(f) = (1 - a) cov(f) + a (tr cov(f) / D) I`` with the Ledoit-Wolf optimal ``a`` in
    ``[0, 1]``, and the between-class covariance is shrunk by the same factor:

    .. math::
        \mathcal{H}_a(f) = \operatorname{tr}\left(\operatorname{cov}_a(f)^{-1}\,
        (1 - a)\operatorname{cov}(\mathbb{E}[f \mid y])\right).

    Covariances use ``1/N`` as in Ledoit-Wolf, so ``H_0`` equals :func:`h_score`.
    ``cov_a`` is well conditioned even when ``D > N``, where the plain H-score saturates.

    Args:
        features: ``(N, D)`` features of the target data.
        labels: ``(N,)`` target labels (any integers or strings, ``C >= 2`` classes).

    Returns:
        The regularised H-score as a float, ``>= 0``; larger is better.
    """
    f = check_features(features)
    y = encode_labels(labels, len(f))
    if not np.ptp(f, axis=0).any():
        raise ValueError("features are constant: their covariance is zero")
    with threadpool_limits(1):  # one BLAS thread: see headstart.select
        cov, shrinkage = ledoit_wolf(f, assume_centered=False)
        return (1.0 - float(shrinkage)) * _trace_inv_times(cov, _class_means_factor(f, y))
