"""Self-supervised objectives on the one loop: SimCLR for images, SimCSE for text.

Each objective is registered (:func:`list_pretrain_objectives`, shown by
``headstart methods`` as kind ``pretrain``) with its modality and its config dataclass,
and is an ordinary :class:`~headstart.train.fit_stage` objective returning named loss
terms (``{"nt_xent": ...}``, ``{"info_nce": ...}``) over an unlabelled stream.

* **SimCLR** (Chen et al., 2020): two augmented views of each image (random resized
  crop, flip, colour jitter, random greyscale), one pass of the backbone on both, a small
  MLP projection head, :func:`~headstart.selfsup.nt_xent` on its outputs. The projection
  head is dropped afterwards; the backbone is what the zoo keeps.
* **SimCSE**, unsupervised (Gao et al., 2021): each sentence through the encoder twice
  with dropout on, the two mean-pooled embeddings a positive pair,
  :func:`~headstart.selfsup.info_nce` against the batch's other sentences. No projection
  head, as in sentence-transformers' recipe.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision import transforms as T

from headstart._fields import option, positive
from headstart.data._loader import iter_batches
from headstart.data._transforms import Augment, image_transform, to_rgb
from headstart.selfsup._losses import info_nce, nt_xent
from headstart.train._engine import Batch, StepOutput


@dataclass(frozen=True)
class SimCLRConfig:
    epochs: int = option("simclr: epochs over the unlabelled images.", default=5, check=positive)
    batch_size: int = option(
        "simclr: images per batch (2x as many views; the negatives).", default=64, check=positive
    )
    lr: float = option(
        "simclr: AdamW rate of the backbone (the projection head trains at 1e-3).",
        default=3e-4,
        check=positive,
    )
    temperature: float = option("simclr: NT-Xent temperature tau.", default=0.5, check=positive)
    proj_dim: int = option("simclr: projection head output width.", default=128, check=positive)
    crop_min: float = option(
        "simclr: smallest fraction of the image a random crop covers.", default=0.3, check=positive
    )


@dataclass(frozen=True)
class SimCSEConfig:
    epochs: int = option("simcse: epochs over the unlabelled texts.", default=1, check=positive)
    batch_size: int = option(
        "simcse: texts per batch (the in-batch negatives).", default=32, check=positive
    )
    lr: float = option("simcse: AdamW rate of the encoder.", default=3e-5, check=positive)
    temperature: float = option("simcse: InfoNCE temperature tau.", default=0.05, check=positive)


# -- models -------------------------------------------------------------------------------


class ProjectedBackbone(nn.Module):
    """``head(backbone(x))``: SimCLR's projection MLP (``d -> d -> proj_dim``) on the
    pooled features. Named ``backbone`` / ``head`` so the loop's stage freezes and groups
    them like any transfer model's."""

    def __init__(self, backbone: nn.Module, feature_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(
            nn.Linear(feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, proj_dim)
        )

    def forward(self, x: Any) -> torch.Tensor:
        return self.head(self.backbone(x))


class Encoder(nn.Module):
    """The whole encoder trains at one rate (no ``backbone`` / ``head`` split)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.encoder = backbone

    def forward(self, x: Any) -> torch.Tensor:
        return self.encoder(x)


# -- streams ------------------------------------------------------------------------------


def simclr_view(pre: Any, crop_min: float = 0.3) -> T.Compose:
    """One random SimCLR view of a PIL image: colour jitter (p 0.8), greyscale (p 0.2),
    then the backbone's own preprocessing with a random resized crop and flip."""
    tf = image_transform(pre, Augment(crop=True, flip=True, rotate=0.0, crop_scale=(crop_min, 1)))
    jitter = T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)
    return T.Compose([to_rgb, jitter, T.RandomGrayscale(0.2), tf])


class _TwoViews:
    """A collator: a list of images -> ``(view_1, view_2)``, two stacked random views."""

    def __init__(self, view: T.Compose) -> None:
        self.view = view

    def collate(self, items: Sequence[Any], train: bool = True, augment: Any = None) -> Any:
        return tuple(torch.stack([self.view(im) for im in items]) for _ in range(2))


@dataclass
class TwoViewStream:
    """Unlabelled image batches as two augmented views (``inputs = (x1, x2)``), decoded
    on a background thread; the last, partial batch is dropped when it has one image."""

    items: Sequence[str]
    view: T.Compose
    batch_size: int = 64

    def __len__(self) -> int:
        return max(len(self.items) // self.batch_size, 1)

    def batches(self, rng: np.random.Generator) -> Iterator[Batch]:
        order = rng.permutation(len(self.items))
        collator = _TwoViews(self.view)
        for idx, views in iter_batches(
            collator, self.items, "image", self.batch_size, train=True, order=order
        ):
            if len(idx) > 1:
                yield Batch(np.asarray(idx), views, None)


# -- objectives ---------------------------------------------------------------------------


@dataclass
class SimCLR:
    """``{"nt_xent": nt_xent(g(f(x1)), g(f(x2)))}``, both views in one pass."""

    temperature: float = 0.5
    stream: str = "unlabelled"

    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput:
        x1, x2 = batches[self.stream].inputs
        z1, z2 = model(torch.cat([x1, x2])).chunk(2)
        return StepOutput({"nt_xent": nt_xent(z1, z2, self.temperature)})


@dataclass
class SimCSE:
    """``{"info_nce": info_nce(f(x), f(x))}`` with two dropout masks: the batch goes
    through the encoder once, stacked on itself."""

    temperature: float = 0.05
    stream: str = "unlabelled"

    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput:
        inputs = batches[self.stream].inputs
        doubled = {k: torch.cat([v, v]) for k, v in inputs.items()}
        a, b = model(doubled).chunk(2)
        return StepOutput({"info_nce": info_nce(a, b, self.temperature)})


# -- registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectiveInfo:
    """A registered self-supervised objective (``headstart pretrain --objective NAME``)."""

    name: str
    modality: str
    config_cls: type
    summary: str
    kind: str = "pretrain"

    @property
    def modalities(self) -> tuple[str, ...]:
        return (self.modality,)


_OBJECTIVES: dict[str, ObjectiveInfo] = {}


def register_pretrain_objective(info: ObjectiveInfo) -> ObjectiveInfo:
    if info.name in _OBJECTIVES:
        raise ValueError(f"pretrain objective {info.name!r} is already registered")
    _OBJECTIVES[info.name] = info
    return info


def get_pretrain_objective(name: str) -> ObjectiveInfo:
    try:
        return _OBJECTIVES[name]
    except KeyError:
        raise ValueError(
            f"unknown --objective {name!r}; choose from {', '.join(_OBJECTIVES)}"
        ) from None


def list_pretrain_objectives() -> list[ObjectiveInfo]:
    return list(_OBJECTIVES.values())


register_pretrain_objective(
    ObjectiveInfo(
        "simclr",
        "image",
        SimCLRConfig,
        "pretrain --objective simclr: contrastive self-supervision on unlabelled images "
        "(two augmented views, NT-Xent)",
    )
)
register_pretrain_objective(
    ObjectiveInfo(
        "simcse",
        "text",
        SimCSEConfig,
        "pretrain --objective simcse: unsupervised SimCSE on unlabelled texts (dropout "
        "views, in-batch InfoNCE)",
    )
)

__all__ = [
    "Encoder",
    "ObjectiveInfo",
    "ProjectedBackbone",
    "SimCLR",
    "SimCLRConfig",
    "SimCSE",
    "SimCSEConfig",
    "TwoViewStream",
    "get_pretrain_objective",
    "list_pretrain_objectives",
    "register_pretrain_objective",
    "simclr_view",
]
