"""Image backbones: timm networks decomposed into named blocks.

The packaged offline weights (EfficientNet-Lite0/1/2, MobileNetV2) are loaded into timm's
architectures by tensor order, with every shape checked; any other timm name loads
from the hub when it is reachable, or from ``--weights FILE``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from headstart.data._transforms import Augment, image_transform, to_rgb
from headstart.zoo._backbone import Backbone
from headstart.zoo._spec import BackboneSpec, ImagePreprocess
from headstart.zoo._weights import load_by_name_or_order, load_by_order, read_state_dict


class ImageBackbone(Backbone):
    """Named convolutional stages, then global average pooling.

    ``source_head`` is the source task's classifier (ImageNet), kept while the backbone
    is whole so that source-class predictions stay available (``source_logits``).
    """

    def __init__(
        self,
        spec: BackboneSpec,
        stages: Sequence[tuple[str, nn.Module]],
        source_head: nn.Module | None = None,
    ) -> None:
        super().__init__(spec, [name for name, _ in stages])
        self.stages = nn.ModuleList([module for _, module in stages])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.source_head = source_head
        self._feature_dim: int | None = None
        self.to(memory_format=torch.channels_last)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return list(zip(self.block_names, self.stages, strict=True))

    @property
    def feature_dim(self) -> int:
        if self._feature_dim is None:
            size = min(64, self.spec.preprocess.input_size)  # type: ignore[union-attr]
            was_training = self.training
            self.eval()
            with torch.inference_mode():
                x = torch.zeros(1, 3, size, size)
                for stage in self.stages:
                    x = stage(x)
            self.train(was_training)
            self._feature_dim = int(x.shape[1])
        return self._feature_dim

    def pop_source_head_inplace(self) -> nn.Module | None:
        head, self.source_head = self.source_head, None
        return head

    def _truncate(self, keep: int) -> None:
        self.stages = nn.ModuleList(list(self.stages)[:keep])
        self.source_head = None
        self._feature_dim = None

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial feature map after the last kept block."""
        x = x.contiguous(memory_format=torch.channels_last)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_map(x))

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the source task's classes (e.g. ImageNet); whole backbones only."""
        if self.source_head is None:
            raise ValueError(f"{self.spec.name}: no source classifier (cut, or none shipped)")
        return self.source_head(self.forward(x))

    def collate(self, items: Sequence[Any], train: bool = False, augment: Augment | None = None):
        pre = self.spec.preprocess
        assert isinstance(pre, ImagePreprocess)
        tf = image_transform(pre, augment if train else None)
        return torch.stack([tf(to_rgb(im) if isinstance(im, Image.Image) else im) for im in items])


def decompose_timm(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], nn.Module | None]:
    """Split a timm network into named stages plus its classifier (or ``None``)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(head, nn.Identity):
        head = None
    if all(hasattr(model, a) for a in ("conv_stem", "bn1", "blocks", "conv_head", "bn2")):
        stages = [("stem", nn.Sequential(model.conv_stem, model.bn1))]
        stages += [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)]
        stages.append(("head", nn.Sequential(model.conv_head, model.bn2)))
        return stages, head
    if all(hasattr(model, a) for a in ("conv1", "bn1", "layer1", "layer4")):  # ResNet family
        stem = nn.Sequential(model.conv1, model.bn1, model.act1, model.maxpool)
        return [("stem", stem)] + [
            (f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)
        ], head
    if all(hasattr(model, a) for a in ("stem", "stages")):  # ConvNeXt, RegNet, ...
        stages = [("stem", model.stem)] + [(f"stages.{i}", s) for i, s in enumerate(model.stages)]
        if hasattr(model, "norm_pre") and not isinstance(model.norm_pre, nn.Identity):
            stages.append(("norm_pre", model.norm_pre))
        return stages, head
    # Anything else (ViTs, ...): one block, the model's own forward_features + pooling.
    return [("features", _ForwardFeatures(model))], None


class _ForwardFeatures(nn.Module):
    """Wraps ``forward_features`` + ``forward_head(pre_logits=True)`` as a ``(N, D, 1, 1)`` map."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return feats[:, :, None, None]


def _packaged_weights_path(spec: BackboneSpec) -> Path:
    module = importlib.import_module(spec.weights.locator)
    locate = spec.extra.get("locate")
    if locate == "weights-dir":
        return Path(module.__file__).parent / "weights" / spec.extra["filename"]
    holder = getattr(module, spec.extra["file_class"])
    return Path(holder.get_model_file_path())


def weights_path(spec: BackboneSpec) -> Path | None:
    """The local file holding the spec's weights, or ``None`` for hub/random sources."""
    if spec.weights.kind == "package":
        return _packaged_weights_path(spec)
    if spec.weights.kind == "file":
        return Path(spec.weights.locator)
    return None


def _backbone_keyed(state: dict) -> bool:
    """Whether a state dict was saved from an :class:`ImageBackbone` (its keys are
    ``stages.<i>...``, as ``headstart pretrain`` writes them) rather than from timm."""
    return bool(state) and all(k.startswith("stages.") for k in state)


def build_timm_image(spec: BackboneSpec, pretrained: bool = True) -> ImageBackbone:
    """Create the timm architecture and load the spec's weights into it (if ``pretrained``)."""
    import timm

    kind = spec.weights.kind if pretrained else "random"
    if kind == "timm-hub":
        model = timm.create_model(spec.arch, pretrained=True)
    else:
        model = timm.create_model(spec.arch, pretrained=False, num_classes=spec.num_source_classes)
        if kind == "package":
            state = read_state_dict(_packaged_weights_path(spec))
            load_by_order(model, state, drop=tuple(spec.extra.get("drop", ())))
        elif kind == "file":
            state = read_state_dict(spec.weights.locator)
            if not any(
                k.endswith(("classifier.weight", "fc.weight", "head.fc.weight")) for k in state
            ):
                model.reset_classifier(0)  # a headless file: features only
            if not _backbone_keyed(state):
                load_by_name_or_order(model, state, spec.weights.locator)
    model.eval()
    stages, head = decompose_timm(model)
    if kind == "file" and _backbone_keyed(state):  # saved from an ImageBackbone (pretrain)
        backbone = ImageBackbone(spec, stages, None)
        try:
            backbone.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"{spec.weights.locator}: weights do not fit {spec.arch} "
                f"({str(exc).splitlines()[0][:200]})"
            ) from None
        return backbone.eval()
    # eval() on the wrapper too: a wrapper left in training mode over eval-mode layers
    # makes any mode save/restore (feature_dim, extract) switch BatchNorm to training.
    return ImageBackbone(spec, stages, head).eval()
