"""``bitfit`` (Ben Zaken et al., 2022): train only the bias terms of the backbone, with the
new head. Stage 1 fits the head on cached features (frozen base); stage 2 trains the head
and every parameter whose name matches ``bias_pattern`` (the convolution / linear biases
and the BatchNorm / LayerNorm shifts), end to end, with augmentation; BatchNorm running
statistics stay fixed. 0.11% of MiniLM's parameters move, 0.62% of Lite0's."""

from __future__ import annotations

from headstart._progress import say
from headstart.methods._base import (
    FitContext,
    Method,
    MethodResult,
    keep_extract_unless_gained,
    train_end_to_end,
)
from headstart.methods.bitfit.config import BitfitConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._engine import matching_parameters
from headstart.train._schedule import Schedule, Stage, finetune_schedule


class Bitfit(Method):
    config: BitfitConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.trainable_backbone("bitfit")
        pattern = (c.bias_pattern,)
        if not matching_parameters(backbone, pattern):
            say(
                f"[yellow]bitfit[/]: {backbone.spec.name} has no {c.bias_pattern!r} terms; "
                "only the head trains"
            )
            pattern = ()

        def schedule(lr: float) -> Schedule:
            (head_stage,) = finetune_schedule(
                backbone.block_names, 0, c.head_lr, lr, 1.0, c.head_epochs, c.epochs, c.patience
            ).stages
            biases = Stage(
                "bitfit", (), lr, (), c.epochs, c.patience, params=pattern, warmup=c.warmup
            )
            return Schedule((head_stage, biases))

        head = make_head(backbone.feature_dim, len(ctx.data.classes), c.hidden, c.dropout)
        model = TransferModel(backbone, head, freeze_bn=True)
        run = train_end_to_end(ctx, model, schedule, c.lr, placeholder=1e-3, precision=c.precision)
        selection = None
        if c.keep_extract:
            run, selection = keep_extract_unless_gained(ctx, model, run, "BitFit")
        return run.result(model, selection)
