"""Options of ``extract``: a new head on features the frozen backbone computes once."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option
from headstart.methods import _options as o


@dataclass(frozen=True)
class ExtractConfig:
    head: str = option(
        "Feature head: logreg (exact logistic regression, C picked on validation) or mlp.",
        default="logreg",
        check=lambda v: v in ("logreg", "mlp"),
        must="logreg or mlp",
    )
    hidden: tuple[int, ...] = o.hidden()
    dropout: float = o.dropout()
    head_lr: float = o.head_lr()
    head_epochs: int = o.head_epochs(100)
    patience: int = o.patience(10)
