"""Running a bundle's exported ONNX graph on ONNX Runtime, with the bundle's own preprocessing.

``load_predictor(DIR, runtime)`` gives the same ``predict_proba`` / ``predict`` / ``classes``
surface for every runtime:

* ``"torch"``: eager PyTorch (:func:`headstart.load`);
* ``"onnx"``: ``DIR/model.onnx`` (written by ``headstart export``) on ONNX Runtime;
* ``"onnx-int8"``: ``DIR/model.int8.onnx``, its dynamically quantised copy.

Inputs are batched exactly as for PyTorch (:func:`headstart.data._loader.iter_batches`: the
normalised image tensor, the tokenizer's ids and mask, or word ids and offsets); only the
network runs elsewhere. The PyTorch weights are dropped once loaded (the tokenizer or word
index stays), so an ONNX predictor holds one copy of the network, not two.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart.bundle._bundle import WEIGHTS_NAME, Predictor, load_bundle
from headstart.data._loader import iter_batches

ONNX_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
RUNTIMES = ("torch", "onnx", "onnx-int8")


def to_feeds(inputs: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """A collated batch (a tensor, or a dict of tensors) as ONNX Runtime feeds for the
    graph inputs ``names`` (an input the graph does not use is left out)."""
    if isinstance(inputs, torch.Tensor):
        return {names[0]: inputs.detach().cpu().numpy()}
    return {k: v.detach().cpu().numpy() for k, v in inputs.items() if k in names}


def onnx_session(
    path: str | os.PathLike[str] | bytes, threads: int | None = None, spinning: bool = True
) -> Any:
    """An ONNX Runtime CPU session for a model file (or its serialised bytes);
    ``spinning=False``: idle intra-op threads sleep instead of spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def session_logits(
    session: Any, backbone: Any, items: Sequence[Any], modality: str, batch_size: int = 64
) -> np.ndarray:
    """Logits of ``items`` through an ONNX Runtime session, shape ``(N, n_classes)``."""
    names = [i.name for i in session.get_inputs()]
    out = [
        session.run(None, to_feeds(inputs, names))[0]
        for _, inputs in iter_batches(backbone, list(items), modality, batch_size=batch_size)
    ]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


class OnnxPredictor(Predictor):
    """A bundle whose network runs on ONNX Runtime: :class:`Predictor`'s ``predict``,
    ``predict_proba`` and ``evaluate``; ``model`` keeps only its preprocessing (the weights
    live in the session)."""

    def __init__(self, predictor: Predictor, path: Path, threads: int | None = None) -> None:
        super().__init__(predictor.model.to("meta"), predictor.classes, predictor.config)
        self.path = path
        self.session = onnx_session(path, threads)

    def predict_proba(self, items: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape ``(N, n_classes)``, columns in ``classes`` order."""
        if len(items) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        logits = session_logits(self.session, self.model.backbone, items, self.modality, batch_size)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    def save(self, path: str | os.PathLike[str]) -> Path:
        raise TypeError("an ONNX predictor holds no PyTorch weights: copy the bundle folder")


def load_predictor(
    bundle: str | os.PathLike[str],
    runtime: str = "torch",
    threads: int | None = None,
    multitask: bool = False,
) -> Any:
    """Load ``bundle`` for inference on ``runtime`` (``torch``, ``onnx`` or ``onnx-int8``):
    a :class:`Predictor` or :class:`OnnxPredictor`; ``multitask=True`` also takes a
    multi-task bundle (a :class:`~headstart.multitask.MultiTaskPredictor`, torch only)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")
    if multitask and runtime == "torch":
        from headstart.bundle._bundle import load

        return load(bundle)
    predictor = load_bundle(bundle)
    if runtime == "torch":
        return predictor
    path = Path(bundle) / (ONNX_NAME if runtime == "onnx" else INT8_NAME)
    if not path.is_file():
        flag = " --quantize int8" if runtime == "onnx-int8" else ""
        raise FileNotFoundError(
            f"{path}: not exported yet; run `headstart export {bundle} --format onnx{flag}`"
        )
    recorded = predictor.config.get("onnx", {}).get("weights_sha256")
    if recorded != file_sha256(Path(bundle) / WEIGHTS_NAME):
        raise ValueError(
            f"{path} was not exported from this bundle's weights (or headstart.json has no "
            f"'onnx' entry); run `headstart export {bundle} --format onnx` again"
        )
    return OnnxPredictor(predictor, path, threads)


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
