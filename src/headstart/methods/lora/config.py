"""Options of ``lora``: the new head, then low-rank adapters (PEFT's LoRA) in the top
blocks, end to end."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import fraction, option, positive
from headstart.methods import _options as o
from headstart.methods.finetune.config import blocks


@dataclass(frozen=True)
class LoraConfig:
    hidden: tuple[int, ...] = o.hidden()
    dropout: float = o.dropout()
    lr: float | str = o.lr(1e-3)
    head_lr: float = o.head_lr()
    epochs: int = o.epochs(10)
    head_epochs: int = o.head_epochs(50)
    patience: int = o.patience(3)
    warmup: float = o.warmup()
    keep_extract: bool = o.keep_extract()
    precision: str = o.precision()
    lora_rank: int = option(
        "lora: rank r of each adapter (the update B A, A: r x in).", default=8, check=positive
    )
    lora_alpha: float = option(
        "lora: scaling alpha (the update is alpha / r * B A).", default=16.0, check=positive
    )
    lora_dropout: float = option(
        "lora: dropout on the adapters' input.", default=0.0, check=fraction
    )
    lora_blocks: int | str = option(
        "lora: adapt the layers of this many top blocks, or 'all'.",
        default=2,
        parse=blocks,
        check=lambda v: v == "all" or (isinstance(v, int) and v >= 1),
        must="a count >= 1 or 'all'",
    )
    lora_targets: str = option(
        "lora: comma-separated module-name suffixes to adapt ('auto': attention query and "
        "value of transformers, 1x1 and full convolutions of CNNs, never depthwise).",
        default="auto",
    )
    lora_save: str = option(
        "lora: what the bundle stores: 'adapter' (the adapters, the head and a sha256 "
        "reference to the base model, rebuilt from the offline zoo at load; a base the zoo "
        "cannot rebuild by name is saved merged) or 'merged' (the adapters merged into a "
        "full copy of the network).",
        default="adapter",
        check=lambda v: v in ("adapter", "merged"),
        must="adapter or merged",
    )
