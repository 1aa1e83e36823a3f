"""Options of ``scratch``: the same architecture, randomly initialised, every block trained
(for at most twice ``epochs``, with a patience of at least 5)."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive
from headstart.methods import _options as o


@dataclass(frozen=True)
class ScratchConfig:
    hidden: tuple[int, ...] = o.hidden()
    dropout: float = o.dropout()
    scratch_lr: float | None = option(
        "Learning rate from scratch (default: 1e-4 for transformers, 1e-3 otherwise).",
        default=None,
        check=positive,
    )
    epochs: int = o.epochs(10)
    patience: int = o.patience(3)
    precision: str = o.precision()
