"""``extract``: run the frozen backbone once (features cached on disk), fit a new head."""

from __future__ import annotations

from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.extract.config import ExtractConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._heads import fit_head_on_features
from headstart.train._schedule import feature_head_schedule


class Extract(Method):
    config: ExtractConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.backbone()
        feats = ctx.features(backbone)
        k = len(ctx.data.classes)
        if c.head == "logreg":
            head = make_head(backbone.feature_dim, k, hidden=(), dropout=0.0)
        else:
            head = make_head(backbone.feature_dim, k, c.hidden or (256,), c.dropout)
        schedule = feature_head_schedule(c.head_lr, c.head_epochs, c.patience)
        fit = fit_head_on_features(
            head,
            schedule.stages[0],
            feats["train"],
            ctx.labels("train"),
            feats["val"],
            ctx.labels("val"),
            ctx.options.seed,
            refit=c.refit,
            cv={"auto": "auto", "cv": True, "val": False}[c.select],
            standardize=c.standardize or c.head == "mlp",
        )
        model = TransferModel(backbone, head).eval()
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        trainable = {"head": sum(p.numel() for p in head.parameters())}
        return MethodResult(
            model,
            fit.history,
            head_logits(head, feats),
            schedule,
            trainable,
            selection=fit.selection,
        )
