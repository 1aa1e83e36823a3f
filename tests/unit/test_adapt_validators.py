"""Label-free validators, density ratios and CORAL: hand-worked values and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headstart.adapt import (
    coral_matrix,
    dev,
    domain_classifier_weights,
    effective_sample_size,
    information_maximization,
    iwcv,
    kliep_weights,
    kmm_weights,
    snd,
    target_entropy,
)
from headstart.adapt._choose import Scored, choose, score_all

P = np.array([[0.5, 0.5], [0.25, 0.75]])
Y = np.array([0, 1])


def test_iwcv_by_hand() -> None:
    # losses ln 2 and -ln 0.75, weights 1 and 3
    want = -(1 * math.log(2) + 3 * -math.log(0.75)) / 4
    assert iwcv(P, Y, np.array([1.0, 3.0])) == pytest.approx(want)
    assert iwcv(P, Y, np.ones(2)) == pytest.approx(-(math.log(2) - math.log(0.75)) / 2)


def test_dev_by_hand() -> None:
    w = np.array([1.0, 3.0])
    losses = w * np.array([math.log(2), -math.log(0.75)])
    cov = ((losses[0] - losses.mean()) * (1 - 2) + (losses[1] - losses.mean()) * (3 - 2)) / 1
    eta = -cov / 2.0  # Var(w) with ddof=1: ((1-2)^2 + (3-2)^2) / 1 = 2
    assert dev(P, Y, w) == pytest.approx(-(losses.mean() + eta * 2.0 - eta))
    # equal weights: no control variate, the plain mean loss
    assert dev(P, Y, np.ones(2)) == pytest.approx(iwcv(P, Y, np.ones(2)))


def test_entropy_and_information_maximization_by_hand() -> None:
    uniform = np.full((4, 2), 0.5)
    balanced = np.array([[1.0, 0.0], [0.0, 1.0]])
    collapsed = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert target_entropy(uniform) == pytest.approx(-math.log(2))
    assert target_entropy(balanced) == pytest.approx(0.0)
    assert information_maximization(balanced) == pytest.approx(math.log(2))
    assert information_maximization(collapsed) == pytest.approx(0.0)
    assert information_maximization(uniform) == pytest.approx(0.0)


def test_snd_by_hand() -> None:
    p = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    e = math.e
    row01 = -(e / (e + 1) * math.log(e / (e + 1)) + 1 / (e + 1) * math.log(1 / (e + 1)))
    want = (2 * row01 + math.log(2)) / 3  # row 2 is equally far from both others
    assert snd(p, temperature=1.0) == pytest.approx(want)


def test_validators_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        target_entropy(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="labels must lie"):
        iwcv(P, np.array([0, 2]), np.ones(2))
    with pytest.raises(ValueError, match="at least 2"):
        snd(np.array([[0.5, 0.5]]))


def test_effective_sample_size() -> None:
    assert effective_sample_size(np.ones(4)) == pytest.approx(4.0)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1.0)


def _two_clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    near = rng.normal(0, 1, (100, 3))
    far = rng.normal(6, 1, (100, 3))
    target = rng.normal(0, 1, (150, 3))  # only the "near" cluster
    return np.concatenate([near, far]), target, np.repeat([1, 0], 100).astype(bool)


@pytest.mark.parametrize("estimator", ["kmm", "kliep", "domain"])
def test_density_ratios_weight_the_target_like_cluster(estimator: str) -> None:
    source, target, near = _two_clusters()
    if estimator == "kmm":
        w = kmm_weights(source, target)
    elif estimator == "kliep":
        w, _ = kliep_weights(source, target)
    else:
        w = domain_classifier_weights(source, target, source)
    assert w.shape == (200,) and (w >= 0).all()
    assert w[near].mean() > 5 * w[~near].mean()


def test_coral_matrix_recolours_to_the_target_covariance() -> None:
    rng = np.random.default_rng(0)
    xs = rng.normal(0, 1, (4000, 2)) * [1.0, 3.0]
    xt = rng.normal(0, 1, (4000, 2)) @ np.array([[2.0, 0.5], [0.0, 1.0]])
    a = coral_matrix(xs, xt, reg=1e-8)
    np.testing.assert_allclose(np.cov(xs @ a, rowvar=False), np.cov(xt, rowvar=False), atol=0.05)


def _scored(target: np.ndarray, val: np.ndarray) -> Scored:
    return Scored(val, target)


def test_choose_keeps_source_only_when_nothing_beats_it() -> None:
    rng = np.random.default_rng(0)
    pt = rng.dirichlet([1, 1, 1], 60)
    pv = rng.dirichlet([1, 1, 1], 20)
    yv, wv = rng.integers(0, 3, 20), np.ones(20)
    same = {"source_only": _scored(pt, pv), "coral": _scored(pt, pv)}
    scores = score_all(same, yv, wv)
    out = choose(scores, same, "im", yv, wv)
    assert out["chosen"] == "source_only" and "keeping source_only" in out["message"]
    # a candidate with confident, balanced target predictions wins by IM
    sharp = np.eye(3)[np.arange(60) % 3] * 0.98 + 0.02 / 3
    better = {**same, "coral": _scored(sharp, pv)}
    out = choose(score_all(better, yv, wv), better, "im", yv, wv)
    assert out["chosen"] == "coral" and out["gain"] > 2 * out["gain_se"]
    with pytest.raises(ValueError, match="unknown validator"):
        choose(scores, same, "accuracy", yv, wv)


def test_reverse_validation_catches_consistent_but_wrong_target_labels() -> None:
    from headstart.adapt import reverse_validation_hits

    rng = np.random.default_rng(0)
    xt = np.concatenate([rng.normal(-2, 0.5, (50, 1)), rng.normal(2, 0.5, (50, 1))])
    xs = np.concatenate([rng.normal(-2, 0.5, (20, 1)), rng.normal(2, 0.5, (20, 1))])
    ys = np.repeat([0, 1], 20)
    right = np.repeat([0, 1], 50)
    assert reverse_validation_hits(xt, right, xs, ys).mean() == pytest.approx(1.0)
    assert reverse_validation_hits(xt, 1 - right, xs, ys).mean() == pytest.approx(0.0)
    one = reverse_validation_hits(xt, np.zeros(100, int), xs, ys)  # collapsed: g says 0
    np.testing.assert_array_equal(one, ys == 0)


def test_im_rv_sets_aside_confident_wrong_candidates() -> None:
    pv = np.full((4, 2), 0.5)
    yv, wv = np.array([0, 1, 0, 1]), np.ones(4)
    sharp = np.eye(2)[np.arange(40) % 2] * 0.98 + 0.01
    soft = np.full((40, 2), 0.5)
    scored = {
        "source_only": Scored(pv, soft, np.array([1.0, 1, 0, 0])),
        "wrong": Scored(pv, sharp, np.array([0.0, 0, 0, 0])),  # sharp, balanced, RV 0
    }
    scores = score_all(scored, yv, wv)
    assert scores["wrong"]["im"] > scores["source_only"]["im"]
    out = choose(scores, scored, "im+rv", yv, wv)
    assert out["chosen"] == "source_only" and out["gated_out"] == ["wrong"]
    assert choose(scores, scored, "im", yv, wv)["chosen"] == "wrong"  # IM alone is fooled


def test_alignment_methods_change_nothing_when_the_domains_are_one() -> None:
    from headstart.adapt import AdaptTask, get_adapt_method
    from headstart.adapt._head import head_proba

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    x = (rng.normal(0, 1, (120, 6)) + np.eye(3, 6)[y] * 3).astype(np.float32)
    task = AdaptTask(x, y, x, y, x.copy(), 3)
    base = head_proba(get_adapt_method("source_only").fn(task, None).head, x)
    for name in ("mean_var", "coral"):
        info = get_adapt_method(name)
        cand = info.fn(task, info.config_cls())
        np.testing.assert_allclose(head_proba(cand.head, x), base, atol=1e-4)
        np.testing.assert_allclose(cand.source_map(x), x, atol=1e-4)


def test_cdan_map_and_entropy_weights_by_hand() -> None:
    """f = [1, 2], g = softmax([0, 0]) = [.5, .5]: f (x) g = [.5, 1, .5, 1] (class-major).
    Entropy weights: a uniform row has H = log 2, w = 1 + 1/2 = 1.5; a near one-hot row
    (logits 0, 20) has H ~ 0, w ~ 2; normalised to mean 1: [1.5, 2] / 1.75."""
    import torch

    from headstart.adapt import cdan_map, entropy_weights

    f = torch.tensor([[1.0, 2.0]], requires_grad=True)
    z = torch.zeros(1, 2, requires_grad=True)
    m = cdan_map(f, z)
    assert m.tolist() == [[0.5, 1.0, 0.5, 1.0]]
    m.sum().backward()  # d/df of sum_k g_k f = sum_k g_k = 1; nothing flows into z
    assert f.grad.tolist() == [[1.0, 1.0]] and z.grad is None
    w = entropy_weights(torch.tensor([[0.0, 0.0], [0.0, 20.0]]))
    np.testing.assert_allclose(w.numpy(), np.array([1.5, 2.0]) / 1.75, atol=1e-3)
