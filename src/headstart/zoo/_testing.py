"""Tiny registered backbones for fast tests (the timm ``test_resnet`` idea).

They have deterministic random weights (seeded), so they are "pre-trained" on nothing,
but every code path (cut, freeze, cache, finetune, bundle) runs on them in milliseconds.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
from torch import nn

from headstart.zoo._audio import build_test_audio
from headstart.zoo._image import ImageBackbone
from headstart.zoo._registry import register, register_builder
from headstart.zoo._spec import (
    AudioPreprocess,
    BackboneSpec,
    ImagePreprocess,
    TextPreprocess,
    WeightsSource,
)
from headstart.zoo._text import WordVectorBackbone, word_tokenize
from headstart.zoo._weights import load_by_name_or_order, read_state_dict


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _load_weights_file(backbone: nn.Module, spec: BackboneSpec) -> None:
    """``weights=FILE`` (a ``"file"`` source): load the file strictly, as timm entries do."""
    state = read_state_dict(spec.weights.locator)
    if isinstance(backbone, ImageBackbone) and not any(k.startswith("source_head.") for k in state):
        backbone.source_head = None  # a headless file: features only
    load_by_name_or_order(backbone, state, spec.weights.locator)


@register_builder("test-cnn")
def build_test_cnn(spec: BackboneSpec, pretrained: bool = True) -> ImageBackbone:
    # "Pre-trained" weights come from a private seeded generator (the global RNG is left
    # alone); random initialisation draws from the global RNG, so it follows the caller's seed.
    with torch.random.fork_rng(devices=[], enabled=pretrained):
        if pretrained:
            torch.manual_seed(spec.extra.get("seed", 0))
        stages = [
            ("stem", _conv(3, 8, 1)),
            ("block1", _conv(8, 16, 2)),
            ("block2", _conv(16, 32, 2)),
        ]
        head = nn.Linear(32, spec.num_source_classes)
    backbone = ImageBackbone(spec, stages, head).eval()
    if pretrained and spec.weights.kind == "file":
        _load_weights_file(backbone, spec)
    return backbone


class HashedWordBackbone(WordVectorBackbone):
    """Word vectors looked up by a stable hash of the word (no vocabulary file)."""

    def token_ids(self, text: str) -> list[int]:
        n = self.embeddings.num_embeddings
        return [zlib.crc32(w.encode()) % n for w in word_tokenize(text)]


@register_builder("test-words")
def build_test_words(spec: BackboneSpec, pretrained: bool = True) -> HashedWordBackbone:
    gen = torch.Generator().manual_seed(spec.extra.get("seed", 0) if pretrained else 12345)
    vectors = torch.randn(spec.extra["buckets"], spec.feature_dim, generator=gen)
    backbone = HashedWordBackbone(spec, vectors, vocab=())
    if pretrained and spec.weights.kind == "file":
        _load_weights_file(backbone, spec)
    return backbone


TEST_CNN = register(
    BackboneSpec(
        name="test_cnn.tiny",
        modality="image",
        arch="test_cnn",
        builder="test-cnn",
        weights=WeightsSource("random", "seed=0"),
        preprocess=ImagePreprocess(input_size=32, crop_pct=1.0, interpolation="bilinear"),
        feature_dim=32,
        blocks=("stem", "block1", "block2"),
        licence="Apache-2.0",
        description="tiny 3-block CNN with seeded random weights, for tests",
        num_source_classes=10,
        params_m=0.006,
        extra={"test": True, "seed": 0},
    )
)

TEST_WORDS = register(
    BackboneSpec(
        name="test_words.tiny",
        modality="text",
        arch="hashed_embedding_bag",
        builder="test-words",
        weights=WeightsSource("random", "seed=0"),
        preprocess=TextPreprocess(tokenizer="word", max_length=64),
        feature_dim=16,
        blocks=("embeddings",),
        licence="Apache-2.0",
        description="hashed 16-d random word vectors, for tests",
        params_m=0.016,
        extra={"test": True, "seed": 0, "buckets": 1024},
    )
)

register_builder("test-audio")(build_test_audio)
TEST_AUDIO = register(
    BackboneSpec(
        name="test_audio.tiny",
        modality="audio",
        arch="logmel_conv1d",
        builder="test-audio",
        weights=WeightsSource("random", "seed=0"),
        preprocess=AudioPreprocess(sample_rate=8000, clip_seconds=0.5),
        feature_dim=16,
        blocks=("conv",),
        licence="Apache-2.0",
        description="log-mel and one seeded random 1-d convolution (16-d), for tests",
        params_m=0.003,
        extra={"test": True, "seed": 0},
    )
)

__all__: Sequence[str] = ("TEST_AUDIO", "TEST_CNN", "TEST_WORDS", "HashedWordBackbone")
