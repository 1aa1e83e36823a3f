"""How far apart two datasets are, seen through a backbone's features.

:func:`proxy_a_distance` asks whether a linear classifier can tell the two feature sets
apart at all; :func:`class_mean_shift` says, class by class, how far each class moved.
:func:`domain_shift` runs both on two datasets (features through the feature cache).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from headstart.cache._store import FeatureStore
from headstart.data._dataset import LabeledData
from headstart.data._readers import read_data
from headstart.select._common import balanced_subset, check_features
from headstart.select._rank import at_image_size
from headstart.zoo._backbone import Backbone
from headstart.zoo._registry import create_backbone, get_spec
from headstart.zoo._spec import BackboneSpec


def _pair(source: object, target: object) -> tuple[np.ndarray, np.ndarray]:
    s = check_features(source, "source_features")
    t = check_features(target, "target_features")
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"feature widths differ: source {s.shape[1]}, target {t.shape[1]}")
    return s, t


def domain_classifier_error(
    source_features: np.ndarray, target_features: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    r"""Cross-validated error of a linear classifier telling source rows from target rows.

    Both sets are first cut to the same size ``m = min(N_s, N_t)`` (a seeded random
    subset of the larger), so chance is exactly 1/2. Each of ``folds`` stratified folds
    fits ``StandardScaler`` + ``LogisticRegression`` (L2, ``C=1``) on the rest and scores
    the held-out rows (one BLAS thread); the error is one minus the mean held-out accuracy:

    .. math::
        \mathrm{err} = 1 - \frac{1}{K}\sum_{k=1}^{K} \frac{1}{|T_k|}
        \sum_{i \in T_k} 1[\hat d^{(-k)}(x_i) = d_i], \qquad d_i \in \{\text{source},
        \text{target}\}.

    Args:
        source_features: ``(N_s, D)`` features of the source data.
        target_features: ``(N_t, D)`` features of the target data (same ``D``).
        folds: number of folds ``K >= 2``; needs ``min(N_s, N_t) >= K``.
        seed: seed of the subset and of the fold shuffle.

    Returns:
        The error in ``[0, 1]``: about 0.5 when the sets look alike, 0 when they separate.
    """
    s, t = _pair(source_features, target_features)
    m = min(len(s), len(t))
    if folds < 2 or m < folds:
        raise ValueError(f"need folds >= 2 and at least folds rows per set; got {folds}, {m}")
    rng = np.random.default_rng(seed)
    s = s[np.sort(rng.permutation(len(s))[:m])]
    t = t[np.sort(rng.permutation(len(t))[:m])]
    x = np.concatenate([s, t])
    d = np.repeat([0, 1], m)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):
        accuracy = cross_val_score(model, x, d, cv=cv, scoring="accuracy")
    return float(1.0 - np.mean(accuracy))


def proxy_a_distance(
    source_features: np.ndarray, target_features: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    r"""Proxy A-distance (Ben-David et al., NeurIPS 2006; Ganin et al., JMLR 2016).

    .. math::
        \hat d_{\mathcal A} = 2\,(1 - 2\,\mathrm{err})

    with ``err`` the :func:`domain_classifier_error` of the two feature sets. 0 means a
    linear classifier cannot tell them apart; 2 means it always can. Chance fluctuations
    make it slightly negative now and then for two samples of one distribution.

    Args:
        source_features: ``(N_s, D)`` features of the source data.
        target_features: ``(N_t, D)`` features of the target data (same ``D``).
        folds: cross-validation folds of the domain classifier.
        seed: seed of the balancing subset and of the folds.

    Returns:
        The proxy A-distance, a float in ``[-2, 2]``; larger means further apart.
    """
    err = domain_classifier_error(source_features, target_features, folds, seed)
    return 2.0 * (1.0 - 2.0 * err)


def class_mean_shift(source_features: np.ndarray, target_features: np.ndarray) -> float:
    r"""Distance between the means of one class's source and target features, in units
    of the class's spread.

    With sample means ``mu_s, mu_t``, total variances (unbiased, summed over dimensions)
    ``v_s = tr cov_s``, ``v_t = tr cov_t`` and sizes ``n_s, n_t``:

    .. math::
        \mathrm{shift} = \sqrt{\frac{\max\left(0,\ \|\mu_s - \mu_t\|^2
        - v_s / n_s - v_t / n_t\right)}{(v_s + v_t) / 2}}.

    The numerator is the unbiased estimate of the squared distance between the true
    means (two samples of one distribution give about 0, not ``sqrt(1/n_s + 1/n_t)``);
    the denominator is the mean squared distance of a feature vector from its class
    mean. So 1 means the class moved as far as its examples typically lie from their
    mean. Unchanged by rotating, translating or scaling all features together.

    Args:
        source_features: ``(n_s, D)`` source features of one class, ``n_s >= 2``.
        target_features: ``(n_t, D)`` target features of the same class, ``n_t >= 2``.

    Returns:
        The shift, a float ``>= 0``.
    """
    s, t = _pair(source_features, target_features)
    v_s = float(np.sum(np.var(s, axis=0, ddof=1)))
    v_t = float(np.sum(np.var(t, axis=0, ddof=1)))
    if v_s + v_t <= 0.0:
        raise ValueError("both feature sets are constant: the spread is zero")
    gap2 = float(np.sum((s.mean(axis=0) - t.mean(axis=0)) ** 2)) - v_s / len(s) - v_t / len(t)
    return math.sqrt(max(gap2, 0.0) / ((v_s + v_t) / 2.0))


def _per_class(
    fs: np.ndarray, ys: np.ndarray, ft: np.ndarray, yt: np.ndarray
) -> list[dict[str, Any]]:
    """:func:`class_mean_shift` of every class in both sets (``None`` below 2 examples
    on a side), largest shift first."""
    rows = []
    for c in sorted(set(ys.tolist()) & set(yt.tolist())):
        a, b = fs[ys == c], ft[yt == c]
        shift = class_mean_shift(a, b) if min(len(a), len(b)) >= 2 else None
        rows.append({"class": c, "n_source": len(a), "n_target": len(b), "mean_shift": shift})
    return sorted(rows, key=lambda r: -math.inf if r["mean_shift"] is None else -r["mean_shift"])


def _without_shared(data: LabeledData, keys: set[str]) -> tuple[LabeledData, int]:
    """``data`` without the examples whose content also occurs in the other dataset (an
    example in both sets, with opposite domain labels, would push the domain classifier
    below chance), and how many were dropped."""
    keep = [i for i, k in enumerate(data.keys) if k not in keys]
    if not keep:
        raise ValueError(
            f"every example of {data.source} also occurs in the source data: nothing to compare"
        )
    if len(keep) == len(data.keys):
        return data, 0
    subset = dataclasses.replace(
        data,
        items=[data.items[i] for i in keep],
        labels=data.labels[keep],
        keys=[data.keys[i] for i in keep],
        split=data.split[keep],
    )
    return subset, len(data.keys) - len(keep)


def _labelled_features(
    backbone: Backbone,
    data: LabeledData,
    store: FeatureStore,
    max_items: int | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    keep = balanced_subset(data.labels, max_items, seed)
    feats = store.features(
        backbone,
        [data.items[i] for i in keep],
        [data.keys[i] for i in keep],
        data.modality,
        description=f"features: {data.source}",
    )
    return feats, np.asarray(data.classes, dtype=object)[data.labels[keep]]


def domain_shift(
    source_data: str | os.PathLike[str] | LabeledData,
    target_data: str | os.PathLike[str] | LabeledData,
    model: str | BackboneSpec,
    store: FeatureStore | None = None,
    *,
    layer: str | None = None,
    image_size: int | None = None,
    max_items: int | None = None,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """How different ``target_data`` looks from ``source_data`` through ``model``'s features.

    Every example of each dataset (all splits; at most ``max_items`` per dataset, spread
    over its classes) goes through the backbone, cut after ``layer`` (default: whole),
    via the feature cache; target examples whose bytes also occur in the source are
    left out (counted in ``shared_examples``). The result holds the
    :func:`proxy_a_distance` of the two feature sets (and the domain classifier's
    accuracy behind it) and, for each class name found in both datasets, the
    :func:`class_mean_shift`, largest first, so one sees which classes moved.

    Returns:
        A JSON-ready dict: ``model``, ``layer``, ``feature_dim``, ``source`` / ``target``
        (path, examples), ``proxy_a_distance``, ``domain_accuracy``, ``folds``,
        ``shared_examples``, ``per_class`` (``class``, ``n_source``, ``n_target``, ``mean_shift``),
        ``only_in_source`` and ``only_in_target`` (class names).
    """
    src, tgt = (
        d if isinstance(d, LabeledData) else read_data(d, for_training=False)
        for d in (source_data, target_data)
    )
    spec = model if isinstance(model, BackboneSpec) else get_spec(model)
    for d in (src, tgt):
        if d.modality != spec.modality:
            raise ValueError(f"{spec.name} is a {spec.modality} model; {d.source} is {d.modality}")
    tgt, shared = _without_shared(tgt, set(src.keys))
    spec = at_image_size(spec, image_size)
    backbone = create_backbone(spec, layer=layer)
    backbone.pop_source_head_inplace()
    store = store if store is not None else FeatureStore()
    fs, ys = _labelled_features(backbone, src, store, max_items, seed)
    ft, yt = _labelled_features(backbone, tgt, store, max_items, seed)
    err = domain_classifier_error(fs, ft, folds, seed)  # proxy A-distance = 2 (1 - 2 err)
    return {
        "model": spec.name,
        "layer": backbone.layer,
        "feature_dim": backbone.feature_dim,
        "source": {"data": src.source, "examples": len(fs)},
        "target": {"data": tgt.source, "examples": len(ft)},
        "proxy_a_distance": 2.0 * (1.0 - 2.0 * err),
        "domain_accuracy": 1.0 - err,
        "folds": folds,
        "shared_examples": shared,
        "per_class": _per_class(fs, ys, ft, yt),
        "only_in_source": sorted(set(src.classes) - set(tgt.classes)),
        "only_in_target": sorted(set(tgt.classes) - set(src.classes)),
    }
