"""Cutting a backbone, new heads, and the backbone + head model that training uses."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from headstart.surgery._freeze import bn_eval_inplace
from headstart.zoo._backbone import Backbone


def cut(backbone: Backbone, layer: str) -> Backbone:
    """A new backbone keeping blocks up to and including ``layer`` (the input is untouched)."""
    backbone.block_index(layer)  # validate before copying
    return copy.deepcopy(backbone).truncate_inplace(layer)


class Standardize(nn.Module):
    """``(x - mean) / scale`` with fixed buffers learned from the training features."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("scale", scale.float())

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardize:
        mean = x.mean(0)
        scale = x.std(0)
        scale[scale < 1e-6] = 1.0
        return cls(torch.from_numpy(mean), torch.from_numpy(scale))

    @classmethod
    def identity(cls, dim: int) -> Standardize:
        return cls(torch.zeros(dim), torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


def make_head(
    in_dim: int, n_classes: int, hidden: Sequence[int] = (), dropout: float = 0.2
) -> nn.Sequential:
    """A new classification head: ``Standardize`` (identity until fitted on features),
    ``[Dropout, Linear, ReLU] * len(hidden)``, then ``Dropout, Linear(n_classes)``.
    The default is a single linear layer after dropout."""
    layers: list[nn.Module] = [Standardize.identity(in_dim)]
    dim = in_dim
    for h in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(dim, h), nn.ReLU(inplace=True)]
        dim = h
    layers += [nn.Dropout(dropout), nn.Linear(dim, n_classes)]
    return nn.Sequential(*layers)


class TransferModel(nn.Module):
    """A backbone and a new head. With ``freeze_bn`` (the transfer default), ``train()``
    leaves every BatchNorm of the backbone in inference mode, so its running statistics
    never move; the from-scratch baseline sets ``freeze_bn=False``."""

    def __init__(self, backbone: Backbone, head: nn.Module, freeze_bn: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.freeze_bn = freeze_bn

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        if mode and self.freeze_bn:
            bn_eval_inplace(self.backbone)
        return self

    def forward_features(self, inputs: object) -> torch.Tensor:
        """The backbone's pooled features, ``(N, feature_dim)``."""
        return self.backbone(inputs)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The head's logits for features, ``(N, n_classes)``."""
        return self.head(features)

    def forward(self, inputs: object) -> torch.Tensor:
        return self.forward_head(self.forward_features(inputs))

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
