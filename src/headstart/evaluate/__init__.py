"""Evaluation: metrics and intervals as pure functions, the report and the model card."""

from headstart.evaluate._metrics import (
    accuracy,
    classification_report,
    confusion,
    macro_f1,
    per_class,
)
from headstart.evaluate._stats import mean_ci, paired_ci, wilson_interval

__all__ = [
    "accuracy",
    "classification_report",
    "confusion",
    "macro_f1",
    "mean_ci",
    "paired_ci",
    "per_class",
    "wilson_interval",
]
