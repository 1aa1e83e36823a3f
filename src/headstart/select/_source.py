"""Scores from the source model's predictions on the target data: LEEP and NCE.

Both need the pre-trained *classifier* (its source-label head), not only its features:
LEEP reads the softmax ``theta(x)`` over the ``Z`` source classes, NCE its argmax.
"""

from __future__ import annotations

import numpy as np

from headstart.select._common import check_probabilities, class_sums, encode_labels


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    r"""LEEP, the log expected empirical prediction (Nguyen et al., ICML 2020).

    With ``theta(x_i)`` the source model's softmax over ``Z`` source classes, the empirical
    joint of target label ``y`` and source label ``z`` and the conditional are

    .. math::
        \hat P(y, z) = \frac1N \sum_{i: y_i = y} \theta(x_i)_z, \qquad
        \hat P(y \mid z) = \hat P(y, z) / \hat P(z),

    and the score is the mean log-likelihood of the "expected empirical predictor":

    .. math::
        \mathrm{LEEP} = \frac1N \sum_i \log \sum_z \hat P(y_i \mid z)\, \theta(x_i)_z .

    A source class that no target sample gives any probability (``P(z) = 0``) is dropped: it
    contributes nothing to any sum. The score is ``<= 0``; closer to 0 is better.

    Args:
        source_probs: ``(N, Z)`` softmax outputs of the source model on the target data
            (non-negative rows summing to 1).
        labels: ``(N,)`` target labels (any integers or strings, ``C >= 2`` classes).

    Returns:
        LEEP as a float in ``(-inf, 0]``.
    """
    theta = check_probabilities(source_probs)
    y = encode_labels(labels, len(theta))
    n = len(theta)
    joint = class_sums(theta, y) / n  # (C, Z)
    p_z = joint.sum(axis=0)
    used = p_z > 0
    cond = joint[:, used] / p_z[used]  # P(y | z), (C, Z')
    eep = theta[:, used] @ cond.T  # (N, C): sum_z P(y | z) theta_z
    return float(np.mean(np.log(eep[np.arange(n), y])))


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    r"""NCE, the negative conditional entropy (Tran et al., ICCV 2019).

    With the empirical joint ``P(y, z)`` of target labels ``y`` and the source model's
    predicted (argmax) source labels ``z`` over the ``N`` target samples,

    .. math::
        \mathrm{NCE} = -H(Y \mid Z)
        = \sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)},

    with ``0 log 0 = 0``. The score is ``<= 0``; 0 means each source class predicts one
    target class.

    Args:
        source_labels: ``(N,)`` source classes predicted for the target data
            (``source_probs.argmax(1)``); any integers or strings.
        labels: ``(N,)`` target labels (any integers or strings, ``C >= 2`` classes).

    Returns:
        NCE as a float in ``[-log C, 0]``.
    """
    z = np.asarray(source_labels)
    y = encode_labels(labels)
    if z.ndim != 1 or len(z) != len(y):
        raise ValueError(
            f"source_labels must have shape ({len(y)},) like labels, got shape {z.shape}"
        )
    if z.dtype.kind == "f" and not np.isfinite(z).all():
        raise ValueError("source_labels contains NaN or infinite values")
    try:
        _, z = np.unique(z, return_inverse=True)
    except TypeError as err:
        raise ValueError("source_labels mixes types that cannot be compared") from err
    z = z.reshape(-1)
    joint = np.zeros((int(y.max()) + 1, int(z.max()) + 1))  # (C, Z)
    np.add.at(joint, (y, z), 1.0 / len(y))
    cond = joint / joint.sum(axis=0, keepdims=True)  # every z occurs, so P(z) > 0
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log(cond[seen])))
