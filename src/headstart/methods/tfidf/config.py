"""Options of the ``tfidf`` baseline (none: its C is chosen on validation)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TfidfConfig:
    pass
