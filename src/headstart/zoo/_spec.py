"""Pretrained configs: one frozen dataclass per zoo entry (the timm ``PretrainedCfg`` idea).

A :class:`BackboneSpec` says everything headstart needs to know about a source model
*before* loading it: its modality, where its weights come from, how inputs are
preprocessed, the width of its features, the named blocks it can be cut or frozen at,
and its licence. Specs are plain data and JSON-serialisable (see :meth:`to_dict`), so a
bundle can record exactly which source model it was built from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Modality = Literal["image", "text", "audio"]
WeightsKind = Literal["package", "timm-hub", "hf-hub", "file", "random"]


@dataclass(frozen=True)
class WeightsSource:
    """Where the pre-trained weights of a backbone come from.

    ``kind`` is one of:

    * ``"package"``: a file inside an installed Python package (``locator`` is the package's
      import name; the zoo entry knows how to find the file). Works offline.
    * ``"timm-hub"`` / ``"hf-hub"``: a model id on the timm / Hugging Face hub (``locator``);
      needs the network the first time, then the local hub cache.
    * ``"file"``: a local safetensors file or plain state dict (``locator`` is the path).
    * ``"random"``: no pre-training (tiny test backbones, from-scratch baselines).
    """

    kind: WeightsKind
    locator: str = ""
    pip: str = ""  # the pip requirement that provides a "package" source

    def describe(self) -> str:
        if self.kind == "package":
            return f"packaged in the Python package {self.pip or self.locator!r}"
        if self.kind == "timm-hub":
            return f"timm hub: {self.locator}"
        if self.kind == "hf-hub":
            return f"Hugging Face hub: {self.locator}"
        if self.kind == "file":
            return f"local file: {self.locator}"
        return "random initialisation (no pre-training)"


@dataclass(frozen=True)
class ImagePreprocess:
    """Eval-time image preprocessing: resize (keeping aspect) to ``input_size / crop_pct``,
    centre-crop ``input_size``, scale to [0, 1], then ``(x - mean) / std`` per channel.

    ``interpolation`` resamples an image that is made smaller; ``upscale`` one that is
    made larger (a 28 px image into a 224 px network): bilinear, because bicubic
    overshoots on few pixels (on Fashion-MNIST at 112 px, 5 labels per class, bilinear
    upscaling gave 0.699 against bicubic's 0.676; ``bench/recipe_ablation.py``).
    """

    input_size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    upscale: str = "bilinear"


@dataclass(frozen=True)
class TextPreprocess:
    """Text preprocessing: a sub-word ``tokenizer`` (a Hugging Face tokenizer folder id) or,
    for word-vector models, a lower-casing word tokenizer; inputs cut at ``max_length``."""

    tokenizer: str = "word"
    max_length: int = 128
    lowercase: bool = True


@dataclass(frozen=True)
class AudioPreprocess:
    """Audio preprocessing: mono, resampled to ``sample_rate`` Hz, leading and trailing
    silence trimmed (``trim_silence``), ``lead_seconds`` of silence put back in front, then
    cut or zero-padded to ``clip_seconds``."""

    sample_rate: int = 16000
    clip_seconds: float = 1.0
    trim_silence: bool = True
    lead_seconds: float = 0.0


@dataclass(frozen=True)
class BackboneSpec:
    """One entry of the backbone registry.

    ``blocks`` are the names of the cuttable / freezable stages, ordered from input to
    output; ``feature_dim`` is the width of the pooled features after the last block.
    ``builder`` names the loader that turns a spec into a :class:`~headstart.zoo.Backbone`.
    """

    name: str
    modality: Modality
    arch: str
    builder: str
    weights: WeightsSource
    preprocess: ImagePreprocess | TextPreprocess | AudioPreprocess
    feature_dim: int
    blocks: tuple[str, ...]
    licence: str = "unknown"
    description: str = ""
    num_source_classes: int = 0  # classes of the source task (ImageNet: 1000); 0 = none
    params_m: float = 0.0  # parameters, millions (informative)
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def offline_available(self) -> bool:
        """Whether the weights can be loaded right now without the network."""
        kind = self.weights.kind
        if kind == "random":
            return True
        if kind == "package":
            return importlib.util.find_spec(self.weights.locator) is not None
        if kind == "file":  # a weights file, or a Hugging Face folder
            return Path(self.weights.locator).exists()
        return _in_hub_cache(self)

    def with_weights(self, source: WeightsSource, name: str | None = None) -> BackboneSpec:
        """A copy of this spec loading its weights from ``source`` instead."""
        return dataclasses.replace(self, weights=source, name=name or self.name)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["preprocess"]["type"] = type(self.preprocess).__name__
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackboneSpec:
        d = dict(d)
        pre = dict(d["preprocess"])
        kind = pre.pop("type")
        pre_cls = {
            "ImagePreprocess": ImagePreprocess,
            "TextPreprocess": TextPreprocess,
            "AudioPreprocess": AudioPreprocess,
        }[kind]
        if "mean" in pre:
            pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
        if kind == "ImagePreprocess" and "upscale" not in pre:  # saved before 0.1: one rule
            pre["upscale"] = pre.get("interpolation", "bilinear")
        d["preprocess"] = pre_cls(**pre)
        d["weights"] = WeightsSource(**d["weights"])
        d["blocks"] = tuple(d["blocks"])
        return cls(**d)


def _in_hub_cache(spec: BackboneSpec) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with timm/transformers
        return False
    repo = spec.weights.locator
    if spec.weights.kind == "timm-hub":
        repo = spec.extra.get("hf_hub_id", "")
        if not repo:
            return False
        candidates = ("model.safetensors", "pytorch_model.bin")
    else:
        candidates = ("model.safetensors", "pytorch_model.bin")
    for filename in candidates:
        hit = try_to_load_from_cache(repo, filename)
        if isinstance(hit, str):
            return True
    return False
