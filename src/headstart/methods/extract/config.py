"""Options of ``extract``: a new head on features the frozen backbone computes once."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option
from headstart.methods import _options as o


@dataclass(frozen=True)
class ExtractConfig:
    head: str = option(
        "Feature head: logreg (exact logistic regression, C chosen on held-out data) or mlp.",
        default="logreg",
        check=lambda v: v in ("logreg", "mlp"),
        must="logreg or mlp",
    )
    select: str = option(
        "How the logreg head's C is chosen: auto (stratified k-fold cross-validation over "
        "train + validation up to 2,000 examples, else the validation split), cv or val.",
        default="auto",
        check=lambda v: v in ("auto", "cv", "val"),
        must="auto, cv or val",
    )
    refit: bool = option(
        "Refit the chosen head on train + validation (every label counts).",
        default=True,
        flag="--no-refit",
    )
    standardize: bool = option(
        "Standardise each feature before the head (logreg default: off, measured better).",
        default=False,
    )
    hidden: tuple[int, ...] = o.hidden()
    dropout: float = o.dropout()
    head_lr: float = o.head_lr()
    head_epochs: int = o.head_epochs(100)
    patience: int = o.patience(10)
