"""``headstart.continue_``: a bundle and a new step (new classes, or the known classes from
a new domain), one new bundle.

The bundle's backbone stays frozen: the new step's items (and, the first time, the data the
bundle was fit on) go through it once into the feature cache, and a registered continual
method (:mod:`headstart.continual._methods`) turns the old head into one over every class.
What the methods need of the past travels in the new bundle's ``continual.safetensors``
(:mod:`headstart.continual._state`); the first ``continue`` of a ``fit`` bundle builds it
from the bundle's recorded training data (``fit.source`` in ``headstart.json``, read with
the fit's own split options) or from ``old_data``. The input bundle is never written:
``out`` must be a new folder (or a headstart output that is not an input).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headstart._io import atomic_dir, atomic_write_json, check_out, clean_stale_temps
from headstart._progress import say
from headstart.bundle._bundle import CONFIG_NAME, Predictor, load_bundle, write_bundle_into
from headstart.cache._store import FeatureStore
from headstart.continual._methods import grow_head
from headstart.continual._metrics import continual_metrics
from headstart.continual._registry import get_continual_method
from headstart.continual._report import frozen_alternatives, render_continual_report
from headstart.continual._sequence import (
    ContinualError,
    StepData,
    check_scenario,
    check_step_classes,
    learn_step,
    matrix_array,
    start_state,
)
from headstart.continual._state import STATE_NAME, ContinualState
from headstart.data._dataset import LabeledData
from headstart.data._readers import read_data
from headstart.surgery._model import TransferModel

REPORT_NAME = "continual.json"
CHART_NAME = "continual.svg"
HTML_NAME = "report.html"
DEFAULT_MEMORY = 200
# Keys write_bundle_into sets itself; the rest of headstart.json is carried over.
_OWN_KEYS = (
    "format",
    "headstart_version",
    "modality",
    "backbone",
    "layer",
    "feature_dim",
    "head",
    "classes",
    "torch_version",
    "onnx",  # an exported graph has the old classes: not carried over
)


@dataclass
class ContinueResult:
    """What :func:`continue_` returns: the new model as a predictor, ``report`` (the
    contents of ``continual.json``), the state of the past, and ``out`` when written."""

    predictor: Predictor
    report: dict[str, Any]
    state: ContinualState
    out: Path | None = None

    @property
    def acc(self) -> float:
        return float(self.report["acc"])

    def predict(self, items: list[Any]) -> list[str]:
        return self.predictor.predict(items)


def _step_data(store: FeatureStore, predictor: Predictor, data: LabeledData, what: str) -> StepData:
    """Features of ``data``'s training rows (train + validation) and test rows."""
    backbone = predictor.model.backbone
    parts = {}
    for name, splits in (("fit", ("train", "val")), ("test", ("test",))):
        idx = np.concatenate([data.indices(s) for s in splits])
        x = store.features(
            backbone,
            [data.items[i] for i in idx],
            [data.keys[i] for i in idx],
            data.modality,
            description=f"features: {what} ({name})",
        )
        parts[name] = (x, [data.classes[data.labels[i]] for i in idx])
    return StepData(parts["fit"][0], parts["fit"][1], parts["test"][0], parts["test"][1])


def _first_state(
    bundle: Path,
    predictor: Predictor,
    old_data: str | os.PathLike[str] | None,
    memory: int,
    seed: int,
    store: FeatureStore,
    columns: dict[str, Any],
) -> tuple[ContinualState, str]:
    """The state of a bundle that has none yet, from the data it was fit on."""
    fit = predictor.config.get("fit") or {}
    source = old_data if old_data is not None else fit.get("source")
    if not source or not Path(source).exists():
        where = f" ({source} is not there)" if source else ""
        raise ContinualError(
            f"{bundle}: no continual memory yet and no training data to build it from{where}: "
            "pass --old-data DATA, the data the bundle was fit on"
        )
    opts = fit.get("options") or {}
    split = {k: opts[k] for k in ("val", "test", "seed") if k in opts}
    cols = {k: opts.get(k, v) for k, v in columns.items()} if old_data is None else columns
    old = read_data(source, **split, **cols)
    if old.modality != predictor.modality:
        raise ContinualError(
            f"{source}: holds {old.modality} data but the bundle {bundle} takes "
            f"{predictor.modality}"
        )
    if sorted(old.classes) != sorted(predictor.classes):
        raise ContinualError(
            f"--old-data {source}: its classes {old.classes} are not the bundle's "
            f"{predictor.classes}"
        )
    first = _step_data(store, predictor, old, "old data")
    state = start_state(predictor.model.head, first, memory, seed, classes=predictor.classes)
    return state, str(source)


def _config(method: str, options: dict[str, Any]) -> Any:
    info = get_continual_method(method)
    fields = {f.name for f in dataclasses.fields(info.config_cls)}
    given = {k: v for k, v in options.items() if v is not None}
    wrong = sorted(set(given) - fields)
    if wrong:
        flags = ", ".join("--" + w.replace("_", "-") for w in wrong)
        takes = ", ".join("--" + f.replace("_", "-") for f in sorted(fields)) or "no options"
        raise ContinualError(f"{flags}: not an option of --method {method} (it takes {takes})")
    return info.config_cls(**given)


def continue_(
    bundle: str | os.PathLike[str],
    new_data: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    method: str = "replay",
    memory: int | None = None,
    *,
    scenario: str = "class",
    old_data: str | os.PathLike[str] | None = None,
    seed: int = 0,
    val: float = 0.15,
    test: float = 0.15,
    text_column: str = "text",
    label_column: str = "label",
    path_column: str | None = None,
    options: dict[str, Any] | None = None,
    store: FeatureStore | None = None,
) -> ContinueResult:
    """Add the step ``new_data`` to ``bundle`` with continual ``method`` (``headstart
    methods``, kind continual); write the new bundle to ``out``.

    ``scenario``: ``class`` (class-incremental, the default: every class of ``new_data``
    is new, the head grows by them), ``task`` (the same, scored with the task known:
    the argmax over each step's own classes) or ``domain`` (domain-incremental: every
    class of ``new_data`` is one the bundle knows, from a new domain; the head keeps its
    outputs).

    ``memory``: replay-memory rows kept (class-balanced; default 200, or the bundle's);
    ``old_data``: the data the bundle was fit on, when its recorded ``fit.source`` is
    elsewhere (needed once, to build the memory; later bundles carry it); ``options``:
    the method's own (``epochs``, ``lr``, ``ewc_lambda``, ...). ``continual.json`` holds the
    accuracy matrix (test accuracy on each step's classes after every step), ACC,
    forgetting and BWT.
    """
    started = time.perf_counter()
    bundle = Path(bundle)
    if not (bundle / CONFIG_NAME).is_file():
        raise ContinualError(f"{bundle}: not a headstart bundle (no {CONFIG_NAME})")
    check_scenario(scenario)
    config = _config(method, options or {})
    if memory is not None and memory < 0:
        raise ContinualError(f"--memory {memory}: must be >= 0 (rows of the replay memory)")
    inputs = [p for p in (bundle, new_data, old_data) if p is not None]
    if out is not None:
        check_out(out, inputs)
    columns = {"text_column": text_column, "label_column": label_column, "path_column": path_column}
    predictor = load_bundle(bundle)
    new = read_data(new_data, val=val, test=test, seed=seed, **columns)
    if new.modality != predictor.modality:
        raise ContinualError(
            f"{new_data}: holds {new.modality} data but the bundle {bundle} takes "
            f"{predictor.modality} (a continual step keeps the bundle's backbone)"
        )
    try:
        check_step_classes(scenario, new.classes, predictor.classes)
    except ContinualError as e:
        raise ContinualError(f"{new_data}: {e} (bundle {bundle})") from None
    grown = len(predictor.classes) + (0 if scenario == "domain" else len(new.classes))
    if "linear head" in get_continual_method(method).uses:  # refused before any extraction
        grow_head(predictor.model.head, grown)
    if out is not None:
        check_out(out, [*inputs, *new.items] if new.modality != "text" else inputs)
        clean_stale_temps(Path(out).absolute().parent)
    store = store if store is not None else FeatureStore()
    store.check_writable()
    passes = store.forward_passes
    if (bundle / STATE_NAME).is_file():
        state = ContinualState.load(bundle)
        if state.classes != predictor.classes:
            raise ContinualError(
                f"{bundle / STATE_NAME}: its classes {state.classes} are not those of "
                f"{bundle / CONFIG_NAME} ({predictor.classes}); the bundle was edited"
            )
        if memory is not None:
            state.memory_size = memory
        first_source = None
    else:
        state, first_source = _first_state(
            bundle,
            predictor,
            old_data,
            DEFAULT_MEMORY if memory is None else memory,
            seed,
            store,
            columns,
        )
    step = _step_data(store, predictor, new, "new step")
    head = learn_step(predictor.model.head, state, step, method, config, seed, scenario)
    for note in state.steps[-1]["notes"]:
        say(f"[yellow]{method}[/]: {note}")
    model = TransferModel(predictor.model.backbone, head).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    r_class, r_task = matrix_array(state), matrix_array(state, task_incremental=True)
    r = r_task if scenario == "task" else r_class
    metrics = continual_metrics(r)
    other = {
        "class": (
            "task_incremental",
            r_task,
            "the same model scored with the task known: argmax over the step's own classes",
        ),
        "task": (
            "class_incremental",
            r_class,
            "the same model scored without the task: "
            "argmax over every class seen (what predict does)",
        ),
    }.get(scenario)
    report = {
        "bundle": str(bundle),
        "new_data": str(new_data),
        "old_data": first_source,
        "method": method,
        "config": dataclasses.asdict(config),
        "scenario": f"{scenario}-incremental",
        "classes": state.classes,
        "tasks": state.tasks,
        "memory": {"size": state.memory_size, "rows": len(state.memory_y)},
        "matrix": [[None if np.isnan(v) else float(v) for v in row] for row in r],
        "matrix_note": _MATRIX_NOTES[scenario],
        **metrics,
        **(
            {
                other[0]: {
                    "note": other[2],
                    "matrix": [
                        [None if np.isnan(v) else float(v) for v in row] for row in other[1]
                    ],
                    **continual_metrics(other[1]),
                }
            }
            if other
            else {}
        ),
        "steps": state.steps,
        "frozen_alternatives": frozen_alternatives(state, task_incremental=scenario == "task"),
        "frozen_alternatives_note": "ACC after the last step of prototype and slda fit on this "
        "state (exact running sums of every step: the same as running them step by step)",
        "forward_passes": store.forward_passes - passes,
        "seconds": time.perf_counter() - started,
        "seed": seed,
        "command": continue_command(
            bundle, new_data, out, method, memory, old_data, seed, scenario
        ),
    }
    extra = {k: v for k, v in predictor.config.items() if k not in _OWN_KEYS}
    extra["continual"] = {"steps": len(state.tasks), "last_method": method, "tasks": state.tasks}
    new_predictor = Predictor(model, list(state.classes), {**predictor.config, **extra})
    result = ContinueResult(new_predictor, report, state)
    if out is not None:
        with atomic_dir(out) as tmp:
            write_bundle_into(tmp, model, state.classes, extra)
            state.save(tmp)
            atomic_write_json(tmp / REPORT_NAME, report)
            chart = matrix_svg(r, task_labels(state))
            (tmp / CHART_NAME).write_text(chart, encoding="utf-8")
            html = render_continual_report(report, chart)
            (tmp / HTML_NAME).write_text(html, encoding="utf-8")
        result.out = Path(out)
    say(
        f"[bold]{method}[/]: ACC {metrics['acc']:.3f}, forgetting {metrics['forgetting']:.3f}, "
        f"BWT {metrics['bwt']:.3f} after {len(state.tasks)} steps"
    )
    return result


_MATRIX_NOTES = {
    "class": "matrix[i][j]: test accuracy on task j's classes (argmax over every class seen) "
    "after step i",
    "task": "matrix[i][j]: test accuracy on task j's classes, the task known (argmax over "
    "task j's own classes), after step i",
    "domain": "matrix[i][j]: test accuracy on step j's test rows (its domain; argmax over "
    "every class) after step i",
}


def task_labels(state: ContinualState) -> list[str]:
    """A column label per step: its classes, or ``step j`` where a step brought no new
    class (a domain-incremental step)."""
    seen: set[str] = set()
    out = []
    for j, task in enumerate(state.tasks):
        out.append(",".join(task) if not set(task) <= seen else f"step {j}")
        seen |= set(task)
    return out


def matrix_svg(r: np.ndarray, tasks: list[list[str]] | list[str]) -> str:
    """The accuracy matrix as an SVG chart: one row per step, one column per task (its
    label, or its classes joined), each cell shaded by its accuracy (white 0 to green 1)
    and labelled with it."""
    from xml.sax.saxutils import escape

    cell, left, top = 64, 96, 40
    t = len(r)
    width, height = left + cell * t + 8, top + cell * t + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="14">test accuracy on task j (columns) after step i (rows)</text>',
    ]
    for j, task in enumerate(tasks):
        name = escape(task if isinstance(task, str) else ",".join(task))[:10]
        x = left + j * cell + cell / 2
        parts.append(f'<text x="{x}" y="{top - 6}" text-anchor="middle">{name}</text>')
    for i in range(t):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end">step {i}</text>'
        )
        for j in range(t):
            v = r[i, j]
            if np.isnan(v):
                continue
            g = int(255 - 155 * v)
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="rgb({g},{int(255 - 60 * v)},{g})"/>'
            )
            parts.append(
                f'<text x="{left + j * cell + cell / 2 - 1}" y="{y + cell / 2 + 4}" '
                f'text-anchor="middle">{v:.2f}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def continue_command(
    bundle: Any,
    new_data: Any,
    out: Any,
    method: str,
    memory: int | None,
    old_data: Any,
    seed: int,
    scenario: str = "class",
) -> str:
    """The ``headstart continue`` command line that reproduces the step."""
    words = ["headstart", "continue", str(bundle), str(new_data), "--out", str(out or "OUT")]
    words += ["--method", method]
    if scenario != "class":
        words += ["--scenario", scenario]
    for flag, value in (("--memory", memory), ("--old-data", old_data), ("--seed", seed or None)):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


__all__ = [
    "CHART_NAME",
    "HTML_NAME",
    "REPORT_NAME",
    "ContinueResult",
    "continue_",
    "continue_command",
    "matrix_svg",
    "task_labels",
]
