"""Prototype heads: a class is the mean of its examples' transformed features.

The SimpleShot transform (Wang et al., 2019) maps a feature ``x`` to

* ``raw``:  ``z = x``
* ``l2``:   ``z = x / ||x||``
* ``cl2n``: ``z = (x - m) / ||x - m||``, ``m`` the mean feature of the labelled examples

(the published ordering of their nearest-centroid accuracy is raw < l2 < cl2n). The
prototype of class ``k`` is ``p_k = (sum_i z_i + lam * e_k) / (n_k + lam)``: the mean of its
``n_k`` examples, plus, for a zero-shot prior, its label embedding ``e_k`` counted as
``lam`` examples. The logits are

* ``euclidean``: ``s * -||z - p_k||^2`` (nearest centroid)
* ``cosine``:    ``s * cos(z, p_k)`` (cosine classifier)

with ``s`` a scale (an inverse temperature) chosen by leave-one-out likelihood, so the
softmax is a calibrated probability. A class is added or removed by adding or removing a
row: nothing is retrained.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.surgery._heads import register_head

TRANSFORMS = ("raw", "l2", "cl2n")
METRICS = ("euclidean", "cosine")


class PrototypeHead(nn.Module):
    """Logits from similarities to class prototypes (see the module docstring).

    Buffers (saved in the bundle): ``centre`` ``(D,)``, ``prototypes`` ``(K, D)`` (in the
    transformed space), ``counts`` ``(K,)`` (examples, and label weight, behind each row)
    and ``scale`` (a scalar).
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        transform: str = "cl2n",
        metric: str = "euclidean",
    ) -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, not {transform!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
        self.transform = transform
        self.metric = metric
        self.register_buffer("centre", torch.zeros(in_dim))
        self.register_buffer("prototypes", torch.zeros(n_classes, in_dim))
        self.register_buffer("counts", torch.zeros(n_classes))
        self.register_buffer("scale", torch.tensor(1.0))

    @property
    def n_classes(self) -> int:
        return int(self.prototypes.shape[0])

    @property
    def in_dim(self) -> int:
        return int(self.prototypes.shape[1])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The transformed features ``z``, ``(N, D)``."""
        z = x - self.centre if self.transform == "cl2n" else x
        if self.transform != "raw":
            z = z / z.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * similarity(self.embed(x), self.prototypes, self.metric)

    def extra_repr(self) -> str:
        return f"{self.in_dim} -> {self.n_classes}, {self.transform}, {self.metric}"


def similarity(z: torch.Tensor, p: torch.Tensor, metric: str) -> torch.Tensor:
    """``-||z_i - p_k||^2`` or ``cos(z_i, p_k)``, ``(N, K)``; ONNX-friendly ops only."""
    if metric == "cosine":
        zn = z / z.norm(dim=1, keepdim=True).clamp(min=1e-12)
        pn = p / p.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return zn @ pn.T
    return 2 * z @ p.T - (z * z).sum(1, keepdim=True) - (p * p).sum(1)[None, :]


def fit_prototypes(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    transform: str = "cl2n",
    metric: str = "euclidean",
    prior: np.ndarray | None = None,
    prior_weight: float = 0.0,
) -> PrototypeHead:
    """A :class:`PrototypeHead` from features ``x`` ``(N, D)`` and labels ``y`` ``(N,)``;
    ``prior`` ``(K, D)``: label embeddings, each counted as ``prior_weight`` examples of its
    class (in the transformed space too). The scale is 1 (see :func:`fit_scale`)."""
    head = PrototypeHead(x.shape[1], n_classes, transform, metric)
    if transform == "cl2n":
        head.centre.copy_(torch.from_numpy(x.mean(0)))
    z = head.embed(torch.from_numpy(x)).double()
    sums = torch.zeros(n_classes, x.shape[1], dtype=torch.float64)
    sums.index_add_(0, torch.from_numpy(y).long(), z)
    counts = torch.bincount(torch.from_numpy(y).long(), minlength=n_classes).double()
    if prior is not None and prior_weight > 0:
        sums += prior_weight * head.embed(torch.from_numpy(prior)).double()
        counts += prior_weight
    empty = [k for k in range(n_classes) if counts[k] == 0]
    if empty:
        raise ValueError(f"class(es) {empty} have no example and no label embedding")
    head.prototypes.copy_((sums / counts[:, None]).float())
    head.counts.copy_(counts.float())
    return head


def loo_similarities(head: PrototypeHead, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out similarities ``(N, K)``: example ``i``'s own class prototype is
    recomputed without it, ``(n_c p_c - z_i) / (n_c - 1)``; a class with nothing left
    (one example, no prior) gets ``-inf``. (``centre`` still includes ``i``: it is the
    mean of unlabelled features, so it leaks no label.)"""
    z = head.embed(torch.from_numpy(x)).double()
    p = head.prototypes.double()
    n = head.counts.double()
    yt = torch.from_numpy(y).long()
    sims = similarity(z, p, head.metric)
    rest = n[yt] - 1
    own = (n[yt, None] * p[yt] - z) / rest.clamp(min=1e-12)[:, None]
    own_sim = _rowwise(z, own, head.metric)
    own_sim[rest <= 1e-9] = -math.inf
    sims[torch.arange(len(yt)), yt] = own_sim
    return sims.numpy()


def _rowwise(z: torch.Tensor, p: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return nn.functional.cosine_similarity(z, p, dim=1)
    return -((z - p) ** 2).sum(1)


def fit_scale(sims: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None) -> float:
    """The scale ``s`` minimising the mean negative log-likelihood
    ``-1/N sum_i log softmax(s * sims_i)[y_i]`` (a grid over ``log s``, then refined),
    over rows whose own class is defined. ``sims``: e.g. :func:`loo_similarities`."""
    ok = np.isfinite(sims[np.arange(len(y)), y])
    if not ok.any():
        return 1.0
    s_, y_ = torch.from_numpy(sims[ok]), torch.from_numpy(y[ok]).long()
    s_ = torch.where(torch.isfinite(s_), s_, torch.full_like(s_, -1e30))

    def nll(log_s: float) -> float:
        logits = math.exp(log_s) * s_
        return float(nn.functional.cross_entropy(logits, y_))

    grid = np.linspace(-3, 9, 49) if grid is None else grid
    best = min(grid, key=nll)
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(nll, bounds=(best - 0.25, best + 0.25), method="bounded")
    return float(math.exp(res.x if res.fun <= nll(best) else best))


def loo_accuracy(sims: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out accuracy: the share of rows whose best similarity is their class's."""
    return float((sims.argmax(1) == y).mean()) if len(y) else float("nan")


def fit_prototype_head(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    transform: str = "cl2n",
    metric: str = "euclidean",
    prior: np.ndarray | None = None,
    prior_weights: tuple[float, ...] = (0.0,),
) -> tuple[PrototypeHead, dict[str, Any]]:
    """Prototypes from every labelled example, hyper-parameters by leave-one-out on them.

    Each ``prior_weights`` candidate ``lam`` (label embeddings counted as ``lam``
    examples; ``0``: none) is scored by its leave-one-out accuracy (ties: the lower
    leave-one-out NLL at its best scale); the winner's scale ``s`` is the one minimising the
    leave-one-out NLL (:func:`fit_scale`). Returns the head and a record of the choice."""
    rows = []
    best: tuple[tuple[float, float], PrototypeHead, dict[str, Any]] | None = None
    for lam in prior_weights:
        head = fit_prototypes(x, y, n_classes, transform, metric, prior, lam)
        sims = loo_similarities(head, x, y)
        scale = fit_scale(sims, y)
        ok = np.isfinite(sims[np.arange(len(y)), y])
        acc = loo_accuracy(sims[ok], y[ok]) if ok.any() else float("nan")
        nll = _nll(scale * sims[ok], y[ok]) if ok.any() else float("nan")
        row = {"prior_weight": lam, "scale": scale, "loo_acc": acc, "loo_nll": nll}
        rows.append(row)
        key = (-acc if acc == acc else 0.0, nll if nll == nll else 0.0)
        if best is None or key < best[0]:
            best = (key, head, row)
    assert best is not None
    _, head, row = best
    head.scale.fill_(row["scale"])
    record = {
        "stage": "prototype",
        "examples": len(y),
        "transform": transform,
        "metric": metric,
        **row,
        "candidates": rows,
    }
    return head, record


def _nll(logits: np.ndarray, y: np.ndarray) -> float:
    t = torch.from_numpy(np.where(np.isfinite(logits), logits, -1e30))
    return float(nn.functional.cross_entropy(t, torch.from_numpy(y).long()))


def _describe(head: nn.Module) -> dict[str, Any] | None:
    if not isinstance(head, PrototypeHead):
        return None
    return {
        "in_dim": head.in_dim,
        "n_classes": head.n_classes,
        "transform": head.transform,
        "metric": head.metric,
    }


def _build(c: dict[str, Any]) -> nn.Module:
    return PrototypeHead(
        int(c["in_dim"]),
        int(c["n_classes"]),
        c.get("transform", "cl2n"),
        c.get("metric", "euclidean"),
    )


register_head("prototype", _describe, _build)

__all__ = [
    "METRICS",
    "TRANSFORMS",
    "PrototypeHead",
    "fit_prototype_head",
    "fit_prototypes",
    "fit_scale",
    "loo_accuracy",
    "loo_similarities",
    "similarity",
]
