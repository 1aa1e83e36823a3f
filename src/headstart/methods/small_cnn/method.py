"""``small_cnn``: a four-block convolutional network (about 0.46 M parameters) at 32 px,
trained from random initialisation with augmentation and early stopping."""

from __future__ import annotations

import dataclasses

import numpy as np

from headstart.data._dataset import SPLITS
from headstart.methods._base import FitContext, Method, MethodResult
from headstart.methods.small_cnn.config import SmallCnnConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._loop import predict_logits, run_stage
from headstart.train._schedule import scratch_schedule
from headstart.zoo._image import ImageBackbone
from headstart.zoo._small_cnn import small_cnn_stages
from headstart.zoo._spec import BackboneSpec, ImagePreprocess, WeightsSource

DESCRIPTION = "small CNN (4 conv blocks, 32 px) trained from scratch"

SMALL_CNN = BackboneSpec(
    name="small_cnn.scratch",
    modality="image",
    arch="small_cnn",
    builder="small-cnn",
    weights=WeightsSource("random", "no pre-training"),
    preprocess=ImagePreprocess(input_size=32, crop_pct=1.0, mean=(0.5,) * 3, std=(0.5,) * 3),
    feature_dim=128,
    blocks=("block1", "block2", "block3", "block4"),
    licence="Apache-2.0",
    description=DESCRIPTION,
)


def small_cnn(size: int = 32) -> ImageBackbone:
    """The baseline's network, randomly initialised (global torch RNG): the zoo's
    ``small_cnn.untrained`` architecture."""
    pre = dataclasses.replace(SMALL_CNN.preprocess, input_size=size)
    return ImageBackbone(dataclasses.replace(SMALL_CNN, preprocess=pre), small_cnn_stages())


class SmallCnn(Method):
    config: SmallCnnConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c, data = self.config, ctx.data
        backbone = small_cnn(c.pixel_size)
        head = make_head(backbone.feature_dim, len(data.classes), hidden=(), dropout=0.2)
        model = TransferModel(backbone, head, freeze_bn=False)
        stage = scratch_schedule(backbone.block_names, 1e-3, c.cnn_epochs, patience=6).stages[0]
        train, val = data.take("train")[:2], data.take("val")[:2]
        history = run_stage(
            model,
            stage,
            train,
            val,
            "image",
            ctx.options.augment,
            ctx.options.batch_size,
            ctx.options.seed,
        )
        params = sum(p.numel() for p in model.parameters())
        logits = {}
        for s in SPLITS:
            items = data.take(s)[0]
            logits[s] = (
                predict_logits(model, backbone, items, "image")
                if items
                else np.zeros((0, len(data.classes)), dtype=np.float32)
            )
        # not a registered architecture: scored here, not bundled
        return MethodResult(None, history, logits, None, {"small_cnn": params}, DESCRIPTION)
