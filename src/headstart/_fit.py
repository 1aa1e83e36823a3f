"""``headstart.fit``: one call from a dataset to an evaluated, saved model.

The work is done by a registered method (``headstart methods``; ``extract`` by default,
``finetune``, ``scratch``, ``bitfit``, the baselines ``tfidf``, ``pixels``, ``small_cnn``):
:func:`fit` reads and splits the data, checks ``out`` before any work, hands a
:class:`~headstart.methods.FitContext` to the method, scores every split, and writes the
bundle and its reports atomically.

``model="auto"`` first ranks every offline model of the data's modality, and a few cut
layers of each, by k-NN leave-one-out accuracy on the training split
(:func:`headstart.select.rank`), then fits the recommended one; the ranking goes into
``metrics.json`` and the report.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._io import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    check_out,
    clean_stale_temps,
)
from headstart._options import FitOptions, method_config, options_dict
from headstart._progress import say
from headstart._reproduce import reproduce_command
from headstart._version import __version__
from headstart.bundle._bundle import Predictor, write_bundle_into
from headstart.cache._store import FeatureStore
from headstart.data._dataset import SPLITS, DataError, LabeledData
from headstart.data._modality import get_modality
from headstart.data._readers import read_data
from headstart.evaluate._metrics import classification_report
from headstart.methods import FitContext, get_method, list_methods
from headstart.select._rank import OFFLINE, Ranking, rank
from headstart.train._loop import predict_logits
from headstart.zoo._entries import DEFAULT_MODELS
from headstart.zoo._registry import get_spec
from headstart.zoo._spec import BackboneSpec, ImagePreprocess

STRATEGIES: tuple[str, ...] = tuple(m.name for m in list_methods())
AUTO_RANK_ITEMS = 500  # model="auto" ranks on at most this many training examples


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained predictor, its metrics and its history."""

    predictor: Predictor | None  # None for a baseline that is not a bundled network
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    data: LabeledData
    out: Path | None = None
    test_logits: np.ndarray | None = None  # (n_test, K), rows in ``data.indices("test")`` order

    def predict(self, items: Sequence[Any]) -> list[str]:
        return self._loaded().predict(items)

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        return self._loaded().predict_proba(items)

    def _loaded(self) -> Predictor:
        if self.predictor is None:
            raise ValueError(f"{self.metrics['strategy']} is a baseline with no model to predict")
        return self.predictor

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["splits"]["test"]["accuracy"])


def load_data(data: str | os.PathLike[str] | LabeledData, opts: FitOptions) -> LabeledData:
    """``data`` as :class:`LabeledData`: read (columns, split fractions, seed, strictness
    from ``opts``) unless it already is."""
    if isinstance(data, LabeledData):
        return data
    return read_data(
        data,
        text_column=opts.text_column,
        label_column=opts.label_column,
        path_column=opts.path_column,
        val=opts.val,
        test=opts.test,
        seed=opts.seed,
        strict=opts.strict,
    )


def input_paths(data: LabeledData) -> list[str]:
    """The files and folders a run reads: the source, and every image path."""
    items = [str(i) for i in data.items] if get_modality(data.modality).files else []
    return [data.source, *items]


def resolve_spec(data: LabeledData, opts: FitOptions) -> BackboneSpec:
    name = opts.model or DEFAULT_MODELS[data.modality]
    spec = get_spec(name)
    if spec.modality != data.modality:
        raise ValueError(
            f"{spec.name} is a {spec.modality} model but {data.source} holds {data.modality} data"
        )
    if opts.image_size and isinstance(spec.preprocess, ImagePreprocess):
        spec = dataclasses.replace(
            spec, preprocess=dataclasses.replace(spec.preprocess, input_size=int(opts.image_size))
        )
    return spec


def fit(
    data: str | os.PathLike[str] | LabeledData,
    out: str | os.PathLike[str] | None = None,
    options: FitOptions | None = None,
    store: FeatureStore | None = None,
    **kwargs: Any,
) -> FitResult:
    """Train a transfer model on ``data`` and, if ``out`` is given, write the bundle,
    ``metrics.json``, ``history.json`` and ``predictions.csv`` there (atomically).

    Options are a :class:`FitOptions` or its fields as keyword arguments. Several label
    columns (``label_column="a,b"`` or ``["a", "b"]``) train one multi-task model instead
    (:func:`headstart.fit_multi`, which this returns: a ``MultiTaskResult``).
    """
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    from headstart.multitask._api import fit_from_options, is_multi_label

    if is_multi_label(opts.label_column):
        return fit_from_options(data, out, opts, store)  # type: ignore[return-value]
    if opts.weighting is not None:
        raise ValueError("--weighting applies to a multi-task fit (several --label-column: a,b)")
    info = get_method(opts.strategy)
    config = method_config(opts)
    if out is not None:  # refuse a destructive or impossible --out before reading anything
        if info.kind == "baseline":
            raise ValueError(
                f"{info.name} is a baseline with no bundle to write; "
                "compare it with `headstart compare --strategies baseline,...`"
            )
        check_out(out, [data.source if isinstance(data, LabeledData) else data])
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)
    started = time.perf_counter()
    data = load_data(data, opts)
    if not info.applies_to(data.modality):
        raise ValueError(f"method {info.name} does not apply to {data.modality} data")
    if out is not None:
        check_out(out, input_paths(data))
        clean_stale_temps(Path(out).absolute().parent)
    for s in data.skipped:
        say(f"[yellow]skipped[/] {s.where}: {s.reason}")
    if data.duplicates:
        say(f"[yellow]{len(data.duplicates)} duplicate(s) left out[/] (listed in metrics.json)")
    store = store if store is not None else FeatureStore(opts.cache_dir, engine=opts.engine)
    if info.kind != "baseline":
        store.check_writable()
    passes_before = store.forward_passes
    timings: dict[str, float] = {"read_data": time.perf_counter() - started}
    ranking = None
    if opts.model == "auto" and info.kind != "baseline":
        t = time.perf_counter()
        opts, ranking = auto_pick(data, opts, store)
        timings["rank"] = time.perf_counter() - t
    spec = resolve_spec(data, opts)
    ckpt = checkpoint_dir(out) if out is not None else None
    ctx = FitContext(data, opts, spec, store, timings, ckpt, resume=opts.resume)
    run = info.method_cls(config).fit(ctx)
    model = run.model

    t = time.perf_counter()
    splits: dict[str, Any] = {}
    split_logits = dict(run.logits)
    for split in SPLITS:
        idx = data.indices(split)
        if split not in split_logits:
            assert model is not None, f"{info.name} returned neither a model nor {split} logits"
            split_logits[split] = _logits_for(model, data, split, f"scoring {split} split")
        pred = split_logits[split].argmax(1) if len(idx) else None
        splits[split] = (
            classification_report(data.labels[idx], pred, data.classes) if len(idx) else {"n": 0}
        )
    selection = run.selection.to_dict() if run.selection is not None else None
    if selection is not None and selection["refit"] and splits["val"].get("n"):
        splits["val"]["trained_on"] = True  # the refit model has seen these labels
    test_logits = split_logits["test"]
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    if model is not None:
        model.eval()
    backbone = getattr(model, "backbone", None)
    metrics = {
        "headstart_version": __version__,
        "model": run.description or spec.name,
        "weights": _weights(info.kind, spec, opts),
        "strategy": info.name,
        "kind": info.kind,
        "layer": backbone.layer if backbone is not None else None,
        "feature_dim": backbone.feature_dim if backbone is not None else None,
        "classes": data.classes,
        "samples": {s: int((data.split == s).sum()) for s in SPLITS},
        "counts": data.counts(),
        "splits": splits,
        "seconds": timings,
        "forward_passes": store.forward_passes - passes_before,
        "extraction": (
            store.engine_report.to_dict()
            if store.engine_report is not None and store.forward_passes > passes_before
            else None
        ),
        "parameters": {
            "total": sum(p.numel() for p in model.parameters())
            if model is not None
            else sum(run.trainable.values()),
            "trainable_per_stage": run.trainable,
        },
        "skipped": [dataclasses.asdict(s) for s in data.skipped],
        "duplicates": [dataclasses.asdict(d) for d in data.duplicates],
        "schedule": run.schedule.to_dict() if run.schedule else None,
        "selection": selection,
        "notes": list(run.notes),
        "seed": opts.seed,
        "options": options_dict(opts),
        "method": {"name": info.name, "kind": info.kind, "config": dataclasses.asdict(config)},
        "command": reproduce_command(data.source, opts, out),
        "environment": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
        },
    }
    if ranking is not None:
        metrics["ranking"] = ranking.to_dict()
    predictor = None
    if model is not None:
        predictor = Predictor(
            model,
            list(data.classes),
            {
                "modality": data.modality,
                "strategy": info.name,
                "classes": list(data.classes),
                **run.bundle,
            },
        )
    result = FitResult(predictor, metrics, run.history, data, test_logits=test_logits)
    if out is not None:
        extra = {
            "strategy": info.name,
            "schedule": metrics["schedule"],
            "fit": {"options": metrics["options"], "source": data.source},
            **run.bundle,
        }
        result.out = _write_outputs(Path(out), result, test_logits, extra)
        if ckpt is not None:
            shutil.rmtree(ckpt, ignore_errors=True)  # the run finished: nothing to resume
    return result


def checkpoint_dir(out: str | os.PathLike[str]) -> Path:
    """Where a run writing ``out`` keeps its epoch checkpoint (beside ``out``, hidden)."""
    out = Path(out).absolute()
    return out.with_name(f".{out.name}.headstart-checkpoint")


def _weights(kind: str, spec: BackboneSpec, opts: FitOptions) -> str:
    if kind == "baseline":
        return "none: no pre-training"
    if kind == "scratch":
        return "none: random initialisation"
    return spec.weights.describe() if opts.weights is None else f"local file: {opts.weights}"


def auto_pick(
    data: LabeledData, opts: FitOptions, store: FeatureStore
) -> tuple[FitOptions, Ranking]:
    """``model="auto"``: rank the offline zoo by the default score (at ``opts.layer`` only,
    if set); ``opts`` with the recommended model and layer, and the ranking. The
    recommended candidate's training features stay cached for the fit itself."""
    if opts.weights is not None:
        raise ValueError("model='auto' chooses a registered model; --weights needs a --model")
    ranking = rank(
        data,
        models=OFFLINE,
        layers=[opts.layer] if opts.layer else "auto",
        store=store,
        max_items=AUTO_RANK_ITEMS,
        image_size=opts.image_size,
        seed=opts.seed,
    )
    best = ranking.recommended
    say(f"[bold]auto[/]: {best.model} @ {best.layer}, of {len(ranking.rows)} candidates")
    return dataclasses.replace(opts, model=best.model, layer=best.layer), ranking


def _logits_for(model: torch.nn.Module, data: LabeledData, split: str, desc: str) -> np.ndarray:
    items, _, _ = data.take(split)  # type: ignore[arg-type]
    if not items:
        return np.zeros((0, len(data.classes)), dtype=np.float32)
    return predict_logits(model, model.backbone, items, data.modality, description=desc)


def _write_outputs(
    out: Path, result: FitResult, test_logits: np.ndarray, extra: dict[str, Any]
) -> Path:
    """Write everything (bundle, metrics, history, predictions, ``report.html`` and
    ``MODEL_CARD.md``) into a temporary sibling folder, then rename it to ``out``."""
    from headstart.evaluate._card import write_model_card  # matplotlib only when writing
    from headstart.evaluate._report import write_fit_report

    assert result.predictor is not None
    with atomic_dir(out) as tmp:
        write_bundle_into(tmp, result.predictor.model, result.data.classes, extra)
        result.metrics["bundle"] = bundle_summary(tmp)
        atomic_write_json(tmp / "metrics.json", result.metrics)
        atomic_write_json(tmp / "history.json", result.history)
        atomic_write_text(tmp / "predictions.csv", _predictions_csv(result.data, test_logits))
        write_fit_report(tmp)
        write_model_card(tmp)
    return out


def bundle_summary(folder: Path) -> dict[str, Any]:
    """What the bundle in ``folder`` stores: ``"full"`` (every tensor), or for LoRA
    ``"adapter"`` (adapters and head over a referenced base) / ``"merged"``, and its
    size in bytes (weights, ``headstart.json`` and ``assets/``)."""
    import json

    config = json.loads((folder / "headstart.json").read_text(encoding="utf-8"))
    files = [folder / "model.safetensors", folder / "headstart.json"]
    files += [f for f in (folder / "assets").rglob("*") if f.is_file()]
    adapter = config.get("adapter") or {}
    return {
        "stores": adapter.get("save", "full"),
        "bytes": sum(f.stat().st_size for f in files if f.is_file()),
    }


def _predictions_csv(data: LabeledData, logits: np.ndarray) -> str:
    import csv
    import io

    proba = torch.softmax(torch.from_numpy(logits), 1).numpy() if len(logits) else logits
    items, labels, _ = data.take("test")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["item", "label", "predicted", "probability", "correct"])
    for item, y, p in zip(items, labels, proba, strict=True):
        j = int(p.argmax())
        w.writerow([item, data.classes[y], data.classes[j], f"{p[j]:.4f}", int(j == y)])
    return buf.getvalue()


__all__ = [
    "STRATEGIES",
    "DataError",
    "FitOptions",
    "FitResult",
    "checkpoint_dir",
    "fit",
]
