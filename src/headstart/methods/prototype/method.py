"""``prototype``: every labelled example (train and validation) becomes part of its class's
prototype; the scale (the probabilities' inverse temperature) is chosen by leave-one-out
on those examples, so no example is held out (see :mod:`headstart.fewshot`)."""

from __future__ import annotations

import numpy as np
from torch import nn

from headstart.fewshot._prototype import fit_prototype_head
from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.prototype.config import PrototypeConfig
from headstart.surgery._model import TransferModel
from headstart.zoo._backbone import Backbone


def labelled_features(
    ctx: FitContext, feats: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled example a few-shot method learns from: train and validation."""
    x = np.concatenate([feats["train"], feats["val"]])
    return x, np.concatenate([ctx.labels("train"), ctx.labels("val")])


def frozen_model(backbone: Backbone, head: nn.Module) -> TransferModel:
    """``backbone`` + ``head`` in eval mode, the backbone's parameters frozen."""
    model = TransferModel(backbone, head).eval()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    return model


class Prototype(Method):
    config: PrototypeConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.backbone()
        feats = ctx.features(backbone)
        x, y = labelled_features(ctx, feats)
        head, record = fit_prototype_head(x, y, len(ctx.data.classes), c.transform, c.metric)
        model = frozen_model(backbone, head)
        return MethodResult(model, [record], head_logits(head, feats), None, {"prototype": 0})
