"""The multi-task bundle: a headstart bundle of kind ``multitask``, one head per task.

Layout (as a single-task bundle's, :mod:`headstart.bundle._bundle`)::

    DIR/headstart.json      "kind": "multitask"; backbone spec, cut point, feature width,
                            "head" {type multitask, in_dim, hidden, dropout, weighting},
                            "tasks" [{"name", "classes"}, ...] in head order
    DIR/model.safetensors   backbone.* (the cut backbone) and net.* (MultiTaskNet) tensors
    DIR/assets/             tokenizer / word list, as for any bundle

:func:`headstart.load` (and ``headstart predict`` / ``evaluate``) read it offline;
:func:`validate_multitask_config` stops a damaged or hand-edited ``headstart.json`` with a
:class:`~headstart._errors.BundleError` naming the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._errors import BundleError
from headstart.multitask._train import MultiTaskError, MultiTaskNet

KIND = "multitask"
CONFIG_NAME = "headstart.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class MultiTaskPredictor:
    """A multi-task model: ``predict`` gives, per item, each task's label and probability."""

    backbone: Any
    net: MultiTaskNet
    tasks: list[str]
    classes: list[list[str]]
    config: dict[str, Any]

    @property
    def modality(self) -> str:
        return str(self.config["modality"])

    def predict_proba(self, items: Sequence[Any], batch_size: int = 64) -> list[np.ndarray]:
        """One ``(N, K_t)`` probability matrix per task, columns in ``classes[t]`` order."""
        from headstart.cache._store import extract

        if len(items) == 0:
            return [np.zeros((0, len(c)), dtype=np.float32) for c in self.classes]
        x = extract(self.backbone, list(items), self.modality, batch_size)
        self.net.eval()
        with torch.inference_mode():
            return [torch.softmax(o, 1).numpy() for o in self.net(torch.from_numpy(x))]

    def predict(self, items: Sequence[Any]) -> list[dict[str, dict[str, Any]]]:
        """Per item ``{task: {"label": ..., "probability": ...}}``."""
        probs = self.predict_proba(items)
        out = []
        for i in range(len(items)):
            row = {}
            for t, name in enumerate(self.tasks):
                k = int(probs[t][i].argmax())
                row[name] = {"label": self.classes[t][k], "probability": float(probs[t][i, k])}
            out.append(row)
        return out

    def evaluate(
        self,
        data: str | os.PathLike[str],
        *,
        text_column: str = "text",
        path_column: str | None = None,
        label_columns: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Score every task on a table holding its label column (default: the columns
        named like the tasks; an empty cell is skipped): ``{"n", "tasks": {task:
        classification_report}}``. A label the task does not know is an error."""
        from headstart.evaluate._metrics import classification_report
        from headstart.multitask._data import read_table

        path = Path(data)
        item_column = path_column or text_column
        columns = list(label_columns) if label_columns else None
        if columns is None:
            head = read_table(path, [item_column])[0]
            columns = [t for t in self.tasks if t in head]
            if not columns:
                raise MultiTaskError(
                    f"{path}: no column of the bundle's tasks ({', '.join(self.tasks)})"
                )
        unknown = [c for c in columns if c not in self.tasks]
        if unknown:
            raise MultiTaskError(
                f"--label-column: {', '.join(unknown)} is not a task of the bundle "
                f"({', '.join(self.tasks)})"
            )
        rows = read_table(path, [item_column, *columns])
        items = [r[item_column] for r in rows]
        if path_column:
            items = [str(i if Path(i).is_absolute() else path.parent / i) for i in items]
        probs = self.predict_proba(items)
        out: dict[str, Any] = {"n": len(items), "tasks": {}}
        for c in columns:
            t = self.tasks.index(c)
            at = {name: i for i, name in enumerate(self.classes[t])}
            keep = [i for i, r in enumerate(rows) if r[c] != ""]
            bad = sorted({rows[i][c] for i in keep} - set(at))
            if bad:
                raise MultiTaskError(
                    f"{path}: column {c!r}: labels unknown to the model: {bad}; "
                    f"it knows {self.classes[t]}"
                )
            y = np.array([at[rows[i][c]] for i in keep], dtype=np.int64)
            pred = probs[t][keep].argmax(1) if keep else np.zeros(0, dtype=np.int64)
            out["tasks"][c] = classification_report(y, pred, self.classes[t])
        return out


def bundle_config(
    backbone: Any,
    net: MultiTaskNet,
    tasks: Sequence[str],
    classes: Sequence[Sequence[str]],
    **extra: Any,
) -> dict[str, Any]:
    """``headstart.json`` of a multi-task bundle (``extra``: provenance, e.g. ``fit``)."""
    from headstart._version import __version__
    from headstart.bundle._bundle import BUNDLE_FORMAT

    return {
        "format": BUNDLE_FORMAT,
        "kind": KIND,
        "headstart_version": __version__,
        "modality": backbone.spec.modality,
        "backbone": backbone.spec.to_dict(),
        "layer": backbone.layer,
        "feature_dim": backbone.feature_dim,
        "head": {
            "type": KIND,
            "in_dim": int(net.trunk[0].in_features),
            "hidden": int(net.trunk[0].out_features),
            "dropout": float(net.trunk[2].p),
        },
        "tasks": [{"name": t, "classes": list(c)} for t, c in zip(tasks, classes, strict=True)],
        "torch_version": torch.__version__,
        **extra,
    }


def write_multitask_into(folder: Path, predictor: MultiTaskPredictor) -> None:
    """Write the bundle files into an existing (temporary) folder."""
    from safetensors.torch import save_file

    from headstart._io import atomic_write_json
    from headstart.bundle._skeleton import save_assets

    state = {f"backbone.{k}": v for k, v in predictor.backbone.state_dict().items()}
    state.update({f"net.{k}": v for k, v in predictor.net.state_dict().items()})
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in state.items()}, str(folder / WEIGHTS_NAME)
    )
    save_assets(predictor.backbone, folder / "assets")
    atomic_write_json(folder / CONFIG_NAME, predictor.config)


def load_multitask(path: str | os.PathLike[str]) -> MultiTaskPredictor:
    """Load a multi-task bundle (checked first: :func:`validate_multitask_config`);
    works offline."""
    from safetensors.torch import load_file

    from headstart.bundle._skeleton import skeleton
    from headstart.bundle._validate import read_config
    from headstart.zoo._spec import BackboneSpec

    folder = Path(path)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise BundleError(f"{folder}: not a headstart bundle (no {CONFIG_NAME})")
    config = read_config(cfg_path)
    if config.get("kind") != KIND:
        raise BundleError(f"{cfg_path}: key 'kind': not a multi-task bundle")
    backbone = skeleton(
        BackboneSpec.from_dict(config["backbone"]), config["layer"], folder / "assets"
    )
    h = config["head"]
    classes = [list(t["classes"]) for t in config["tasks"]]
    net = MultiTaskNet(h["in_dim"], [len(c) for c in classes], h["hidden"], h["dropout"])
    state = load_file(str(folder / WEIGHTS_NAME))
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    backbone.eval()
    tasks = [str(t["name"]) for t in config["tasks"]]
    return MultiTaskPredictor(backbone, net.eval(), tasks, classes, config)


def validate_multitask_config(config: dict[str, Any], cfg_path: Path) -> None:
    """Raise :class:`BundleError` (``"FILE: key 'K': what is wrong"``) unless the
    multi-task ``config`` read from ``cfg_path`` can be loaded with the tensors of
    ``model.safetensors`` beside it (their shapes: the header only)."""
    from headstart.bundle._bundle import BUNDLE_FORMAT
    from headstart.bundle._validate import (
        MODALITIES,
        _check_backbone_weights,
        _is_count,
        _kind,
        _spec,
        _weight_shapes,
    )

    def bad(key: str, why: str) -> BundleError:
        return BundleError(f"{cfg_path}: key {key!r}: {why}")

    if config.get("format") != BUNDLE_FORMAT:
        raise bad("format", f"unsupported bundle format {config.get('format')!r}")
    for key in ("modality", "backbone", "layer", "head", "tasks"):
        if key not in config:
            raise bad(key, "missing")
    if config["modality"] not in MODALITIES:
        raise bad("modality", f"{config['modality']!r} is not one of {', '.join(MODALITIES)}")
    if not isinstance(config["layer"], str):
        raise bad("layer", f"expected a block name, found {_kind(config['layer'])}")
    spec = _spec(config["backbone"], bad)
    if spec.modality != config["modality"]:
        raise bad("modality", f"{config['modality']!r}, but the backbone is {spec.modality}")
    if config["layer"] not in spec.blocks:
        raise bad("layer", f"{config['layer']!r} is not a block of {spec.name} ({spec.blocks})")
    h = config["head"]
    if not isinstance(h, dict) or h.get("type") != KIND:
        raise bad("head.type", f"expected {KIND!r} in a multi-task bundle")
    for key in ("in_dim", "hidden"):
        if not _is_count(h.get(key)):
            raise bad(f"head.{key}", f"expected a positive integer, found {h.get(key)!r}")
    p = h.get("dropout")
    if not (isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p < 1):
        raise bad("head.dropout", f"expected a number in [0, 1), found {p!r}")
    if config.get("feature_dim", h["in_dim"]) != h["in_dim"]:
        raise bad(
            "head.in_dim", f"{h['in_dim']}, but the features are {config['feature_dim']} wide"
        )
    tasks = config["tasks"]
    if not isinstance(tasks, list) or not tasks:
        raise bad("tasks", "expected a list of {name, classes} objects")
    names = []
    for i, t in enumerate(tasks):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
            raise bad(f"tasks[{i}].name", "expected a task name (a text)")
        c = t.get("classes")
        if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
            raise bad(f"tasks[{i}].classes", "expected a list of class names (texts)")
        if len(c) < 2 or len(set(c)) != len(c):
            raise bad(f"tasks[{i}].classes", f"expected two or more distinct names, found {c!r}")
        names.append(t["name"])
    if len(set(names)) != len(names):
        raise bad("tasks", f"task names must be distinct: {names}")
    weights = cfg_path.parent / WEIGHTS_NAME
    shapes = _weight_shapes(weights)
    want = {"net.trunk.0.weight": [h["hidden"], h["in_dim"]]}
    for i, t in enumerate(tasks):
        want[f"net.task_heads.{i}.weight"] = [len(t["classes"]), h["hidden"]]
    for key, shape in want.items():
        if shapes.get(key) != shape:
            what = "tasks" if key.startswith("net.task_heads") else "head"
            raise bad(
                what, f"describes {key} as {shape}, but {weights.name} holds {shapes.get(key)}"
            )
    if f"net.task_heads.{len(tasks)}.weight" in shapes:
        raise bad("tasks", f"{len(tasks)} tasks, but {weights.name} holds more heads")
    _check_backbone_weights(spec, config["layer"], cfg_path.parent / "assets", shapes, weights, bad)


__all__ = [
    "KIND",
    "MultiTaskPredictor",
    "bundle_config",
    "load_multitask",
    "validate_multitask_config",
    "write_multitask_into",
]
