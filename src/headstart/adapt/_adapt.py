"""``headstart.adapt``: a labelled source, an unlabelled target, one adapted model.

:func:`adapt` reads the source (split as ``fit`` splits it) and the target (canonical
order, :mod:`headstart.adapt._target`), extracts features once (the feature cache),
runs every candidate adaptation method on them, scores each with label-free
validators, and keeps the label-free choice (:mod:`headstart.adapt._choose`). Only then,
if the target came with labels, are they read: to score every candidate, reported as
"target accuracy (labels used for scoring only)". The bundle in ``out`` is a normal
``fit`` bundle (predict, evaluate, export, serve) plus ``adapt.json``.
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
import torch

from headstart._io import check_out, clean_stale_temps
from headstart._progress import say
from headstart.adapt._adabn import adabn_backbone, batchnorm_layers
from headstart.adapt._choose import Scored, choose, score_all
from headstart.adapt._head import head_proba
from headstart.adapt._registry import NotApplicable, get_adapt_method, list_adapt_methods
from headstart.adapt._target import TargetData, read_target
from headstart.adapt._task import AdabnFeatures, AdaptTask, Candidate
from headstart.adapt._validators import (
    domain_classifier_weights,
    effective_sample_size,
    reverse_validation_hits,
)
from headstart.bundle._bundle import Predictor
from headstart.cache._store import FeatureStore
from headstart.data._dataset import SPLITS, DataError, LabeledData
from headstart.data._readers import read_data
from headstart.select._rank import at_image_size
from headstart.select._shift import proxy_a_distance
from headstart.surgery._model import TransferModel
from headstart.zoo._backbone import Backbone
from headstart.zoo._entries import DEFAULT_MODELS
from headstart.zoo._registry import create_backbone, get_spec

SCORING_NOTE = "target accuracy (labels used for scoring only)"
A_DISTANCE_ROWS = 500  # per domain, for the proxy A-distance


@dataclass
class AdaptResult:
    """What :func:`adapt` returns: the chosen model as a predictor, ``report`` (the
    contents of ``adapt.json``), the target items in canonical order with the chosen
    model's probabilities on them, and ``out`` when written."""

    predictor: Predictor
    report: dict[str, Any]
    target_items: list[str]
    target_proba: np.ndarray
    metrics: dict[str, Any]
    out: Path | None = None

    @property
    def chosen(self) -> str:
        return str(self.report["chosen"])

    def predict(self, items: list[Any]) -> list[str]:
        return self.predictor.predict(items)


def _method_names(method: str, labelled: bool) -> list[str]:
    if method == "auto":
        names = [
            m.name for m in list_adapt_methods() if labelled or "labelled target" not in m.uses
        ]
    else:
        info = get_adapt_method(method)
        if "labelled target" in info.uses and not labelled:
            raise ValueError(
                f"--method {method} uses labelled target examples: give --target-labelled FILE"
            )
        names = ["source_only", method]
        if labelled:
            names.append("target_only")
    return list(dict.fromkeys(names))


def _read_labelled_target(
    path: str | os.PathLike[str], src: LabeledData, **columns: Any
) -> LabeledData:
    tl = read_data(path, for_training=False, **columns)
    if tl.modality != src.modality:
        raise DataError(
            f"{path}: holds {tl.modality} data but the source {src.source} holds {src.modality}"
        )
    unknown = sorted(set(tl.classes) - set(src.classes))
    if unknown:
        raise DataError(
            f"--target-labelled {path}: label names differ from the source's: "
            f"{', '.join(map(repr, unknown))} not among {', '.join(map(repr, src.classes))}"
        )
    return tl


def adapt(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    method: str = "auto",
    model: str | None = None,
    target_labelled: str | os.PathLike[str] | None = None,
    *,
    validator: str = "im+rv",
    layer: str | None = None,
    image_size: int | None = None,
    seed: int = 0,
    val: float = 0.15,
    test: float = 0.15,
    text_column: str = "text",
    label_column: str = "label",
    path_column: str | None = None,
    configs: dict[str, Any] | None = None,
    store: FeatureStore | None = None,
) -> AdaptResult:
    """Adapt a model trained on labelled ``source`` data to the unlabelled ``target``.

    ``method="auto"`` runs every registered method that applies and keeps the best by
    the label-free ``validator`` (``im+rv``: information maximisation among candidates
    whose reverse validation is no worse than source-only's; or one of ``rv``, ``im``,
    ``snd``, ``entropy``, ``iwcv``, ``dev``), or
    ``source_only`` when nothing beats it by more than two bootstrap standard errors;
    ``method=NAME`` runs ``source_only`` and ``NAME`` and keeps ``NAME``. The target's
    labels, if it has any, never reach a method or the choice. ``target_labelled``: a few
    labelled target examples for the methods that use them (and the few-shot baseline
    ``target_only``). ``configs``: ``{method: config dataclass instance}`` overrides.
    """
    started = time.perf_counter()
    names = _method_names(method, target_labelled is not None)
    for key, config in (configs or {}).items():  # API input: the same checks as the CLI's
        info = get_adapt_method(key)  # an unknown method name is one clear error
        if not isinstance(config, info.config_cls):
            raise TypeError(
                f"configs[{key!r}]: expected a {info.config_cls.__name__}, "
                f"got {type(config).__name__}"
            )
    ran_configs = {k: v for k, v in (configs or {}).items() if k in names}
    inputs = [p for p in (source, target, target_labelled) if p is not None]
    if out is not None:
        check_out(out, inputs)
    torch.manual_seed(seed)
    columns = {"text_column": text_column, "label_column": label_column, "path_column": path_column}
    src = read_data(source, val=val, test=test, seed=seed, **columns)
    tgt = read_target(target, **columns)
    if tgt.modality != src.modality:
        raise DataError(
            f"{target}: holds {tgt.modality} data but the source {source} holds {src.modality}"
        )
    tl = _read_labelled_target(target_labelled, src, **columns) if target_labelled else None
    if out is not None:
        check_out(out, [*inputs, *tgt.items] if tgt.modality == "image" else inputs)
        clean_stale_temps(Path(out).absolute().parent)
    spec = get_spec(model or DEFAULT_MODELS[src.modality])
    if spec.modality != src.modality:
        raise ValueError(
            f"{spec.name} is a {spec.modality} model but {source} holds {src.modality} data"
        )
    spec = at_image_size(spec, image_size)
    store = store if store is not None else FeatureStore()
    store.check_writable()
    passes = store.forward_passes
    backbone = create_backbone(spec, layer=layer)
    backbone.pop_source_head_inplace()

    t = time.perf_counter()
    split_feats = _source_features(store, backbone, src)
    xt = store.features(backbone, tgt.items, tgt.keys, tgt.modality, description="features: target")
    labelled = None
    if tl is not None:
        xl = store.features(
            backbone, tl.items, tl.keys, tl.modality, description="features: labelled target"
        )
        labelled = (xl, np.array([src.classes.index(tl.classes[y]) for y in tl.labels]))
    seconds = {"features": time.perf_counter() - t}
    ys, yv = src.labels[src.indices("train")], src.labels[src.indices("val")]
    xs, xv = split_feats["train"], split_feats["val"]
    if not len(xv):
        xv, yv = xs, ys  # no validation split: the training rows stand in (said in adapt.json)
    wv = domain_classifier_weights(xs, xt, xv, seed=seed)
    task = AdaptTask(
        xs,
        ys,
        xv,
        yv,
        xt,
        len(src.classes),
        seed,
        wv,
        labelled,
        adabn_fn=lambda: _adabn_features(store, backbone, tgt),
    )
    candidates, skipped = _run(names, task, configs or {}, seconds)
    scored = {c.name: _scored(c, task) for c in candidates}
    scores = score_all(scored, yv, wv, seed)
    eligible = (
        (lambda n: n == method or n == "source_only") if method != "auto" else (lambda n: True)
    )
    choice = choose(scores, scored, validator, yv, wv, eligible, seed)
    if choice["gated_out"]:
        choice["message"] += (
            "; set aside first, their reverse validation below source_only's: "
            + ", ".join(choice["gated_out"])
        )
    if method != "auto":
        choice.update(
            chosen=method, message=f"--method {method}: kept as asked ({choice['message']})"
        )
    say(choice["message"])
    chosen = next(c for c in candidates if c.name == choice["chosen"])

    t = time.perf_counter()
    rows = []
    for c in candidates:
        rows.append(
            {
                "method": c.name,
                "scores": scores[c.name],
                "proxy_a_distance": _a_distance(c, task, seed),
                "uses_labelled_target": c.uses_labelled_target,
                "notes": c.notes,
                "history": c.history,
                "seconds": seconds.get(c.name),
            }
        )
    seconds["a_distance"] = time.perf_counter() - t
    if tgt.labels is not None:  # only now, after the choice: scoring, never selection
        for row in rows:
            row["target_accuracy"] = target_accuracy(
                scored[row["method"]].target, tgt.labels, src.classes
            )
    net = TransferModel(_backbone_of(chosen, task, backbone), chosen.head).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    seconds["total"] = time.perf_counter() - started
    report = {
        "source": {
            "data": src.source,
            "examples": {s: int((src.split == s).sum()) for s in SPLITS},
        },
        "target": {
            "data": tgt.source,
            "examples": len(tgt),
            "labelled": tgt.labels is not None,
            "skipped": len(tgt.skipped),
            "order": "canonical: sorted by content key",
        },
        "target_labelled": None if tl is None else {"data": tl.source, "examples": len(tl.items)},
        "model": spec.name,
        "layer": backbone.layer,
        "method": method,
        "validator": validator,
        "chosen": chosen.name,
        "choice": choice,
        "proxy_a_distance": {
            "before": next(r for r in rows if r["method"] == "source_only")["proxy_a_distance"],
            "after": next(r for r in rows if r["method"] == chosen.name)["proxy_a_distance"],
        },
        "validation_weights": {
            "effective_sample_size": effective_sample_size(wv),
            "rows": len(wv),
            "from": "domain classifier (source training vs target features)",
        },
        "candidates": rows,
        "not_applicable": skipped,
        "scoring_note": SCORING_NOTE if tgt.labels is not None else "the target has no labels",
        "seconds": seconds,
        "forward_passes": store.forward_passes - passes,
        "seed": seed,
        "configs": {k: dataclasses.asdict(v) for k, v in ran_configs.items()},
        "command": adapt_command(
            source,
            target,
            out,
            method,
            model,
            target_labelled,
            layer,
            image_size,
            seed,
            validator,
            ran_configs,
            {"--text-column": (text_column, "text"), "--label-column": (label_column, "label")},
        ),
    }
    from headstart.adapt._outputs import build_metrics, write_outputs

    metrics = build_metrics(report, src, chosen, net, split_feats, task)
    predictor = Predictor(
        net, list(src.classes), {"modality": src.modality, "strategy": f"adapt:{chosen.name}"}
    )
    result = AdaptResult(predictor, report, tgt.items, scored[chosen.name].target, metrics)
    if out is not None:
        result.out = write_outputs(Path(out), result, src, tgt)
    return result


def _source_features(
    store: FeatureStore, backbone: Backbone, src: LabeledData
) -> dict[str, np.ndarray]:
    order = np.concatenate([src.indices(s) for s in SPLITS])
    feats = store.features(
        backbone,
        [src.items[i] for i in order],
        [src.keys[i] for i in order],
        src.modality,
        description="features: source",
    )
    bounds = np.cumsum([0] + [len(src.indices(s)) for s in SPLITS])
    return {s: feats[bounds[k] : bounds[k + 1]] for k, s in enumerate(SPLITS)}


def _adabn_features(
    store: FeatureStore, backbone: Backbone, tgt: TargetData
) -> AdabnFeatures | None:
    """The AdaBN backbone and the target's features through it. The pass order is one
    fixed shuffle (seed 0) whatever the run's seed: the statistics are a property of the
    target, and so are cached once for every seed."""
    if not batchnorm_layers(backbone):
        return None
    new = adabn_backbone(backbone, tgt.items, tgt.modality, seed=0)
    xt = store.features(
        new, tgt.items, tgt.keys, tgt.modality, description="features: target (AdaBN)"
    )
    return AdabnFeatures(new, xt)


def _run(
    names: list[str], task: AdaptTask, configs: dict[str, Any], seconds: dict[str, float]
) -> tuple[list[Candidate], list[dict[str, str]]]:
    candidates, skipped = [], []
    for name in names:
        info = get_adapt_method(name)
        t = time.perf_counter()
        try:
            cand = info.fn(task, configs.get(name) or info.config_cls())
        except NotApplicable as exc:
            skipped.append({"method": name, "reason": str(exc)})
            say(f"[yellow]{name}[/]: not applicable ({exc})")
            continue
        seconds[name] = time.perf_counter() - t
        candidates.append(cand)
    if len([c for c in candidates if c.name != "source_only"]) == 0 and names != ["source_only"]:
        say("[yellow]no adaptation method applies[/]: only source_only ran")
    return candidates, skipped


def _scored(c: Candidate, task: AdaptTask) -> Scored:
    """Probabilities on the source validation rows (through the candidate's source map)
    and on the target rows (through its backbone)."""
    xv = c.source_map(task.xv) if c.source_map is not None else task.xv
    xt = task.xt
    if c.backbone == "adabn":
        ab = task.adabn()
        assert ab is not None
        xt = ab.target
    pt = head_proba(c.head, xt)
    hits = reverse_validation_hits(xt, pt.argmax(1), xv, task.yv, seed=task.seed)
    return Scored(head_proba(c.head, xv), pt, hits)


def _backbone_of(c: Candidate, task: AdaptTask, backbone: Backbone) -> Backbone:
    if c.backbone == "adabn":
        ab = task.adabn()
        assert ab is not None
        return ab.backbone
    return backbone


def _a_distance(c: Candidate, task: AdaptTask, seed: int) -> float | None:
    """Proxy A-distance between the source training rows and the target rows as the
    candidate's linear layer sees them (at most ``A_DISTANCE_ROWS`` per domain)."""
    if c.source_repr is None:
        return None
    xt = task.adabn().target if c.backbone == "adabn" else task.xt  # type: ignore[union-attr]
    with torch.inference_mode():
        zt = c.head[0](torch.from_numpy(xt)).numpy()
    rng = np.random.default_rng(seed)
    s = c.source_repr[rng.permutation(len(c.source_repr))[:A_DISTANCE_ROWS]]
    t = zt[rng.permutation(len(zt))[:A_DISTANCE_ROWS]]
    if min(len(s), len(t)) < 5:
        return None
    return proxy_a_distance(s, t, seed=seed)


def target_accuracy(proba: np.ndarray, labels: list[str], classes: list[str]) -> dict[str, Any]:
    """Accuracy of ``proba`` (N, K) against the target's class names; items whose label is
    not a source class count as wrong (and are counted in ``unknown_labels``)."""
    pred = [classes[i] for i in proba.argmax(1)]
    hits = sum(p == y for p, y in zip(pred, labels, strict=True))
    unknown = sum(y not in classes for y in labels)
    return {
        "accuracy": hits / len(labels),
        "n": len(labels),
        "unknown_labels": unknown,
        "note": SCORING_NOTE,
    }


def adapt_command(
    source: Any,
    target: Any,
    out: Any,
    method: str,
    model: str | None,
    labelled: Any,
    layer: str | None,
    image_size: int | None,
    seed: int,
    validator: str = "im+rv",
    configs: dict[str, Any] | None = None,
    columns: dict[str, tuple[str, str]] | None = None,
) -> str:
    """The ``headstart adapt`` command line that reproduces the run (a method option set
    in ``configs`` away from its default becomes its flag)."""
    from headstart._options import flag_of

    words = ["headstart", "adapt", str(source), str(target), "--out", str(out or "OUT")]
    for flag, value in (
        ("--method", None if method == "auto" else method),
        ("--model", model),
        ("--target-labelled", labelled),
        ("--validator", None if validator == "im+rv" else validator),
        ("--layer", layer),
        ("--image-size", image_size),
        ("--seed", seed or None),
    ):
        if value is not None:
            words += [flag, str(value)]
    flags: dict[str, str] = {}
    for config in (configs or {}).values():
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if value != f.default:
                flags.setdefault(flag_of(f), str(value))
    for flag, value in flags.items():
        words += [flag, value]
    for flag, (value, default) in (columns or {}).items():
        if value != default:
            words += [flag, value]
    return shlex.join(words)


__all__ = ["SCORING_NOTE", "AdaptResult", "adapt", "adapt_command", "target_accuracy"]
