"""Transferability scores: hand-worked cases, invariances, separability, D > N behaviour,
LogME against a slow reference, and input validation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from headstart.select import (
    NEEDS_SOURCE_PROBS,
    SCORES,
    h_score,
    knn_loo_accuracy,
    leep,
    linear_probe_accuracy,
    logme,
    nce,
    score,
    shrinkage_h_score,
)

FEATURE_SCORES = sorted(set(SCORES) - NEEDS_SOURCE_PROBS)


def blobs(n: int, d: int, c: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in ``d`` dims, balanced over ``c`` Gaussian blobs (unit noise) whose
    centres are ``N(0, sep^2 I)``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    centres = rng.normal(size=(c, d)) * sep
    return centres[y] + rng.normal(size=(n, d)), y


def source_probs(y: np.ndarray, seed: int) -> np.ndarray:
    """A mock source model with 6 classes: source class ``2 y + {0, 1}`` gets most mass."""
    rng = np.random.default_rng(seed)
    z = 2 * y + rng.integers(0, 2, len(y))
    logits = 3.0 * np.eye(6)[z] + rng.normal(size=(len(y), 6))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------- hand-worked cases


def test_nce_by_hand() -> None:
    # z=0: y = 0, 0, 1 -> H(Y | z=0) = H(2/3, 1/3); z=1: y = 1, 1, 1 -> 0. P(z) = 1/2 each.
    z = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1])
    expected = 0.5 * (2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert nce(z, y) == pytest.approx(expected, rel=1e-12)
    assert nce(y, y) == pytest.approx(0.0, abs=1e-15)  # source labels determine the target
    assert nce(np.zeros(4), [0, 1, 0, 1]) == pytest.approx(-math.log(2))  # no information


def test_leep_by_hand() -> None:
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([0, 0, 1])
    # P(y, z) = [[1.4, 0.6], [0.1, 0.9]] / 3, P(z) = [1/2, 1/2],
    # P(y | z=0) = [14/15, 1/15], P(y | z=1) = [2/5, 3/5].
    # sample 1: 0.8 * 14/15 + 0.2 * 2/5 = 62/75; sample 2: 0.6 * 14/15 + 0.4 * 2/5 = 18/25;
    # sample 3: 0.1 * 1/15 + 0.9 * 3/5 = 41/75.
    expected = (math.log(62 / 75) + math.log(18 / 25) + math.log(41 / 75)) / 3
    assert leep(theta, y) == pytest.approx(expected, rel=1e-12)


def test_leep_with_an_unused_source_class() -> None:
    theta = np.array([[0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    assert leep(theta, [0, 0, 1]) == pytest.approx(leep(theta[:, :2], [0, 0, 1]), rel=1e-12)


def test_h_score_by_hand_1d() -> None:
    # f = 0, 2, 4, 6 (mean 3, variance 20/4 = 5); class means 1, 5 -> between variance 4.
    f = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    assert h_score(f, y) == pytest.approx(4 / 5, rel=1e-12)
    # One feature: Ledoit-Wolf has nothing to shrink (shrinkage 0), so H_a = H.
    assert shrinkage_h_score(f, y) == pytest.approx(4 / 5, rel=1e-12)


def test_h_score_matches_the_covariance_formula() -> None:
    f, y = blobs(80, 5, 3, 1.0, seed=1)
    g = np.zeros_like(f)
    for c in range(3):
        g[y == c] = f[y == c].mean(axis=0)
    expected = np.trace(np.linalg.pinv(np.cov(f, rowvar=False)) @ np.cov(g, rowvar=False))
    assert h_score(f, y) == pytest.approx(expected, rel=1e-9)


def test_shrinkage_h_score_matches_ledoit_wolf_formula() -> None:
    from sklearn.covariance import LedoitWolf

    f, y = blobs(30, 12, 3, 0.5, seed=2)
    lw = LedoitWolf().fit(f)
    g = np.zeros_like(f)
    for c in range(3):
        g[y == c] = f[y == c].mean(axis=0)
    cov_b = np.cov(g, rowvar=False, bias=True)
    expected = (1 - lw.shrinkage_) * np.trace(np.linalg.inv(lw.covariance_) @ cov_b)
    assert 0 < lw.shrinkage_ < 1
    assert shrinkage_h_score(f, y) == pytest.approx(expected, rel=1e-9)


def test_shrinkage_h_score_approaches_h_score_when_n_is_large() -> None:
    f, y = blobs(3000, 4, 3, 1.0, seed=3)
    assert shrinkage_h_score(f, y) == pytest.approx(h_score(f, y), rel=0.01)


# Points on a line (gaps 1, 1.2, 1.3, 1.4, 1.5: no distance ties), labels a a b a b b.
LINE = np.array([[0.0], [1.0], [2.2], [3.5], [4.9], [6.4]])
LINE_Y = np.array(["a", "a", "b", "a", "b", "b"])


def test_knn_loo_by_hand() -> None:
    # k=1: each point takes its nearest neighbour's label: right for 0, 1 and 6.4 only.
    assert knn_loo_accuracy(LINE, LINE_Y, k=1) == pytest.approx(3 / 6)
    # k=3: 0 -> a,b,a; 1 -> a,b,a; 2.2 -> a,a,a (wrong); 3.5 -> b,b,a (wrong);
    # 4.9 -> a,b,b; 6.4 -> b,a,b: four right.
    assert knn_loo_accuracy(LINE, LINE_Y, k=3) == pytest.approx(4 / 6)
    # k=2: every split vote goes to the nearest neighbour, the same as k=1.
    assert knn_loo_accuracy(LINE, LINE_Y, k=2) == pytest.approx(3 / 6)


def test_knn_cosine_uses_direction_only() -> None:
    # Class 0 on the x axis, class 1 on the y axis, radii 0.1 .. 100 (class 1 10% further
    # out), both signs so the mean is 0 and standardising only rescales the axes (to about
    # the same scale). Cosine: every point has same-direction points of its class at
    # cosine 1. Euclidean: the four innermost points are nearer the other axis's innermost
    # points (about 0.0040 apart) than their own mirror images (0.0056): 12 of 16 right.
    radii = np.array([0.1, 1.0, 10.0, 100.0])
    signed = np.concatenate([radii, -radii])
    zeros = np.zeros(8)
    f = np.vstack([np.stack([signed, zeros], 1), np.stack([zeros, 1.1 * signed], 1)])
    y = np.repeat([0, 1], 8)
    assert knn_loo_accuracy(f, y, k=1, metric="cosine") == 1.0
    assert knn_loo_accuracy(f, y, k=1, metric="euclidean") == pytest.approx(12 / 16)


def test_linear_probe_on_separable_and_random_labels() -> None:
    f, y = blobs(60, 4, 3, 4.0, seed=5)
    assert linear_probe_accuracy(f, y) == 1.0
    assert linear_probe_accuracy(f, np.random.default_rng(0).permutation(y)) < 0.7


# ------------------------------------------------------------------------- properties


def _rename(y: np.ndarray) -> list[np.ndarray]:
    """The same partition under other names: a permutation, other integers, strings."""
    perm = np.array([2, 0, 1])
    return [perm[y], 10 * y - 7, np.array([f"class-{v}" for v in perm[y]])]


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_feature_scores_ignore_label_names(name: str) -> None:
    f, y = blobs(45, 6, 3, 1.0, seed=6)
    base = score(name, f, y)
    for renamed in _rename(y):
        assert score(name, f, renamed) == pytest.approx(base, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(NEEDS_SOURCE_PROBS))
def test_source_scores_ignore_label_names_and_source_order(name: str) -> None:
    _, y = blobs(45, 1, 3, 1.0, seed=7)
    p = source_probs(y, seed=7)
    base = score(name, None, y, source_probs=p)
    for renamed in _rename(y):
        assert score(name, None, renamed, source_probs=p) == pytest.approx(base, rel=1e-12)
    shuffled_columns = p[:, [3, 5, 0, 1, 4, 2]]
    assert score(name, None, y, source_probs=shuffled_columns) == pytest.approx(base, rel=1e-12)


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_feature_scores_prefer_separable_blobs(name: str) -> None:
    f, y = blobs(60, 8, 3, 2.0, seed=8)
    shuffled = np.random.default_rng(8).permutation(y)
    good, bad = score(name, f, y), score(name, f, shuffled)
    assert np.isfinite(good) and np.isfinite(bad)
    assert good > bad + 0.3 * abs(bad) + 0.1


@pytest.mark.parametrize("name", sorted(NEEDS_SOURCE_PROBS))
def test_source_scores_prefer_related_labels(name: str) -> None:
    _, y = blobs(90, 1, 3, 1.0, seed=9)
    p = source_probs(y, seed=9)
    shuffled = np.random.default_rng(9).permutation(y)
    good, bad = score(name, None, y, source_probs=p), score(name, None, shuffled, source_probs=p)
    assert bad < good <= 0
    assert good > bad + 0.3


def test_scores_stay_in_their_ranges() -> None:
    f, y = blobs(60, 5, 3, 1.0, seed=10)
    assert 0 <= h_score(f, y) <= 2
    assert 0 <= shrinkage_h_score(f, y) <= h_score(f, y) + 1e-12
    assert 0 <= knn_loo_accuracy(f, y) <= 1
    p = source_probs(y, seed=10)
    assert -math.log(3) <= nce(p.argmax(axis=1), y) <= 0
    assert leep(p, y) <= 0


# -------------------------------------------------------------------------- D > N


def test_logme_finite_and_ranking_when_d_exceeds_n() -> None:
    for seed in range(3):
        f, y = blobs(50, 500, 3, 0.3, seed=seed)
        shuffled = np.random.default_rng(seed).permutation(y)
        good, bad = logme(f, y), logme(f, shuffled)
        assert np.isfinite(good) and np.isfinite(bad)
        assert good > bad + 0.2


def test_shrinkage_h_score_ranks_when_d_exceeds_n_and_plain_h_score_saturates() -> None:
    strong, weak, shuffled = [], [], []
    for seed in range(5):
        f, y = blobs(50, 500, 3, 0.3, seed=seed)
        f_weak, _ = blobs(50, 500, 3, 0.1, seed=seed)
        y_shuffled = np.random.default_rng(seed).permutation(y)
        # D >= N - 1: cov(f) is singular and the plain H-score is C - 1 for *any* labels.
        for g, labels in [(f, y), (f, y_shuffled), (f_weak, y)]:
            assert h_score(g, labels) == pytest.approx(2.0, abs=1e-6)
        strong.append(shrinkage_h_score(f, y))
        weak.append(shrinkage_h_score(f_weak, y))
        shuffled.append(shrinkage_h_score(f, y_shuffled))
    strong, weak, shuffled = map(np.array, (strong, weak, shuffled))
    assert (strong > weak).all() and (strong > shuffled).all()
    gap = strong.mean() - max(weak.mean(), shuffled.mean())
    assert strong.std() < gap / 3  # stable across resamples relative to the gap


# ------------------------------------------------------------- LogME vs a slow reference


def _reference_logme(f: np.ndarray, y: np.ndarray, tol: float = 1e-6, max_iter: int = 200):
    """The same fixed point with explicit ``D x D`` matrices: ``A = alpha I + beta F^T F``,
    ``m = beta A^-1 F^T y``, ``gamma = beta tr(A^-1 F^T F)``, ``log|A|`` by ``slogdet``."""
    n, d = f.shape
    gram = f.T @ f

    def posterior(alpha: float, beta: float, t: np.ndarray):
        a = alpha * np.eye(d) + beta * gram
        m = beta * np.linalg.solve(a, f.T @ t)
        return a, m, beta * np.trace(np.linalg.solve(a, gram))

    evidences = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        alpha = beta = 1.0
        for _ in range(max_iter):
            _, m, gamma = posterior(alpha, beta, t)
            ratio = alpha / beta
            alpha = gamma / (m @ m)
            beta = (n - gamma) / np.sum((t - f @ m) ** 2)
            if abs(alpha / beta - ratio) <= tol * ratio:
                break
        a, m, _ = posterior(alpha, beta, t)
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - 0.5 * np.linalg.slogdet(a)[1]
            - beta / 2 * np.sum((t - f @ m) ** 2)
            - alpha / 2 * (m @ m)
            - n / 2 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


@pytest.mark.parametrize(("n", "d"), [(40, 8), (25, 60)])
def test_logme_matches_slow_reference(n: int, d: int) -> None:
    rng = np.random.default_rng(11)
    f = rng.normal(size=(n, d)) + rng.normal(size=d)
    y = rng.integers(0, 3, n)
    with threadpool_limits(1):  # small dense solves: extra BLAS threads only slow them down
        expected = _reference_logme(f, y)
    assert logme(f, y) == pytest.approx(expected, rel=1e-6)


def test_logme_reference_stopping_rule_is_close_when_n_exceeds_d() -> None:
    # thuml's code stops after 11 iterations or a 1e-3 change; with N > D it has converged.
    f, y = blobs(200, 16, 4, 0.5, seed=14)
    assert logme(f, y, tol=1e-3, max_iter=11) == pytest.approx(logme(f, y), rel=1e-5)


def test_logme_counts_zero_eigenvalues_when_d_exceeds_n() -> None:
    # Zero-padding the features adds zero eigenvalues to F^T F, which log|A| must count:
    # the evidence of the padded model is the same up to nothing (w on the padding is
    # unidentified but integrates out exactly).
    f, y = blobs(20, 30, 2, 1.0, seed=12)
    padded = np.hstack([f, np.zeros((20, 70))])
    assert logme(padded, y) == pytest.approx(logme(f, y), rel=1e-9)


# ------------------------------------------------------------------ registry, validation


def test_registry_and_dispatch() -> None:
    assert set(SCORES) == {
        "logme",
        "leep",
        "nce",
        "h_score",
        "shrinkage_h_score",
        "knn_loo_accuracy",
        "linear_probe_accuracy",
    }
    f, y = blobs(40, 4, 2, 1.0, seed=13)
    p = source_probs(y, seed=13)
    assert score("logme", f, y) == logme(f, y)
    assert score("knn_loo_accuracy", f, y, k=3) == knn_loo_accuracy(f, y, k=3)
    assert score("leep", f, y, source_probs=p) == leep(p, y)
    assert score("nce", f, y, source_probs=p) == nce(p.argmax(axis=1), y)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: score("nope", np.ones((3, 2)), [0, 1, 0]), "unknown score"),
        (lambda: score("leep", np.ones((3, 2)), [0, 1, 0]), "needs source_probs"),
        (lambda: score("nce", None, [0, 1, 0]), "needs source_probs"),
        (lambda: score("logme", None, [0, 1, 0]), "needs features"),
        (lambda: logme(np.ones((4, 2)), [1, 1, 1, 1]), "at least 2 classes"),
        (lambda: logme(np.ones((4, 2)), [0, 1, 0]), "3 entries"),
        (lambda: logme(np.ones(4), [0, 1, 0, 1]), r"shape \(N, D\)"),
        (lambda: logme(np.zeros((4, 2)), [0, 1, 0, 1]), "all zero"),
        (lambda: h_score([[0.0], [np.nan], [1.0]], [0, 1, 0]), "NaN"),
        (lambda: h_score(np.ones((3, 1)), [0.0, np.nan, 1.0]), "NaN"),
        (lambda: h_score(np.ones((3, 1)), [0.0, 0.5, 1.0]), "non-integral"),
        (lambda: h_score(np.ones((4, 1)), [[0, 1], [0, 1]]), r"shape \(N,\)"),
        (lambda: shrinkage_h_score(np.ones((4, 3)), [0, 1, 0, 1]), "constant"),
        (lambda: knn_loo_accuracy(np.eye(4), [0, 1, 0, 1], k=4), "k must be"),
        (lambda: knn_loo_accuracy(np.eye(4), [0, 1, 0, 1], 1, "l1"), "metric"),
        (lambda: linear_probe_accuracy(np.eye(6), [0, 0, 0, 0, 1, 1], folds=3), "at least"),
        (lambda: leep(np.array([[2.0, -1.0], [0.0, 1.0]]), [0, 1]), "negative"),
        (lambda: leep(np.array([[2.0, 1.0], [0.0, 1.0]]), [0, 1]), "sum to 1"),
        (lambda: leep(np.array([[0.5, 0.5], [0.0, 1.0]]), [0, 1, 1]), "2 rows"),
        (lambda: nce([0, 1], [0, 1, 1]), "source_labels must have shape"),
    ],
)
def test_invalid_inputs_raise_value_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
