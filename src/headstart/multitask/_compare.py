"""Single-task against multi-task on the same splits: is sharing a trunk worth it?

:func:`compare_multitask` trains, on the same training rows and seed, one single-task
model per task (the same :class:`~headstart.multitask.MultiTaskNet` with that task alone)
and one multi-task model per weighting, scores every task on the test rows (rows that
have its label), and reports :math:`\\Delta_m` and each task's relative gain; a task
whose gain is negative is flagged as negative transfer between tasks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from headstart.multitask._metrics import delta_m, masked_accuracy, relative_gains
from headstart.multitask._train import WEIGHTINGS, MultiTaskFit, fit_multitask


def compare_multitask(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: Sequence[int],
    names: Sequence[str],
    weightings: Sequence[str] = WEIGHTINGS,
    seed: int = 0,
    fits: dict[str, MultiTaskFit] | None = None,
    **train: Any,
) -> dict[str, Any]:
    """Test accuracy per task of single-task models and of a multi-task model per
    weighting, with :math:`\\Delta_m` and per-task relative gains over single-task.
    ``fits``, when given, receives the trained models (``single:<task>``, and each
    weighting's name)."""
    names = list(names)
    single, seconds = [], {}
    t = time.perf_counter()
    for k, name in enumerate(names):
        fit = fit_multitask(x, y[:, [k]], [n_classes[k]], [name], "equal", seed=seed, **train)
        if fits is not None:
            fits[f"single:{name}"] = fit
        single.append(masked_accuracy(fit.predict(x_test)[:, 0], y_test[:, k]))
    seconds["single"] = time.perf_counter() - t
    rows = {}
    for w in weightings:
        t = time.perf_counter()
        fit = fit_multitask(x, y, n_classes, names, w, seed=seed, **train)
        if fits is not None:
            fits[w] = fit
        pred = fit.predict(x_test)
        acc = [masked_accuracy(pred[:, k], y_test[:, k]) for k in range(len(names))]
        gains = relative_gains(acc, single)
        rows[w] = {
            "accuracy": dict(zip(names, acc, strict=True)),
            "relative_gain": dict(zip(names, gains, strict=True)),
            "delta_m": delta_m(acc, single),
            "negative_transfer": [n for n, g in zip(names, gains, strict=True) if g < 0],
            "seconds": time.perf_counter() - t,
        }
    return {
        "tasks": names,
        "single_task": dict(zip(names, single, strict=True)),
        "multi_task": rows,
        "seconds_single": seconds["single"],
        "seed": seed,
    }


__all__ = ["compare_multitask"]
