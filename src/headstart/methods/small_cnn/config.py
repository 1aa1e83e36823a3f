"""Options of the ``small_cnn`` baseline."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive
from headstart.methods import _options as o


@dataclass(frozen=True)
class SmallCnnConfig:
    pixel_size: int = o.pixel_size()
    cnn_epochs: int = option(
        "small_cnn baseline: at most this many epochs (early stopping).", default=30, check=positive
    )
