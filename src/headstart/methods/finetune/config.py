"""Options of ``finetune``: head first on cached features, then the top blocks."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import non_negative, option, positive
from headstart.methods import _options as o


def blocks(text: str) -> int | str:
    return "all" if text == "all" else int(text)


@dataclass(frozen=True)
class FinetuneConfig:
    hidden: tuple[int, ...] = o.hidden()
    dropout: float = o.dropout()
    unfreeze: int | str = option(
        "Top blocks to unfreeze in stage 2, or 'all'.",
        default=2,
        parse=blocks,
        check=lambda v: v == "all" or (isinstance(v, int) and v >= 0),
        must="a count >= 0 or 'all'",
    )
    lr: float | str = o.lr(1e-4)
    lr_decay: float = option(
        "Each block below the top trains at this multiple of the one above.",
        default=0.5,
        check=positive,
    )
    head_lr: float = o.head_lr()
    epochs: int = o.epochs(10)
    head_epochs: int = o.head_epochs(50)
    patience: int = o.patience(3)
    label_smoothing: float = option(
        "Label smoothing of the end-to-end cross-entropy.", default=0.0, check=non_negative
    )
    warmup: float = o.warmup()
    gradual: bool = option(
        "Gradual unfreezing (ULMFiT): one epoch per newly unfrozen block, top first.",
        default=False,
    )
    keep_extract: bool = o.keep_extract()
    precision: str = o.precision()
