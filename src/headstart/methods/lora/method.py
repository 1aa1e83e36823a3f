"""``lora`` (Hu et al., 2022): low-rank adapters through the ``peft`` library.

Stage 1 fits the head on cached features (frozen base). Then ``peft`` injects LoRA
adapters (``W x + alpha / r * B A x``, ``B`` zero at the start, so training starts from
the extract model) into the chosen layers of the top ``lora_blocks`` blocks, and stage 2
trains the head and the adapters only (parameter pattern ``*lora_*``), end to end, with
augmentation; BatchNorm layers stay in inference mode with their source statistics
(``TransferModel(freeze_bn=True)``), so nothing but the adapters and the head moves.

Afterwards every adapter is **merged** into its layer's weight and the ``peft`` wrappers
are removed: the bundle holds a plain network of the source architecture (it loads, exports
to ONNX and serves like a ``finetune`` bundle, at no inference cost), and the head is a
module of the model, so it is always saved (PEFT's trap of a classifier left out of
``modules_to_save`` cannot happen). The adapters' parameter count and share are in the
notes and in ``metrics.json``'s trainable parameters per stage.
"""

from __future__ import annotations

from torch import nn

from headstart._errors import UserError
from headstart.methods._base import (
    FitContext,
    Method,
    MethodResult,
    keep_extract_unless_gained,
    train_end_to_end,
)
from headstart.methods.lora.config import LoraConfig
from headstart.surgery._model import TransferModel, make_head
from headstart.train._schedule import Schedule, Stage, finetune_schedule
from headstart.zoo._backbone import Backbone

PATTERN = "*lora_*"


class LoraTargetError(UserError, ValueError):
    """No layer of the chosen blocks matches ``--lora-targets``."""


def target_modules(backbone: Backbone, blocks: int | str, targets: str) -> list[str]:
    """Names (in ``backbone``) of the layers that get adapters: in the top ``blocks``
    blocks (``"all"``: every block), the layers whose name ends with one of ``targets``
    (comma-separated), or with ``"auto"``: the ``query`` and ``value`` projections of
    attention where the blocks have them, else every ``Linear`` and every ``Conv2d`` that
    is not depthwise (``groups == 1``)."""
    names = {id(m): n for n, m in backbone.named_modules()}
    chosen = backbone.blocks() if blocks == "all" else backbone.blocks()[-int(blocks) :]
    layers: list[tuple[str, nn.Module]] = []
    for _, block in chosen:
        for m in block.modules():
            if isinstance(m, nn.Linear | nn.Conv2d) and id(m) in names:
                layers.append((names[id(m)], m))
    if targets != "auto":
        suffixes = [s.strip() for s in targets.split(",") if s.strip()]
        picked = [n for n, _ in layers if any(n == s or n.endswith("." + s) for s in suffixes)]
    else:
        picked = [n for n, _ in layers if n.rsplit(".", 1)[-1] in ("query", "value")]
        if not picked:
            picked = [n for n, m in layers if not isinstance(m, nn.Conv2d) or m.groups == 1]
    if not picked:
        top = ", ".join(n for n, _ in chosen)
        raise LoraTargetError(
            f"--lora-targets {targets!r}: no Linear or Conv2d layer of {backbone.spec.name}'s "
            f"blocks {top} matches; name layers by their suffix (e.g. 'query,value')"
        )
    return sorted(set(picked))


def inject_inplace(backbone: Backbone, modules: list[str], c: LoraConfig) -> int:
    """Add ``peft`` LoRA adapters to ``modules`` of ``backbone`` (in place); returns the
    number of adapter parameters."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import inject_adapter_in_model

    config = PeftLoraConfig(
        r=c.lora_rank,
        lora_alpha=c.lora_alpha,
        lora_dropout=c.lora_dropout,
        target_modules=modules,
    )
    inject_adapter_in_model(config, backbone)
    return sum(p.numel() for n, p in backbone.named_parameters() if "lora_" in n)


def merge_inplace(module: nn.Module) -> int:
    """Merge every LoRA adapter under ``module`` into its layer's weight and put the plain
    layer back in its place (in place); returns how many were merged."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, layer in list(module.named_modules()):
        if isinstance(layer, LoraLayer):
            layer.merge()
            parent = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
            setattr(parent, name.rpartition(".")[2], layer.get_base_layer())
            merged += 1
    if hasattr(module, "peft_config"):
        del module.peft_config  # set by inject_adapter_in_model; nothing refers to it now
    return merged


class Lora(Method):
    config: LoraConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c = self.config
        backbone = ctx.trainable_backbone("lora")
        modules = target_modules(backbone, c.lora_blocks, c.lora_targets)
        total = backbone.num_parameters()
        adapters = 0

        def inject() -> None:  # after the head stage: it reads the source model's features
            nonlocal adapters
            adapters = inject_inplace(backbone, modules, c)

        def schedule(lr: float) -> Schedule:
            (head_stage,) = finetune_schedule(
                backbone.block_names, 0, c.head_lr, lr, 1.0, c.head_epochs, c.epochs, c.patience
            ).stages
            lora = Stage(
                "lora", (), lr, (), c.epochs, c.patience, params=(PATTERN,), warmup=c.warmup
            )
            return Schedule((head_stage, lora))

        head = make_head(backbone.feature_dim, len(ctx.data.classes), c.hidden, c.dropout)
        model = TransferModel(backbone, head, freeze_bn=True)
        run = train_end_to_end(
            ctx, model, schedule, c.lr, placeholder=1e-3, after_head=inject, precision=c.precision
        )
        merge_inplace(backbone)
        where = "every block" if c.lora_blocks == "all" else f"the top {c.lora_blocks} blocks"
        run.notes.append(
            f"LoRA (peft, r={c.lora_rank}, alpha={c.lora_alpha:g}) on {len(modules)} layers of "
            f"{where}: {adapters:,} adapter parameters "
            f"({100 * adapters / max(total, 1):.2f}% of the backbone's {total:,}), merged "
            "into the weights"
        )
        selection = None
        if c.keep_extract:
            run, selection = keep_extract_unless_gained(ctx, model, run, "LoRA")
        return run.result(model, selection)


__all__ = ["Lora", "LoraTargetError", "inject_inplace", "merge_inplace", "target_modules"]
