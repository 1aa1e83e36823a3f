"""``headstart.fit_multi``: one model for several tasks, beside a single-task model per task.

Two kinds of data (:mod:`headstart.multitask._data`): one table with several label
columns (``fit DATA --label-column a,b``), or several labelled datasets of one modality,
one task each (``fit-multi A B C``). Items go once through the frozen backbone (the
feature cache); single-task models and the multi-task model train on the same training
rows and are scored on the same test rows (:func:`~headstart.multitask.compare_multitask`).

The folder written (``out``) is a bundle of kind ``multitask``
(:mod:`headstart.multitask._bundle`: ``headstart.json``, ``model.safetensors``,
``assets/``) that ``headstart predict`` / ``evaluate`` and :func:`headstart.load` read,
with ``metrics.json`` (per task: test metrics of the single-task and the multi-task model,
the relative gain, the negative-transfer flag; Δm), ``history.json`` and ``report.html``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headstart._io import atomic_dir, atomic_write_json, check_out
from headstart.multitask._bundle import (
    MultiTaskPredictor,
    bundle_config,
    load_multitask,
    write_multitask_into,
)
from headstart.multitask._compare import compare_multitask
from headstart.multitask._data import TaskData, dataset_tasks, table_tasks
from headstart.multitask._train import GRADNORM_ALPHA, WEIGHTINGS, MultiTaskError, MultiTaskFit

PathLike = str | os.PathLike[str]


@dataclass
class MultiTaskResult:
    """What :func:`fit_multi` returns: the model, ``report`` (``metrics.json``) and
    ``out`` when written."""

    predictor: MultiTaskPredictor
    report: dict[str, Any]
    history: list[dict[str, Any]]
    out: Path | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        return self.report


def label_columns_of(value: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` as a list of column names (blanks dropped)."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [c.strip() for c in parts if c.strip()]


def is_multi_label(value: str | Sequence[str] | None) -> bool:
    """Whether ``label_column`` names several columns (``"a,b"``): a multi-task run."""
    return len(label_columns_of(value)) > 1


def fit_multi(
    data: PathLike | Sequence[PathLike],
    label_columns: str | Sequence[str] | None = None,
    out: PathLike | None = None,
    *,
    weighting: str = "equal",
    model: str | None = None,
    image_size: int | None = None,
    text_column: str = "text",
    path_column: str | None = None,
    label_column: str = "label",
    test: float = 0.2,
    seed: int = 0,
    hidden: int = 256,
    dropout: float = 0.1,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 64,
    gradnorm_alpha: float = GRADNORM_ALPHA,
    store: Any = None,
) -> MultiTaskResult:
    """Train one model for several tasks (a shared trunk on the frozen backbone, one head
    per task, losses weighted by ``weighting``: equal, uncertainty, pcgrad, gradnorm) beside
    a single-task model per task on the same rows; write the bundle to ``out``.

    ``data`` is one table with ``label_columns`` (``"a,b"`` or a list: one task per
    column), or a list of two or more datasets of one modality (folders, manifests or
    tables with ``label_column``), one task per dataset. The training knobs are
    :class:`~headstart.multitask.MultiTaskConfig`'s (``headstart methods``, kind
    multitask)."""
    started = time.perf_counter()
    if weighting not in WEIGHTINGS:
        raise MultiTaskError(
            f"--weighting: unknown {weighting!r}; choose one of {', '.join(WEIGHTINGS)}"
        )
    many = not isinstance(data, str | os.PathLike)
    sources = [Path(d) for d in data] if many else [Path(data)]  # type: ignore[union-attr]
    if out is not None:
        check_out(out, sources)
    if many and len(sources) == 1:
        many, data = False, sources[0]
    if not many and sources[0].is_dir():
        raise MultiTaskError(
            f"{sources[0]}: one folder is one task; give two or more datasets, or one table "
            "with --label-column a,b"
        )
    if many:
        if is_multi_label(label_columns):
            raise MultiTaskError(
                "--label-column: several datasets take one label column each (a task per "
                "dataset); give a single name"
            )
        column = label_columns_of(label_columns) or [label_column]
        td = dataset_tasks(
            sources,
            label_column=column[0],
            text_column=text_column,
            path_column=path_column,
            test=test,
            seed=seed,
        )
    else:
        td = table_tasks(
            sources[0],
            label_columns_of(label_columns),
            text_column=text_column,
            path_column=path_column,
            test=test,
            seed=seed,
        )
    train = {"hidden": hidden, "dropout": dropout, "epochs": epochs, "lr": lr}
    train.update(batch_size=batch_size, alpha=gradnorm_alpha)
    predictor, report, history = _fit_tasks(td, weighting, model, image_size, seed, train, store)
    report["seconds"] = {"total": time.perf_counter() - started, **report["seconds"]}
    report["options"] = {
        "weighting": weighting,
        "model": model,
        "image_size": image_size,
        "text_column": text_column,
        "path_column": path_column,
        "label_column": column[0] if many else ",".join(td.tasks),
        "test": test,
        "seed": seed,
        **train,
    }
    report["command"] = _command(sources, out, report["options"], many)
    predictor.config["fit"] = {"source": [str(s) for s in sources], "options": report["options"]}
    result = MultiTaskResult(predictor, report, history)
    if out is not None:
        result.out = _write(Path(out), result)
    return result


# FitOptions a multi-task fit reads (the rest must be left at their defaults)
_FROM_OPTIONS = {"model", "image_size", "seed", "test", "text_column", "path_column"}
_ALSO = {"strategy", "label_column", "weighting", "batch_size", "hidden", "dropout", "epochs"}
_ALSO |= {"head_epochs", "head_lr", "lr", "cache_dir", "engine"}


def fit_from_options(
    data: Any, out: PathLike | None, opts: Any, store: Any = None
) -> MultiTaskResult:
    """``headstart.fit(data, out, label_column="a,b", ...)``: the multi-task fit of
    :func:`fit_multi`, with its knobs read from the :class:`~headstart.FitOptions` ``opts``
    (``--hidden``, ``--epochs`` / ``--head-epochs``, ``--lr`` / ``--head-lr``,
    ``--batch-size``, ``--weighting``); options that do not apply are an error."""
    from headstart._options import FitOptions, flag_of

    if not isinstance(data, str | os.PathLike):
        raise MultiTaskError("a multi-task fit reads a table with several label columns (a path)")
    if opts.strategy != "extract":
        raise MultiTaskError(
            f"--strategy {opts.strategy}: a multi-task fit (several --label-column) trains "
            "on the frozen backbone's features: --strategy extract only"
        )
    default = FitOptions()
    for f in dataclasses.fields(opts):
        if f.name not in _FROM_OPTIONS | _ALSO and getattr(opts, f.name) != getattr(
            default, f.name
        ):
            raise MultiTaskError(
                f"{flag_of(f)} does not apply to a multi-task fit (several --label-column)"
            )
    hidden = opts.hidden
    if hidden is not None and len(hidden) != 1:
        raise MultiTaskError(
            f"--hidden {hidden}: a multi-task fit has one shared layer; give one width"
        )
    pick = {k: getattr(opts, k) for k in _FROM_OPTIONS}
    epochs = opts.epochs or opts.head_epochs
    lr = opts.lr if opts.lr is not None else opts.head_lr
    if isinstance(lr, str):
        raise MultiTaskError(f"--lr {lr}: a multi-task fit takes a number")
    train = {
        "hidden": hidden[0] if hidden else None,
        "dropout": opts.dropout,
        "epochs": epochs,
        "lr": lr,
        "batch_size": opts.batch_size,
    }
    if store is None and opts.cache_dir is not None:
        from headstart.cache._store import FeatureStore

        store = FeatureStore(opts.cache_dir, engine=opts.engine)
    return fit_multi(
        data,
        label_columns_of(opts.label_column),
        out,
        weighting=opts.weighting or "equal",
        store=store,
        **pick,
        **{k: v for k, v in train.items() if v is not None},
    )


def _fit_tasks(
    td: TaskData,
    weighting: str,
    model: str | None,
    image_size: int | None,
    seed: int,
    train: dict[str, Any],
    store: Any,
) -> tuple[MultiTaskPredictor, dict[str, Any], list[dict[str, Any]]]:
    from headstart.cache._store import FeatureStore
    from headstart.evaluate._metrics import classification_report
    from headstart.zoo._entries import DEFAULT_MODELS
    from headstart.zoo._registry import create_backbone, get_spec
    from headstart.zoo._spec import ImagePreprocess

    spec = get_spec(model or DEFAULT_MODELS[td.modality])
    if spec.modality != td.modality:
        raise MultiTaskError(
            f"{spec.name} is a {spec.modality} model but {td.sources[0]} holds {td.modality}"
        )
    if image_size and isinstance(spec.preprocess, ImagePreprocess):
        pre = dataclasses.replace(spec.preprocess, input_size=int(image_size))
        spec = dataclasses.replace(spec, preprocess=pre)
    t = time.perf_counter()
    store = store if store is not None else FeatureStore()
    backbone = create_backbone(spec)
    backbone.pop_source_head_inplace()
    x = store.features(backbone, td.items, td.keys, td.modality, description="features")
    extract_s = time.perf_counter() - t
    t = time.perf_counter()
    n_classes = [len(c) for c in td.classes]
    tr, te = td.train, td.test
    fits: dict[str, MultiTaskFit] = {}
    comparison = compare_multitask(
        x[tr], td.y[tr], x[te], td.y[te], n_classes, td.tasks, [weighting], seed, fits, **train
    )
    row = comparison["multi_task"][weighting]
    fit = fits[weighting]
    multi_pred = fit.predict(x[te])
    per_task = {}
    for k, name in enumerate(td.tasks):
        labelled = td.y[te, k] >= 0
        y_true = td.y[te, k][labelled]
        single_pred = fits[f"single:{name}"].predict(x[te])[:, 0]
        per_task[name] = {
            "classes": td.classes[k],
            "train_labels": int((td.y[tr, k] >= 0).sum()),
            "missing_labels": int((td.y[:, k] < 0).sum()),
            "single_task": classification_report(y_true, single_pred[labelled], td.classes[k]),
            "multi_task": classification_report(y_true, multi_pred[labelled, k], td.classes[k]),
            "relative_gain": row["relative_gain"][name],
            "negative_transfer": name in row["negative_transfer"],
        }
    report = {
        "kind": "multitask",
        "model": spec.name,
        "layer": backbone.layer,
        "modality": td.modality,
        "data": td.sources,
        "tasks": td.tasks,
        "classes": td.classes,
        "missing_labels": td.missing(),
        "rows": {"train": len(tr), "test": len(te)},
        "weighting": weighting,
        "per_task": per_task,
        "single_task": comparison["single_task"],
        "multi_task": row["accuracy"],
        "relative_gain": row["relative_gain"],
        "delta_m": row["delta_m"],
        "negative_transfer": row["negative_transfer"],
        "task_weights": _task_weights(fit, weighting),
        "seconds": {"extract": extract_s, "train": time.perf_counter() - t},
        "skipped": td.skipped,
        "seed": seed,
    }
    from headstart._version import __version__

    report = {"headstart_version": __version__, **report}
    config = bundle_config(backbone, fit.model, td.tasks, td.classes, weighting=weighting)
    predictor = MultiTaskPredictor(backbone, fit.model, td.tasks, td.classes, config)
    return predictor, report, fit.history


def _task_weights(fit: MultiTaskFit, weighting: str) -> list[float] | None:
    """The learnt weights: uncertainty's :math:`e^{-s_t}`, GradNorm's :math:`w_t`."""
    if weighting == "uncertainty":
        return [float(v) for v in np.exp(-fit.model.log_vars.detach().numpy())]
    if weighting == "gradnorm":
        return [float(v) for v in fit.model.task_weights.detach().numpy()]
    return None


def _command(sources: list[Path], out: PathLike | None, opts: dict[str, Any], many: bool) -> str:
    import shlex

    words = ["headstart", "fit-multi" if many else "fit", *map(str, sources)]
    words += ["--out", str(out or "OUT")]
    flags = {"label_column": opts["label_column"], "weighting": opts["weighting"]}
    for k in ("model", "image_size", "path_column", "seed", "test", "epochs", "hidden"):
        flags[k] = opts[k]
    if opts["text_column"] != "text":
        flags["text_column"] = opts["text_column"]
    for k, v in flags.items():
        if v is not None and not (k == "label_column" and many and v == "label"):
            words += ["--" + k.replace("_", "-"), str(v)]
    return shlex.join(words)


def _write(out: Path, result: MultiTaskResult) -> Path:
    from headstart.multitask._report import render_multitask_report

    with atomic_dir(out) as tmp:
        write_multitask_into(tmp, result.predictor)
        atomic_write_json(tmp / "metrics.json", result.report)
        atomic_write_json(tmp / "history.json", result.history)
        (tmp / "report.html").write_text(
            render_multitask_report(result.report, result.history), encoding="utf-8"
        )
    return out


__all__ = [
    "MultiTaskPredictor",
    "MultiTaskResult",
    "fit_from_options",
    "fit_multi",
    "is_multi_label",
    "label_columns_of",
    "load_multitask",
]
