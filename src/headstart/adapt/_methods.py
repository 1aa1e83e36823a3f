"""The feature-level adaptation methods: each fits a logistic-regression head on cached
features (seconds), reading the unlabelled target's features and never its labels.

=================  ==========================================================================
``source_only``    the baseline every adaptation must beat: the head fit on the source
``mean_var``       each domain standardised with its own mean and variance
``coral``          ``mean_var``, then source covariance recoloured to the target's (CORAL)
``kmm``            source examples weighted by kernel mean matching
``kliep``          source examples weighted by KLIEP
``self_training``  ``mean_var``, then rounds of confident, class-balanced target pseudo-labels
``adabn``          the backbone's BatchNorm statistics recomputed on the target
``target_only``    with ``target_labelled``: the few labelled target examples alone
``tradaboost``     with ``target_labelled``: TrAdaBoost over source + labelled target
=================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from headstart._fields import option, positive
from headstart.adapt._head import fit_weighted_head, head_proba, linear_head
from headstart.adapt._registry import NotApplicable, register_adapt_method
from headstart.adapt._task import AdaptTask, Candidate
from headstart.adapt._weights import kliep_weights, kmm_weights
from headstart.surgery._model import Standardize


def _standardise(x: np.ndarray, std: Standardize) -> np.ndarray:
    return (x - std.mean.numpy()) / std.scale.numpy()


def _fit(task: AdaptTask, x: np.ndarray, y: np.ndarray, xv: np.ndarray, **kw) -> tuple:
    return fit_weighted_head(x, y, xv, task.yv, task.n_classes, seed=task.seed, **kw)


@dataclass(frozen=True)
class NoConfig:
    """A method without options."""


def source_only(task: AdaptTask, config: NoConfig) -> Candidate:
    head, history = _fit(task, task.xs, task.ys, task.xv)
    return Candidate(
        "source_only", head, source_repr=_standardise(task.xs, head[0]), history=history
    )


def _aligned(task: AdaptTask) -> tuple[Standardize, Standardize, np.ndarray, np.ndarray]:
    s_std, t_std = Standardize.fit(task.xs), Standardize.fit(task.xt)
    return s_std, t_std, _standardise(task.xs, s_std), _standardise(task.xv, s_std)


def _compose(outer: Standardize, inner: Standardize) -> Standardize:
    """One ``Standardize`` equal to ``inner(outer(x))``."""
    return Standardize(outer.mean + outer.scale * inner.mean, outer.scale * inner.scale)


def _into(s_std: Standardize, t_std: Standardize, a: np.ndarray | None = None):
    """Source features z-scored with the source's statistics (then mapped by ``a``), put
    back in the target's units, where the bundled head standardises with the target's."""

    def f(x: np.ndarray) -> np.ndarray:
        z = _standardise(x, s_std)
        z = z @ a if a is not None else z
        return (z * t_std.scale.numpy() + t_std.mean.numpy()).astype(np.float32)

    return f


def mean_var(task: AdaptTask, config: NoConfig) -> Candidate:
    r"""Source rows standardised with the source's mean and standard deviation, target
    rows with the target's: :math:`z = (x - \mu_d) / \sigma_d` per domain ``d``. The
    bundled head standardises with the target's statistics."""
    s_std, t_std, zs, zv = _aligned(task)
    head, history = _fit(task, zs, task.ys, zv)
    head[0] = _compose(t_std, head[0])  # target rows get the target's z-score
    return Candidate(
        "mean_var", head, source_repr=zs, history=history, source_map=_into(s_std, t_std)
    )


@dataclass(frozen=True)
class CoralConfig:
    reg: float = option(
        "coral: ridge added to both covariances (of unit-variance features).",
        default=1.0,
        check=positive,
    )


def _matrix_power(c: np.ndarray, power: float) -> np.ndarray:
    e, v = np.linalg.eigh(c)
    return (v * np.maximum(e, 1e-12) ** power) @ v.T


def coral_matrix(zs: np.ndarray, zt: np.ndarray, reg: float = 1.0) -> np.ndarray:
    r"""CORAL (Sun, Feng & Saenko, AAAI 2016): the map that whitens the source with its
    covariance and recolours it with the target's,

    .. math::
        A = C_s^{-1/2}\, C_t^{1/2}, \qquad C_d = \mathrm{cov}(X_d) + \lambda I,

    so that source rows ``x A`` have (about) the target's covariance. ``zs`` and ``zt``
    are ``(n_d, D)`` features (standardised per domain here); returns ``(D, D)``."""
    eye = reg * np.eye(zs.shape[1])
    cs = np.cov(zs, rowvar=False) + eye
    ct = np.cov(zt, rowvar=False) + eye
    return _matrix_power(cs, -0.5) @ _matrix_power(ct, 0.5)


def coral(task: AdaptTask, config: CoralConfig) -> Candidate:
    """Per-domain standardisation (:func:`mean_var`), then the :func:`coral_matrix` map
    of the source (training and validation rows alike); the head reads z-scored target
    rows."""
    s_std, t_std, zs, zv = _aligned(task)
    a = coral_matrix(zs, _standardise(task.xt, t_std), config.reg)
    cs, cv = (zs @ a).astype(np.float32), (zv @ a).astype(np.float32)
    head, history = _fit(task, cs, task.ys, cv)
    inner = head[0]
    head[0] = _compose(t_std, inner)
    return Candidate(
        "coral",
        head,
        source_repr=_standardise(cs, inner),
        history=history,
        source_map=_into(s_std, t_std, a),
    )


def _resampled(x: np.ndarray, w: np.ndarray, seed: int) -> np.ndarray:
    """Rows of ``x`` drawn with probabilities proportional to ``w`` (for the A-distance)."""
    rng = np.random.default_rng(seed)
    return x[rng.choice(len(x), size=len(x), p=w / w.sum())]


@dataclass(frozen=True)
class KmmConfig:
    bound: float = option(
        "kmm: the largest weight of one source example.", default=10.0, check=positive
    )


def kmm(task: AdaptTask, config: KmmConfig) -> Candidate:
    """Head fit on the source with :func:`~headstart.adapt.kmm_weights` (``C`` chosen by
    importance-weighted source validation accuracy)."""
    w = kmm_weights(task.xs, _subset(task.xt, 1000, task.seed), bound=config.bound, seed=task.seed)
    head, history = _fit(task, task.xs, task.ys, task.xv, weights=w, val_weights=task.val_weights)
    rep = _resampled(_standardise(task.xs, head[0]), w, task.seed)
    return Candidate("kmm", head, source_repr=rep, history=history, notes=[_ess_note(w)])


def _subset(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.sort(np.random.default_rng(seed).permutation(len(x))[:n])]


def _ess_note(w: np.ndarray) -> str:
    ess = float(w.sum() ** 2 / (w**2).sum())
    return f"importance weights: effective sample size {ess:.0f} of {len(w)}"


def kliep(task: AdaptTask, config: NoConfig) -> Candidate:
    """Head fit on the source with :func:`~headstart.adapt.kliep_weights`."""
    w, gamma = kliep_weights(task.xs, _subset(task.xt, 2000, task.seed), seed=task.seed)
    head, history = _fit(task, task.xs, task.ys, task.xv, weights=w, val_weights=task.val_weights)
    rep = _resampled(_standardise(task.xs, head[0]), w, task.seed)
    notes = [_ess_note(w), f"kernel width gamma {gamma:.3g} (target likelihood cross-validation)"]
    return Candidate("kliep", head, source_repr=rep, history=history, notes=notes)


@dataclass(frozen=True)
class SelfTrainingConfig:
    rounds: int = option("self_training: rounds of pseudo-labelling.", default=3, check=positive)


def self_training(task: AdaptTask, config: SelfTrainingConfig) -> Candidate:
    r"""Self-training on :func:`mean_var` features. Round ``r`` of ``R`` predicts the
    target, keeps for each predicted class its ``r/R * 0.9 * N_t / K`` most confident
    rows (class-balanced, so no class swallows the rest), and refits the head on the
    source plus those pseudo-labelled rows."""
    s_std, t_std, zs, zv = _aligned(task)
    zt = _standardise(task.xt, t_std)
    head, history = _fit(task, zs, task.ys, zv)
    k = task.n_classes
    for r in range(1, config.rounds + 1):
        p = head_proba(head, zt)
        pred, conf = p.argmax(1), p.max(1)
        per_class = int(0.9 * r / config.rounds * len(zt) / k)
        keep = np.concatenate(
            [
                np.flatnonzero(pred == c)[np.argsort(-conf[pred == c], kind="stable")][:per_class]
                for c in range(k)
            ]
        )
        head, rows = _fit(
            task, np.concatenate([zs, zt[keep]]), np.concatenate([task.ys, pred[keep]]), zv
        )
        history += [{**row, "round": r, "pseudo_labels": len(keep)} for row in rows]
    head[0] = _compose(t_std, head[0])
    return Candidate(
        "self_training", head, source_repr=zs, history=history, source_map=_into(s_std, t_std)
    )


def adabn(task: AdaptTask, config: NoConfig) -> Candidate:
    """The source-only head on the AdaBN backbone (:func:`~headstart.adapt.adabn_backbone`).
    Every normalisation takes the target's statistics, the head's standardisation too
    (it is the last one): source rows keep the source's throughout."""
    ab = task.adabn()
    if ab is None:
        raise NotApplicable("the backbone has no BatchNorm layer")
    s_std, t_std = Standardize.fit(task.xs), Standardize.fit(ab.target)
    head, history = _fit(task, _standardise(task.xs, s_std), task.ys, _standardise(task.xv, s_std))
    head[0] = _compose(t_std, head[0])
    return Candidate(
        "adabn",
        head,
        "adabn",
        source_repr=_standardise(task.xs, s_std),
        history=history,
        source_map=_into(s_std, t_std),
    )


def target_only(task: AdaptTask, config: NoConfig) -> Candidate:
    """The few-shot baseline: the head fit on the labelled target examples alone (``C``
    by their training accuracy: there is no validation data to spare)."""
    if task.labelled is None:
        raise NotApplicable("needs target_labelled")
    xl, yl = task.labelled
    head, history = fit_weighted_head(xl, yl, xl, yl, task.n_classes, seed=task.seed)
    return Candidate("target_only", head, history=history, uses_labelled_target=True)


@dataclass(frozen=True)
class TrAdaBoostConfig:
    rounds: int = option("tradaboost: boosting rounds.", default=10, check=positive)


def tradaboost(task: AdaptTask, config: TrAdaBoostConfig) -> Candidate:
    r"""TrAdaBoost (Dai et al., ICML 2007) with logistic-regression learners on source
    plus labelled target. Each round fits on the weighted union; a source row it gets
    wrong is down-weighted by :math:`\beta = 1 / (1 + \sqrt{2 \ln n_s / T})`, a target
    row it gets wrong up-weighted by :math:`\beta_t^{-1}`, :math:`\beta_t = \epsilon_t /
    (1 - \epsilon_t)` with :math:`\epsilon_t` the weighted target error (capped below 1/2).
    The bundled head averages the logits of the second half of the learners, weighted by
    :math:`\ln(1/\beta_t)` (a linear model again: one linear layer)."""
    from sklearn.linear_model import LogisticRegression

    from headstart.train._heads import single_thread

    if task.labelled is None:
        raise NotApplicable("needs target_labelled")
    xl, yl = task.labelled
    x = np.concatenate([task.xs, xl])
    y = np.concatenate([task.ys, yl])
    std = Standardize.fit(x)
    z = _standardise(x, std)
    ns, t_rounds = len(task.xs), config.rounds
    w = np.ones(len(z))
    beta = 1.0 / (1.0 + np.sqrt(2.0 * np.log(ns) / t_rounds))
    learners: list[tuple[float, object]] = []
    for _ in range(t_rounds):
        with single_thread():
            clf = LogisticRegression(C=0.1, max_iter=1000, random_state=task.seed)
            clf.fit(z, y, sample_weight=w * len(w) / w.sum())
        wrong = clf.predict(z) != y
        wt = w[ns:]
        eps = float(np.clip((wt * wrong[ns:]).sum() / wt.sum(), 1e-3, 0.499))
        beta_t = eps / (1 - eps)
        w[:ns] *= beta ** wrong[:ns]
        w[ns:] *= beta_t ** -wrong[ns:].astype(float)
        learners.append((float(np.log(1 / beta_t)), clf))
    kept = learners[t_rounds // 2 :]
    total = sum(a for a, _ in kept)
    head = linear_head(kept[-1][1], std, task.n_classes)
    with torch.no_grad():
        weight = sum(a * _full_linear(c, task.n_classes, z.shape[1])[0] for a, c in kept) / total
        bias = sum(a * _full_linear(c, task.n_classes, z.shape[1])[1] for a, c in kept) / total
        head[-1].weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        head[-1].bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    history = [{"stage": "tradaboost", "learners": t_rounds, "averaged": len(kept)}]
    return Candidate("tradaboost", head, history=history, uses_labelled_target=True)


def _full_linear(clf, k: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    lin = linear_head(clf, Standardize.identity(dim), k)[-1]
    return lin.weight.detach().numpy().astype(np.float64), lin.bias.detach().numpy().astype(
        np.float64
    )


register_adapt_method(
    "source_only", source_only, NoConfig, "no adaptation: the head fit on the source (the baseline)"
)
register_adapt_method(
    "mean_var", mean_var, NoConfig, "each domain standardised with its own mean and variance"
)
register_adapt_method(
    "coral",
    coral,
    CoralConfig,
    "mean_var, then the source covariance recoloured to the target's (CORAL)",
)
register_adapt_method(
    "kmm", kmm, KmmConfig, "source examples importance-weighted by kernel mean matching"
)
register_adapt_method("kliep", kliep, NoConfig, "source examples importance-weighted by KLIEP")
register_adapt_method(
    "self_training",
    self_training,
    SelfTrainingConfig,
    "mean_var, then rounds of confident class-balanced target pseudo-labels",
)
register_adapt_method(
    "adabn",
    adabn,
    NoConfig,
    "BatchNorm statistics recomputed on the target (one backbone pass)",
    uses=("target features", "target batchnorm"),
)
register_adapt_method(
    "target_only",
    target_only,
    NoConfig,
    "few-shot baseline: the labelled target examples alone",
    uses=("labelled target",),
)
register_adapt_method(
    "tradaboost",
    tradaboost,
    TrAdaBoostConfig,
    "TrAdaBoost over the source and the labelled target examples",
    uses=("target features", "labelled target"),
)

__all__ = ["coral_matrix"]
