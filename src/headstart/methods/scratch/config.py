"""Options of ``scratch``: the same architecture, randomly initialised, every block trained."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive, show_sizes, sizes


@dataclass(frozen=True)
class ScratchConfig:
    hidden: tuple[int, ...] = option(
        "Hidden sizes of the new head, e.g. 256,128.", default=(), parse=sizes, show=show_sizes
    )
    dropout: float = option("Dropout before each layer of the new head.", default=0.2)
    scratch_lr: float | None = option(
        "Learning rate from scratch (default: 1e-4 for transformers, 1e-3 otherwise).",
        default=None,
        check=positive,
    )
    epochs: int = option(
        "At most this many end-to-end epochs (scratch: twice this).", default=10, check=positive
    )
    patience: int = option(
        "Stop after this many epochs without a better validation accuracy (scratch: at least 5).",
        default=3,
        check=positive,
    )
