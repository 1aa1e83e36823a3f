"""Continual steps on arrays: a head, the state of the past, and a step of new classes.

:func:`start_state` records the first step (the classes a bundle was fit on);
:func:`learn_step` adds one step with a registered method and appends a row to the
accuracy matrix (:mod:`headstart.continual._metrics`); :func:`run_sequence` runs a whole
sequence from features (what the benchmark calls). Labels here are class *names*; the
state maps them to indices.

A step's ``scenario`` is explicit (:data:`SCENARIOS`): ``class`` (class-incremental: the
step brings only new classes, scored by the argmax over every class seen), ``task``
(task-incremental: the same training, new classes only, the headline scores taken with
the task known, the argmax over the step's own classes) or ``domain``
(domain-incremental: the step brings only classes the model knows, from a new domain, a
new rotation of the digits say; the head keeps its outputs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._errors import UserError
from headstart.continual._methods import StepTask
from headstart.continual._metrics import continual_metrics
from headstart.continual._registry import get_continual_method
from headstart.continual._state import ContinualState, empty_state, fisher_diagonal, pad_rows


class ContinualError(UserError, ValueError):
    """A continual step cannot run as asked; the message says why."""


SCENARIOS = ("class", "task", "domain")


def check_scenario(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise ContinualError(
            f"--scenario {scenario!r}: choose one of {', '.join(SCENARIOS)} (class-, task- "
            "or domain-incremental)"
        )
    return scenario


def check_step_classes(scenario: str, new: Sequence[str], known: Sequence[str]) -> None:
    """Refuse, in one line, a step whose classes do not fit its scenario: new classes that
    are known already (``class`` / ``task``), classes the model does not know
    (``domain``), fewer than two classes."""
    check_scenario(scenario)
    if scenario == "domain":
        unknown = [c for c in new if c not in known]
        if unknown:
            raise ContinualError(
                f"domain-incremental step: {', '.join(map(repr, unknown))} not among the "
                f"classes the model knows ({', '.join(known)}); a domain step brings known "
                "classes from a new domain (to add classes: --scenario class)"
            )
        if len(new) < 2:
            raise ContinualError(
                f"domain-incremental step: only one class ({', '.join(map(repr, new))}); a "
                "step must bring at least two (one class gives cross-entropy nothing to "
                "tell apart)"
            )
        return
    overlap = [c for c in new if c in known]
    if overlap:
        raise ContinualError(
            f"{scenario}-incremental step: {', '.join(map(repr, overlap))} already learned in "
            f"an earlier step (the model knows {', '.join(known)}); a step must bring only "
            "new classes (the same classes from a new domain: --scenario domain)"
        )
    if len(new) < 2:
        raise ContinualError(
            f"{scenario}-incremental step: only one new class ({', '.join(map(repr, new))}); "
            "a step must bring at least two (a lone class gives cross-entropy nothing to "
            "tell apart): add it together with another new class"
        )


@dataclass(frozen=True)
class StepData:
    """One step's cached features and class names: training rows (train + validation of
    the step's data) and held-out test rows."""

    x: np.ndarray
    labels: Sequence[str]
    x_test: np.ndarray
    labels_test: Sequence[str]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))


def _indices(labels: Sequence[str], classes: list[str]) -> np.ndarray:
    at = {c: i for i, c in enumerate(classes)}
    return np.array([at[c] for c in labels], dtype=np.int64)


def head_accuracy(head: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``head``'s argmax over every class on features ``x``."""
    if not len(y):
        return float("nan")
    head.eval()
    with torch.inference_mode():
        pred = head(torch.from_numpy(np.asarray(x, dtype=np.float32))).argmax(1).numpy()
    return float((pred == y).mean())


def score_row(
    head: nn.Module, state: ContinualState, task_incremental: bool = False
) -> list[float]:
    """Test accuracy on each step so far: class-incremental, the argmax over every class
    seen; ``task_incremental``, the argmax over the step's own classes (the task is known
    at test time)."""
    row = []
    for j, task in enumerate(state.tasks):
        rows = state.eval_task == j
        x, y = state.eval_x[rows], state.eval_y[rows]
        if not task_incremental:
            row.append(head_accuracy(head, x, y))
            continue
        cols = np.array([state.classes.index(c) for c in task])
        head.eval()
        with torch.inference_mode():
            logits = head(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
        row.append(float((cols[logits[:, cols].argmax(1)] == y).mean()) if len(y) else np.nan)
    return row


def _add_fisher(state: ContinualState, head: nn.Module, x: np.ndarray, y: np.ndarray, seed: int):
    if not any(True for _ in head.parameters()):
        return
    new = fisher_diagonal(head, x, y, seed=seed)
    for name, f in new.items():
        old = state.fisher.get(name)
        state.fisher[name] = f + pad_rows(old, f.shape[0]) if old is not None else f


def start_state(
    head: nn.Module, first: StepData, memory: int = 200, seed: int = 0, classes: Sequence[str] = ()
) -> ContinualState:
    """The state after the first step: ``head`` was trained on ``first`` (its output
    columns are ``classes``, default ``first.classes``). Memory, Fisher information, class
    sums and the first accuracy-matrix row come from ``first``."""
    classes = list(classes) or first.classes
    unknown = sorted((set(first.labels) | set(first.labels_test)) - set(classes))
    if unknown:
        raise ContinualError(f"labels {unknown} are not among the model's classes {classes}")
    if not len(first.labels_test):
        raise ContinualError("the first step has no test rows to score it on (--test > 0)")
    state = empty_state(first.x.shape[1], memory, np.asarray(first.x, np.float64).mean(0))
    state.classes = classes
    y, yt = _indices(first.labels, classes), _indices(first.labels_test, classes)
    state.add_step(classes, first.x, y, first.x_test, yt, seed)
    _add_fisher(state, head, first.x, y, seed)
    state.matrix.append(score_row(head, state))
    state.matrix_task.append(score_row(head, state, task_incremental=True))
    state.steps.append({"step": 0, "method": "fit", "classes": classes, "examples": len(y)})
    return state


def learn_step(
    head: nn.Module,
    state: ContinualState,
    step: StepData,
    method: str = "replay",
    config: Any = None,
    seed: int = 0,
    scenario: str = "class",
) -> nn.Module:
    """Add ``step`` with ``method``: under ``scenario`` ``class`` or ``task`` its classes
    are new (none known already) and the head grows by them; under ``domain`` they are
    known ones, from a new domain, and the head keeps its outputs. ``state`` is updated in
    place (memory, Fisher, sums, a matrix row, a ``steps`` record). Returns the new head
    over every class seen."""
    info = get_continual_method(method)
    config = config if config is not None else info.config_cls()
    if not isinstance(config, info.config_cls):
        raise ContinualError(
            f"--method {method} takes a {info.config_cls.__name__}, not a {type(config).__name__}"
        )
    new = step.classes
    check_step_classes(scenario, new, state.classes)
    if not len(step.labels_test):
        raise ContinualError("the new step has no test rows to score it on (--test > 0)")
    unknown = sorted(set(step.labels_test) - set(new))
    if unknown:
        raise ContinualError(
            f"the new step's test rows hold {unknown}, not among its training classes {new}"
        )
    n_old = len(state.classes)
    if scenario != "domain":
        state.classes = [*state.classes, *new]
    y, yt = _indices(step.labels, state.classes), _indices(step.labels_test, state.classes)
    t = time.perf_counter()
    task = StepTask(head, n_old, len(state.classes), step.x, y, state, seed)
    result = info.fn(task, config)
    seconds = time.perf_counter() - t
    state.add_step(new, step.x, y, step.x_test, yt, seed + len(state.tasks))
    _add_fisher(state, result.head, step.x, y, seed)
    state.matrix.append(score_row(result.head, state))
    state.matrix_task.append(score_row(result.head, state, task_incremental=True))
    state.steps.append(
        {
            "step": len(state.tasks) - 1,
            "method": method,
            "scenario": scenario,
            "config": asdict(config),
            "classes": new,
            "examples": len(y),
            "memory_rows_used": len(task.state.memory_y),
            "seconds": seconds,
            "notes": result.notes,
            "history": result.history,
        }
    )
    return result.head


def matrix_array(state: ContinualState, task_incremental: bool = False) -> np.ndarray:
    """The accuracy matrix ``(T, T)``, ``nan`` above the diagonal (``task_incremental``:
    scored with the task known, :func:`score_row`)."""
    rows = state.matrix_task if task_incremental else state.matrix
    t = len(rows)
    r = np.full((t, t), np.nan)
    for i, row in enumerate(rows):
        r[i, : len(row)] = row
    return r


def run_sequence(
    steps: Sequence[StepData],
    method: str = "replay",
    memory: int = 200,
    config: Any = None,
    seed: int = 0,
    scenario: str = "class",
) -> tuple[nn.Module, ContinualState, dict[str, Any]]:
    """A whole sequence from features (every later step under ``scenario``): the first
    step is fit as ``headstart fit`` fits (a logistic head, ``C`` by cross-validation,
    refit on every training row), each later one added with ``method``. Returns the last
    head, the state and :func:`~headstart.continual.continual_metrics` of its accuracy
    matrix (and, under ``task_incremental``, of the matrix scored with the task known)."""
    from headstart.train._heads import fit_logistic_head

    first = steps[0]
    classes = first.classes
    y0 = _indices(first.labels, classes)
    fit = fit_logistic_head(
        first.x, y0, first.x[:0], y0[:0], len(classes), seed=seed, cv="auto", refit=False
    )
    head: nn.Module = fit.head
    state = start_state(head, first, memory, seed)
    check_scenario(scenario)
    for s in steps[1:]:
        head = learn_step(head, state, s, method, config, seed, scenario)
    metrics = continual_metrics(matrix_array(state))
    metrics["task_incremental"] = continual_metrics(matrix_array(state, task_incremental=True))
    return head, state, metrics


__all__ = [
    "SCENARIOS",
    "ContinualError",
    "StepData",
    "check_scenario",
    "check_step_classes",
    "head_accuracy",
    "learn_step",
    "matrix_array",
    "run_sequence",
    "score_row",
    "start_state",
]
