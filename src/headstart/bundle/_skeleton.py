"""Rebuilding a backbone's architecture from a bundle, with no weights and no network.

``save_assets`` writes what an architecture needs besides its tensors (a transformer's
config and tokenizer, a word list); ``skeleton`` rebuilds the module from those assets so
that the bundle's ``model.safetensors`` can be loaded into it strictly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from headstart.zoo._backbone import Backbone
from headstart.zoo._image import ImageBackbone, decompose_timm
from headstart.zoo._registry import _BUILDERS
from headstart.zoo._spec import BackboneSpec
from headstart.zoo._text import TransformerTextBackbone, WordVectorBackbone


def save_assets(backbone: Backbone, assets: Path) -> None:
    assets.mkdir(parents=True, exist_ok=True)
    if isinstance(backbone, TransformerTextBackbone):
        backbone.model.config.save_pretrained(assets)
        backbone.tokenizer.save_pretrained(assets)
    elif isinstance(backbone, WordVectorBackbone) and backbone.vocab:
        (assets / "vocab.txt").write_text("\n".join(backbone.vocab) + "\n", encoding="utf-8")


def _timm(spec: BackboneSpec, assets: Path) -> Backbone:
    import timm

    model = timm.create_model(spec.arch, pretrained=False, num_classes=0)
    stages, _ = decompose_timm(model)
    return ImageBackbone(spec, stages, None)


def _hf_text(spec: BackboneSpec, assets: Path) -> Backbone:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(assets, local_files_only=True)
    model = AutoModel.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(assets, local_files_only=True)
    return TransformerTextBackbone(spec, model, tokenizer)


def _glove(spec: BackboneSpec, assets: Path) -> Backbone:
    vocab = (assets / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return WordVectorBackbone(spec, torch.zeros(len(vocab), spec.feature_dim), vocab)


def _random_builder(spec: BackboneSpec, assets: Path) -> Backbone:
    backbone = _BUILDERS[spec.builder](spec, False)
    backbone.pop_source_head_inplace()
    return backbone


SKELETONS: dict[str, Callable[[BackboneSpec, Path], Backbone]] = {
    "timm": _timm,
    "hf-text": _hf_text,
    "glove": _glove,
}


def skeleton(spec: BackboneSpec, layer: str, assets: Path) -> Backbone:
    """The backbone's architecture, cut at ``layer``, with placeholder weights."""
    build = SKELETONS.get(spec.builder, _random_builder)
    backbone = build(spec, assets)
    if layer != backbone.layer:
        backbone.truncate_inplace(layer)
    return backbone
