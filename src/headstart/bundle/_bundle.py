"""The model bundle: a folder that loads offline, predicts, and holds no pickle.

Layout::

    DIR/model.safetensors   every tensor of backbone (cut) + head
    DIR/headstart.json      backbone spec and provenance, cut point, head shape,
                            preprocessing, label map, strategy, versions
    DIR/assets/             tokenizer and config of a transformer; word list of word vectors

The backbone's architecture is rebuilt from ``headstart.json`` and ``assets/`` alone (no
package weights, no hub), then ``model.safetensors`` is loaded into it strictly.

An *adapter* bundle (``lora`` with ``--lora-save adapter``, the default;
:mod:`headstart.bundle._adapter`) holds only the LoRA tensors and the head, and no
``assets/``: its base is rebuilt from the offline zoo by name, checked against the
recorded sha256, and the adapters are injected into it.
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
from headstart._io import atomic_dir, atomic_write_json, check_out
from headstart._version import __version__
from headstart.bundle._adapter import (
    adapter_tensors,
    base_state,
    has_adapters,
    load_adapter_state,
    merged_copy,
    rebuild_backbone,
    state_digest,
)
from headstart.bundle._skeleton import save_assets, skeleton
from headstart.bundle._validate import read_config
from headstart.surgery._heads import build_head, describe_head
from headstart.surgery._model import TransferModel
from headstart.train._loop import predict_logits
from headstart.zoo._spec import BackboneSpec

BUNDLE_FORMAT = 1
CONFIG_NAME = "headstart.json"
WEIGHTS_NAME = "model.safetensors"


def write_bundle(
    path: str | os.PathLike[str],
    model: TransferModel,
    classes: Sequence[str],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder at ``path`` (atomically: a temp folder, then a rename)."""

    final = check_out(path)
    with atomic_dir(final) as tmp:
        write_bundle_into(tmp, model, classes, extra)
    return final


def write_bundle_into(
    folder: Path, model: TransferModel, classes: Sequence[str], extra: dict[str, Any] | None = None
) -> None:
    """Write the bundle files into an existing (temporary) folder."""
    from safetensors.torch import save_file

    extra = dict(extra or {})
    state = adapter_bundle_state(model, extra)  # LoRA: the adapters and the head only
    if state is None:
        if has_adapters(model):  # save "merged", or a base the zoo cannot rebuild
            model = merged_copy(model)  # type: ignore[assignment]
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_assets(model.backbone, folder / "assets")
    backbone = model.backbone
    save_file(state, str(folder / WEIGHTS_NAME))
    config = {
        "format": BUNDLE_FORMAT,
        "headstart_version": __version__,
        "modality": backbone.spec.modality,
        "backbone": backbone.spec.to_dict(),
        "layer": backbone.layer,
        "feature_dim": backbone.feature_dim,
        "head": describe_head(model.head),
        "classes": list(classes),
        "torch_version": torch.__version__,
        **extra,
    }
    atomic_write_json(folder / CONFIG_NAME, config)


def adapter_bundle_state(model: TransferModel, extra: dict[str, Any]) -> dict | None:
    """The tensors of an adapter bundle (``extra["adapter"]["save"] == "adapter"``): the
    adapters and the head, when ``model`` has adapters over the very base the reference
    names (its sha256). Else ``None`` (a full bundle), and a reference asking for an
    adapter bundle is turned into ``"save": "merged"`` in ``extra``, in place."""
    entry = extra.get("adapter")
    if not isinstance(entry, dict) or entry.get("save") != "adapter":
        return None
    recorded = (entry.get("base") or {}).get("sha256")
    if has_adapters(model) and recorded == state_digest(base_state(model.backbone)):
        return adapter_tensors(model)
    extra["adapter"] = {**entry, "save": "merged"}  # the base moved (or no adapters left)
    return None


@dataclass
class Predictor:
    """A loaded bundle: ``predict`` / ``predict_proba`` on raw items (paths or texts)."""

    model: TransferModel
    classes: list[str]
    config: dict[str, Any]

    @property
    def modality(self) -> str:
        return str(self.config["modality"])

    def predict_proba(self, items: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape ``(N, n_classes)``, columns in ``classes`` order."""
        if len(items) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        logits = predict_logits(
            self.model, self.model.backbone, list(items), self.modality, batch_size
        )
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    def predict(self, items: Sequence[Any], batch_size: int = 64) -> list[str]:
        proba = self.predict_proba(items, batch_size)
        return [self.classes[i] for i in proba.argmax(1)]

    def evaluate(self, data: str | os.PathLike[str], **read_options: Any) -> dict[str, Any]:
        """Score the model on every labelled item of ``data`` (a folder or manifest).

        Returns :func:`~headstart.evaluate.classification_report` over the bundle's classes,
        plus ``skipped`` inputs. Labels the model does not know are an error.
        """
        from headstart.data._readers import read_data
        from headstart.evaluate._metrics import classification_report

        ds = read_data(data, for_training=False, **read_options)
        if ds.modality != self.modality:
            raise ValueError(f"{data}: {ds.modality} data, but the model takes {self.modality}")
        unknown = sorted(set(ds.classes) - set(self.classes))
        if unknown:
            raise ValueError(
                f"{data}: labels unknown to the model: {unknown}; it knows {self.classes}"
            )
        y = np.array([self.classes.index(ds.classes[i]) for i in ds.labels], dtype=np.int64)
        pred = self.predict_proba(ds.items).argmax(1)
        report = classification_report(y, pred, self.classes)
        report["skipped"] = [{"where": s.where, "reason": s.reason} for s in ds.skipped]
        return report

    def save(self, path: str | os.PathLike[str]) -> Path:
        extra = {k: v for k, v in self.config.items() if k in ("strategy", "fit", "adapter")}
        return write_bundle(path, self.model, self.classes, extra)


def is_adapter_bundle(config: dict[str, Any]) -> bool:
    """Whether ``headstart.json`` describes an adapter bundle (adapters and head only)."""
    entry = config.get("adapter")
    return isinstance(entry, dict) and entry.get("save") == "adapter"


def load_bundle(path: str | os.PathLike[str]) -> Predictor:
    """Load a bundle folder written by :func:`write_bundle`; works offline."""
    from safetensors.torch import load_file

    folder = Path(path)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder}: not a headstart bundle (no {CONFIG_NAME})")
    config = read_config(cfg_path)  # damaged or hand-edited: BundleError naming file and key
    if config.get("kind") == "multitask":
        raise BundleError(
            f"{cfg_path}: key 'kind': a multi-task bundle, and this takes a single-task one "
            "(`headstart predict` / `evaluate` and headstart.load take both)"
        )
    if config.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{cfg_path}: unsupported bundle format {config.get('format')!r}")
    head = build_head(config["head"])
    if is_adapter_bundle(config):  # the base from the zoo, its digest checked
        model = TransferModel(rebuild_backbone(config, cfg_path), head)
        load_adapter_state(model, load_file(str(folder / WEIGHTS_NAME)), folder / WEIGHTS_NAME)
    else:
        spec = BackboneSpec.from_dict(config["backbone"])
        model = TransferModel(skeleton(spec, config["layer"], folder / "assets"), head)
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)), strict=True)
    model.eval()
    return Predictor(model, list(config["classes"]), config)


def load(path: str | os.PathLike[str]) -> Any:
    """Load any bundle offline: a :class:`Predictor`, or for a multi-task bundle (``"kind":
    "multitask"`` in ``headstart.json``) a
    :class:`~headstart.multitask.MultiTaskPredictor` (one label and probability per task)."""
    cfg_path = Path(path) / CONFIG_NAME
    if cfg_path.is_file() and read_config(cfg_path).get("kind") == "multitask":
        from headstart.multitask._bundle import load_multitask

        return load_multitask(path)
    return load_bundle(path)
