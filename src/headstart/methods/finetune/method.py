"""``finetune``: the new head to convergence on cached features (frozen base), then the top
blocks unfrozen at layer-wise decaying learning rates (warm-up, then cosine; optionally
unfrozen one block at a time, and at a rate from a range test), with augmentation;
BatchNorm stays in inference mode throughout; the best epoch of each stage is kept. When
fine-tuning does not beat the head alone on validation, the extract model is kept and the
report says so."""

from __future__ import annotations

from headstart.methods._base import (
    FitContext,
    Method,
    MethodResult,
    keep_extract_unless_gained,
    train_end_to_end,
)
from headstart.methods.finetune.config import FinetuneConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._schedule import Schedule, finetune_schedule


class Finetune(Method):
    config: FinetuneConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.trainable_backbone("finetune")
        blocks = backbone.block_names

        def schedule(lr: float) -> Schedule:
            return finetune_schedule(
                blocks,
                c.unfreeze,
                c.head_lr,
                lr,
                c.lr_decay,
                c.head_epochs,
                c.epochs,
                c.patience,
                c.warmup,
                c.gradual,
            )

        head = make_head(backbone.feature_dim, len(ctx.data.classes), c.hidden, c.dropout)
        model = TransferModel(backbone, head, freeze_bn=True)
        run = train_end_to_end(ctx, model, schedule, c.lr, c.label_smoothing, precision=c.precision)
        selection = None
        if c.keep_extract:
            run, selection = keep_extract_unless_gained(ctx, model, run, "fine-tuning")
        return run.result(model, selection)
