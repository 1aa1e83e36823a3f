"""Options of ``finetune``: head first on cached features, then the top blocks."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import non_negative, option, positive, show_sizes, sizes


def _blocks(v: int | str) -> bool:
    return v == "all" or (isinstance(v, int) and v >= 0)


def blocks(text: str) -> int | str:
    return "all" if text == "all" else int(text)


@dataclass(frozen=True)
class FinetuneConfig:
    hidden: tuple[int, ...] = option(
        "Hidden sizes of the new head, e.g. 256,128.", default=(), parse=sizes, show=show_sizes
    )
    dropout: float = option("Dropout before each layer of the new head.", default=0.2)
    unfreeze: int | str = option(
        "Top blocks to unfreeze in stage 2, or 'all'.",
        default=2,
        parse=blocks,
        check=_blocks,
        must="a count >= 0 or 'all'",
    )
    lr: float = option(
        "Stage 2 learning rate (finetune: of the top block; bitfit: of the biases) and the head's.",
        default=1e-4,
        check=positive,
    )
    lr_decay: float = option(
        "Each block below the top trains at this multiple of the one above.",
        default=0.5,
        check=positive,
    )
    head_lr: float = option("Learning rate of a trained (mlp) head.", default=1e-3, check=positive)
    epochs: int = option("At most this many end-to-end epochs.", default=10, check=positive)
    head_epochs: int = option(
        "At most this many epochs for a trained head.", default=50, check=positive
    )
    patience: int = option(
        "Stop after this many epochs without a better validation accuracy.",
        default=3,
        check=positive,
    )
    label_smoothing: float = option(
        "Label smoothing of the end-to-end cross-entropy.", default=0.0, check=non_negative
    )
