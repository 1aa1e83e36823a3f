"""Transferability scores: rank pre-trained models (or layers) for a target task before
fine-tuning. Pure functions: numpy arrays in, a float out, larger is better.

Feature scores take the frozen features ``(N, D)`` of the target data: :func:`logme`,
:func:`h_score`, :func:`shrinkage_h_score`, :func:`knn_loo_accuracy`,
:func:`linear_probe_accuracy`. Source scores take the source classifier's predictions on the
target data: :func:`leep` (softmax ``(N, Z)``) and :func:`nce` (argmax ``(N,)``).

The dense linear algebra runs on one BLAS thread (``threadpoolctl``): on a small, busy
machine extra OpenBLAS threads only spin; a 512 x 512 eigendecomposition measured 4 s
threaded against 0.08 s on one thread on 2 loaded cores.

Model and layer selection: :func:`rank` scores every candidate ``(model, layer)`` on the
target data and recommends one, weighing the score against the cost (:func:`recommend`).
Dataset shift: :func:`domain_shift` (with :func:`proxy_a_distance` and
:func:`class_mean_shift`) says how far a target dataset lies from a source dataset.
"""

from headstart.select._hscore import h_score, shrinkage_h_score
from headstart.select._logme import logme
from headstart.select._probe import knn_loo_accuracy, linear_probe_accuracy
from headstart.select._rank import (
    OFFLINE,
    RULE,
    Candidate,
    Ranking,
    auto_layers,
    ms_per_input,
    offline_models,
    rank,
    recommend,
)
from headstart.select._registry import NEEDS_SOURCE_PROBS, SCORES, score
from headstart.select._shift import (
    class_mean_shift,
    domain_classifier_error,
    domain_shift,
    proxy_a_distance,
)
from headstart.select._source import leep, nce

__all__ = [
    "NEEDS_SOURCE_PROBS",
    "OFFLINE",
    "RULE",
    "SCORES",
    "Candidate",
    "Ranking",
    "auto_layers",
    "class_mean_shift",
    "domain_classifier_error",
    "domain_shift",
    "h_score",
    "knn_loo_accuracy",
    "leep",
    "linear_probe_accuracy",
    "logme",
    "ms_per_input",
    "nce",
    "offline_models",
    "proxy_a_distance",
    "rank",
    "recommend",
    "score",
    "shrinkage_h_score",
]
