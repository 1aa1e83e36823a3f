"""``lora`` (Hu et al., 2022): low-rank adapters through the ``peft`` library.

Stage 1 fits the head on cached features (frozen base). Then ``peft`` injects LoRA
adapters (``W x + alpha / r * B A x``, ``B`` zero at the start, so training starts from
the extract model) into the chosen layers of the top ``lora_blocks`` blocks, and stage 2
trains the head and the adapters only (parameter pattern ``*lora_*``), end to end, with
augmentation; BatchNorm layers stay in inference mode with their source statistics
(``TransferModel(freeze_bn=True)``), so nothing but the adapters and the head moves.

The bundle (``--lora-save adapter``, the default) stores what changed: the adapter
tensors and the head, with a reference to the base (zoo name and sha256 of its weights;
:mod:`headstart.bundle._adapter`); loading rebuilds the base from the offline zoo, checks
it, and injects the adapters again. ``headstart export`` merges them into the weights, so
the ONNX graph is a plain network. With ``--lora-save merged``, or a base the zoo cannot
rebuild offline by name (``--weights FILE``, hub and user models: said in the notes),
every adapter is **merged** into its layer's weight before saving and the bundle is a
plain full network of the source architecture. The head is a module of the model, so it
is always saved (PEFT's trap of a classifier left out of ``modules_to_save`` cannot
happen). The adapters' parameter count and share are in the notes and in
``metrics.json``'s trainable parameters per stage.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from headstart._errors import UserError
from headstart.bundle._adapter import base_reference, inject_settings_inplace
from headstart.methods._base import (
    FitContext,
    Method,
    MethodResult,
    gained,
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


def peft_settings(modules: list[str], c: LoraConfig) -> dict[str, Any]:
    """The ``peft.LoraConfig`` arguments for ``modules`` (what an adapter bundle stores)."""
    return {
        "r": c.lora_rank,
        "lora_alpha": c.lora_alpha,
        "lora_dropout": c.lora_dropout,
        "target_modules": list(modules),
    }


def inject_inplace(backbone: Backbone, modules: list[str], c: LoraConfig) -> int:
    """Add ``peft`` LoRA adapters to ``modules`` of ``backbone`` (in place); returns the
    number of adapter parameters."""
    inject_settings_inplace(backbone, peft_settings(modules, c))
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
        base, why = None, ""  # the reference an adapter bundle keeps to its base
        if c.lora_save == "adapter":
            base, why = base_reference(ctx.spec, backbone, ctx.options.weights)
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
        stages = [s.name for s in run.schedule.stages if not s.on_features]
        keeps = c.keep_extract and bool(len(ctx.labels("val"))) and not gained(run.history, stages)
        if base is None or keeps:
            merge_inplace(backbone)  # keeping extract: B is zero, the merge changes nothing
        where = "every block" if c.lora_blocks == "all" else f"the top {c.lora_blocks} blocks"
        saved = (
            f"the bundle stores them and the head over {base['model']} (sha256 "
            f"{base['sha256'][:12]}...)"
            if base is not None
            else "merged into the weights" + (f" ({why})" if why else "")
        )
        run.notes.append(
            f"LoRA (peft, r={c.lora_rank}, alpha={c.lora_alpha:g}) on {len(modules)} layers of "
            f"{where}: {adapters:,} adapter parameters "
            f"({100 * adapters / max(total, 1):.2f}% of the backbone's {total:,}); {saved}"
        )
        selection = None
        if keeps:
            run, selection = keep_extract_unless_gained(ctx, model, run, "LoRA")
            if base is not None:  # zero adapters (B = 0) keep the bundle small
                inject_inplace(backbone, modules, c)
        result = run.result(model, selection)
        result.bundle = {
            "adapter": {
                "type": "lora",
                "save": "merged" if base is None else "adapter",
                "peft": peft_settings(modules, c),
                "parameters": adapters,
                **({"base": base} if base is not None else {}),
            }
        }
        return result


__all__ = [
    "Lora",
    "LoraTargetError",
    "inject_inplace",
    "merge_inplace",
    "peft_settings",
    "target_modules",
]
