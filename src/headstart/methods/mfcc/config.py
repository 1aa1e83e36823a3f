"""Options of the ``mfcc`` baseline (none: its C is chosen on validation)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MfccConfig:
    pass
