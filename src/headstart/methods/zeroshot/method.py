"""``zeroshot``: the model is the class names' embeddings (see :mod:`headstart.fewshot`);
nothing is fitted, so the training split only makes the run comparable with others."""

from __future__ import annotations

from headstart.fewshot._zeroshot import label_embeddings, zeroshot_head
from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.prototype.method import frozen_model
from headstart.methods.zeroshot.config import ZeroshotConfig


def class_descriptions(classes: list[str]) -> dict[str, str]:
    """Class names as the text to embed (``ankle_boot`` -> ``ankle boot``)."""
    return {c: c.replace("_", " ").strip() or c for c in classes}


class Zeroshot(Method):
    config: ZeroshotConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.backbone()
        emb = label_embeddings(backbone, class_descriptions(ctx.data.classes), c.template)
        head = zeroshot_head(emb, c.temperature)
        feats = ctx.features(backbone)
        model = frozen_model(backbone, head)
        record = {"stage": "zeroshot", "template": c.template, "temperature": c.temperature}
        return MethodResult(model, [record], head_logits(head, feats), None, {"zeroshot": 0})
