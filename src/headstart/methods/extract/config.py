"""Options of ``extract``: a new head on features the frozen backbone computes once."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive, show_sizes, sizes


def _head(v: str) -> bool:
    return v in ("logreg", "mlp")


@dataclass(frozen=True)
class ExtractConfig:
    head: str = option(
        "Feature head: logreg (exact logistic regression, C picked on validation) or mlp.",
        default="logreg",
        check=_head,
        must="logreg or mlp",
    )
    hidden: tuple[int, ...] = option(
        "Hidden sizes of the new head, e.g. 256,128 (mlp default: 256).",
        default=(),
        parse=sizes,
        show=show_sizes,
    )
    dropout: float = option("Dropout before each layer of the new head.", default=0.2)
    head_lr: float = option("Learning rate of a trained (mlp) head.", default=1e-3, check=positive)
    head_epochs: int = option(
        "At most this many epochs for a trained head.", default=100, check=positive
    )
    patience: int = option(
        "Stop after this many epochs without a better validation accuracy.",
        default=10,
        check=positive,
    )
