"""``pixels``: logistic regression on the raw pixels (RGB, resized, standardised), ``C``
chosen on validation: the image baseline with no learned features at all."""

from __future__ import annotations

import numpy as np

from headstart.data._dataset import SPLITS
from headstart.data._items import load_image
from headstart.data._transforms import to_rgb
from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.pixels.config import PixelsConfig
from headstart.train._heads import fit_logistic_head

DESCRIPTION = "logistic regression on raw pixels (32 px RGB, standardised)"


def pixel_features(items: list[str], size: int = 32) -> np.ndarray:
    """Raw RGB pixels of each image, resized to ``size`` x ``size``, in [0, 1]: ``(N, 3 s²)``."""
    out = np.empty((len(items), 3 * size * size), dtype=np.float32)
    for i, path in enumerate(items):
        img = to_rgb(load_image(path)).resize((size, size))
        out[i] = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
    return out


class Pixels(Method):
    config: PixelsConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        data = ctx.data
        x = pixel_features(list(data.items), self.config.pixel_size)
        xs = {s: x[data.indices(s)] for s in SPLITS}
        fit = fit_logistic_head(
            xs["train"],
            ctx.labels("train"),
            xs["val"],
            ctx.labels("val"),
            len(data.classes),
            ctx.options.seed,
            cv="auto",
            refit=True,
            standardize=True,
        )
        head, history = fit.head, fit.history
        params = sum(p.numel() for p in head.parameters())
        description = DESCRIPTION.replace("32 px", f"{self.config.pixel_size} px")
        return MethodResult(
            None,
            history,
            head_logits(head, xs),
            None,
            {"pixels": params},
            description,
            fit.selection,
        )
