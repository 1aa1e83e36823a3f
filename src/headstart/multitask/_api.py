"""``headstart.fit_multi``: one table, several label columns, one model predicting each.

The table (CSV/TSV/JSONL) has an item column (``text_column`` for texts, or
``path_column`` for image paths, relative to the table) and the label columns; an empty
cell is a missing label, masked in that task's loss. Items go once through the frozen
backbone (the feature cache); the rows are split into training and test rows (seeded);
single-task models and the multi-task model are trained on the same training rows and
scored on the same test rows (:func:`~headstart.multitask.compare_multitask`).

The folder written (``out``): ``multitask.json`` (the backbone spec, cut, tasks and their
classes, head shape, weighting; and the comparison: per-task accuracy, Δm, negative
transfer), ``model.safetensors`` (backbone and :class:`MultiTaskNet` tensors) and
``assets/``; :func:`load_multitask` reads it offline, its ``predict`` gives one label and
probability per task.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._io import atomic_dir, atomic_write_json, check_out
from headstart.multitask._compare import compare_multitask
from headstart.multitask._train import MultiTaskError, MultiTaskNet, encode_tasks, fit_multitask

CONFIG_NAME = "multitask.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = 1


def read_table(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV / TSV / JSONL table; each of ``columns`` must be present."""
    if not path.is_file():
        raise MultiTaskError(f"{path}: no such file (give a CSV, TSV or JSONL table)")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(
                        {k: "" if v is None else str(v) for k, v in json.loads(line).items()}
                    )
                except (ValueError, AttributeError):
                    raise MultiTaskError(f"{path}:{n}: not a JSON object") from None
    elif suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    else:
        raise MultiTaskError(f"{path}: expected a .csv, .tsv or .jsonl table")
    if not rows:
        raise MultiTaskError(f"{path}: no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise MultiTaskError(
            f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(rows[0])})"
        )
    return rows


@dataclass
class MultiTaskPredictor:
    """A loaded multi-task model: ``predict`` gives, per item, each task's label and
    probability."""

    backbone: Any
    net: MultiTaskNet
    tasks: list[str]
    classes: list[list[str]]
    config: dict[str, Any]

    @property
    def modality(self) -> str:
        return str(self.config["modality"])

    def predict_proba(self, items: Sequence[Any]) -> list[np.ndarray]:
        """One ``(N, K_t)`` probability matrix per task."""
        from headstart.cache._store import extract

        x = extract(self.backbone, list(items), self.modality)
        self.net.eval()
        with torch.inference_mode():
            return [torch.softmax(o, 1).numpy() for o in self.net(torch.from_numpy(x))]

    def predict(self, items: Sequence[Any]) -> list[dict[str, dict[str, Any]]]:
        probs = self.predict_proba(items)
        out = []
        for i in range(len(items)):
            row = {}
            for t, name in enumerate(self.tasks):
                k = int(probs[t][i].argmax())
                row[name] = {"label": self.classes[t][k], "probability": float(probs[t][i, k])}
            out.append(row)
        return out


@dataclass
class MultiTaskResult:
    """What :func:`fit_multi` returns: the model, ``report`` (``multitask.json``'s
    comparison) and ``out`` when written."""

    predictor: MultiTaskPredictor
    report: dict[str, Any]
    out: Path | None = None


def fit_multi(
    data: str | os.PathLike[str],
    label_columns: Sequence[str],
    out: str | os.PathLike[str] | None = None,
    *,
    weighting: str = "equal",
    model: str | None = None,
    text_column: str = "text",
    path_column: str | None = None,
    test: float = 0.2,
    seed: int = 0,
    hidden: int = 256,
    epochs: int = 40,
    store: Any = None,
) -> MultiTaskResult:
    """Train one model for every label column of the table ``data`` (one shared trunk on
    the frozen backbone, one head per task, losses weighted by ``weighting``) beside a
    single-task model per column on the same rows; write the model to ``out``."""
    from headstart.cache._store import FeatureStore
    from headstart.data._modality import get_modality
    from headstart.zoo._entries import DEFAULT_MODELS
    from headstart.zoo._registry import create_backbone, get_spec

    started = time.perf_counter()
    path = Path(data)
    label_columns = [c.strip() for c in label_columns if c.strip()]
    if len(label_columns) < 2:
        raise MultiTaskError("--label-column: give two or more label columns, e.g. a,b")
    if out is not None:
        check_out(out, [path])
    item_column = path_column or text_column
    rows = read_table(path, [item_column, *label_columns])
    modality = "image" if path_column else "text"
    items = [r[item_column] for r in rows]
    if modality == "image":
        items = [str((path.parent / i) if not Path(i).is_absolute() else Path(i)) for i in items]
    spec = get_spec(model or DEFAULT_MODELS[modality])
    if spec.modality != modality:
        raise MultiTaskError(f"{spec.name} is a {spec.modality} model but {path} holds {modality}")
    try:
        y, classes = encode_tasks({c: [r[c] for r in rows] for c in label_columns})
    except MultiTaskError as exc:
        raise MultiTaskError(f"{path}: {exc}") from None
    m = get_modality(modality)
    keys = []
    for n, item in enumerate(items, 2):
        try:
            keys.append(m.key(item))
        except (OSError, ValueError) as exc:
            raise MultiTaskError(f"{path}:{n}: {item}: {exc}") from None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    n_test = max(1, round(test * len(items)))
    te, tr = np.sort(order[:n_test]), np.sort(order[n_test:])
    store = store if store is not None else FeatureStore()
    backbone = create_backbone(spec)
    backbone.pop_source_head_inplace()
    x = store.features(backbone, items, keys, modality, description="features")
    n_classes = [len(c) for c in classes]
    train = {"hidden": hidden, "epochs": epochs}
    comparison = compare_multitask(
        x[tr], y[tr], x[te], y[te], n_classes, label_columns, [weighting], seed, **train
    )
    fit = fit_multitask(x[tr], y[tr], n_classes, label_columns, weighting, seed=seed, **train)
    row = comparison["multi_task"][weighting]
    report = {
        "data": str(path),
        "modality": modality,
        "tasks": label_columns,
        "classes": classes,
        "missing_labels": {c: int((y[:, k] < 0).sum()) for k, c in enumerate(label_columns)},
        "rows": {"train": len(tr), "test": len(te)},
        "weighting": weighting,
        "single_task": comparison["single_task"],
        "multi_task": row["accuracy"],
        "relative_gain": row["relative_gain"],
        "delta_m": row["delta_m"],
        "negative_transfer": row["negative_transfer"],
        "seconds": time.perf_counter() - started,
        "seed": seed,
    }
    config = {
        "format": FORMAT,
        "modality": modality,
        "backbone": backbone.spec.to_dict(),
        "layer": backbone.layer,
        "feature_dim": backbone.feature_dim,
        "hidden": hidden,
        "tasks": label_columns,
        "classes": classes,
        "report": report,
    }
    predictor = MultiTaskPredictor(backbone, fit.model, label_columns, classes, config)
    result = MultiTaskResult(predictor, report)
    if out is not None:
        result.out = _write(Path(out), predictor)
    return result


def _write(out: Path, p: MultiTaskPredictor) -> Path:
    from safetensors.torch import save_file

    from headstart.bundle._skeleton import save_assets

    state = {f"backbone.{k}": v for k, v in p.backbone.state_dict().items()}
    state.update({f"net.{k}": v for k, v in p.net.state_dict().items()})
    with atomic_dir(out) as tmp:
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp / WEIGHTS_NAME))
        save_assets(p.backbone, tmp / "assets")
        atomic_write_json(tmp / CONFIG_NAME, p.config)
    return out


def load_multitask(path: str | os.PathLike[str]) -> MultiTaskPredictor:
    """Load a folder written by :func:`fit_multi`; works offline."""
    from safetensors.torch import load_file

    from headstart.bundle._skeleton import skeleton
    from headstart.zoo._spec import BackboneSpec

    folder = Path(path)
    if not (folder / CONFIG_NAME).is_file():
        raise MultiTaskError(f"{folder}: not a multi-task model (no {CONFIG_NAME})")
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    backbone = skeleton(
        BackboneSpec.from_dict(config["backbone"]), config["layer"], folder / "assets"
    )
    net = MultiTaskNet(config["feature_dim"], [len(c) for c in config["classes"]], config["hidden"])
    state = load_file(str(folder / WEIGHTS_NAME))
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    backbone.eval()
    return MultiTaskPredictor(backbone, net.eval(), config["tasks"], config["classes"], config)


__all__ = ["MultiTaskPredictor", "MultiTaskResult", "fit_multi", "load_multitask", "read_table"]
