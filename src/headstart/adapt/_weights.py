"""Importance weights of source examples for the target: kernel mean matching and KLIEP.

Both estimate :math:`w(x) = p_T(x) / p_S(x)` at the source points from unlabelled
target features only; a head is then fit with those example weights (instance
transfer). Features are standardised with the pooled statistics first and the Gaussian
kernel's width is the median heuristic unless given.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def _standardise(xs: np.ndarray, xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([xs, xt]).astype(np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    return (xs - mean) / scale, (xt - mean) / scale


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, ``(len(a), len(b))``, never negative."""
    d = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def median_gamma(x: np.ndarray, seed: int = 0, n: int = 500) -> float:
    r"""The median heuristic: :math:`\gamma = 1 / \mathrm{median}_{i<j} \|x_i - x_j\|^2`
    over at most ``n`` seeded rows, so ``exp(-gamma d^2)`` is ``1/e`` at the median."""
    rng = np.random.default_rng(seed)
    sub = x[rng.permutation(len(x))[:n]]
    d = sq_distances(sub, sub)[np.triu_indices(len(sub), 1)]
    med = float(np.median(d)) if len(d) else 1.0
    return 1.0 / max(med, _EPS)


def kmm_weights(
    source: np.ndarray,
    target: np.ndarray,
    gamma: float | None = None,
    bound: float = 10.0,
    epsilon: float | None = None,
    iterations: int = 500,
    seed: int = 0,
) -> np.ndarray:
    r"""Kernel mean matching (Huang et al., NeurIPS 2006).

    With a Gaussian kernel :math:`k(a, b) = \exp(-\gamma\|a-b\|^2)`, ``n_s`` source and
    ``n_t`` target rows, :math:`K_{ij} = k(x^s_i, x^s_j)` and
    :math:`\kappa_i = \frac{n_s}{n_t}\sum_j k(x^s_i, x^t_j)`, the weights solve

    .. math::
        \min_\beta\ \tfrac12 \beta^\top K \beta - \kappa^\top \beta \quad\text{s.t.}\quad
        0 \le \beta_i \le B,\ \ \Big|\sum_i \beta_i - n_s\Big| \le n_s \epsilon,

    so the weighted source mean embedding matches the target's. Solved by accelerated
    projected gradient (``iterations`` steps of size ``1/L``, ``L`` the largest
    eigenvalue of ``K``; the projection onto the box-and-sum set by bisection).
    ``epsilon`` defaults to :math:`(\sqrt{n_s} - 1)/\sqrt{n_s}`, the paper's choice.

    Returns:
        ``(n_s,)`` non-negative weights with mean 1.
    """
    xs, xt = _standardise(np.asarray(source), np.asarray(target))
    ns, nt = len(xs), len(xt)
    g = gamma if gamma is not None else median_gamma(np.concatenate([xs, xt]), seed)
    k = np.exp(-g * sq_distances(xs, xs))
    kappa = (ns / nt) * np.exp(-g * sq_distances(xs, xt)).sum(1)
    eps = epsilon if epsilon is not None else (np.sqrt(ns) - 1) / np.sqrt(ns)
    lo, hi = ns * (1 - eps), ns * (1 + eps)
    lipschitz = float(np.linalg.eigvalsh(k)[-1])
    beta = np.ones(ns)
    y, t = beta.copy(), 1.0
    for _ in range(iterations):
        nxt = _project_box_sum(y - (k @ y - kappa) / lipschitz, bound, lo, hi)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = nxt + ((t - 1) / t_next) * (nxt - beta)
        beta, t = nxt, t_next
    return beta / max(float(beta.mean()), _EPS)


def _project_box_sum(v: np.ndarray, bound: float, lo: float, hi: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{0 <= b <= bound, lo <= sum(b) <= hi}``:
    ``clip(v - s, 0, bound)`` with the shift ``s`` found by bisection."""
    b = np.clip(v, 0.0, bound)
    total = b.sum()
    if lo <= total <= hi:
        return b
    goal = lo if total < lo else hi
    a, c = float(v.min() - bound), float(v.max())
    for _ in range(60):
        s = (a + c) / 2
        if np.clip(v - s, 0.0, bound).sum() > goal:
            a = s
        else:
            c = s
    return np.clip(v - (a + c) / 2, 0.0, bound)


def kliep_weights(
    source: np.ndarray,
    target: np.ndarray,
    gammas: tuple[float, ...] | None = None,
    centres: int = 100,
    iterations: int = 300,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    r"""KLIEP: the Kullback-Leibler importance estimation procedure (Sugiyama et al.,
    NeurIPS 2007).

    The ratio is a non-negative mix of Gaussians on ``centres`` target rows
    :math:`c_l`, :math:`w(x) = \sum_l \alpha_l \exp(-\gamma\|x - c_l\|^2)`, fit to
    maximise the target log-likelihood under the normalisation of the source:

    .. math::
        \max_{\alpha \ge 0}\ \frac1{n_t}\sum_j \log w(x^t_j) \quad\text{s.t.}\quad
        \frac1{n_s}\sum_i w(x^s_i) = 1,

    by projected gradient ascent (the paper's algorithm). The width ``gamma`` is chosen
    among ``gammas`` (default: the median heuristic times 1/4, 1/2, 1, 2, 4) by
    likelihood cross-validation on ``folds`` folds of the *target*: no label is used.

    Returns:
        ``(weights, gamma)``: ``(n_s,)`` weights with mean 1, and the chosen width.
    """
    xs, xt = _standardise(np.asarray(source), np.asarray(target))
    rng = np.random.default_rng(seed)
    g0 = median_gamma(np.concatenate([xs, xt]), seed)
    grid = gammas if gammas is not None else tuple(g0 * f for f in (0.25, 0.5, 1.0, 2.0, 4.0))
    fold = rng.permutation(len(xt)) % max(2, min(folds, len(xt)))
    best: tuple[float, float] | None = None
    for g in grid:
        score = 0.0
        for f in np.unique(fold):
            fit, held = xt[fold != f], xt[fold == f]
            c = fit[rng.permutation(len(fit))[:centres]]
            alpha = _kliep_alpha(
                np.exp(-g * sq_distances(fit, c)), np.exp(-g * sq_distances(xs, c)), iterations
            )
            score += float(np.log(np.exp(-g * sq_distances(held, c)) @ alpha + _EPS).mean())
        if best is None or score > best[0]:
            best = (score, g)
    assert best is not None
    g = best[1]
    c = xt[rng.permutation(len(xt))[:centres]]
    alpha = _kliep_alpha(
        np.exp(-g * sq_distances(xt, c)), np.exp(-g * sq_distances(xs, c)), iterations
    )
    w = np.exp(-g * sq_distances(xs, c)) @ alpha
    return w / max(float(w.mean()), _EPS), g


def _kliep_alpha(a: np.ndarray, phi_s: np.ndarray, iterations: int) -> np.ndarray:
    """Projected gradient ascent of KLIEP: ``a`` (n_t, b) target kernel values,
    ``phi_s`` (n_s, b) source ones; returns ``alpha`` (b,)."""
    b = phi_s.mean(0)
    alpha = np.ones(a.shape[1])
    alpha /= b @ alpha + _EPS
    step = 1e-3 * a.shape[1]
    for _ in range(iterations):
        alpha = alpha + step * (a.T @ (1.0 / (a @ alpha + _EPS))) / len(a)
        alpha = alpha + (1 - b @ alpha) * b / max(float(b @ b), _EPS)
        alpha = np.maximum(alpha, 0.0)
        alpha /= max(float(b @ alpha), _EPS)
    return alpha


__all__ = ["kliep_weights", "kmm_weights", "median_gamma", "sq_distances"]
