"""Zero-shot classification: a class from its name alone.

Each label's text (its description put in a template, ``"This text is about {}."``) and
each input are embedded by the same encoder (MiniLM offline, for text; an image-text model
such as CLIP or SigLIP for images) and L2-normalised; the logits are
``s * cos(e_x, e_label)`` and the probability is their softmax at temperature ``T = 1 / s``
(:data:`DEFAULT_TEMPERATURE`, measured on the benchmark tasks; or ``temperature=``). When
the data has labels, accuracy, macro-F1, the negative log-likelihood and the expected
calibration error are reported, with the temperature that fits these labels best
(by likelihood; the predictions do not depend on it).

A text zero-shot model is a :class:`~headstart.fewshot.PrototypeHead` whose prototypes are
the label embeddings (``l2`` transform, cosine), so ``zeroshot(out=...)`` writes a bundle
that ``predict``, ``export`` and ``add-class`` take, and whose classes the first examples
refine (``add-class --update``: the label counts as one example).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._io import atomic_dir, atomic_write_json, atomic_write_text, check_out
from headstart.bundle._bundle import write_bundle_into
from headstart.cache._store import FeatureStore, extract
from headstart.data._dataset import DataError, LabeledData
from headstart.evaluate._metrics import classification_report
from headstart.fewshot._labels import DEFAULT_TEMPLATE, parse_labels, prompts
from headstart.fewshot._prototype import PrototypeHead, fit_scale
from headstart.surgery._model import TransferModel
from headstart.zoo._backbone import Backbone
from headstart.zoo._entries import DEFAULT_MODELS
from headstart.zoo._registry import create_backbone

DEFAULT_TEMPERATURE = 0.05  # T of softmax(cos / T); see the README's few-shot benchmark


@dataclass
class ZeroShotResult:
    """Predictions for every input: ``proba`` ``(N, K)`` over ``classes``; ``metrics``
    when the data has labels (else ``None``)."""

    classes: list[str]
    items: list[str]
    proba: np.ndarray
    temperature: float
    template: str
    model: str
    metrics: dict[str, Any] | None = None
    out: Path | None = None
    labels: np.ndarray | None = None  # indices into ``classes``, when the data has labels
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def predicted(self) -> list[str]:
        return [self.classes[i] for i in self.proba.argmax(1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "template": self.template,
            "temperature": self.temperature,
            "model": self.model,
            "items": len(self.items),
            "metrics": self.metrics,
            **self.info,
        }


def label_embeddings(
    backbone: Backbone, labels: Mapping[str, str], template: str = DEFAULT_TEMPLATE
) -> np.ndarray:
    """``(K, D)`` embeddings of each label's prompt (not normalised)."""
    return extract(backbone, prompts(labels, template), "text", description="embedding labels")


def zeroshot_head(label_emb: np.ndarray, temperature: float = DEFAULT_TEMPERATURE) -> PrototypeHead:
    """A cosine :class:`PrototypeHead` whose prototypes are the unit label embeddings, each
    counted as one example, with scale ``1 / temperature``."""
    head = PrototypeHead(label_emb.shape[1], label_emb.shape[0], transform="l2", metric="cosine")
    e = torch.from_numpy(label_emb)
    head.prototypes.copy_(e / e.norm(dim=1, keepdim=True).clamp(min=1e-12))
    head.counts.fill_(1.0)
    head.scale.fill_(1.0 / temperature)
    return head


def calibration(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Negative log-likelihood ``-mean log p_i[y_i]`` and expected calibration error
    ``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|`` over ``bins`` equal-width confidence bins."""
    p = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    conf, pred = proba.max(1), proba.argmax(1)
    ece = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return {"nll": float(-np.log(p).mean()), "ece": float(ece)}


def read_inputs(
    data: str | os.PathLike[str] | LabeledData | Sequence[str],
    text_column: str = "text",
    label_column: str = "label",
) -> tuple[str, list[str], list[str] | None, str]:
    """``(modality, items, label names or None, source)`` of what to classify: a dataset
    (labels scored when it has them: a label column, or class folders), or a list of texts."""
    from headstart.data._readers import _table_rows, read_data

    if isinstance(data, LabeledData):
        return data.modality, list(data.items), [data.classes[i] for i in data.labels], data.source
    if not isinstance(data, str | os.PathLike):
        texts = [str(t) for t in data]
        return "text", texts, None, "texts"
    p = Path(data)
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".ndjson"):
        rows = _table_rows(p)
        if rows and label_column not in rows[0][1]:
            if text_column not in rows[0][1]:
                raise DataError(
                    f"{p}:1: no text column {text_column!r}; columns are {list(rows[0][1])}"
                )
            texts = [str(r[text_column]) for _, r in rows if str(r.get(text_column) or "").strip()]
            return "text", texts, None, str(p)
    ds = read_data(p, text_column=text_column, label_column=label_column, for_training=False)
    return ds.modality, list(ds.items), [ds.classes[i] for i in ds.labels], ds.source


def zeroshot(
    data: str | os.PathLike[str] | LabeledData | Sequence[str],
    labels: str | Sequence[str] | Mapping[str, str],
    template: str = DEFAULT_TEMPLATE,
    out: str | os.PathLike[str] | None = None,
    model: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    temperature: float | None = None,
    text_column: str = "text",
    label_column: str = "label",
    store: FeatureStore | None = None,
) -> ZeroShotResult:
    """Classify ``data`` (a dataset file or folder, or texts) into ``labels`` by the cosine
    similarity of embeddings (see the module docstring); with ``out``, write
    ``predictions.csv``, ``zeroshot.json`` and, for text, a bundle, atomically."""
    names = parse_labels(labels)
    if temperature is not None and not (temperature > 0 and np.isfinite(temperature)):
        raise ValueError(f"--temperature {temperature}: it must be > 0")
    if out is not None and isinstance(data, str | os.PathLike):
        check_out(out, [data])
    modality, items, truth, source = read_inputs(data, text_column, label_column)
    if not items:
        raise DataError(f"{source}: nothing to classify")
    classes = list(names)
    y = None
    if truth is not None:
        unknown = sorted(set(truth) - set(classes))
        if unknown:
            raise DataError(
                f"{source}: labels not among --labels: {unknown} (the labels are {classes})"
            )
        y = np.array([classes.index(t) for t in truth], dtype=np.int64)
    if modality == "image":
        from headstart.fewshot._clip import image_text_model

        enc = image_text_model(model, weights)
        x, e = enc.encode_images(items), enc.encode_texts(prompts(names, template))
        model_name, head, backbone = enc.name, zeroshot_head(e), None
    else:
        name = model or DEFAULT_MODELS["text"]
        backbone = create_backbone(name, weights=weights)
        backbone.pop_source_head_inplace()
        store = store if store is not None else FeatureStore()
        keys = [_text_key(t) for t in items]
        x = store.features(backbone, items, keys, "text")
        e = label_embeddings(backbone, names, template)
        model_name, head = backbone.spec.name, zeroshot_head(e)
    t = DEFAULT_TEMPERATURE if temperature is None else float(temperature)
    head.scale.fill_(1.0 / t)
    with torch.inference_mode():
        cos = head(torch.from_numpy(x)).numpy() * t
    proba = torch.softmax(torch.from_numpy(cos / t), 1).numpy()
    result = ZeroShotResult(classes, items, proba, t, template, model_name, labels=y)
    result.info["descriptions"] = names
    result.info["source"] = source
    if y is not None:
        metrics = classification_report(y, proba.argmax(1), classes)
        metrics.update(calibration(proba, y))
        best = fit_scale(cos, y)
        metrics["fitted_temperature"] = 1.0 / best
        metrics["fitted"] = calibration(torch.softmax(torch.from_numpy(cos * best), 1).numpy(), y)
        result.metrics = metrics
    if out is not None:
        result.out = _write(Path(out), result, head, backbone)
    return result


def _text_key(text: str) -> str:
    from headstart.data._modality import get_modality

    return get_modality("text").key(text)


def _write(
    out: Path, result: ZeroShotResult, head: PrototypeHead, backbone: Backbone | None
) -> Path:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["item", "predicted", "probability"]
    w.writerow([*header, "label", "correct"] if result.labels is not None else header)
    for i, (item, p) in enumerate(zip(result.items, result.proba, strict=True)):
        j = int(p.argmax())
        row = [item, result.classes[j], f"{p[j]:.4f}"]
        if result.labels is not None:
            row += [result.classes[result.labels[i]], int(result.labels[i] == j)]
        w.writerow(row)
    with atomic_dir(out) as tmp:
        atomic_write_text(tmp / "predictions.csv", buf.getvalue())
        atomic_write_json(tmp / "zeroshot.json", result.to_dict())
        if backbone is not None:
            model = TransferModel(backbone, head).eval()
            extra = {
                "strategy": "zeroshot",
                "zeroshot": {
                    "template": result.template,
                    "descriptions": result.info["descriptions"],
                    "temperature": result.temperature,
                },
            }
            write_bundle_into(tmp, model, result.classes, extra)
    return out


__all__ = [
    "DEFAULT_TEMPERATURE",
    "ZeroShotResult",
    "calibration",
    "label_embeddings",
    "read_inputs",
    "zeroshot",
    "zeroshot_head",
]
