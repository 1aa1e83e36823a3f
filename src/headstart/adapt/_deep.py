"""Gradient-trained adaptation on the one loop, two streams (labelled source, unlabelled
target): DANN, CDAN+E and MCC, trained on cached features.

The network is the bundle's MLP head (``make_head(dim, K, hidden=(256,))``: standardise,
a hidden ReLU layer, the classifier); DANN adds a domain discriminator on the hidden
layer behind a gradient-reversal layer; CDAN's discriminator sees the hidden layer
conditioned on the predictions (their outer product), each example weighted by its
certainty. All run through
:func:`~headstart.train.fit_stage` with the source stream first (it defines the epoch)
and the target stream cycled beside it; every loss term (``ce``, ``domain`` or ``mcc``)
is logged per epoch in the history. The checkpoint kept is the epoch with the best
*source* validation accuracy (:class:`~headstart.train.EarlyStopping`): no target label.
Inputs are standardised per domain, as in ``mean_var``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._fields import option, positive
from headstart.adapt._registry import register_adapt_method
from headstart.adapt._task import AdaptTask, Candidate
from headstart.surgery._model import Standardize, make_head
from headstart.train._callbacks import EarlyStopping, History, ProgressBar
from headstart.train._engine import Batch, StepOutput, TensorStream, fit_stage
from headstart.train._heads import single_thread
from headstart.train._schedule import Stage

HIDDEN = 256


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward; the gradient times ``-lam`` backward (Ganin & Lempitsky, 2015)."""
    return _Reverse.apply(x, lam)


class _Net(nn.Module):
    """The head (``net``: features -> hidden -> logits) and an optional discriminator on
    its hidden layer. No attribute is called ``head``, so the loop trains every part."""

    def __init__(self, dim: int, k: int, dropout: float, disc_in: int = 0) -> None:
        super().__init__()
        self.net = make_head(dim, k, hidden=(HIDDEN,), dropout=dropout)
        self.disc = (
            nn.Sequential(nn.Linear(disc_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
            if disc_in
            else None
        )

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-2](x)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`hidden`'s output (the head's last dropout and linear)."""
        return self.net[-2:](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def dann_lambda(progress: float) -> float:
    r"""The DANN schedule of the reversal weight, :math:`\lambda_p = 2/(1+e^{-10p}) - 1`
    for training progress :math:`p \in [0, 1]` (0 at the start, about 1 at the end)."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def cdan_map(hidden: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r"""CDAN's multilinear conditioning (Long et al., NeurIPS 2018): the outer product
    :math:`f \otimes g` of hidden features :math:`f` ``(B, d)`` and predictions
    :math:`g = \mathrm{softmax}(z)` ``(B, K)``, flattened to ``(B, d K)``; the gradient
    does not flow into :math:`g` through this map (as in the authors' code)."""
    g = torch.softmax(logits, 1).detach()
    return torch.bmm(g.unsqueeze(2), hidden.unsqueeze(1)).flatten(1)


def entropy_weights(logits: torch.Tensor) -> torch.Tensor:
    r"""CDAN+E's example weights :math:`w_i = 1 + e^{-H(g_i)}` with
    :math:`H(g) = -\sum_k g_k \log g_k`, normalised to mean 1 within the batch: certain
    predictions count more in the domain loss."""
    p = torch.softmax(logits, 1).detach()
    entropy = -(p * torch.log(p + 1e-5)).sum(1)
    w = 1.0 + torch.exp(-entropy)
    return w / w.mean()


def mcc_loss(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    r"""Minimum class confusion (Jin et al., ECCV 2020) of target logits ``(B, K)``.

    With :math:`\hat Y = \mathrm{softmax}(z / T)`, entropy weights
    :math:`W_{ii} = B\,(1 + e^{-H(\hat y_i)}) / \sum_j (1 + e^{-H(\hat y_j)})`, the class
    confusion :math:`C = \hat Y^\top W \hat Y` (K, K) normalised by rows,
    :math:`\tilde C_{jk} = C_{jk} / \sum_{k'} C_{jk'}`:

    .. math::
        L_{\mathrm{MCC}} = \frac1K \sum_j \sum_{k \ne j} |\tilde C_{jk}|.
    """
    p = torch.softmax(logits / temperature, 1)
    h = -(p * torch.log(p + 1e-5)).sum(1)
    w = 1.0 + torch.exp(-h)
    w = (len(p) * w / w.sum()).detach()
    c = (p * w[:, None]).T @ p
    c = c / c.sum(1, keepdim=True)
    k = c.shape[0]
    return (c.sum() - torch.trace(c)) / k


@dataclass
class _Objective:
    """``ce`` on the source batch plus DANN's ``domain`` term or MCC's ``mcc`` term."""

    kind: str
    total_steps: int
    weight: float
    step: int = 0

    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput:
        s, t = batches["source"], batches["target"]
        assert s.target is not None
        # one pass per domain: the hidden features, the logits made from them (the same
        # dropout sample), so CDAN conditions each f_i on its own prediction g_i
        hs = model.hidden(s.inputs)
        logits = model.classify(hs)
        losses = {"ce": nn.functional.cross_entropy(logits, s.target)}
        if self.kind in ("dann", "cdan"):
            lam = dann_lambda(min(self.step / max(self.total_steps, 1), 1.0))
            ht = model.hidden(t.inputs)
            f = torch.cat([hs, ht])
            label = torch.cat([torch.zeros(len(s.inputs)), torch.ones(len(t.inputs))])
            weights = None
            if self.kind == "cdan":
                z = torch.cat([logits, model.classify(ht)])
                f, weights = cdan_map(f, z), entropy_weights(z)
            d = model.disc(grad_reverse(f, lam)).squeeze(1)
            losses["domain"] = self.weight * nn.functional.binary_cross_entropy_with_logits(
                d, label, weight=weights
            )
        else:
            losses["mcc"] = self.weight * mcc_loss(model(t.inputs))
        self.step += 1
        return StepOutput(losses, logits, s.target)


@dataclass(frozen=True)
class DeepConfig:
    epochs: int = option(
        "dann / cdan / mcc: at most this many epochs on features.", default=30, check=positive
    )
    lr: float = option("dann / cdan / mcc: AdamW learning rate.", default=1e-3, check=positive)
    weight: float = option(
        "dann / cdan / mcc: weight of the adaptation loss term.", default=1.0, check=positive
    )


def _train(task: AdaptTask, config: DeepConfig, kind: str) -> Candidate:
    s_std, t_std = Standardize.fit(task.xs), Standardize.fit(task.xt)
    zs = torch.from_numpy(((task.xs - s_std.mean.numpy()) / s_std.scale.numpy()).astype(np.float32))
    zv = torch.from_numpy(((task.xv - s_std.mean.numpy()) / s_std.scale.numpy()).astype(np.float32))
    zt = torch.from_numpy(((task.xt - t_std.mean.numpy()) / t_std.scale.numpy()).astype(np.float32))
    torch.manual_seed(task.seed)
    disc_in = {"dann": HIDDEN, "cdan": HIDDEN * task.n_classes}.get(kind, 0)
    model = _Net(zs.shape[1], task.n_classes, 0.2, disc_in)
    stage = Stage(kind, lr=config.lr, max_epochs=config.epochs, patience=5, on_features=True)
    source = TensorStream(zs, torch.from_numpy(task.ys).long(), 64)
    streams = {"source": source, "target": TensorStream(zt, None, 64)}
    yv = torch.from_numpy(task.yv).long()

    def validate(m: nn.Module) -> dict[str, float]:  # source validation: no target label
        with torch.inference_mode():
            logits = m(zv)
        return {
            "val_loss": float(nn.functional.cross_entropy(logits, yv)),
            "val_acc": float((logits.argmax(1) == yv).float().mean()),
        }

    history = History()
    callbacks = [history, EarlyStopping(stage.patience, history), ProgressBar(kind, lines=False)]
    objective = _Objective(kind, config.epochs * len(source), config.weight)
    with single_thread():
        fit_stage(
            model,
            stage,
            streams,
            objective,
            callbacks,
            validate,
            seed=task.seed,
            evaluate_start=False,
        )
    head = model.net.eval()
    from headstart.adapt._methods import _into

    head[0] = t_std  # trained on z-scored rows: target rows get the target's z-score
    return Candidate(
        kind,
        head,
        source_repr=zs.numpy(),
        history=[{**r, "stage": kind} for r in history.rows],
        source_map=_into(s_std, t_std),
    )


def dann(task: AdaptTask, config: DeepConfig) -> Candidate:
    """DANN (Ganin et al., JMLR 2016): the hidden layer learns features a discriminator
    cannot tell source from target by, through gradient reversal (weight
    :func:`dann_lambda`), while the classifier learns the source labels."""
    return _train(task, config, "dann")


def cdan(task: AdaptTask, config: DeepConfig) -> Candidate:
    """CDAN+E (Long et al., NeurIPS 2018): DANN with the discriminator on
    :func:`cdan_map` (features conditioned on the predictions, so classes are aligned,
    not only the marginals) and the domain loss weighted by :func:`entropy_weights`."""
    return _train(task, config, "cdan")


def mcc(task: AdaptTask, config: DeepConfig) -> Candidate:
    """MCC (Jin et al., ECCV 2020): the source cross-entropy plus :func:`mcc_loss` on
    target batches, which pushes apart the classes the target predictions confuse."""
    return _train(task, config, "mcc")


register_adapt_method(
    "dann", dann, DeepConfig, "DANN: domain-adversarial MLP head (gradient reversal), two streams"
)
register_adapt_method(
    "cdan",
    cdan,
    DeepConfig,
    "CDAN+E: adversarial MLP head, discriminator on features x predictions, entropy-weighted",
)
register_adapt_method(
    "mcc",
    mcc,
    DeepConfig,
    "MCC: MLP head with the minimum-class-confusion loss on the target stream",
)

__all__ = ["cdan_map", "dann_lambda", "entropy_weights", "grad_reverse", "mcc_loss"]
