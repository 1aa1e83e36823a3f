"""``zeroshot_prior``: the label embeddings are a prior the examples refine,
``p_k = (sum_i z_i + lam * e_k) / (n_k + lam)`` (see :mod:`headstart.fewshot`); ``lam``
and the scale by leave-one-out on every labelled example (train and validation)."""

from __future__ import annotations

from headstart.fewshot._prototype import fit_prototype_head
from headstart.fewshot._zeroshot import label_embeddings
from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.prototype.method import frozen_model, labelled_features
from headstart.methods.zeroshot.method import class_descriptions
from headstart.methods.zeroshot_prior.config import LABEL_WEIGHTS, ZeroshotPriorConfig


class ZeroshotPrior(Method):
    config: ZeroshotPriorConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.backbone()
        prior = label_embeddings(backbone, class_descriptions(ctx.data.classes), c.template)
        feats = ctx.features(backbone)
        x, y = labelled_features(ctx, feats)
        weights = LABEL_WEIGHTS if c.label_weight is None else (c.label_weight,)
        head, record = fit_prototype_head(
            x, y, len(ctx.data.classes), c.transform, c.metric, prior, weights
        )
        record["template"] = c.template
        model = frozen_model(backbone, head)
        return MethodResult(model, [record], head_logits(head, feats), None, {"prototype": 0})
