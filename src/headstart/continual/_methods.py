"""The continual methods: each turns the old head and a step of new classes into a head
over every class seen, on cached features (the backbone stays frozen).

=============  ===========================================================================
``naive``      the old head, grown by the new classes' rows, trained on the new step
               alone: the baseline that forgets
``replay``     as ``naive``, each batch of the new step paired with a batch of the
               replay memory (experience replay; the memory travels with the bundle)
``ewc``        as ``naive`` plus the elastic weight consolidation penalty
               :math:`\frac{\\lambda}{2}\\sum_i F_i(\theta_i - \theta^*_i)^2`
``lwf``        as ``naive`` plus learning without forgetting: the old head's outputs on
               the new step distilled into the new head's old-class outputs
``prototype``  nearest class mean over every example ever seen (exact running sums, no
               training): nearly free on frozen features
``refit``      a logistic-regression head re-fit on the replay memory plus the new step
               (class-balanced weights): nearly free too
``slda``       streaming linear discriminant analysis: exact class means and a shared,
               shrunk covariance of every example ever seen (running sums, no stored
               examples, no training); on frozen features it equals LDA fit on all the
               steps at once, whatever their order
=============  ===========================================================================
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._errors import UserError
from headstart._fields import non_negative, option, positive
from headstart.continual._registry import register_continual_method
from headstart.continual._state import ContinualState, cl2n, pad_rows
from headstart.train._callbacks import History
from headstart.train._engine import Batch, StepOutput, TensorStream, fit_stage
from headstart.train._heads import single_thread
from headstart.train._schedule import Stage


@dataclass
class StepTask:
    """What a continual method receives: the old ``head`` (``n_old`` outputs), the new
    step's training features ``x`` and labels ``y`` (indices into every class seen,
    ``n_classes`` of them, the new ones last), and the ``state`` of the past steps
    (replay memory, Fisher information, class sums; before this step is added)."""

    head: nn.Module
    n_old: int
    n_classes: int
    x: np.ndarray
    y: np.ndarray
    state: ContinualState
    seed: int = 0


@dataclass
class StepResult:
    """A head over every class seen, the training history and notes."""

    head: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class HeadError(UserError, ValueError):
    """The bundle's head cannot be trained by this method."""


def grow_head(head: nn.Module, n_classes: int) -> nn.Module:
    """A copy of ``head`` whose last linear layer has ``n_classes`` outputs: the old rows
    copied, the new rows zero with the old rows' mean bias (so a new class starts as
    likely as an average old one)."""
    if not isinstance(head, nn.Sequential) or not any(isinstance(m, nn.Linear) for m in head):
        raise HeadError(
            f"a {type(head).__name__} head has no linear output layer to grow; use --method "
            "slda, prototype or refit (or a bundle fit with --strategy extract)"
        )
    new = copy.deepcopy(head)
    k = max(i for i, m in enumerate(new) if isinstance(m, nn.Linear))
    old: nn.Linear = new[k]
    grown = nn.Linear(old.in_features, n_classes)
    with torch.no_grad():
        grown.weight.zero_()
        grown.weight[: old.out_features] = old.weight
        bias = old.bias[old.bias > -1e3]  # classes absent from a logistic fit sit at -1e4
        grown.bias.fill_(float(bias.mean()) if len(bias) else 0.0)
        grown.bias[: old.out_features] = old.bias
    new[k] = grown
    return new


@dataclass(frozen=True)
class TrainConfig:
    """Options of the gradient-trained methods."""

    lr: float = option(
        "Continual: learning rate of the head (AdamW; 1e-3 left new classes unlearnt on "
        "split digits).",
        default=1e-2,
        check=positive,
        must="> 0",
    )
    epochs: int = option(
        "Continual: epochs over the new step.", default=30, check=positive, must="> 0"
    )
    batch_size: int = option(
        "Continual: new-step examples per batch.", default=64, check=positive, must="> 0"
    )

    def __post_init__(self) -> None:
        from headstart._options import _check_all

        _check_all(self)


@dataclass(frozen=True)
class EwcConfig(TrainConfig):
    ewc_lambda: float = option(
        "ewc: weight of the Fisher penalty (the usual 1-100 is far too small for a head on "
        "cached features).",
        default=1e5,
        check=non_negative,
        must=">= 0",
    )


@dataclass(frozen=True)
class LwfConfig(TrainConfig):
    lwf_alpha: float = option(
        "lwf: weight of the distillation term.", default=1.0, check=non_negative, must=">= 0"
    )
    lwf_temperature: float = option(
        "lwf: distillation temperature.", default=2.0, check=positive, must="> 0"
    )


@dataclass(frozen=True)
class SldaConfig:
    slda_shrinkage: float = option(
        "slda: covariance shrinkage towards its mean variance, in [0, 1).",
        default=0.05,
        check=lambda v: isinstance(v, int | float) and 0 <= v < 1,
        must="in [0, 1)",
    )

    def __post_init__(self) -> None:
        from headstart._options import _check_all

        _check_all(self)


@dataclass(frozen=True)
class NoConfig:
    """A method without options."""


@dataclass
class ContinualObjective:
    """``ce`` on the new step's batch, and when set: ``replay`` (cross-entropy on the
    memory stream's batch), ``ewc`` (the Fisher penalty around ``anchor``) and ``lwf``
    (:math:`\\alpha T^2 \\mathrm{KL}(\\mathrm{softmax}(o/T) \\| \\mathrm{softmax}(n/T))`
    of the old head's logits ``o`` and the new head's old-class logits ``n``)."""

    replay: bool = False
    fisher: dict[str, torch.Tensor] | None = None
    anchor: dict[str, torch.Tensor] | None = None
    ewc_lambda: float = 0.0
    old_head: nn.Module | None = None
    n_old: int = 0
    alpha: float = 1.0
    temperature: float = 2.0

    def __call__(self, model: nn.Module, batches: dict[str, Batch]) -> StepOutput:
        b = batches["train"]
        assert b.target is not None
        logits = model(b.inputs)
        losses = {"ce": nn.functional.cross_entropy(logits, b.target)}
        if self.replay and "memory" in batches:
            m = batches["memory"]
            assert m.target is not None
            losses["replay"] = nn.functional.cross_entropy(model(m.inputs), m.target)
        if self.fisher is not None and self.anchor is not None:
            pen = sum(
                (self.fisher[n] * (p - self.anchor[n]) ** 2).sum()
                for n, p in model.named_parameters()
                if n in self.fisher
            )
            losses["ewc"] = 0.5 * self.ewc_lambda * pen  # type: ignore[assignment]
        if self.old_head is not None:
            with torch.no_grad():
                old = self.old_head(b.inputs)
            t = self.temperature
            losses["lwf"] = (
                self.alpha
                * t
                * t
                * nn.functional.kl_div(
                    nn.functional.log_softmax(logits[:, : self.n_old] / t, 1),
                    nn.functional.log_softmax(old / t, 1),
                    log_target=True,
                    reduction="batchmean",
                )
            )
        return StepOutput(losses, logits, b.target)


def _train(
    task: StepTask, config: TrainConfig, objective: ContinualObjective, memory: bool = False
) -> StepResult:
    head = grow_head(task.head, task.n_classes)
    x = torch.from_numpy(np.asarray(task.x, dtype=np.float32))
    streams: dict[str, Any] = {
        "train": TensorStream(x, torch.from_numpy(task.y.astype(np.int64)), config.batch_size)
    }
    notes = []
    if memory:
        if len(task.state.memory_y):
            mx = torch.from_numpy(task.state.memory_x.astype(np.float32))
            my = torch.from_numpy(task.state.memory_y.astype(np.int64))
            streams["memory"] = TensorStream(mx, my, config.batch_size)
        else:
            notes.append("the replay memory is empty (--memory 0?): replay ran as naive")
    stage = Stage(
        "continual", lr=config.lr, max_epochs=config.epochs, weight_decay=0.0, on_features=True
    )
    history = History()
    torch.manual_seed(task.seed)
    with single_thread():  # a head this small: extra threads only spin (see train._heads)
        fit_stage(head, stage, streams, objective, [history], seed=task.seed, evaluate_start=False)
    head.eval()
    return StepResult(head, history.rows, notes)


def naive(task: StepTask, config: TrainConfig) -> StepResult:
    return _train(task, config, ContinualObjective())


def replay(task: StepTask, config: TrainConfig) -> StepResult:
    return _train(task, config, ContinualObjective(replay=True), memory=True)


def ewc(task: StepTask, config: EwcConfig) -> StepResult:
    grown = grow_head(task.head, task.n_classes)
    params = dict(grown.named_parameters())
    fisher, anchor = {}, {}
    for name, p in params.items():
        anchor[name] = p.detach().clone()
        f = task.state.fisher.get(name)
        fisher[name] = (
            torch.from_numpy(pad_rows(f, p.shape[0]).astype(np.float32))
            if f is not None and f.ndim == p.ndim
            else torch.zeros_like(p)
        )
    objective = ContinualObjective(fisher=fisher, anchor=anchor, ewc_lambda=config.ewc_lambda)
    result = _train(task, config, objective)
    if not task.state.fisher:
        result.notes.append("no Fisher information from the past steps: ewc ran as naive")
    return result


def lwf(task: StepTask, config: LwfConfig) -> StepResult:
    old = copy.deepcopy(task.head).eval()
    for p in old.parameters():
        p.requires_grad_(False)
    objective = ContinualObjective(
        old_head=old, n_old=task.n_old, alpha=config.lwf_alpha, temperature=config.lwf_temperature
    )
    return _train(task, config, objective)


def prototype(task: StepTask, config: NoConfig) -> StepResult:
    """Class means of every training example of every step (the state's exact sums plus
    this step's), in SimpleShot's ``cl2n`` space, scored by euclidean distance; the
    softmax scale minimises the NLL on the replay memory and the new step."""
    from headstart.fewshot._prototype import PrototypeHead, fit_scale, similarity

    st = task.state
    sums = np.zeros((task.n_classes, st.dim))
    counts = np.zeros(task.n_classes)
    sums[: len(st.proto_sums)], counts[: len(st.proto_counts)] = st.proto_sums, st.proto_counts
    np.add.at(sums, task.y, cl2n(task.x, st.proto_centre))
    np.add.at(counts, task.y, 1.0)
    if (counts == 0).any():
        missing = [st.classes[i] for i in np.flatnonzero(counts == 0) if i < len(st.classes)]
        raise HeadError(f"no training example of class(es) {missing}: no prototype for them")
    head = PrototypeHead(st.dim, task.n_classes, "cl2n", "euclidean")
    head.centre.copy_(torch.from_numpy(st.proto_centre.astype(np.float32)))
    head.prototypes.copy_(torch.from_numpy((sums / counts[:, None]).astype(np.float32)))
    head.counts.copy_(torch.from_numpy(counts.astype(np.float32)))
    xs = np.concatenate([st.memory_x, task.x]).astype(np.float32)
    ys = np.concatenate([st.memory_y, task.y])
    with torch.no_grad():
        sims = similarity(head.embed(torch.from_numpy(xs)), head.prototypes, "euclidean")
    head.scale.fill_(fit_scale(sims.double().numpy(), ys))
    row = {"stage": "prototype", "examples": int(counts.sum()), "scale": float(head.scale)}
    return StepResult(head.eval(), [row])


def slda(task: StepTask, config: SldaConfig) -> StepResult:
    r"""Linear discriminant analysis from the state's running sums plus this step's rows:
    class means :math:`\mu_k`, the pooled within-class covariance
    :math:`\Sigma_w = (\sum_n x_n x_n^\top - \sum_k n_k \mu_k \mu_k^\top) / (N - K)`,
    shrunk: :math:`\Sigma = (1 - \alpha)\Sigma_w + \alpha\,\frac{\mathrm{tr}\,\Sigma_w}{D} I`;
    logits :math:`w_k^\top x + b_k` with :math:`w_k = \Sigma^{-1}\mu_k`,
    :math:`b_k = -\frac12 \mu_k^\top \Sigma^{-1} \mu_k` (equal class priors). Streaming
    LDA (Hayes & Kanan, 2020) with exact rather than running-average statistics."""
    from headstart.surgery._model import Standardize, make_head

    st = task.state
    x = np.asarray(task.x, dtype=np.float64)
    sums = np.zeros((task.n_classes, st.dim))
    counts = np.zeros(task.n_classes)
    sums[: len(st.raw_sums)], counts[: len(st.proto_counts)] = st.raw_sums, st.proto_counts
    np.add.at(sums, task.y, x)
    np.add.at(counts, task.y, 1.0)
    if (counts == 0).any():
        missing = [st.classes[i] for i in np.flatnonzero(counts == 0) if i < len(st.classes)]
        raise HeadError(f"no training example of class(es) {missing}: no class mean for them")
    n = counts.sum()
    mu = sums / counts[:, None]
    within = (st.scatter + x.T @ x - (mu * counts[:, None]).T @ mu) / max(n - task.n_classes, 1)
    a = config.slda_shrinkage
    cov = (1 - a) * within + a * max(np.trace(within) / st.dim, 1e-12) * np.eye(st.dim)
    w = np.linalg.solve(cov, mu.T).T
    b = -0.5 * (w * mu).sum(1)
    head = make_head(st.dim, task.n_classes, hidden=(), dropout=0.0)
    head[0] = Standardize.identity(st.dim)
    with torch.no_grad():
        head[-1].weight.copy_(torch.from_numpy(w.astype(np.float32)))
        head[-1].bias.copy_(torch.from_numpy(b.astype(np.float32)))
    return StepResult(head.eval(), [{"stage": "slda", "examples": int(n), "shrinkage": a}])


def refit(task: StepTask, config: NoConfig) -> StepResult:
    """A logistic-regression head on the replay memory plus the new step, each class
    weighted by the inverse of its count (the memory holds few rows of each old class);
    ``C`` chosen on a stratified fifth of those rows."""
    from sklearn.model_selection import train_test_split

    from headstart.adapt._head import fit_weighted_head

    st = task.state
    x = np.concatenate([st.memory_x, task.x]).astype(np.float32)
    y = np.concatenate([st.memory_y, task.y]).astype(np.int64)
    counts = np.bincount(y, minlength=task.n_classes).astype(np.float64)
    w = 1.0 / counts[y]
    idx = np.arange(len(y))
    strat = y if counts[counts > 0].min() >= 2 else None
    tr, va = train_test_split(idx, test_size=0.2, random_state=task.seed, stratify=strat)
    head, history = fit_weighted_head(
        x[tr], y[tr], x[va], y[va], task.n_classes, w[tr], w[va], seed=task.seed
    )
    notes = (
        [] if len(st.memory_y) else ["the replay memory is empty: the head saw the new step only"]
    )
    return StepResult(head.eval(), history, notes)


register_continual_method(
    "naive",
    naive,
    TrainConfig,
    "the old head grown and trained on the new step alone (forgets)",
    uses=("linear head",),
)
register_continual_method(
    "replay",
    replay,
    TrainConfig,
    "experience replay: new-step batches paired with batches of the bundle's memory",
    uses=("linear head", "memory"),
)
register_continual_method(
    "ewc",
    ewc,
    EwcConfig,
    "elastic weight consolidation (Fisher penalty)",
    uses=("linear head", "fisher"),
)
register_continual_method(
    "lwf",
    lwf,
    LwfConfig,
    "learning without forgetting (distils the old head)",
    uses=("linear head", "old head"),
)
register_continual_method(
    "prototype",
    prototype,
    NoConfig,
    "nearest class mean over every example seen (exact sums, no training)",
    uses=("class sums", "memory"),
)
register_continual_method(
    "slda",
    slda,
    SldaConfig,
    "streaming LDA: exact class means and shared covariance of every example seen",
    uses=("class sums",),
)
register_continual_method(
    "refit",
    refit,
    NoConfig,
    "logistic head re-fit on the replay memory plus the new step",
    uses=("memory",),
)

__all__ = [
    "ContinualObjective",
    "EwcConfig",
    "HeadError",
    "LwfConfig",
    "NoConfig",
    "SldaConfig",
    "StepResult",
    "StepTask",
    "TrainConfig",
    "grow_head",
]
