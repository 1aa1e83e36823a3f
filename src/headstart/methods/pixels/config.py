"""Options of the ``pixels`` baseline."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option, positive


@dataclass(frozen=True)
class PixelsConfig:
    pixel_size: int = option(
        "pixels / small_cnn baselines: images resized to this many pixels a side.",
        default=32,
        check=positive,
    )
