"""Helpers shared by the integration tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import headstart

CAT_CLASSES = frozenset(range(281, 286))  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian
ESPRESSO = 967


def require_offline_weights(name: str) -> headstart.BackboneSpec:
    """The spec of a packaged model; skips when its (optional) weights package is absent."""
    spec = headstart.get_spec(name)
    if not spec.offline_available():
        pytest.skip(f"{spec.name}: optional weights package {spec.weights.pip!r} not installed")
    return spec


def read_predictions(out: Path) -> list[dict[str, str]]:
    """Rows of the ``predictions.csv`` that :func:`headstart.fit` writes (test split order)."""
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
