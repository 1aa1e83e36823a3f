"""Transferability scores: rank pre-trained models (or layers) for a target task before
fine-tuning. Pure functions: numpy arrays in, a float out, larger is better.

Feature scores take the frozen features ``(N, D)`` of the target data: :func:`logme`,
:func:`h_score`, :func:`shrinkage_h_score`, :func:`knn_loo_accuracy`,
:func:`linear_probe_accuracy`. Source scores take the source classifier's predictions on the
target data: :func:`leep` (softmax ``(N, Z)``) and :func:`nce` (argmax ``(N,)``).

The dense linear algebra runs on one BLAS thread (``threadpoolctl``): on a small, busy
machine extra OpenBLAS threads only spin; a 512 x 512 eigendecomposition measured 4 s
threaded against 0.08 s on one thread on 2 loaded cores.
"""

from headstart.select._hscore import h_score, shrinkage_h_score
from headstart.select._logme import logme
from headstart.select._probe import knn_loo_accuracy, linear_probe_accuracy
from headstart.select._registry import NEEDS_SOURCE_PROBS, SCORES, score
from headstart.select._source import leep, nce

__all__ = [
    "NEEDS_SOURCE_PROBS",
    "SCORES",
    "h_score",
    "knn_loo_accuracy",
    "leep",
    "linear_probe_accuracy",
    "logme",
    "nce",
    "score",
    "shrinkage_h_score",
]
