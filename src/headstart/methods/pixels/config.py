"""Options of the ``pixels`` baseline."""

from __future__ import annotations

from dataclasses import dataclass

from headstart.methods import _options as o


@dataclass(frozen=True)
class PixelsConfig:
    pixel_size: int = o.pixel_size()
