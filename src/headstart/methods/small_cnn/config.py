"""Options of the ``small_cnn`` baseline."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive


@dataclass(frozen=True)
class SmallCnnConfig:
    pixel_size: int = option(
        "pixels / small_cnn baselines: images resized to this many pixels a side.",
        default=32,
        check=positive,
    )
    cnn_epochs: int = option(
        "small_cnn baseline: at most this many epochs (early stopping).", default=30, check=positive
    )
