"""``scratch``: the chosen architecture, randomly initialised and trained fully: the
baseline every transfer is measured against."""

from __future__ import annotations

from headstart.methods._base import FitContext, Method, MethodResult, train_schedule
from headstart.methods.scratch.config import ScratchConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._schedule import scratch_schedule
from headstart.zoo._text import TransformerTextBackbone


class Scratch(Method):
    config: ScratchConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.trainable_backbone("scratch", pretrained=False)
        # Transformers trained from scratch diverge at the 1e-3 that suits CNNs and word bags.
        lr = c.scratch_lr or (1e-4 if isinstance(backbone, TransformerTextBackbone) else 1e-3)
        schedule = scratch_schedule(backbone.block_names, lr, c.epochs * 2, max(c.patience, 5))
        head = make_head(backbone.feature_dim, len(ctx.data.classes), c.hidden, c.dropout)
        model = TransferModel(backbone, head, freeze_bn=False)
        notes: list[str] = []
        history, trainable = train_schedule(
            ctx, model, schedule, ctx.options.augment, precision=c.precision, notes=notes
        )
        return MethodResult(model, history, {}, schedule, trainable, notes=notes)
