"""Fitting a new head on cached features: logistic regression or a small torch network.

Both produce a torch module (``Standardize`` then the classifier), so every head is saved,
loaded and fine-tuned the same way, and no pickle is ever needed.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.surgery._model import Standardize, make_head
from headstart.train._callbacks import EarlyStopping, History, ProgressBar
from headstart.train._engine import CrossEntropy, TensorStream, fit_stage
from headstart.train._schedule import Stage

C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 2, 11))
"""Inverse regularisation strengths tried by the logistic head: 10^-3 to 10^2, half a
decade apart (``bench/recipe_ablation.py`` measured it against the old four-value grid)."""

CV_MAX_EXAMPLES = 2000
"""Up to this many labelled non-test examples, settings are chosen by stratified k-fold
cross-validation over all of them; above it, by the validation split (the folds would
cost more than the estimate gains)."""

CV_FOLDS = 5


@dataclass(frozen=True)
class Selection:
    """How a head's setting was chosen and the estimate of its accuracy.

    ``by``: ``"cross-validation"`` (``folds`` folds over train + validation),
    ``"validation"`` (fit on train, scored on the validation split) or ``"training"`` (no
    held-out data: training accuracy, an optimistic number); ``score``: that accuracy of
    the chosen setting; ``chosen``: the setting (``{"C": ...}`` or ``{"epochs": ...}``);
    ``refit``: the final model was refit on train + validation with it (scikit-learn's
    ``refit=True``), so the validation split is training data of the final model.
    """

    by: str
    score: float
    chosen: dict[str, Any]
    refit: bool
    n_fit: int
    folds: int = 0

    @property
    def label(self) -> str:
        """What ``score`` is, in words (never "test accuracy")."""
        if self.by == "cross-validation":
            return f"{self.folds}-fold cross-validated accuracy"
        if self.by == "validation":
            return "validation accuracy" + (" (before the refit)" if self.refit else "")
        return "training accuracy (no held-out data)"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "label": self.label}


@dataclass
class HeadFit:
    """A fitted feature head, one history row per setting or epoch, and its selection."""

    head: nn.Sequential
    history: list[dict[str, Any]]
    selection: Selection


def _folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds (at most :data:`CV_FOLDS`, at least 2 examples of every class
    needed), or ``[]`` when some class has fewer than 2 examples."""
    from sklearn.model_selection import StratifiedKFold

    present = np.bincount(y)[np.unique(y)]
    k = min(CV_FOLDS, int(present.min())) if len(present) else 0
    if k < 2 or len(np.unique(y)) < 2:
        return []
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _c_path(x: Any, y: np.ndarray, cs: Sequence[float], seed: int, max_iter: int) -> Iterator:
    """Yield ``(C, fitted classifier)`` along ``cs`` (ascending), warm-started: each fit
    starts from the previous solution (the same optimum, reached in fewer iterations)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=max_iter, random_state=seed, warm_start=True)
    for c in sorted(cs):
        clf.set_params(C=c)
        # One BLAS thread: on problems this small extra threads only spin (30x slower
        # measured on 2 busy cores).
        with single_thread():
            clf.fit(x, y)
        yield c, clf


def _accuracy(clf: Any, x: Any, y: np.ndarray) -> float:
    return float((clf.predict(x) == y).mean())


def logistic_c_sweep(
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    cs: Sequence[float] = C_GRID,
    seed: int = 0,
    max_iter: int = 2000,
    *,
    cv: bool | str = False,
    refit: bool = False,
) -> tuple[Any, list[dict[str, Any]], Selection]:
    """Multinomial logistic regression (dense or sparse ``x``) at each ``C`` of ``cs``;
    the chosen classifier, one history row per ``C`` (``chosen`` marks the kept one) and
    the :class:`Selection`.

    ``C`` is chosen by stratified k-fold cross-validation over train + validation when
    ``cv`` is true (``"auto"``: when there are at most :data:`CV_MAX_EXAMPLES` of them),
    else by the validation split, else (no validation data) by training accuracy. Ties go
    to the *weakest* regularisation (the largest ``C``): measured best over the recipe
    benchmark's tasks and sizes. With ``refit`` the final model is fit on train +
    validation at the chosen ``C``, along the same warm-started path (every ``C`` of
    ``cs`` up to the chosen one) that the folds scored: at weak regularisation lbfgs stops
    short of the optimum, so a cold fit at a large ``C`` is another model than the one the
    folds measured (on MNIST at 100 labels per class, 0.910 cold vs 0.927 on the path).
    """
    import scipy.sparse as sp

    stack = sp.vstack if sp.issparse(x_train) else np.concatenate
    x_all = stack([x_train, x_val]) if len(y_val) else x_train
    y_all = np.concatenate([y_train, y_val])
    use_cv = bool(cv) and (cv != "auto" or len(y_all) <= CV_MAX_EXAMPLES)
    folds = _folds(y_all, seed) if use_cv else []
    history: list[dict[str, Any]] = []
    fitted: dict[float, Any] = {}
    start = time.perf_counter()
    for c, clf in _c_path(x_train, y_train, cs, seed, max_iter):
        row = {"stage": "head", "C": c, "train_acc": _accuracy(clf, x_train, y_train)}
        if len(y_val):
            row["val_acc"] = _accuracy(clf, x_val, y_val)
        fitted[c] = copy.deepcopy(clf)
        history.append(row)
    if folds:
        scores = np.zeros((len(folds), len(history)))
        for f, (tr, te) in enumerate(folds):
            for j, (_, clf) in enumerate(_c_path(x_all[tr], y_all[tr], cs, seed, max_iter)):
                scores[f, j] = _accuracy(clf, x_all[te], y_all[te])
        for row, mean in zip(history, scores.mean(0), strict=True):
            row["cv_acc"] = float(mean)
        by, key = "cross-validation", "cv_acc"
    elif len(y_val):
        by, key = "validation", "val_acc"
    else:
        by, key = "training", "train_acc"
    best = max(row[key] for row in history)
    chosen = [row for row in history if row[key] >= best - 1e-12][-1]  # ties: largest C
    for row in history:
        row["chosen"] = row is chosen
        row["seconds"] = (time.perf_counter() - start) / len(history)
    refit = refit and (by != "training")
    clf = fitted[chosen["C"]]
    if refit:  # the same warm-started path the folds scored, stopped at the chosen C
        path = [c for c in cs if c <= chosen["C"]]
        clf = list(_c_path(x_all, y_all, path, seed, max_iter))[-1][1]
    n_fit = len(y_all) if refit else len(y_train)
    selection = Selection(by, float(best), {"C": chosen["C"]}, refit, n_fit, len(folds))
    return clf, history, selection


def fit_logistic_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    seed: int = 0,
    cs: Sequence[float] = C_GRID,
    *,
    cv: bool | str = False,
    refit: bool = False,
    standardize: bool = False,
) -> HeadFit:
    """Multinomial logistic regression on the features, ``C`` chosen by
    :func:`logistic_c_sweep` (``cv``, ``refit`` as there). Features enter as they are
    unless ``standardize`` (per-feature z-scores from the fitting data): on pooled
    backbone features standardising cost 2-6 points at 5-20 examples per class in the
    recipe benchmark. Returns the head (``make_head`` with no hidden layer and no dropout),
    one history row per ``C`` and the selection."""
    x_fit = np.concatenate([x_train, x_val]) if refit and len(y_val) else x_train
    std = Standardize.fit(x_fit) if standardize else Standardize.identity(x_train.shape[1])
    mean, scale = std.mean.numpy(), std.scale.numpy()
    xt, xv = (x_train - mean) / scale, (x_val - mean) / scale
    clf, history, selection = logistic_c_sweep(xt, y_train, xv, y_val, cs, seed, cv=cv, refit=refit)
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
    return HeadFit(head, history, selection)


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
    *,
    refit: bool = False,
    cv: bool | str = False,
    standardize: bool | None = None,
) -> HeadFit:
    """Train a :func:`make_head` head (in place) to convergence on features.

    A linear head (no hidden layer) is fit exactly, as a logistic regression with ``C``
    chosen by :func:`logistic_c_sweep` (``cv``: cross-validation over train + validation;
    ``refit``: the final head fit on train + validation); features enter as they are
    unless ``standardize``. A deeper head trains by AdamW with early stopping on the
    validation split (:func:`fit_feature_head`, ``stage`` gives its learning rate and
    epochs) on standardised features (``standardize`` defaults to true for it); with
    ``refit`` it is then trained again from the same initialisation on train +
    validation for the best epoch count.
    """
    linears = [m for m in head if isinstance(m, nn.Linear)]
    if len(linears) == 1:
        fit = fit_logistic_head(
            x_train,
            y_train,
            x_val,
            y_val,
            linears[0].out_features,
            seed,
            cv=cv,
            refit=refit,
            standardize=bool(standardize),
        )
        head[0] = fit.head[0]
        linears[0].load_state_dict(fit.head[-1].state_dict())
        rows = [{**row, "stage": stage.name} for row in fit.history]
        return HeadFit(head, rows, fit.selection)
    refit = refit and len(y_val) > 0
    x_all = np.concatenate([x_train, x_val]) if refit else x_train
    y_all = np.concatenate([y_train, y_val])
    if standardize is not False:
        head[0] = Standardize.fit(x_train)
    start = copy.deepcopy(head.state_dict())
    rows = fit_feature_head(head, stage, x_train, y_train, x_val, y_val, seed)
    best = [r for r in rows if r.get("best")] or rows[-1:]
    epochs = int(best[0]["epoch"]) if best else stage.max_epochs
    by = "validation" if len(y_val) else "training"
    score = float(best[0]["val_acc"]) if best else float("nan")
    if refit:
        head.load_state_dict(start)
        if standardize is not False:
            head[0] = Standardize.fit(x_all)
        again = dataclasses.replace(stage, max_epochs=max(epochs, 1), patience=max(epochs, 1) + 1)
        last = fit_feature_head(head, again, x_all, y_all, x_all[:0], y_all[:0], seed)
        rows += [{**r, "refit": True, "best": False} for r in last]
    selection = Selection(
        by, score, {"epochs": epochs}, refit, len(y_all) if refit else len(y_train)
    )
    return HeadFit(head, rows, selection)
