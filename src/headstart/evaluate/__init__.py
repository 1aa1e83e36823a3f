"""Evaluation: metrics as pure functions."""

from headstart.evaluate._metrics import (
    accuracy,
    classification_report,
    confusion,
    macro_f1,
    per_class,
)

__all__ = ["accuracy", "classification_report", "confusion", "macro_f1", "per_class"]
