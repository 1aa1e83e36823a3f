"""A logistic-regression head fit with example weights, as a bundle-ready torch head.

Every feature-level adaptation ends here: the source features (transformed, or with
importance weights, or with pseudo-labelled target rows added) train a multinomial
logistic regression whose ``C`` is chosen on held-out *source* validation data (weighted
accuracy when weights are given). The result is a :func:`~headstart.surgery.make_head`
module (``Standardize`` then ``Linear``), saved and loaded as any ``fit`` head.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.surgery._model import Standardize, make_head
from headstart.train._heads import single_thread

CS: tuple[float, ...] = (0.01, 0.1, 1.0)


def fit_weighted_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    weights: np.ndarray | None = None,
    val_weights: np.ndarray | None = None,
    seed: int = 0,
    cs: tuple[float, ...] = CS,
) -> tuple[nn.Sequential, list[dict[str, Any]]]:
    r"""Logistic regression on standardised ``x_train`` with per-example ``weights``
    (default 1), at each ``C`` in ``cs``; the kept one maximises the weighted validation
    accuracy :math:`\sum_i v_i 1[\hat y_i = y_i] / \sum_i v_i` (``v``: ``val_weights``,
    default 1; the first ``C`` on ties). Returns the head and one history row per ``C``."""
    from sklearn.linear_model import LogisticRegression

    std = Standardize.fit(x_train)
    mean, scale = std.mean.numpy(), std.scale.numpy()
    xt, xv = (x_train - mean) / scale, (x_val - mean) / scale
    w = np.ones(len(xt)) if weights is None else np.asarray(weights, dtype=np.float64)
    v = np.ones(len(xv)) if val_weights is None else np.asarray(val_weights, dtype=np.float64)
    history: list[dict[str, Any]] = []
    best: tuple[float, Any] | None = None
    for c in cs:
        with single_thread():
            clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
            clf.fit(xt, y_train, sample_weight=w * (len(w) / w.sum()))
        val_acc = float((v * (clf.predict(xv) == y_val)).sum() / max(v.sum(), 1e-12))
        train_acc = float((w * (clf.predict(xt) == y_train)).sum() / w.sum())
        history.append({"stage": "head", "C": c, "train_acc": train_acc, "val_acc": val_acc})
        if best is None or val_acc > best[0]:
            best = (val_acc, clf)
    assert best is not None
    for row in history:
        row["chosen"] = row["C"] == best[1].C
    return linear_head(best[1], std, n_classes), history


def linear_head(clf: Any, std: Standardize, n_classes: int) -> nn.Sequential:
    """A fitted scikit-learn ``LogisticRegression`` as ``make_head(dim, n_classes)``:
    ``std`` first, the coefficients in the linear layer (classes absent from training
    get a bias of -1e4, so they never win)."""
    dim = int(std.mean.numel())
    head = make_head(dim, n_classes, hidden=(), dropout=0.0)
    head[0] = std
    w = np.zeros((n_classes, dim), dtype=np.float32)
    b = np.full(n_classes, -1e4, dtype=np.float32)
    if clf.coef_.shape[0] == 1:  # binary: softmax([0, z]) == [1 - sigmoid(z), sigmoid(z)]
        b[clf.classes_[0]] = 0.0
        w[clf.classes_[1]], b[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        w[clf.classes_], b[clf.classes_] = clf.coef_, clf.intercept_
    with torch.no_grad():
        head[-1].weight.copy_(torch.from_numpy(w))
        head[-1].bias.copy_(torch.from_numpy(b))
    return head


def head_proba(head: nn.Module, x: np.ndarray) -> np.ndarray:
    """Softmax probabilities of ``head`` on features ``x``, ``(N, K)`` float64."""
    head.eval()
    with torch.inference_mode():
        logits = head(torch.from_numpy(np.asarray(x, dtype=np.float32))).double()
    return torch.softmax(logits, 1).numpy()


__all__ = ["CS", "fit_weighted_head", "head_proba", "linear_head"]
