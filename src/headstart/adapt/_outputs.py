"""What ``headstart adapt`` writes: a ``fit``-compatible bundle folder plus ``adapt.json``,
``target_predictions.csv`` and an "Adaptation" section in ``report.html``."""

from __future__ import annotations

import csv
import io
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from headstart._io import atomic_dir, atomic_write_json, atomic_write_text
from headstart._version import __version__
from headstart.adapt._head import head_proba
from headstart.adapt._target import TargetData
from headstart.adapt._task import AdaptTask, Candidate
from headstart.bundle._bundle import write_bundle_into
from headstart.data._dataset import SPLITS, LabeledData
from headstart.evaluate._metrics import classification_report
from headstart.surgery._model import TransferModel

if TYPE_CHECKING:
    from headstart.adapt._adapt import AdaptResult

ADAPT_JSON = "adapt.json"
TARGET_PREDICTIONS = "target_predictions.csv"


def _source_proba(
    c: Candidate, task: AdaptTask, feats: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The chosen model's probabilities on each source split, source rows mapped as the
    method maps source-domain data (:attr:`Candidate.source_map`)."""
    out = {}
    for s in SPLITS:
        x = c.source_map(feats[s]) if c.source_map is not None and len(feats[s]) else feats[s]
        out[s] = head_proba(c.head, x) if len(x) else np.zeros((0, task.n_classes))
    return out


def build_metrics(
    report: dict[str, Any],
    src: LabeledData,
    chosen: Candidate,
    net: TransferModel,
    feats: Mapping[str, np.ndarray],
    task: AdaptTask,
) -> dict[str, Any]:
    """``metrics.json`` in ``fit``'s layout, with the adaptation summary under ``"adapt"``.
    Its source splits are scored with the method's own source mapping (per-domain
    statistics: source rows with the source's); the bundle itself is made for the target
    domain (``source_splits`` says so)."""
    proba = _source_proba(chosen, task, feats)
    splits = {}
    for s in SPLITS:
        idx = src.indices(s)
        splits[s] = (
            classification_report(src.labels[idx], proba[s].argmax(1), src.classes)
            if len(idx)
            else {"n": 0}
        )
    return {
        "headstart_version": __version__,
        "model": report["model"],
        "weights": net.backbone.spec.weights.describe(),
        "strategy": f"adapt:{chosen.name}",
        "kind": "adapt",
        "layer": net.backbone.layer,
        "feature_dim": net.backbone.feature_dim,
        "classes": list(src.classes),
        "samples": {s: int((src.split == s).sum()) for s in SPLITS},
        "counts": src.counts(),
        "splits": splits,
        "seconds": report["seconds"],
        "forward_passes": report["forward_passes"],
        "parameters": {
            "total": sum(p.numel() for p in net.parameters()),
            "trainable_per_stage": {"head": sum(p.numel() for p in net.head.parameters())},
        },
        "skipped": [{"where": s.where, "reason": s.reason} for s in src.skipped],
        "duplicates": [],
        "schedule": None,
        "seed": report["seed"],
        "options": {"method": report["method"], "validator": report["validator"]},
        "method": {"name": chosen.name, "kind": "adapt", "config": {}},
        "command": report["command"],
        "environment": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
        },
        "adapt": summary(report),
        "source_splits": "scored with the source's own statistics; the bundle is for the target",
        "_source_test_proba": proba["test"],
    }


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``adapt.json`` the report shows."""
    keys = (
        "chosen",
        "choice",
        "validator",
        "proxy_a_distance",
        "candidates",
        "scoring_note",
        "target",
    )
    return {k: report[k] for k in keys}


def write_outputs(out: Path, result: AdaptResult, src: LabeledData, tgt: TargetData) -> Path:
    """Write everything into a temporary sibling folder, then rename it to ``out``."""
    from headstart._fit import _predictions_csv
    from headstart.evaluate._card import write_model_card
    from headstart.evaluate._report import write_fit_report

    metrics = dict(result.metrics)
    test_proba = metrics.pop("_source_test_proba")
    logits = np.log(np.clip(test_proba, 1e-12, None)).astype(np.float32)
    extra = {
        "strategy": metrics["strategy"],
        "schedule": None,
        "adapt": {"command": metrics["command"]},
    }
    with atomic_dir(out) as tmp:
        write_bundle_into(tmp, result.predictor.model, src.classes, extra)
        atomic_write_json(tmp / "metrics.json", metrics)
        chosen = next(r for r in result.report["candidates"] if r["method"] == result.chosen)
        # the rows the fit report charts (every row stays in adapt.json)
        rows = [r for r in chosen["history"] if "train_acc" in r and "val_acc" in r]
        atomic_write_json(tmp / "history.json", rows)
        atomic_write_json(tmp / ADAPT_JSON, result.report)
        atomic_write_text(tmp / "predictions.csv", _predictions_csv(src, logits))
        atomic_write_text(
            tmp / TARGET_PREDICTIONS, target_csv(tgt, result.target_proba, src.classes)
        )
        write_fit_report(tmp)
        write_model_card(tmp)
    return out


def target_csv(tgt: TargetData, proba: np.ndarray, classes: list[str]) -> str:
    """``item, predicted, probability`` per target item (canonical order), and ``label``
    when the target has labels (for scoring only)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["item", "predicted", "probability", *(["label"] if tgt.labels is not None else [])])
    for i, (item, p) in enumerate(zip(tgt.items, proba, strict=True)):
        j = int(p.argmax())
        w.writerow(
            [item, classes[j], f"{p[j]:.4f}", *([tgt.labels[i]] if tgt.labels is not None else [])]
        )
    return buf.getvalue()


def adapt_section(adapt: Mapping[str, Any]) -> Any:
    """The report's "Adaptation" section: every candidate's label-free scores, proxy
    A-distance and (when the target has labels) target accuracy; the choice."""
    from headstart.evaluate._report_html import join, num, pct, table, tag

    labelled = any("target_accuracy" in r for r in adapt["candidates"])
    head = ["method", *adapt["candidates"][0]["scores"], "proxy A-distance"]
    if labelled:
        head.append("target accuracy (labels used for scoring only)")
    rows = []
    for r in adapt["candidates"]:
        name = r["method"] + (" (chosen)" if r["method"] == adapt["chosen"] else "")
        row = [name, *(num(v) for v in r["scores"].values()), num(r["proxy_a_distance"])]
        if labelled:
            row.append(pct(r["target_accuracy"]["accuracy"]))
        rows.append(row)
    pad = adapt["proxy_a_distance"]
    lead = (
        f"Chosen: {adapt['chosen']}, by {adapt['validator']} (label-free). "
        f"{adapt['choice']['message']}. Proxy A-distance {num(pad['before'])} before, "
        f"{num(pad['after'])} after (0: alike, 2: separable)."
    )
    return join([tag("p", lead), table(head, rows), tag("p", adapt["scoring_note"])])


__all__ = [
    "ADAPT_JSON",
    "TARGET_PREDICTIONS",
    "adapt_section",
    "build_metrics",
    "summary",
    "write_outputs",
]
