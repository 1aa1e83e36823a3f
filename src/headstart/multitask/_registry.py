"""The multi-task weightings as ``headstart methods`` lists them (kind ``multitask``).

Each weighting (:data:`~headstart.multitask.WEIGHTINGS`) shares one config,
:class:`MultiTaskConfig`, whose fields are :func:`headstart.fit_multi`'s training knobs
with their help text; ``fit --label-column a,b --weighting NAME`` or ``fit-multi
--weighting NAME`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import fraction, option, positive
from headstart.multitask._train import GRADNORM_ALPHA


@dataclass(frozen=True)
class MultiTaskConfig:
    """Training knobs of a multi-task model on frozen features."""

    hidden: int = option(
        "Width of the shared trunk (a linear layer, ReLU, dropout).", default=256, check=positive
    )
    dropout: float = option("Dropout after the shared trunk.", default=0.1, check=fraction)
    epochs: int = option("Epochs over the training rows.", default=40, check=positive)
    lr: float = option("Learning rate (AdamW) of the trunk and heads.", default=1e-3)
    batch_size: int = option("Training rows per batch.", default=64, check=positive)
    gradnorm_alpha: float = option(
        "gradnorm: the restoring force alpha (0: equal gradient norms; larger: slower "
        "tasks get larger norms).",
        default=GRADNORM_ALPHA,
    )


@dataclass(frozen=True)
class WeightingInfo:
    """A multi-task weighting as ``headstart methods`` shows it."""

    name: str
    summary: str
    config_cls: type = MultiTaskConfig
    modalities: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        return "multitask"


_WEIGHTINGS = [
    WeightingInfo(
        "equal", "Multi-task: one shared trunk, one head per task, the task losses summed."
    ),
    WeightingInfo(
        "uncertainty",
        "Multi-task: task losses weighted by a learnt log-variance each (Kendall et al. 2018).",
    ),
    WeightingInfo(
        "pcgrad",
        "Multi-task: conflicting task gradients projected off each other (Yu et al. 2020).",
    ),
    WeightingInfo(
        "gradnorm",
        "Multi-task: learnt task weights that balance gradient norms (Chen et al. 2018).",
    ),
]


def list_multitask_methods() -> list[WeightingInfo]:
    """The weightings, in :data:`~headstart.multitask.WEIGHTINGS` order."""
    return list(_WEIGHTINGS)


__all__ = ["MultiTaskConfig", "WeightingInfo", "list_multitask_methods"]
