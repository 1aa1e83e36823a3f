"""Multi-task heads on frozen features: one shared trunk, one head per task, on the one loop.

:class:`MultiTaskNet` is a standardisation, a shared trunk (linear, ReLU, dropout) and a
linear head per task. :func:`fit_multitask` trains it with :func:`headstart.train.fit_stage`
and :class:`MultiTaskObjective`, whose loss terms are one masked cross-entropy per task
(``-1``: the row has no label for that task; it contributes nothing to that task),
weighted as chosen:

* ``equal``: :math:`\\sum_t L_t`;
* ``uncertainty`` (Kendall et al., 2018): :math:`\\sum_t e^{-s_t} L_t + s_t`, with a
  learnt log-variance :math:`s_t` per task;
* ``pcgrad`` (Yu et al., 2020): each task's gradient on the shared trunk is projected off
  the gradients of the tasks it conflicts with (negative dot product), in a random order,
  and their sum is applied (:func:`pcgrad_combine`); each head gets its own task's gradient;
* ``gradnorm`` (Chen et al., 2018): :math:`\\sum_t w_t L_t` with learnt task weights
  :math:`w_t` (starting at 1, renormalised to sum to :math:`T` before every step) trained by
  :func:`gradnorm_loss` to equalise each task's gradient norm on the last shared layer, the
  tasks that train slower (a higher :math:`L_t / L_t(0)`) getting larger norms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._errors import UserError
from headstart.surgery._model import Standardize
from headstart.train._callbacks import History
from headstart.train._engine import Batch, StepOutput, TensorStream, fit_stage
from headstart.train._heads import single_thread
from headstart.train._schedule import Stage

WEIGHTINGS = ("equal", "uncertainty", "pcgrad", "gradnorm")
GRADNORM_ALPHA = 1.5  # the restoring force of GradNorm (the paper's alpha; 1.5 is its usual value)


class MultiTaskError(UserError, ValueError):
    """Multi-task data or options that cannot work; the message says why."""


class MultiTaskNet(nn.Module):
    """Standardised features, a shared trunk, one linear head per task; ``log_vars`` are
    the uncertainty weighting's :math:`s_t`, ``task_weights`` GradNorm's :math:`w_t`
    (each trained only under its weighting)."""

    def __init__(
        self, in_dim: int, n_classes: Sequence[int], hidden: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.standardize = Standardize.identity(in_dim)
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.task_heads = nn.ModuleList([nn.Linear(hidden, k) for k in n_classes])
        self.log_vars = nn.Parameter(torch.zeros(len(n_classes)))
        self.task_weights = nn.Parameter(torch.ones(len(n_classes)))

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.standardize(x))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.shared(x)
        return [h(z) for h in self.task_heads]


def masked_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the rows with a label (``y >= 0``); 0 when none has."""
    keep = y >= 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits[keep], y[keep])


def pcgrad_combine(grads: Sequence[torch.Tensor], rng: np.random.Generator) -> torch.Tensor:
    r"""PCGrad's update from per-task gradients ``grads`` (each flat, ``(P,)``): for each
    task ``i``, :math:`g_i \leftarrow g_i - \frac{g_i \cdot g_j}{\lVert g_j\rVert^2} g_j`
    for every other task ``j`` (in a random order) with :math:`g_i \cdot g_j < 0`; returns
    :math:`\sum_i g_i`. Tasks that do not conflict are summed unchanged."""
    out = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in rng.permutation(len(grads)):
            if j == i:
                continue
            dot = torch.dot(g, grads[j])
            norm = torch.dot(grads[j], grads[j])
            if dot < 0 and norm > 0:
                g = g - dot / norm * grads[j]
        out.append(g)
    return torch.stack(out).sum(0)


def gradnorm_loss(
    weights: torch.Tensor,
    grad_norms: torch.Tensor,
    losses: torch.Tensor,
    initial_losses: torch.Tensor,
    alpha: float = GRADNORM_ALPHA,
) -> torch.Tensor:
    r"""GradNorm's loss on the task weights ``weights`` :math:`w` ``(T,)``, given each
    unweighted task loss's gradient norm on the last shared layer ``grad_norms``
    :math:`g_t = \lVert\nabla_W L_t\rVert_2`, the losses now and at the first step:

    .. math:: L_{grad} = \sum_t \bigl|w_t g_t - \bar G\, r_t^{\alpha}\bigr|,\quad
       \bar G = \tfrac1T \sum_t w_t g_t,\quad
       r_t = \frac{L_t / L_t(0)}{\tfrac1T \sum_s L_s / L_s(0)}

    with the target :math:`\bar G r_t^{\alpha}` held constant, so that the gradient
    reaches :math:`w` alone (``grad_norms`` and the losses are taken as data)."""
    g = weights * grad_norms.detach()
    ratio = losses.detach() / initial_losses.detach().clamp_min(1e-12)
    r = ratio / ratio.mean()
    target = (g.mean() * r**alpha).detach()
    return (g - target).abs().sum()


@dataclass
class MultiTaskObjective:
    """One loss term per task (``task:<name>``), weighted by ``weighting``; under
    ``pcgrad`` a zero-valued ``pcgrad`` term carries the projected trunk gradient, under
    ``gradnorm`` a ``gradnorm`` term (:func:`gradnorm_loss`) trains the task weights."""

    names: Sequence[str]
    weighting: str = "equal"
    seed: int = 0
    alpha: float = GRADNORM_ALPHA
    rng: np.random.Generator = field(init=False)
    initial: torch.Tensor | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, model: nn.Module, batches: dict[str, Batch]) -> StepOutput:
        assert isinstance(model, MultiTaskNet)
        b = batches["train"]
        assert b.target is not None
        y = b.target
        if self.weighting == "pcgrad":
            return self._pcgrad(model, b.inputs, y)
        if self.weighting == "gradnorm":
            return self._gradnorm(model, b.inputs, y)
        logits = model(b.inputs)
        losses = {}
        for t, name in enumerate(self.names):
            ce = masked_ce(logits[t], y[:, t])
            if self.weighting == "uncertainty":
                s = model.log_vars[t]
                ce = torch.exp(-s) * ce + s
            losses[f"task:{name}"] = ce
        return StepOutput(losses)

    def _gradnorm(self, model: MultiTaskNet, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        w = model.task_weights
        with torch.no_grad():  # GradNorm's renormalisation: the weights sum to T
            w.clamp_(min=1e-3).mul_(len(self.names) / w.sum())
        logits = model(x)
        ces = [masked_ce(logits[t], y[:, t]) for t in range(len(self.names))]
        layer = model.trunk[0].weight  # the last shared layer
        norms = []
        for ce in ces:
            (g,) = torch.autograd.grad(ce, [layer], retain_graph=True, allow_unused=True)
            norms.append(g.norm() if g is not None else torch.zeros(()))
        now = torch.stack([ce.detach() for ce in ces])
        has = torch.tensor([bool((y[:, t] >= 0).any()) for t in range(len(ces))])
        if self.initial is None:
            self.initial = torch.zeros(len(ces))
        first = has & (self.initial == 0)  # a task's L(0): its first batch with labels
        self.initial[first] = now[first]
        out = {
            f"task:{n}": w[t].detach() * ce
            for t, (n, ce) in enumerate(zip(self.names, ces, strict=True))
        }
        if int(has.sum()) >= 2:  # the tasks this batch has labels for
            g = torch.stack(norms)
            out["gradnorm"] = gradnorm_loss(w[has], g[has], now[has], self.initial[has], self.alpha)
        return StepOutput(out)

    def _pcgrad(self, model: MultiTaskNet, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        z = model.shared(x)
        shared = [p for p in model.trunk.parameters() if p.requires_grad]
        grads, losses = [], {}
        for t, name in enumerate(self.names):
            ce = masked_ce(model.task_heads[t](z), y[:, t])
            g = torch.autograd.grad(ce, shared, retain_graph=True, allow_unused=True)
            grads.append(
                torch.cat(
                    [
                        (gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                        for gi, p in zip(g, shared, strict=True)
                    ]
                )
            )
            # the head's own gradient, through a trunk output cut from the graph
            losses[f"task:{name}"] = masked_ce(model.task_heads[t](z.detach()), y[:, t])
        combined = pcgrad_combine(grads, self.rng)
        surrogate = torch.zeros(())
        at = 0
        for p in shared:
            n = p.numel()
            surrogate = surrogate + (p * combined[at : at + n].view_as(p)).sum()
            at += n
        losses["pcgrad"] = surrogate - surrogate.detach()  # value 0, gradient: the update
        return StepOutput(losses)


@dataclass
class MultiTaskFit:
    """A trained :class:`MultiTaskNet` and its per-epoch history."""

    model: MultiTaskNet
    history: list[dict[str, Any]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(N, T)`` predicted class indices."""
        self.model.eval()
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return np.stack([o.argmax(1).numpy() for o in out], axis=1)


def fit_multitask(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: Sequence[int],
    names: Sequence[str] | None = None,
    weighting: str = "equal",
    *,
    hidden: int = 256,
    dropout: float = 0.1,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    alpha: float = GRADNORM_ALPHA,
) -> MultiTaskFit:
    """Train a :class:`MultiTaskNet` on features ``x`` ``(N, D)`` and labels ``y``
    ``(N, T)`` (class indices; ``-1``: missing) with ``weighting`` (``equal``,
    ``uncertainty``, ``pcgrad`` or ``gradnorm``; ``alpha``: GradNorm's)."""
    if weighting not in WEIGHTINGS:
        raise MultiTaskError(
            f"--weighting: unknown {weighting!r}; choose one of {', '.join(WEIGHTINGS)}"
        )
    y = np.asarray(y, dtype=np.int64)
    if y.ndim != 2 or y.shape[0] != len(x) or y.shape[1] != len(n_classes):
        raise MultiTaskError(f"labels of shape {y.shape}: expected ({len(x)}, {len(n_classes)})")
    names = list(names) if names is not None else [f"task{t}" for t in range(len(n_classes))]
    torch.manual_seed(seed)
    model = MultiTaskNet(x.shape[1], n_classes, hidden, dropout)
    model.standardize = Standardize.fit(np.asarray(x, dtype=np.float32))
    if weighting != "uncertainty":
        model.log_vars.requires_grad_(False)
    if weighting != "gradnorm":
        model.task_weights.requires_grad_(False)
    stream = TensorStream(
        torch.from_numpy(np.asarray(x, dtype=np.float32)), torch.from_numpy(y), batch_size
    )
    stage = Stage("multitask", lr=lr, max_epochs=epochs, weight_decay=1e-4, on_features=True)
    history = History()
    objective = MultiTaskObjective(names, weighting, seed, alpha)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    with single_thread():
        fit_stage(
            model, stage, {"train": stream}, objective, [history], seed=seed, evaluate_start=False
        )
    for p in frozen:  # fit_stage trains every head parameter: keep the unused s_t at 0
        p.requires_grad_(False)
    with torch.no_grad():
        if weighting != "uncertainty":
            model.log_vars.zero_()
        if weighting == "gradnorm":
            w = model.task_weights
            w.clamp_(min=1e-3).mul_(len(names) / w.sum())
        else:
            model.task_weights.fill_(1.0)
    model.eval()
    return MultiTaskFit(model, history.rows)


def encode_tasks(columns: dict[str, Sequence[Any]]) -> tuple[np.ndarray, list[list[str]]]:
    """Label columns (``{task: one label per row}``; ``None`` or ``""``: missing) as a
    ``(N, T)`` index matrix with ``-1`` for missing, and each task's sorted class names.
    A task with fewer than two classes is an error."""
    if not columns:
        raise MultiTaskError("no task: give at least one label column")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise MultiTaskError(f"label columns of different lengths: {sorted(lengths)}")
    out, classes = [], []
    for name, labels in columns.items():
        seen = sorted({str(v) for v in labels if v is not None and str(v) != ""})
        if len(seen) < 2:
            what = f"only one class ({seen[0]!r})" if seen else "no label at all"
            raise MultiTaskError(f"task {name!r}: {what}; a task needs at least two classes")
        at = {c: i for i, c in enumerate(seen)}
        out.append([at.get(str(v), -1) if v is not None and str(v) != "" else -1 for v in labels])
        classes.append(seen)
    return np.array(out, dtype=np.int64).T, classes


__all__ = [
    "GRADNORM_ALPHA",
    "WEIGHTINGS",
    "MultiTaskError",
    "MultiTaskFit",
    "MultiTaskNet",
    "MultiTaskObjective",
    "encode_tasks",
    "fit_multitask",
    "gradnorm_loss",
    "masked_ce",
    "pcgrad_combine",
]
