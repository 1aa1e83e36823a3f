"""Episodic few-shot evaluation, as the field reports it.

An *episode* draws ``ways`` classes, then ``shots`` support and ``queries`` query
examples of each (disjoint); a prototype head (:func:`fit_prototypes`, the transform's
centre from the support set alone) is built from the support set and scored on the
queries. Over ``episodes`` episodes the mean accuracy is reported with its 95% interval,
``mean +- t * sd / sqrt(episodes)`` (:func:`headstart.evaluate.mean_ci`; about
``1.96 * sd / sqrt(600)`` at 600 episodes). Everything runs on cached features: the
backbone sees each item once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from headstart._errors import UserError
from headstart.cache._store import FeatureStore
from headstart.data._dataset import LabeledData
from headstart.evaluate._stats import mean_ci
from headstart.fewshot._prototype import METRICS, TRANSFORMS, fit_prototypes


class EpisodeError(UserError, ValueError):
    """The data cannot give the episodes asked for; the message names the option."""


def parse_shots(shots: str | int | Sequence[int]) -> list[int]:
    """``"1,5,10"`` (or ints) as a list of positive shot counts."""
    if isinstance(shots, int):
        values = [shots]
    elif isinstance(shots, str):
        try:
            values = [int(s) for s in shots.split(",") if s.strip()]
        except ValueError:
            raise EpisodeError(f"--shots {shots!r}: expected numbers, e.g. 1,5,10") from None
    else:
        values = [int(s) for s in shots]
    if not values or any(v < 1 for v in values):
        raise EpisodeError(f"--shots {shots!r}: expected positive numbers, e.g. 1,5,10")
    return values


def episode_accuracies(
    x: np.ndarray,
    y: np.ndarray,
    ways: int,
    shots: int,
    queries: int = 15,
    episodes: int = 600,
    seed: int = 0,
    transform: str = "cl2n",
    metric: str = "euclidean",
) -> np.ndarray:
    """Query accuracy of each of ``episodes`` episodes on features ``x`` ``(N, D)`` with
    labels ``y`` ``(N,)``; every class needs ``shots + queries`` examples (only the classes
    that have them are drawn; fewer than ``ways`` such classes is an error)."""
    classes, counts = np.unique(y, return_counts=True)
    able = classes[counts >= shots + queries]
    if len(able) < ways:
        most = int(counts.max()) if len(counts) else 0
        raise EpisodeError(
            f"--shots {shots}: {ways}-way episodes need {ways} classes with {shots} support "
            f"+ {queries} query examples each; only {len(able)} of {len(classes)} classes have "
            f"{shots + queries} (the largest has {most}; lower --shots, --queries or --ways)"
        )
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(y == c) for c in able}
    accs = np.empty(episodes)
    xt = torch.from_numpy(x)
    for e in range(episodes):
        chosen = rng.choice(able, ways, replace=False)
        sup, qry, ys, yq = [], [], [], []
        for k, c in enumerate(chosen):
            idx = rng.choice(by_class[c], shots + queries, replace=False)
            sup.append(idx[:shots])
            qry.append(idx[shots:])
            ys += [k] * shots
            yq += [k] * queries
        s, q = np.concatenate(sup), np.concatenate(qry)
        head = fit_prototypes(x[s], np.array(ys), ways, transform, metric)
        with torch.inference_mode():
            pred = head(xt[q]).argmax(1).numpy()
        accs[e] = float((pred == np.array(yq)).mean())
    return accs


def fewshot_eval(
    data: str | os.PathLike[str] | LabeledData,
    ways: int = 5,
    shots: str | Sequence[int] = (1, 5, 10),
    episodes: int = 600,
    queries: int = 15,
    model: str | None = None,
    layer: str | None = None,
    weights: str | None = None,
    image_size: int | None = None,
    transform: str = "cl2n",
    metric: str = "euclidean",
    seed: int = 0,
    store: FeatureStore | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> dict[str, Any]:
    """``ways``-way episodes at each shot count over every labelled item of ``data`` (all
    splits); returns ``{"rows": [{"shots", "accuracy": {mean, lo, hi, std, n}}], ...}``."""
    from headstart._fit import FitOptions, load_data, resolve_spec
    from headstart.zoo._registry import create_backbone

    if ways < 2:
        raise EpisodeError(f"--ways {ways}: an episode needs two or more classes")
    if episodes < 2 or queries < 1:
        raise EpisodeError("--episodes must be >= 2 and --queries >= 1")
    shot_list = parse_shots(shots)
    if transform not in TRANSFORMS:
        raise EpisodeError(f"--transform {transform!r}: choose from {', '.join(TRANSFORMS)}")
    if metric not in METRICS:
        raise EpisodeError(f"--metric {metric!r}: choose from {', '.join(METRICS)}")
    opts = FitOptions(
        model=model,
        layer=layer,
        weights=weights,
        image_size=image_size,
        val=0.0,
        test=0.0,
        text_column=text_column,
        label_column=label_column,
    )
    ds = load_data(data, opts) if not isinstance(data, LabeledData) else data
    if len(ds.classes) < ways:
        raise EpisodeError(
            f"--ways {ways}: {ds.source} has only {len(ds.classes)} classes ({ds.classes})"
        )
    spec = resolve_spec(ds, opts)
    backbone = create_backbone(spec, layer=layer, weights=weights)
    backbone.pop_source_head_inplace()
    store = store if store is not None else FeatureStore()
    x = store.features(backbone, ds.items, ds.keys, ds.modality)
    rows = []
    for k in shot_list:
        accs = episode_accuracies(x, ds.labels, ways, k, queries, episodes, seed, transform, metric)
        rows.append({"shots": k, "accuracy": mean_ci(accs, bounds=(0.0, 1.0))})
    return {
        "source": ds.source,
        "model": spec.name,
        "layer": backbone.layer,
        "ways": ways,
        "queries": queries,
        "episodes": episodes,
        "transform": transform,
        "metric": metric,
        "classes": len(ds.classes),
        "items": len(ds),
        "rows": rows,
    }


__all__ = ["EpisodeError", "episode_accuracies", "fewshot_eval", "parse_shots"]
