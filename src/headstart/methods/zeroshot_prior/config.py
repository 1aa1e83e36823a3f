"""Options of ``zeroshot_prior``: the template, and the weight of the label embedding."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option
from headstart.methods.prototype.config import metric, transform
from headstart.methods.zeroshot.config import template

LABEL_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class ZeroshotPriorConfig:
    template: str = template()
    label_weight: float | None = option(
        "zeroshot_prior: the class name's embedding counts as this many examples (empty: "
        "chosen by leave-one-out among 0, 0.5, 1, 2, 4, 8).",
        default=None,
        check=lambda v: v is None or v >= 0,
        must=">= 0",
    )
    transform: str = transform()
    metric: str = metric()
