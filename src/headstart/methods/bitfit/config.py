"""Options of ``bitfit``: the new head, then only the backbone's bias terms."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive, show_sizes, sizes


@dataclass(frozen=True)
class BitfitConfig:
    hidden: tuple[int, ...] = option(
        "Hidden sizes of the new head, e.g. 256,128.", default=(), parse=sizes, show=show_sizes
    )
    dropout: float = option("Dropout before each layer of the new head.", default=0.2)
    lr: float = option(
        "Stage 2 learning rate (finetune: of the top block; bitfit: of the biases) and the head's.",
        default=1e-3,
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
    bias_pattern: str = option(
        "bitfit: parameter-name pattern of the terms that train (fnmatch).", default="*bias"
    )
