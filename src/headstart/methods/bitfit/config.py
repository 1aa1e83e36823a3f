"""Options of ``bitfit``: the new head, then only the backbone's bias terms."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option
from headstart.methods import _options as o


@dataclass(frozen=True)
class BitfitConfig:
    hidden: tuple[int, ...] = o.hidden()
    dropout: float = o.dropout()
    lr: float | str = o.lr(1e-3)
    head_lr: float = o.head_lr()
    epochs: int = o.epochs(10)
    head_epochs: int = o.head_epochs(50)
    patience: int = o.patience(3)
    warmup: float = o.warmup()
    keep_extract: bool = o.keep_extract()
    precision: str = o.precision()
    bias_pattern: str = option(
        "bitfit: parameter-name pattern of the terms that train (fnmatch).", default="*bias"
    )
