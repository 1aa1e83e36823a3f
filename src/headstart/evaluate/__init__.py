"""Evaluation: metrics and intervals as pure functions, baselines, multi-seed comparison."""

from typing import Any

from headstart.evaluate._baselines import BASELINES, fit_baseline
from headstart.evaluate._metrics import (
    accuracy,
    classification_report,
    confusion,
    macro_f1,
    per_class,
)
from headstart.evaluate._stats import mean_ci, paired_ci, wilson_interval

_LAZY = ("CompareResult", "compare")  # they build on headstart.fit, which imports this package


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from headstart.evaluate import _compare

        return getattr(_compare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINES",
    "CompareResult",
    "accuracy",
    "classification_report",
    "compare",
    "confusion",
    "fit_baseline",
    "macro_f1",
    "mean_ci",
    "paired_ci",
    "per_class",
    "wilson_interval",
]
