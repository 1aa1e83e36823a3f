"""The baselines transfer has to beat: strong classical models with no pre-training at all.

* text, ``tfidf``: TF-IDF of word 1-2-grams and character 2-5-grams (within word
  boundaries), sublinear term frequency, then logistic regression with ``C`` chosen on the
  validation split; what a careful practitioner tries first on a small text task;
* images, ``pixels``: logistic regression on the raw pixels (RGB, resized to 32 px,
  standardised), ``C`` chosen on validation;
* images, ``small_cnn``: a four-block convolutional network (about 0.3 M parameters) at
  32 px, trained from random initialisation with augmentation and early stopping.

Each returns a :class:`BaselineRun` shaped like a fit's outputs (``metrics``, ``history``,
test logits), so comparisons and reports treat every strategy alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.data._dataset import SPLITS, LabeledData
from headstart.data._readers import load_image
from headstart.data._transforms import Augment, to_rgb
from headstart.evaluate._metrics import classification_report
from headstart.surgery._model import TransferModel, make_head
from headstart.train._heads import fit_logistic_head, logistic_c_sweep
from headstart.train._loop import predict_logits, run_stage
from headstart.train._schedule import scratch_schedule
from headstart.zoo._image import ImageBackbone
from headstart.zoo._spec import BackboneSpec, ImagePreprocess, WeightsSource

BASELINES: dict[str, tuple[str, ...]] = {"text": ("tfidf",), "image": ("pixels", "small_cnn")}
DESCRIPTIONS = {
    "tfidf": "TF-IDF word 1-2 + char 2-5 n-grams, logistic regression",
    "pixels": "logistic regression on raw pixels (32 px RGB, standardised)",
    "small_cnn": "small CNN (4 conv blocks, 32 px) trained from scratch",
}
PIXEL_SIZE = 32
TFIDF_CS = (0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass
class BaselineRun:
    """A baseline's outcome, in the shape of a fit: metrics, history, test logits."""

    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    test_logits: np.ndarray


def fit_baseline(
    name: str, data: LabeledData, seed: int = 0, epochs: int = 30, batch_size: int = 32
) -> BaselineRun:
    """Fit baseline ``name`` (a value of :data:`BASELINES`) on ``data``'s training split,
    choose its settings on validation, and score every split."""
    runners: dict[str, Callable[..., tuple[dict[str, np.ndarray], list[dict[str, Any]], int]]] = {
        "tfidf": _tfidf,
        "pixels": _pixels,
        "small_cnn": _small_cnn,
    }
    if name not in runners:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(runners)}")
    if name not in BASELINES[data.modality]:
        raise ValueError(f"baseline {name!r} does not apply to {data.modality} data")
    torch.manual_seed(seed)
    started = time.perf_counter()
    logits, history, params = runners[name](data, seed, epochs=epochs, batch_size=batch_size)
    seconds = time.perf_counter() - started
    splits = {}
    for split in SPLITS:
        idx = data.indices(split)
        splits[split] = (
            classification_report(data.labels[idx], logits[split].argmax(1), data.classes)
            if len(idx)
            else {"n": 0}
        )
    metrics = {
        "model": DESCRIPTIONS[name],
        "weights": "none: no pre-training",
        "strategy": name,
        "layer": None,
        "classes": list(data.classes),
        "samples": {s: len(data.indices(s)) for s in SPLITS},
        "counts": data.counts(),
        "splits": splits,
        "seconds": {"train": seconds, "total": seconds},
        "parameters": {"total": params, "trainable_per_stage": {name: params}},
        "skipped": [],
        "schedule": None,
        "seed": seed,
    }
    return BaselineRun(metrics, history, logits["test"])


def _split_arrays(data: LabeledData, x: Any) -> dict[str, Any]:
    return {s: x[data.indices(s)] for s in SPLITS}


def _tfidf(data: LabeledData, seed: int, **_: Any):
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = np.asarray(data.items, dtype=object)
    train = list(texts[data.indices("train")])
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    word.fit(train)
    try:
        char.fit(train)
    except ValueError:  # too few texts for min_df=2
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
        char.fit(train)
    x = sparse.hstack([word.transform(texts), char.transform(texts)]).tocsr()
    xs = _split_arrays(data, x)
    ys = _split_arrays(data, data.labels)
    clf, history = logistic_c_sweep(
        xs["train"], ys["train"], xs["val"], ys["val"], TFIDF_CS, seed, max_iter=3000
    )
    k = len(data.classes)
    logits = {}
    for s in SPLITS:
        out = np.full((xs[s].shape[0], k), -1e4, dtype=np.float32)
        if xs[s].shape[0]:
            scores = clf.decision_function(xs[s])
            if scores.ndim == 1:  # binary: the positive class's margin
                out[:, clf.classes_[0]] = 0.0
                out[:, clf.classes_[1]] = scores
            else:
                out[:, clf.classes_] = scores
        logits[s] = out
    params = int(clf.coef_.size + clf.intercept_.size)
    return logits, history, params


def pixel_features(items: list[str], size: int = PIXEL_SIZE) -> np.ndarray:
    """Raw RGB pixels of each image, resized to ``size`` x ``size``, in [0, 1]: ``(N, 3 s²)``."""
    out = np.empty((len(items), 3 * size * size), dtype=np.float32)
    for i, path in enumerate(items):
        img = to_rgb(load_image(path)).resize((size, size))
        out[i] = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
    return out


def _pixels(data: LabeledData, seed: int, **_: Any):
    x = pixel_features(data.items)
    xs = _split_arrays(data, x)
    ys = _split_arrays(data, data.labels)
    head, history = fit_logistic_head(
        xs["train"], ys["train"], xs["val"], ys["val"], len(data.classes), seed
    )
    head.eval()
    with torch.inference_mode():
        logits = {s: head(torch.from_numpy(xs[s])).numpy() for s in SPLITS}
    return logits, history, sum(p.numel() for p in head.parameters())


SMALL_CNN = BackboneSpec(
    name="small_cnn.scratch",
    modality="image",
    arch="small_cnn",
    builder="small-cnn",
    weights=WeightsSource("random", "no pre-training"),
    preprocess=ImagePreprocess(
        input_size=PIXEL_SIZE, crop_pct=1.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    ),
    feature_dim=128,
    blocks=("block1", "block2", "block3", "block4"),
    licence="Apache-2.0",
    description=DESCRIPTIONS["small_cnn"],
)


def small_cnn() -> ImageBackbone:
    """The ``small_cnn`` baseline's network, randomly initialised (global torch RNG)."""

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    stages = [
        ("block1", block(3, 32, 1)),
        ("block2", block(32, 64, 2)),
        ("block3", block(64, 96, 2)),
        ("block4", block(96, 128, 2)),
    ]
    return ImageBackbone(SMALL_CNN, stages)


def _small_cnn(data: LabeledData, seed: int, epochs: int = 30, batch_size: int = 32, **_: Any):
    backbone = small_cnn()
    head = make_head(backbone.feature_dim, len(data.classes), hidden=(), dropout=0.2)
    model = TransferModel(backbone, head, freeze_bn=False)
    stage = scratch_schedule(backbone.block_names, lr=1e-3, epochs=epochs, patience=6).stages[0]
    train, val = data.take("train")[:2], data.take("val")[:2]
    history = run_stage(model, stage, train, val, "image", Augment(), batch_size, seed)
    logits = {}
    for s in SPLITS:
        items = data.take(s)[0]
        logits[s] = (
            predict_logits(model, backbone, items, "image")
            if items
            else np.zeros((0, len(data.classes)), dtype=np.float32)
        )
    return logits, history, sum(p.numel() for p in model.parameters())


__all__ = ["BASELINES", "SMALL_CNN", "BaselineRun", "fit_baseline", "pixel_features", "small_cnn"]
