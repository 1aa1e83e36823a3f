"""Choose the source model and the layer before training.

For every candidate ``(model, layer)``, :func:`rank` cuts the backbone after ``layer``,
extracts the training split's features through the
:class:`~headstart.cache.FeatureStore` (so a second ranking, or a later ``fit`` of the
chosen candidate, runs no forward pass for them), computes a transferability score, and
measures what the candidate costs: milliseconds per input on this machine, feature width
and parameters. :func:`recommend` weighs the score against the cost.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from headstart._progress import say
from headstart.cache._store import FeatureStore
from headstart.data._dataset import LabeledData
from headstart.data._loader import load_items
from headstart.data._readers import read_data
from headstart.select._common import balanced_subset
from headstart.select._registry import NEEDS_SOURCE_PROBS, SCORES
from headstart.select._registry import score as compute_score
from headstart.surgery._model import cut
from headstart.zoo._backbone import Backbone
from headstart.zoo._registry import create_backbone, get_spec, list_specs
from headstart.zoo._small_cnn import untrained
from headstart.zoo._spec import BackboneSpec, ImagePreprocess

# The default score, chosen by bench/rank.py (README, "does the ranking hold?"): over 3
# image tasks and 1 text task its pick lost the least accuracy (0.6 points, LogME 2.0), its
# Kendall tau was within noise of the best single score, and it is the cheapest.
DEFAULT_SCORE = "knn_loo_accuracy"
OFFLINE = "all-offline"
HALF_SAMPLES = 5  # random half-samples behind each score's standard error
TIMING_BATCH = 16
TIMING_REPEATS = 5
SAME_COST = 1.10  # ms/input within 10% of the cheapest count as equally cheap

RULE = (
    "one-standard-error rule: among candidates whose score is within one standard error "
    "of the best score (the best score's spread over random half-samples of the data), "
    "the cheapest by ms/input; costs within 10% of the cheapest count as equal, and the "
    "higher score wins among those"
)


@dataclass(frozen=True)
class Candidate:
    """One ranked ``(model, layer)``: its score on the target data and what it costs.

    ``score_se`` is the standard error of ``score``, estimated as the standard deviation
    of the score over random stratified half-samples (NaN where a half-sample is too small
    for the score). ``params`` counts the cut backbone's parameters (no source head);
    ``ms_per_input`` is measured on this machine (see :func:`ms_per_input`).
    """

    model: str
    layer: str
    score: float
    score_se: float
    feature_dim: int
    params: int
    ms_per_input: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite_or_none(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Ranking:
    """What :func:`rank` returns: candidates best first, and the one it recommends."""

    score: str
    rows: tuple[Candidate, ...]
    recommended: Candidate
    n_items: int
    source: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become ``None``)."""
        rows = [
            {"rank": i + 1, **r.to_dict(), "recommended": r == self.recommended}
            for i, r in enumerate(self.rows)
        ]
        return {
            "score": self.score,
            "rule": RULE,
            "n_items": self.n_items,
            "source": self.source,
            "recommended": self.recommended.to_dict(),
            "rows": rows,
            "notes": list(self.notes),
        }


class _Sample(NamedTuple):
    items: list[str]
    labels: np.ndarray
    keys: list[str]
    halves: list[np.ndarray]


def _finite_or_none(v: object) -> object:
    return None if isinstance(v, float) and not math.isfinite(v) else v


# ---------------------------------------------------------------------------- candidates


def offline_models(modality: str) -> list[str]:
    """Every registered model of ``modality`` whose weights load offline (no test models,
    no untrained architectures)."""
    specs = list_specs(modality)  # type: ignore[arg-type]
    return [s.name for s in specs if s.offline_available() and not untrained(s)]


def auto_layers(blocks: Sequence[str], count: int = 3) -> list[str]:
    """Up to ``count`` cut points, evenly spaced over the second half of ``blocks``, the
    last block always included: late blocks carry the most transferable features, and an
    earlier one is cheaper. EfficientNet-Lite's ``stem, blocks.0..6, head`` gives
    ``blocks.3, blocks.5, head``; a one-block model gives that block."""
    n = len(blocks)
    if n == 0:
        raise ValueError("a backbone without named blocks has no cut points")
    picks = np.round(np.linspace(n // 2, n - 1, count)).astype(int)
    return [blocks[i] for i in sorted(set(picks.tolist()))]


def at_image_size(spec: BackboneSpec, image_size: int | None) -> BackboneSpec:
    """``spec`` with its image input size replaced (as ``fit(image_size=...)`` does)."""
    if not image_size or not isinstance(spec.preprocess, ImagePreprocess):
        return spec
    pre = dataclasses.replace(spec.preprocess, input_size=int(image_size))
    return dataclasses.replace(spec, preprocess=pre)


def _specs(
    models: str | Sequence[str | BackboneSpec], modality: str, image_size: int | None
) -> list[BackboneSpec]:
    if models == OFFLINE:
        names: Sequence[str | BackboneSpec] = offline_models(modality)
    else:
        names = [models] if isinstance(models, str) else models
    specs = [m if isinstance(m, BackboneSpec) else get_spec(m) for m in names]
    if not specs:
        raise ValueError(f"no candidate models to rank for {modality} data")
    for spec in specs:
        if spec.modality != modality:
            raise ValueError(f"{spec.name} is a {spec.modality} model, the data is {modality}")
    return [at_image_size(s, image_size) for s in specs]


def _layers(backbone: Backbone, layers: str | Sequence[str], score_name: str) -> list[str]:
    if layers == "auto":
        if score_name in NEEDS_SOURCE_PROBS:  # only the whole backbone has a source head
            return [backbone.layer]
        return auto_layers(backbone.block_names)
    return [layers] if isinstance(layers, str) else list(layers)


# ------------------------------------------------------------------------ measurements


def ms_per_input(backbone: Backbone, inputs: Any) -> float:
    """Milliseconds per input of ``backbone`` on this machine: one warm-up forward pass of
    the collated batch ``inputs``, then the fastest of five timed passes (as ``timeit``
    advises: other load only ever adds time), divided by the batch size. Eval mode,
    ``torch.inference_mode``, the current torch thread count."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.inference_mode():
            backbone(inputs)
            times = []
            for _ in range(TIMING_REPEATS):
                start = time.perf_counter()
                backbone(inputs)
                times.append(time.perf_counter() - start)
    finally:
        backbone.train(was_training)
    return 1000.0 * min(times) / backbone.batch_size(inputs)


def _half_samples(labels: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """``count`` random stratified halves: each class contributes half its rows (>= 1)."""
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(count):
        parts = []
        for c in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == c))
            parts.append(rows[: max(1, len(rows) // 2)])
        halves.append(np.sort(np.concatenate(parts)))
    return halves


def _score_and_se(
    name: str, feats: np.ndarray, probs: np.ndarray | None, sample: _Sample
) -> tuple[float, float]:
    """The score on all rows, and its standard deviation over the half-samples: for a
    mean over rows, halves drawn without replacement vary as much as the full-size
    estimate does across datasets (variance ``sigma^2 / (N - 1)``), so it estimates the
    standard error directly."""
    full = compute_score(name, feats, sample.labels, probs)
    try:
        halves = [
            compute_score(name, feats[h], sample.labels[h], None if probs is None else probs[h])
            for h in sample.halves
        ]
    except ValueError:  # e.g. a half too small for the score's folds
        return full, math.nan
    return full, float(np.std(halves, ddof=1))


def _source_probs(head: torch.nn.Module, feats: np.ndarray) -> np.ndarray:
    """Softmax of the source classifier on pooled features (what ``source_logits`` does
    on images, without a second forward pass through the backbone)."""
    with torch.inference_mode():
        return torch.softmax(head(torch.from_numpy(feats)).double(), dim=1).numpy()


# ------------------------------------------------------------------------------- rank


def _rank_model(
    spec: BackboneSpec,
    layers: str | Sequence[str],
    score_name: str,
    sample: _Sample,
    modality: str,
    store: FeatureStore,
) -> tuple[list[Candidate], list[str]]:
    """Rows for every wanted layer of one model, and notes on the layers skipped."""
    whole = create_backbone(spec)
    head = whole.pop_source_head_inplace()  # LEEP / NCE need it; the features do not
    inputs = whole.collate(load_items(sample.items[:TIMING_BATCH], modality))
    rows, notes = [], []
    for layer in _layers(whole, layers, score_name):
        where = f"{whole.spec.name} @ {layer}"
        if layer not in whole.block_names:
            notes.append(f"{where}: skipped, no such block ({', '.join(whole.block_names)})")
            continue
        if score_name in NEEDS_SOURCE_PROBS and (head is None or layer != whole.layer):
            notes.append(
                f"{where}: skipped, {score_name} needs the source classifier, which only a "
                "whole image backbone with a source head has"
            )
            continue
        backbone = whole if layer == whole.layer else cut(whole, layer)
        feats = store.features(
            backbone, sample.items, sample.keys, modality, description=f"features: {where}"
        )
        probs = _source_probs(head, feats) if score_name in NEEDS_SOURCE_PROBS else None
        value, se = _score_and_se(score_name, feats, probs, sample)
        rows.append(
            Candidate(
                model=whole.spec.name,
                layer=layer,
                score=value,
                score_se=se,
                feature_dim=backbone.feature_dim,
                params=backbone.num_parameters(),
                ms_per_input=ms_per_input(backbone, inputs),
            )
        )
    return rows, notes


def recommend(rows: Sequence[Candidate]) -> Candidate:
    """The candidate to use, by the one-standard-error rule (Breiman et al. 1984; Hastie,
    Tibshirani & Friedman, *Elements of Statistical Learning*, sec. 7.10): a score is an
    estimate, so candidates within one standard error of the best score are treated as
    equally good, and the cheapest of them (by ``ms_per_input``) is chosen.

    The tolerance is the best candidate's ``score_se``, its spread over random
    half-samples of the data (0 when unknown, which picks the best score). Measured
    costs jitter, so costs within 10% of the cheapest tied candidate count as equal and
    the higher score wins among those; the pick is thus stable unless two costs straddle
    that margin.
    """
    if not rows:
        raise ValueError("no candidates to recommend from")
    best = max(rows, key=lambda r: r.score)
    tol = best.score_se if math.isfinite(best.score_se) else 0.0
    tied = [r for r in rows if r.score >= best.score - tol]
    cheapest = min(r.ms_per_input for r in tied)
    return max((r for r in tied if r.ms_per_input <= cheapest * SAME_COST), key=lambda r: r.score)


def rank(
    data: str | os.PathLike[str] | LabeledData,
    models: str | Sequence[str | BackboneSpec] = OFFLINE,
    layers: Literal["auto"] | Sequence[str] = "auto",
    score: str = DEFAULT_SCORE,
    store: FeatureStore | None = None,
    max_items: int | None = None,
    image_size: int | None = None,
    seed: int = 0,
) -> Ranking:
    """Rank candidate source models and cut layers on the training split of ``data``.

    Args:
        data: a dataset path (as for :func:`headstart.fit`) or a :class:`LabeledData`.
        models: model names (or specs), one name, or ``"all-offline"``: every registered
            model of the data's modality whose weights load offline.
        layers: ``"auto"`` (see :func:`auto_layers`; for ``leep`` / ``nce`` only the whole
            backbone) or block names; a model without a named block skips it with a note.
        score: a key of :data:`headstart.select.SCORES`. ``leep`` and ``nce`` read the
            source classifier, so they rank whole image backbones only.
        store: the feature cache (default: the user cache).
        max_items: rank on at most this many training examples, spread over the classes.
        image_size: override the image models' input size (as ``fit(image_size=...)``).
        seed: seed of the data split (paths only), the subsample and the half-samples.

    Returns:
        A :class:`Ranking`: rows sorted by score, best first, and the recommended row
        (see :func:`recommend`).
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(sorted(SCORES))}")
    if not isinstance(data, LabeledData):
        data = read_data(data, seed=seed)
    store = store if store is not None else FeatureStore()
    items, labels, keys = data.take("train")
    keep = balanced_subset(labels, max_items, seed)
    sample = _Sample(
        [items[i] for i in keep],
        labels[keep],
        [keys[i] for i in keep],
        _half_samples(labels[keep], HALF_SAMPLES, seed),
    )
    rows: list[Candidate] = []
    notes: list[str] = []
    for spec in _specs(models, data.modality, image_size):
        say(f"ranking [bold]{spec.name}[/] by {score} on {len(keep)} training examples")
        more_rows, more_notes = _rank_model(spec, layers, score, sample, data.modality, store)
        rows += more_rows
        notes += more_notes
    if not rows:
        raise ValueError("nothing to rank: " + "; ".join(notes))
    rows.sort(key=lambda r: r.score, reverse=True)
    return Ranking(score, tuple(rows), recommend(rows), len(keep), data.source, tuple(notes))
