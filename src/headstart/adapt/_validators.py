"""Label-free validators for domain adaptation: arrays in, a number out.

None of them sees a target label. Two kinds:

* source-side, importance weighted: the loss on held-out *labelled source* examples,
  each weighted by how target-like it is (:func:`iwcv`, :func:`dev`); the weights come
  from a density-ratio estimate (:func:`domain_classifier_weights`, or KMM / KLIEP);
* target-side: statistics of the model's predictions on the *unlabelled target*
  (:func:`target_entropy`, :func:`information_maximization`, :func:`snd`);
* both: reverse validation (:func:`reverse_validation_hits`), a classifier taught by the
  model's target predictions, scored on labelled source rows.

Every score is oriented so that **higher is better** (the losses are negated), so one
rule picks the best candidate whatever the validator.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def _probabilities(p: object, name: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] < 2:
        raise ValueError(f"{name}: expected an (N, K) array of probabilities, N >= 1, K >= 2")
    if not np.all(np.isfinite(a)) or a.min() < 0 or not np.allclose(a.sum(1), 1.0, atol=1e-4):
        raise ValueError(f"{name}: every row must be finite, non-negative and sum to 1")
    return a


def _labelled(probs: object, labels: object, weights: object) -> tuple[np.ndarray, ...]:
    p = _probabilities(probs, "probs")
    y = np.asarray(labels)
    w = np.asarray(weights, dtype=np.float64)
    if y.shape != (len(p),) or w.shape != (len(p),):
        raise ValueError(f"labels and weights must be ({len(p)},); got {y.shape}, {w.shape}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1]})")
    if w.min() < 0 or w.sum() <= 0:
        raise ValueError("weights must be non-negative, not all zero")
    return p, y.astype(np.int64), w


def cross_entropy_losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    r"""Per-example cross-entropy :math:`\ell_i = -\log p_{i, y_i}` (clipped at 1e-12)."""
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, None))


def effective_sample_size(weights: np.ndarray) -> float:
    r"""Kish's effective sample size of importance weights,
    :math:`n_{\mathrm{eff}} = (\sum_i w_i)^2 / \sum_i w_i^2`: ``n`` for equal weights,
    1 when one example carries all the weight."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / max(float((w**2).sum()), _EPS))


def iwcv(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    r"""Importance-weighted validation (Sugiyama et al., JMLR 2007), negated.

    With source validation probabilities ``p`` (N, K), labels ``y`` (N,) and importance
    weights :math:`w_i \approx p_T(x_i) / p_S(x_i)` (N,):

    .. math::
        \mathrm{IWCV} = -\frac{\sum_i w_i\, \ell_i}{\sum_i w_i},
        \qquad \ell_i = -\log p_{i, y_i},

    an estimate of minus the target cross-entropy under covariate shift. Higher is better.
    """
    p, y, w = _labelled(probs, labels, weights)
    return float(-(w * cross_entropy_losses(p, y)).sum() / w.sum())


def dev(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    r"""Deep embedded validation (You et al., ICML 2019), negated.

    The weighted losses :math:`L_i = w_i \ell_i` have a control variate, the weights
    themselves (their expectation under the source is 1). With sample means
    :math:`\bar L, \bar w`, the sample covariance :math:`\mathrm{Cov}(L, w)` and variance
    :math:`\mathrm{Var}(w)` (both with ``ddof=1``):

    .. math::
        \eta = -\frac{\mathrm{Cov}(L, w)}{\mathrm{Var}(w)}, \qquad
        \mathrm{DEV} = -\left(\bar L + \eta\,\bar w - \eta\right)

    (:math:`\eta = 0` when the weights are all equal, leaving the plain mean loss). The
    weights are used as given, not renormalised (that would cancel the control variate).
    Higher is better.
    """
    p, y, w = _labelled(probs, labels, weights)
    losses = w * cross_entropy_losses(p, y)
    var = float(np.var(w, ddof=1)) if len(w) > 1 else 0.0
    eta = 0.0 if var <= _EPS else -float(np.cov(losses, w, ddof=1)[0, 1]) / var
    return float(-(losses.mean() + eta * w.mean() - eta))


def target_entropy(probs: np.ndarray) -> float:
    r"""Mean prediction entropy on the target, negated:
    :math:`-\frac1N \sum_i H(p_i)`, :math:`H(p) = -\sum_k p_k \log p_k`. Higher (more
    confident) is better; it rewards a model that collapses to one class, which
    :func:`information_maximization` does not."""
    p = _probabilities(probs, "probs")
    return float((p * np.log(np.clip(p, _EPS, None))).sum(1).mean())


def information_maximization(probs: np.ndarray) -> float:
    r"""Information maximisation (mutual information between inputs and predictions,
    Krause et al., NeurIPS 2010; Shi & Sha, ICML 2012):

    .. math::
        \mathrm{IM} = H(\bar p) - \frac1N \sum_i H(p_i), \qquad \bar p = \frac1N \sum_i p_i.

    Confident predictions (low per-example entropy) that use every class (high entropy
    of the mean prediction) score high; in ``[0, log K]``. Higher is better.
    """
    p = _probabilities(probs, "probs")
    mean = p.mean(0)
    h_mean = -float((mean * np.log(np.clip(mean, _EPS, None))).sum())
    return h_mean + target_entropy(p)


def snd(probs: np.ndarray, temperature: float = 0.05) -> float:
    r"""Soft neighbourhood density (Saito et al., ICCV 2021).

    Rows of ``probs`` (N, K) are L2-normalised, :math:`\hat p_i = p_i / \|p_i\|`; their
    similarities :math:`S_{ij} = \hat p_i \cdot \hat p_j` (``j != i``) are turned into a
    distribution per row with a temperature :math:`\tau`,
    :math:`P_{ij} = \exp(S_{ij}/\tau) / \sum_{l \ne i} \exp(S_{il}/\tau)`, and

    .. math::
        \mathrm{SND} = -\frac1N \sum_i \sum_{j \ne i} P_{ij} \log P_{ij},

    the mean entropy of the soft neighbourhoods: high when target examples sit in dense
    clusters of similar predictions. Needs ``N >= 2``. Higher is better.
    """
    p = _probabilities(probs, "probs")
    if len(p) < 2:
        raise ValueError("snd needs at least 2 target examples")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    q = p / np.linalg.norm(p, axis=1, keepdims=True)
    s = (q @ q.T) / temperature
    np.fill_diagonal(s, -np.inf)
    s -= s.max(1, keepdims=True)
    e = np.exp(s)
    pij = e / e.sum(1, keepdims=True)
    return float(-(pij * np.log(np.clip(pij, _EPS, None))).sum(1).mean())


def reverse_validation_hits(
    target_features: np.ndarray,
    target_predictions: np.ndarray,
    source_features: np.ndarray,
    source_labels: np.ndarray,
    c: float = 1.0,
    max_rows: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    r"""Reverse validation (Zhong et al., ECML 2010; used to tune DANN by Ganin et al.,
    JMLR 2016), per source row.

    A reverse classifier :math:`g` (standardised inputs, multinomial logistic regression,
    inverse L2 strength ``c``) is fit on the target rows ``x^t_j`` (at most ``max_rows``,
    seeded) labelled with the candidate's own predictions :math:`\hat y_j`, then applied
    to labelled source rows:

    .. math::
        \mathrm{RV} = \frac1n \sum_i 1[g(x^s_i) = y_i].

    Returns the hits :math:`1[g(x^s_i) = y_i]` (their mean is RV; higher is better).
    Target predictions that are confident but wrong, or collapsed onto few classes,
    train a ``g`` that fails on the source; predictions consistent with the source
    labels pass. With a single predicted class, ``g`` predicts it everywhere.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    xt = np.asarray(target_features)
    pred = np.asarray(target_predictions)
    keep = np.sort(np.random.default_rng(seed).permutation(len(xt))[:max_rows])
    xt, pred = xt[keep], pred[keep]
    ys = np.asarray(source_labels)
    if len(np.unique(pred)) < 2:
        return (ys == pred[0]).astype(np.float64)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    with threadpool_limits(1):
        model.fit(xt, pred)
        return (model.predict(np.asarray(source_features)) == ys).astype(np.float64)


def domain_classifier_weights(
    source_fit: np.ndarray,
    target_fit: np.ndarray,
    source_score: np.ndarray,
    c: float = 1.0,
    clip: float = 20.0,
    seed: int = 0,
) -> np.ndarray:
    r"""Density ratios :math:`w(x) = p_T(x) / p_S(x)` for ``source_score`` rows, from a
    domain classifier (Bickel et al., ICML 2007).

    A logistic regression (standardised inputs, L2 with inverse strength ``c``) learns
    :math:`P(\text{target} \mid x)` on ``source_fit`` (label 0) and ``target_fit``
    (label 1), weighted so both domains count equally; then

    .. math::
        w(x) = \frac{P(\text{target}\mid x)}{P(\text{source}\mid x)},

    clipped to ``[0, clip]``. The domains are balanced in the fit, so no prior ratio
    enters; the weights are *not* renormalised (:func:`dev` relies on their mean being 1
    only in expectation). Score rows held out of ``source_fit`` keep the ratio honest.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    xs, xt = np.asarray(source_fit), np.asarray(target_fit)
    x = np.concatenate([xs, xt])
    d = np.repeat([0, 1], [len(xs), len(xt)])
    sw = np.where(d == 0, len(x) / (2.0 * len(xs)), len(x) / (2.0 * len(xt)))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    with threadpool_limits(1):
        model.fit(x, d, logisticregression__sample_weight=sw)
        pt = model.predict_proba(np.asarray(source_score))[:, 1]
    return np.clip(pt / np.clip(1.0 - pt, _EPS, None), 0.0, clip)


__all__ = [
    "cross_entropy_losses",
    "dev",
    "domain_classifier_weights",
    "effective_sample_size",
    "information_maximization",
    "iwcv",
    "reverse_validation_hits",
    "snd",
    "target_entropy",
]
