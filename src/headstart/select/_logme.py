"""LogME: the log maximum evidence of a Bayesian linear model on frozen features."""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

from headstart.select._common import check_features, class_sums, encode_labels


def _project(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero squared singular values ``sigma`` (k,) of ``f = U S V^T`` (N, D) and the
    one-vs-rest targets ``Y`` (N, C) of codes ``y`` in the left singular basis, ``U^T Y``
    (k, C). When ``N > D`` this goes through the ``D x D`` Gram matrix
    (``U^T Y = S^-1 V^T F^T Y``), otherwise through a thin SVD of ``f``."""
    n, d = f.shape
    tol = max(n, d) * np.finfo(np.float64).eps
    if n > d:
        sigma, v = np.linalg.eigh(f.T @ f)
        keep = sigma > sigma[-1] * tol
        v, sigma = v[:, keep], sigma[keep]
        return sigma, (v.T @ class_sums(f, y).T) / np.sqrt(sigma)[:, None]
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s**2 > s[0] ** 2 * tol
    return s[keep] ** 2, class_sums(u[:, keep], y).T


def _moments(
    t: float, sigma: np.ndarray, x2: np.ndarray, rest: float, n: int
) -> tuple[float, float, float, float]:
    """At ``t = alpha / beta``: ``gamma``, ``N - gamma``, ``|m|^2`` and ``|y - F m|^2``, given
    ``x2 = (U^T y)^2`` and ``rest = |y|^2 - sum(x2)``. ``N - gamma`` is summed directly so
    it stays accurate (and positive) as ``t -> 0``."""
    shrink = t / (sigma + t)  # 1 - sigma_i / (sigma_i + t)
    gamma = float(np.sum(1.0 - shrink))
    slack = (n - len(sigma)) + float(np.sum(shrink))
    m2 = float(np.sum(sigma * x2 / (sigma + t) ** 2))
    r2 = float(np.sum(shrink**2 * x2)) + rest
    return gamma, slack, m2, r2


def _log_evidence(
    alpha: float, beta: float, sigma: np.ndarray, x2: np.ndarray, rest: float, n: int
) -> float:
    """``L(alpha, beta)`` of one target (see :func:`logme`), divided by ``N``."""
    t = alpha / beta
    _, _, m2, r2 = _moments(t, sigma, x2, rest, n)
    k = len(sigma)
    # log|A| = (D - k) log(alpha) + sum_i log(alpha + beta sigma_i): the D - k zero eigenvalues
    # of F^T F count too, so D drops out. Written with t = alpha / beta so that the noise-free
    # limit beta -> inf (approached when D >= N) stays finite.
    log_ev = (
        0.5 * k * math.log(alpha)
        + 0.5 * (n - k) * math.log(beta)
        - 0.5 * float(np.sum(np.log(t + sigma)))
        - 0.5 * beta * r2
        - 0.5 * alpha * m2
        - 0.5 * n * math.log(2 * math.pi)
    )
    return log_ev / n


def _max_evidence(
    sigma: np.ndarray, x: np.ndarray, y2: float, n: int, tol: float, max_iter: int
) -> float:
    """Maximise the evidence of one target over ``(alpha, beta)`` by MacKay's fixed point
    ``alpha = gamma / |m|^2``, ``beta = (N - gamma) / |y - F m|^2``."""
    x2 = x**2
    rest = max(y2 - float(np.sum(x2)), 0.0)
    alpha = beta = 1.0
    for _ in range(max_iter):
        t = alpha / beta
        gamma, slack, m2, r2 = _moments(t, sigma, x2, rest, n)
        if m2 <= 0.0 or r2 <= 0.0:  # degenerate target: keep the last finite point
            break
        new_alpha, new_beta = gamma / m2, slack / r2
        new_t = new_alpha / new_beta
        if not 0.0 < new_t < math.inf:
            break
        alpha, beta = new_alpha, new_beta
        if abs(new_t - t) <= tol * t:
            break
    return _log_evidence(alpha, beta, sigma, x2, rest, n)


def logme(
    features: np.ndarray, labels: np.ndarray, *, tol: float = 1e-6, max_iter: int = 200
) -> float:
    r"""LogME (You et al., ICML 2021; fixed-point solver of You et al., JMLR 2022).

    For each class ``c`` the one-vs-rest target ``y_c = 1[labels == c]`` is modelled as
    ``y_c = F w + e`` with prior ``w ~ N(0, alpha^-1 I_D)`` and noise ``e ~ N(0, beta^-1 I_N)``.
    With ``A = alpha I + beta F^T F`` and posterior mean ``m = beta A^-1 F^T y`` the log
    evidence is

    .. math::
        \mathcal{L}(\alpha, \beta) = \tfrac{D}{2}\log\alpha + \tfrac{N}{2}\log\beta
        - \tfrac12\log|A| - \tfrac{\beta}{2}\|y - Fm\|^2 - \tfrac{\alpha}{2}\|m\|^2
        - \tfrac{N}{2}\log 2\pi,

    maximised by iterating ``gamma = sum_i sigma_i / (sigma_i + alpha/beta)``,
    ``alpha = gamma / |m|^2``, ``beta = (N - gamma) / |y - F m|^2`` from ``alpha = beta = 1``
    until ``alpha / beta`` changes by less than ``tol`` (relative). ``sigma_i`` are the
    squared singular values of ``F``: one SVD is shared by all classes, every iteration is
    ``O(min(N, D))``, and ``D > N`` is fine. The score is the mean over classes of
    ``max L / N``; larger means the features fit the labels better with a linear model.

    Args:
        features: ``(N, D)`` features of the target data from the model being ranked.
        labels: ``(N,)`` target class labels (any integers or strings, ``C >= 2`` classes).
        tol: relative change of ``alpha / beta`` that ends the iteration.
        max_iter: cap on fixed-point iterations per class (``tol=1e-3, max_iter=11``
            reproduces the reference code's stopping rule).

    Returns:
        The mean over classes of the per-sample log maximum evidence, a float.
    """
    f = check_features(features)
    y = encode_labels(labels, len(f))
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")
    if not np.any(f):
        raise ValueError("features are all zero: LogME needs features of rank >= 1")
    n = len(f)
    with threadpool_limits(1):  # one BLAS thread: see headstart.select
        sigma, proj = _project(f, y)  # (k,), (k, C)
    sizes = np.bincount(y)  # |y_c|^2 of the 0/1 target of class c
    evidences = [
        _max_evidence(sigma, proj[:, c], float(sizes[c]), n, tol, max_iter)
        for c in range(len(sizes))
    ]
    return float(np.mean(evidences))
