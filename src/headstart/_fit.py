"""``headstart.fit``: one call from a dataset to an evaluated, saved transfer model.

Three strategies share one data split and one evaluation:

* ``extract``: run the frozen backbone once (features cached on disk), fit a new head
  (logistic regression or a small MLP) on the features;
* ``finetune``: the head to convergence on cached features, then the top blocks unfrozen
  at a lower, layer-wise decaying learning rate, with augmentation; BatchNorm stays in
  inference mode throughout;
* ``scratch``: the same architecture randomly initialised and trained fully (the baseline).

``model="auto"`` first ranks every offline model of the data's modality, and a few cut
layers of each, by k-NN leave-one-out accuracy on the training split
(:func:`headstart.select.rank`), then fits the recommended one; the ranking goes into
``metrics.json`` and the report.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from headstart import __version__
from headstart._io import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    check_out,
    clean_stale_temps,
)
from headstart._progress import say
from headstart._reproduce import reproduce_command
from headstart.bundle._bundle import Predictor, write_bundle_into
from headstart.cache._store import FeatureStore
from headstart.data._dataset import SPLITS, DataError, LabeledData
from headstart.data._readers import read_data
from headstart.data._transforms import Augment
from headstart.evaluate._metrics import classification_report
from headstart.select._rank import OFFLINE, Ranking, rank
from headstart.surgery._model import TransferModel, make_head
from headstart.train._heads import fit_head_on_features
from headstart.train._loop import predict_logits, run_stage
from headstart.train._schedule import (
    Schedule,
    feature_head_schedule,
    finetune_schedule,
    scratch_schedule,
)
from headstart.zoo._backbone import Backbone
from headstart.zoo._entries import DEFAULT_MODELS
from headstart.zoo._image import ImageBackbone
from headstart.zoo._registry import create_backbone, get_spec
from headstart.zoo._spec import BackboneSpec, ImagePreprocess
from headstart.zoo._text import TransformerTextBackbone

Strategy = Literal["extract", "finetune", "scratch"]
STRATEGIES: tuple[str, ...] = ("extract", "finetune", "scratch")
AUTO_RANK_ITEMS = 500  # model="auto" ranks on at most this many training examples


@dataclass(frozen=True)
class FitOptions:
    """Every knob of :func:`fit`, with the defaults a careful practitioner would pick."""

    model: str | None = None  # None: the default for the modality; "auto": rank, then pick
    strategy: Strategy = "extract"
    layer: str | None = None  # cut point: reuse the network up to this block
    weights: str | None = None  # local weights file instead of the registered source
    head: Literal["logreg", "mlp"] = "logreg"  # extract path only
    hidden: tuple[int, ...] = ()  # hidden sizes of the new head (mlp / finetune / scratch)
    dropout: float = 0.2
    unfreeze: int | str = 2  # finetune: top blocks to unfreeze, or "all"
    lr: float = 1e-4  # finetune: learning rate of the top block (decays towards the input)
    lr_decay: float = 0.5
    head_lr: float = 1e-3
    scratch_lr: float | None = None  # None: 1e-4 for transformers, 1e-3 otherwise
    epochs: int = 10  # finetune stage 2 / scratch: at most this many epochs
    head_epochs: int = 50
    patience: int = 3
    batch_size: int = 32
    augment: Augment = field(default_factory=Augment)
    image_size: int | None = None  # override the backbone's input size (speed)
    seed: int = 0
    cache_dir: str | None = None
    val: float = 0.15
    test: float = 0.15
    text_column: str = "text"
    label_column: str = "label"
    path_column: str | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if self.head not in ("logreg", "mlp"):
            raise ValueError(f"head must be 'logreg' or 'mlp', not {self.head!r}")


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained predictor, its metrics and its history."""

    predictor: Predictor
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    data: LabeledData
    out: Path | None = None
    test_logits: np.ndarray | None = None  # (n_test, K), rows in ``data.indices("test")`` order

    def predict(self, items: Sequence[Any]) -> list[str]:
        return self.predictor.predict(items)

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        return self.predictor.predict_proba(items)

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
    items = [str(i) for i in data.items] if data.modality == "image" else []
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

    Options are a :class:`FitOptions` or its fields as keyword arguments.
    """
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)
    started = time.perf_counter()
    if out is not None:  # refuse a destructive --out before reading anything
        check_out(out, [data.source if isinstance(data, LabeledData) else data])
    data = load_data(data, opts)
    if out is not None:
        check_out(out, input_paths(data))
        clean_stale_temps(Path(out).absolute().parent)
    for s in data.skipped:
        say(f"[yellow]skipped[/] {s.where}: {s.reason}")
    read_seconds = time.perf_counter() - started
    store = store if store is not None else FeatureStore(opts.cache_dir)
    passes_before = store.forward_passes
    timings: dict[str, float] = {"read_data": read_seconds}
    ranking = None
    if opts.model == "auto":
        t = time.perf_counter()
        ranking = _auto_rank(data, opts, store)
        opts = dataclasses.replace(
            opts, model=ranking.recommended.model, layer=ranking.recommended.layer
        )
        timings["rank"] = time.perf_counter() - t
    spec = resolve_spec(data, opts)

    t = time.perf_counter()
    backbone = create_backbone(
        spec, pretrained=opts.strategy != "scratch", layer=opts.layer, weights=opts.weights
    )
    if isinstance(backbone, ImageBackbone):
        backbone.source_head = None  # the source task's classifier is not part of the new model
    timings["load_model"] = time.perf_counter() - t
    runner = {"extract": _fit_extract, "finetune": _fit_finetune, "scratch": _fit_scratch}
    model, history, split_logits, schedule, trainable = runner[opts.strategy](
        backbone, data, opts, store, timings
    )

    t = time.perf_counter()
    splits: dict[str, Any] = {}
    for split in SPLITS:
        idx = data.indices(split)
        if split not in split_logits:
            split_logits[split] = _logits_for(model, data, split, f"scoring {split} split")
        pred = split_logits[split].argmax(1) if len(idx) else None
        splits[split] = (
            classification_report(data.labels[idx], pred, data.classes) if len(idx) else {"n": 0}
        )
    test_logits = split_logits["test"]
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started

    model.eval()
    metrics = {
        "headstart_version": __version__,
        "model": spec.name,
        "weights": spec.weights.describe()
        if opts.weights is None
        else f"local file: {opts.weights}",
        "strategy": opts.strategy,
        "layer": backbone.layer,
        "feature_dim": backbone.feature_dim,
        "classes": data.classes,
        "samples": {s: int((data.split == s).sum()) for s in SPLITS},
        "counts": data.counts(),
        "splits": splits,
        "seconds": timings,
        "forward_passes": store.forward_passes - passes_before,
        "parameters": {
            "total": sum(p.numel() for p in model.parameters()),
            "trainable_per_stage": trainable,
        },
        "skipped": [dataclasses.asdict(s) for s in data.skipped],
        "schedule": schedule.to_dict() if schedule else None,
        "seed": opts.seed,
        "options": _options_dict(opts),
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
    predictor = Predictor(
        model,
        list(data.classes),
        {
            "modality": data.modality,
            "strategy": opts.strategy,
            "classes": list(data.classes),
        },
    )
    result = FitResult(predictor, metrics, history, data, test_logits=test_logits)
    if out is not None:
        extra = {
            "strategy": opts.strategy,
            "schedule": schedule.to_dict() if schedule else None,
            "fit": {"options": metrics["options"], "source": data.source},
        }
        result.out = _write_outputs(Path(out), result, test_logits, extra)
    return result


def _auto_rank(data: LabeledData, opts: FitOptions, store: FeatureStore) -> Ranking:
    """``model="auto"``: rank the offline zoo by the default score (at ``opts.layer`` only, if set).
    The recommended candidate's training features stay cached for the fit itself."""
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
    return ranking


def _head_logits(model: TransferModel, features: np.ndarray) -> np.ndarray:
    model.head.eval()
    with torch.inference_mode():
        return model.head(torch.from_numpy(features)).numpy()


def _logits_for(model: TransferModel, data: LabeledData, split: str, desc: str) -> np.ndarray:
    items, _, _ = data.take(split)  # type: ignore[arg-type]
    if not items:
        return np.zeros((0, len(data.classes)), dtype=np.float32)
    return predict_logits(model, model.backbone, items, data.modality, description=desc)


def _cached_features(
    backbone: Backbone, data: LabeledData, store: FeatureStore, splits: Sequence[str] = SPLITS
) -> dict[str, np.ndarray]:
    """Features of each split from one cache lookup (one fingerprint, one read of the store)."""
    idx = {split: data.indices(split) for split in splits}  # type: ignore[arg-type]
    order = np.concatenate([idx[s] for s in splits])
    items = [data.items[i] for i in order]
    keys = [data.keys[i] for i in order]
    feats = store.features(backbone, items, keys, data.modality)
    bounds = np.cumsum([0] + [len(idx[s]) for s in splits])
    return {s: feats[bounds[k] : bounds[k + 1]] for k, s in enumerate(splits)}


def _fit_extract(backbone, data, opts, store, timings):
    t = time.perf_counter()
    feats = _cached_features(backbone, data, store)
    timings["extract_features"] = time.perf_counter() - t
    k = len(data.classes)
    y = {s: data.labels[data.indices(s)] for s in SPLITS}
    t = time.perf_counter()
    if opts.head == "logreg":
        head = make_head(backbone.feature_dim, k, hidden=(), dropout=0.0)
    else:
        head = make_head(backbone.feature_dim, k, opts.hidden or (256,), opts.dropout)
    schedule = feature_head_schedule(opts.head_lr, opts.head_epochs * 2, max(opts.patience, 10))
    history = fit_head_on_features(
        head, schedule.stages[0], feats["train"], y["train"], feats["val"], y["val"], opts.seed
    )
    timings["train_head"] = time.perf_counter() - t
    model = TransferModel(backbone, head).eval()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    trainable = {"head": sum(p.numel() for p in head.parameters())}
    logits = {split: _head_logits(model, f) for split, f in feats.items()}
    return model, history, logits, schedule, trainable


def _fit_finetune(backbone, data, opts, store, timings):
    schedule = finetune_schedule(
        backbone.block_names,
        opts.unfreeze,
        opts.head_lr,
        opts.lr,
        opts.lr_decay,
        opts.head_epochs,
        opts.epochs,
        opts.patience,
    )
    return _run_schedule(backbone, data, opts, store, timings, schedule, freeze_bn=True)


def _fit_scratch(backbone, data, opts, store, timings):
    # Transformers trained from scratch diverge at the 1e-3 that suits CNNs and word bags.
    lr = opts.scratch_lr or (1e-4 if isinstance(backbone, TransformerTextBackbone) else 1e-3)
    schedule = scratch_schedule(
        backbone.block_names, lr, max(opts.epochs, 1) * 2, max(opts.patience, 5)
    )
    return _run_schedule(backbone, data, opts, store, timings, schedule, freeze_bn=False)


def _run_schedule(backbone, data, opts, store, timings, schedule: Schedule, freeze_bn: bool):
    k = len(data.classes)
    head = make_head(backbone.feature_dim, k, opts.hidden, opts.dropout)
    model = TransferModel(backbone, head, freeze_bn=freeze_bn)
    history: list[dict[str, Any]] = []
    trainable: dict[str, int] = {}
    train = data.take("train")[:2]
    val = data.take("val")[:2]
    for stage in schedule.stages:
        t = time.perf_counter()
        if stage.on_features:
            feats = _cached_features(backbone, data, store, ("train", "val"))
            timings["extract_features"] = time.perf_counter() - t
            t = time.perf_counter()
            y_val = data.labels[data.indices("val")]
            history += fit_head_on_features(
                head, stage, feats["train"], train[1], feats["val"], y_val, opts.seed
            )
            trainable[stage.name] = sum(p.numel() for p in head.parameters())
        else:
            history += run_stage(
                model, stage, train, val, data.modality, opts.augment, opts.batch_size, opts.seed
            )
            trainable[stage.name] = model.trainable_parameters()
        timings[f"train_{stage.name}"] = time.perf_counter() - t
    return model, history, {}, schedule, trainable


def _options_dict(opts: FitOptions) -> dict[str, Any]:
    d = dataclasses.asdict(opts)
    d["augment"] = dataclasses.asdict(opts.augment)
    return d


def _write_outputs(
    out: Path, result: FitResult, test_logits: np.ndarray, extra: dict[str, Any]
) -> Path:
    """Write everything (bundle, metrics, history, predictions, ``report.html`` and
    ``MODEL_CARD.md``) into a temporary sibling folder, then rename it to ``out``."""
    from headstart.evaluate._card import write_model_card  # matplotlib only when writing
    from headstart.evaluate._report import write_fit_report

    with atomic_dir(out) as tmp:
        write_bundle_into(tmp, result.predictor.model, result.data.classes, extra)
        atomic_write_json(tmp / "metrics.json", result.metrics)
        atomic_write_json(tmp / "history.json", result.history)
        atomic_write_text(tmp / "predictions.csv", _predictions_csv(result.data, test_logits))
        write_fit_report(tmp)
        write_model_card(tmp)
    return out


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


__all__ = ["STRATEGIES", "DataError", "FitOptions", "FitResult", "fit"]
