"""Fitting a new head on cached features: logistic regression or a small torch network.

Both produce a torch module (``Standardize`` then the classifier), so every head is saved,
loaded and fine-tuned the same way, and no pickle is ever needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.surgery._model import Standardize, make_head
from headstart.train._callbacks import EarlyStopping, History, ProgressBar
from headstart.train._engine import CrossEntropy, TensorStream, fit_stage
from headstart.train._schedule import Stage


def logistic_c_sweep(
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    cs: tuple[float, ...],
    seed: int = 0,
    max_iter: int = 2000,
) -> tuple[Any, list[dict[str, Any]]]:
    """Multinomial logistic regression at each ``C`` in ``cs`` (dense or sparse ``x``); the
    one with the best validation accuracy (training accuracy without validation data, the
    first on ties) and one history row per ``C`` (``chosen`` marks the kept one)."""
    from sklearn.linear_model import LogisticRegression

    history: list[dict[str, Any]] = []
    best: tuple[float, Any] | None = None
    for c in cs:
        start = time.perf_counter()
        # One BLAS thread: on problems this small extra threads only spin (30x slower
        # measured on 2 busy cores).
        with single_thread():
            clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
            clf.fit(x_train, y_train)
        train_acc = float(clf.score(x_train, y_train))
        val_acc = float(clf.score(x_val, y_val)) if len(y_val) else train_acc
        history.append(
            {
                "stage": "head",
                "C": c,
                "train_acc": train_acc,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        if best is None or val_acc > best[0]:
            best = (val_acc, clf)
    assert best is not None
    for row in history:
        row["chosen"] = row["C"] == best[1].C
    return best[1], history


def fit_logistic_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    seed: int = 0,
    cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
) -> tuple[nn.Sequential, list[dict[str, Any]]]:
    """Multinomial logistic regression on standardised features, ``C`` chosen on the
    validation split (training accuracy breaks ties when there is no validation data).
    Returns the head (``make_head`` with no hidden layer and no dropout) and one history
    row per ``C``."""

    std = Standardize.fit(x_train)
    xt = (x_train - std.mean.numpy()) / std.scale.numpy()
    xv = (x_val - std.mean.numpy()) / std.scale.numpy()
    clf, history = logistic_c_sweep(xt, y_train, xv, y_val, cs, seed)
    head = make_head(xt.shape[1], n_classes, hidden=(), dropout=0.0)
    head[0] = std
    linear = head[-1]
    w = np.zeros((n_classes, xt.shape[1]), dtype=np.float32)
    b = np.zeros(n_classes, dtype=np.float32)
    if clf.coef_.shape[0] == 1:  # binary: softmax([0, z]) == [1 - sigmoid(z), sigmoid(z)]
        w[clf.classes_[1]] = clf.coef_[0]
        b[clf.classes_[1]] = clf.intercept_[0]
    else:
        w[clf.classes_] = clf.coef_
        b[clf.classes_] = clf.intercept_
    if len(clf.classes_) < n_classes:  # classes absent from training never win
        absent = np.setdiff1d(np.arange(n_classes), clf.classes_)
        b[absent] = -1e4
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w))
        linear.bias.copy_(torch.from_numpy(b))
    return head, history


@contextmanager
def single_thread() -> Iterator[None]:
    """Run small dense work on one thread (torch and BLAS): on heads this size extra threads
    only synchronise (8x slower measured on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


def fit_feature_head(
    head: nn.Module,
    stage: Stage,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int = 0,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Train ``head`` (in place) on features with the one loop (:func:`fit_stage`: AdamW,
    cross-entropy, early stopping on validation accuracy); the best epoch's weights are
    restored. Without validation data the training features are monitored. Returns the
    per-epoch history, epoch 1 first."""
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    xv, yv = (torch.from_numpy(x_val), torch.from_numpy(y_val).long()) if len(x_val) else (xt, yt)

    def validate(model: nn.Module) -> dict[str, float]:
        with torch.inference_mode():
            logits = model(xv)
        loss = float(nn.functional.cross_entropy(logits, yv))
        return {"val_loss": loss, "val_acc": float((logits.argmax(1) == yv).float().mean())}

    history = History()
    callbacks = [
        history,
        EarlyStopping(stage.patience, history),
        ProgressBar(f"head ({stage.name})", lines=False),
    ]
    with single_thread():
        fit_stage(
            head,
            stage,
            {"train": TensorStream(xt, yt, batch_size)},
            CrossEntropy(),
            callbacks,
            validate,
            seed=seed,
            evaluate_start=False,
        )
    return history.rows


def fit_head_on_features(
    head: nn.Sequential,
    stage: Stage,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train a :func:`make_head` head (in place) to convergence on features.

    A linear head (no hidden layer) is fit exactly, as a logistic regression with ``C``
    picked on validation (:func:`fit_logistic_head`); a deeper head by AdamW with early
    stopping (:func:`fit_feature_head`, ``stage`` gives its learning rate and epochs).
    Either way ``head[0]`` is set to standardise with the training features' statistics.
    """
    linears = [m for m in head if isinstance(m, nn.Linear)]
    if len(linears) == 1:
        fitted, history = fit_logistic_head(
            x_train, y_train, x_val, y_val, linears[0].out_features, seed
        )
        head[0] = fitted[0]
        linears[0].load_state_dict(fitted[-1].state_dict())
        return [{**row, "stage": stage.name} for row in history]
    head[0] = Standardize.fit(x_train)
    return fit_feature_head(head, stage, x_train, y_train, x_val, y_val, seed)
