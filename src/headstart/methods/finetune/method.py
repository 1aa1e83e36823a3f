"""``finetune``: the new head to convergence on cached features (frozen base), then the top
blocks unfrozen at layer-wise decaying learning rates, with augmentation; BatchNorm stays
in inference mode in both stages; the best epoch of each stage is kept."""

from __future__ import annotations

from headstart.methods._base import FitContext, Method, MethodResult, train_schedule
from headstart.methods.finetune.config import FinetuneConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._schedule import finetune_schedule


class Finetune(Method):
    config: FinetuneConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.backbone()
        schedule = finetune_schedule(
            backbone.block_names,
            c.unfreeze,
            c.head_lr,
            c.lr,
            c.lr_decay,
            c.head_epochs,
            c.epochs,
            c.patience,
        )
        head = make_head(backbone.feature_dim, len(ctx.data.classes), c.hidden, c.dropout)
        model = TransferModel(backbone, head, freeze_bn=True)
        history, trainable = train_schedule(
            ctx, model, schedule, ctx.options.augment, c.label_smoothing
        )
        return MethodResult(model, history, {}, schedule, trainable)
