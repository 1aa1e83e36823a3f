"""ONNX export of a bundle: the whole network (backbone + head) as one graph, checked
against PyTorch, optionally with a dynamically quantised int8 copy.

``export_onnx(DIR)`` writes ``DIR/model.onnx`` and an ``"onnx"`` entry in
``DIR/headstart.json``: the graph's inputs (name, dtype, symbolic shape), its output, the
opset, the preprocessing that makes the inputs (the backbone's own ``preprocess`` entry),
and the parity check: the largest absolute difference between the graph's logits and
PyTorch's on real inputs (the bundle's test items, from ``predictions.csv``, or synthetic
ones when they are gone), which must be below ``1e-4``. The graph takes what the backbone's
``collate`` makes:

* images: ``pixel_values``, ``(batch, 3, S, S)`` float32, normalised;
* transformer text: ``input_ids``, ``attention_mask`` (and ``token_type_ids``),
  ``(batch, tokens)`` int64, from the tokenizer in ``assets/``;
* word vectors: ``ids`` (every word id of the batch, concatenated) and ``offsets`` (where
  each text starts), int64, as ``torch.nn.EmbeddingBag`` takes them.

A LoRA adapter bundle is exported with its adapters merged into the weights (a copy), so
the graph is a plain network; the parity check compares it with the adapted PyTorch model.

``quantize="int8"`` adds ``DIR/model.int8.onnx`` (ONNX Runtime's dynamic quantisation:
int8 weights, activations quantised per batch at run time) and its accuracy on the test
split against the float graph's, on the same inputs.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._io import atomic_write_bytes, atomic_write_json
from headstart.bundle._bundle import CONFIG_NAME, WEIGHTS_NAME, Predictor, load_bundle
from headstart.bundle._runtime import (
    INT8_NAME,
    ONNX_NAME,
    file_sha256,
    onnx_session,
    session_logits,
    to_feeds,
)
from headstart.data._loader import iter_batches
from headstart.data._modality import get_modality

PARITY_TOLERANCE = 1e-4
PARITY_ITEMS = 64
QUANTIZE = ("int8",)
_SYNTHETIC_TEXTS = (
    "A short sentence.",
    "Another, somewhat longer piece of text to classify, with punctuation!",
    "one",
    "Numbers 1 2 3 and words that the vocabulary may not know: qwzx frobnicate.",
)


class ExportError(ValueError):
    """The bundle cannot be exported faithfully; the message says why."""


class _Graph(nn.Module):
    """The bundle's model with named tensor inputs, as the exporter wants them; a model
    that takes one tensor (images) gets it unwrapped."""

    def __init__(self, model: nn.Module, single: bool) -> None:
        super().__init__()
        self.model = model
        self.single = single

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(next(iter(inputs.values())) if self.single else inputs)


def test_items(folder: Path, modality: str) -> tuple[list[Any], list[str]]:
    """The bundle's test items and labels from ``predictions.csv`` (for a file modality,
    the files that still exist); empty lists when there is none."""
    path = folder / "predictions.csv"
    if not path.is_file():
        return [], []
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("item") is not None]
    if get_modality(modality).files:
        rows = [r for r in rows if Path(r["item"]).is_file()]
    return [r["item"] for r in rows], [r.get("label") or "" for r in rows]


def _synthetic_items(predictor: Predictor, n: int) -> list[Any]:
    if predictor.modality != "image":
        return [_SYNTHETIC_TEXTS[i % len(_SYNTHETIC_TEXTS)] for i in range(n)]
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(40, 40), (64, 48), (31, 90), (224, 224)]
    return [
        Image.fromarray(rng.integers(0, 256, (*sizes[i % 4][::-1], 3), dtype=np.uint8))
        for i in range(n)
    ]


def example_inputs(
    backbone: Any, modality: str, items: Sequence[Any]
) -> tuple[dict[str, torch.Tensor], Any]:
    """One collated batch of 4 items (not 1: the exporter would fix the batch size), and
    which of its dimensions are free: the batch of an image; every one of a text batch."""
    _, inputs = next(iter_batches(backbone, list(items[:4]), modality, 4))
    return graph_inputs(inputs)


def graph_inputs(inputs: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """A collated batch as the exporter's named inputs, and their free dimensions."""
    if isinstance(inputs, torch.Tensor):
        return {"pixel_values": inputs}, {
            "inputs": {"pixel_values": {0: torch.export.Dim("batch")}}
        }
    free = {k: dict.fromkeys(range(v.dim()), torch.export.Dim.AUTO) for k, v in inputs.items()}
    return dict(inputs), {"inputs": free}


def _symbolic_shape(name: str, value: torch.Tensor) -> list[Any]:
    if value.dim() == 4:  # an image batch: only the batch is free
        return ["batch", *value.shape[1:]]
    if value.dim() == 1:
        return ["batch" if name == "offsets" else "tokens"]
    return ["batch", *["tokens"] * (value.dim() - 1)]


def module_graph(
    module: nn.Module,
    example: dict[str, torch.Tensor],
    dynamic: Any,
    output: str,
    what: str,
) -> bytes:
    """``module`` (taking what a backbone's ``collate`` makes) as a serialised ONNX graph
    with inputs named as in ``example`` and one output ``output``; :class:`ExportError`
    naming ``what`` when the exporter fails."""
    captured = io.StringIO()  # the exporter narrates on stdout and warns a lot
    try:
        with (
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                _Graph(module, single=list(example) == ["pixel_values"]).eval(),
                (),
                kwargs={"inputs": example},
                dynamo=True,
                input_names=list(example),
                output_names=[output],
                dynamic_shapes=dynamic,
                verbose=False,
            )
            return program.model_proto.SerializeToString()
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise ExportError(
            f"{what} could not be exported to ONNX: {lines[0] if lines else type(exc).__name__}"
        ) from exc


def export_graph(predictor: Predictor, items: Sequence[Any]) -> tuple[bytes, list[dict]]:
    """The model as a serialised ONNX graph, and the description of its inputs."""
    example, dynamic = example_inputs(predictor.model.backbone, predictor.modality, items)
    data = module_graph(
        predictor.model, example, dynamic, "logits", predictor.config["backbone"]["name"]
    )
    inputs = [
        {"name": k, "dtype": str(v.dtype).removeprefix("torch."), "shape": _symbolic_shape(k, v)}
        for k, v in example.items()
    ]
    return data, inputs


def merge_adapters(predictor: Predictor) -> tuple[Predictor, int]:
    """``predictor`` with its LoRA adapters merged into the weights (a copy; the
    adapters' ``peft`` wrappers removed), and how many layers were merged; ``predictor``
    itself, and 0, when it has none."""
    from headstart.bundle._adapter import has_adapters
    from headstart.methods.lora.method import merge_inplace

    if not has_adapters(predictor.model):
        return predictor, 0
    plain = copy.deepcopy(predictor.model)
    merged = merge_inplace(plain.backbone)
    return Predictor(plain.eval(), predictor.classes, predictor.config), merged


def parity(predictor: Predictor, session: Any, items: Sequence[Any]) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's logits on
    ``items``, in batches of 16 (a batch size the export did not see)."""
    names = [i.name for i in session.get_inputs()]
    worst = 0.0
    with torch.inference_mode():
        for _, inputs in iter_batches(
            predictor.model.backbone, list(items), predictor.modality, 16
        ):
            ref = predictor.model(inputs).float().numpy()
            got = session.run(None, to_feeds(inputs, names))[0]
            worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def _accuracy(logits: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> float:
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(label, -1) for label in labels])
    return float((logits.argmax(1) == y).mean())


def quantize_int8(
    predictor: Predictor, graph: bytes, items: Sequence[Any], labels: Sequence[str]
) -> tuple[bytes, dict[str, Any]]:
    """ONNX Runtime's dynamic quantisation of ``graph``, and its accuracy on the labelled
    ``items`` against the float graph's (``None`` without labelled items)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="headstart-int8-") as tmp:
        src, dst = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        src.write_bytes(graph)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        data = dst.read_bytes()
    info: dict[str, Any] = {
        "file": INT8_NAME,
        "method": "onnxruntime.quantization.quantize_dynamic (int8 weights, "
        "activations quantised per batch at run time)",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "test": None,
    }
    known = [(x, y) for x, y in zip(items, labels, strict=True) if y in predictor.classes]
    if known:
        xs, ys = [x for x, _ in known], [y for _, y in known]
        backbone, modality = predictor.model.backbone, predictor.modality
        fp32 = session_logits(onnx_session(graph), backbone, xs, modality)
        int8 = session_logits(onnx_session(data), backbone, xs, modality)
        acc32, acc8 = _accuracy(fp32, ys, predictor.classes), _accuracy(int8, ys, predictor.classes)
        info["test"] = {
            "n": len(xs),
            "accuracy_fp32": acc32,
            "accuracy_int8": acc8,
            "accuracy_change": acc8 - acc32,
            "agreement": float((fp32.argmax(1) == int8.argmax(1)).mean()),
            "max_abs_logit_diff": float(np.abs(fp32 - int8).max()),
        }
    return data, info


def export_onnx(
    bundle: str | os.PathLike[str],
    quantize: str | None = None,
    parity_items: int = PARITY_ITEMS,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, Any]:
    """Write ``bundle/model.onnx`` (and ``model.int8.onnx`` with ``quantize="int8"``),
    record them in ``headstart.json`` and return that ``"onnx"`` entry.

    Raises :class:`ExportError` when the graph cannot be made or its logits differ from
    PyTorch's by ``tolerance`` or more (nothing is written then).
    """
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"--quantize {quantize}: choose one of: {', '.join(QUANTIZE)}")
    folder = Path(bundle)
    predictor = load_bundle(folder)
    if predictor.modality == "audio":  # the waveform front ends (STFT, TFLite) have no export
        raise ExportError(
            f"{folder}: ONNX export of audio models is not supported yet "
            f"({predictor.config['backbone']['name']}); predict and serve this bundle with "
            "the default PyTorch runtime"
        )
    items, labels = test_items(folder, predictor.modality)
    source = "predictions.csv" if len(items) >= 4 else "synthetic"
    checked = items[:parity_items] if source == "predictions.csv" else []
    checked = checked or _synthetic_items(predictor, min(parity_items, 20))
    plain, merged = merge_adapters(predictor)  # LoRA: a plain network in the graph
    graph, inputs = export_graph(plain, checked)
    session = onnx_session(graph)
    worst = parity(predictor, session, checked)  # against the adapted PyTorch model
    if not worst < tolerance:
        raise ExportError(
            f"{folder}: ONNX logits differ from PyTorch's by {worst:.2e} (tolerance "
            f"{tolerance:g}) on {len(checked)} {source} inputs; nothing written"
        )
    import onnx
    import onnxruntime

    proto = onnx.load_from_string(graph)
    entry: dict[str, Any] = {
        "file": ONNX_NAME,
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "exporter": f"torch.onnx (dynamo) {torch.__version__}",
        "onnx_version": onnx.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        "bytes": len(graph),
        "sha256": hashlib.sha256(graph).hexdigest(),
        "weights_sha256": file_sha256(folder / WEIGHTS_NAME),
        **({"merged_adapters": merged} if merged else {}),
        "inputs": inputs,
        "outputs": [
            {"name": "logits", "dtype": "float32", "shape": ["batch", len(predictor.classes)]}
        ],
        "preprocess": predictor.config["backbone"]["preprocess"],
        "preprocessing": _preprocessing_note(predictor),
        "parity": {
            "max_abs_diff": worst,
            "tolerance": tolerance,
            "items": len(checked),
            "source": source,
        },
    }
    int8 = None
    if quantize == "int8":
        int8, entry["int8"] = quantize_int8(predictor, graph, items, labels)
    atomic_write_bytes(folder / ONNX_NAME, graph)
    if int8 is not None:
        atomic_write_bytes(folder / INT8_NAME, int8)
    elif (folder / INT8_NAME).exists():
        (folder / INT8_NAME).unlink()  # a stale copy of other weights
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    config["onnx"] = entry
    atomic_write_json(folder / CONFIG_NAME, config)
    return entry


def _preprocessing_note(predictor: Predictor) -> str:
    pre = predictor.config["backbone"]["preprocess"]
    if predictor.modality == "image":
        size = pre["input_size"]
        return (
            f"RGB; resize the short side to floor({size} / {pre['crop_pct']}) "
            f"({pre['interpolation']}, antialiased; {pre.get('upscale', pre['interpolation'])} "
            "when that enlarges the image), "
            f"centre-crop {size}x{size}, scale to "
            f"[0, 1], subtract mean {pre['mean']} and divide by std {pre['std']} per "
            "channel; NCHW float32"
        )
    if pre.get("tokenizer", "word") == "word":
        return (
            "lower-cased word tokens (headstart.zoo._text.word_tokenize) mapped to row ids of "
            f"assets/vocab.txt, unknown words dropped, at most {pre['max_length']} per text; "
            "ids of the whole batch concatenated, offsets = where each text starts"
        )
    return (
        f"the tokenizer in assets/ (padding to the longest, truncation at "
        f"{pre['max_length']} tokens); int64"
    )
