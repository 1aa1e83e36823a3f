"""fastai side by side (``pip install fastai`` into the benchmark environment).

The same packaged Lite0 (through ``headstart.create_backbone``, so the weights are the
same) as the body of a fastai ``Learner`` with fastai's own head (``create_head``: concat
pooling, BatchNorm, dropout, two linear layers), a splitter so ``fine_tune`` freezes the
body, and fastai's default recipe: ``fine_tune(epochs)`` (one frozen epoch, then the whole
network at discriminative rates under one-cycle), ``aug_transforms`` + ``Resize``, batch
size 32. Images only: fastai's text pipeline is its own AWD-LSTM, not a sentence encoder.
"""

from __future__ import annotations

import csv
import time

import numpy as np
import torch
from torch import nn


class _Body(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_map(x)


def run(manifest: str, epochs: int, image_size: int, seed: int = 0) -> dict:
    import pandas as pd
    from fastai.vision.all import (
        ImageDataLoaders,
        Learner,
        Normalize,
        Resize,
        accuracy,
        aug_transforms,
        create_head,
        set_seed,
    )

    import headstart

    start = time.perf_counter()
    with open(manifest, newline="", encoding="utf-8") as f:
        df = pd.DataFrame(list(csv.DictReader(f)))
    set_seed(seed)
    trval = df[df.split != "test"].assign(is_valid=lambda d: d.split == "val")
    dls = ImageDataLoaders.from_df(
        trval,
        path="/",
        fn_col="path",
        label_col="label",
        valid_col="is_valid",
        item_tfms=Resize(image_size),
        batch_tfms=[*aug_transforms(), Normalize.from_stats([0.5] * 3, [0.5] * 3)],
        bs=32,
        num_workers=0,
        device=torch.device("cpu"),
        seed=seed,
    )
    backbone = headstart.create_backbone("efficientnet_lite0.in1k")
    backbone.pop_source_head_inplace()
    model = nn.Sequential(_Body(backbone), create_head(backbone.feature_dim, dls.c))
    learn = Learner(
        dls,
        model,
        metrics=accuracy,
        splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())],
    )
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
        test = df[df.split == "test"]
        preds, _ = learn.get_preds(dl=dls.test_dl(test))
    vocab = list(dls.vocab)
    predicted = np.array([vocab[i] for i in preds.argmax(1).numpy()])
    acc = float((predicted == test.label.to_numpy()).mean())
    return {"accuracy": acc, "seconds": time.perf_counter() - start, "epochs": epochs}
