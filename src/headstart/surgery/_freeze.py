"""Freezing, with an explicit BatchNorm policy.

``freeze_inplace`` turns gradients off; it does not touch BatchNorm *modes*, because any
later ``model.train()`` would undo that. The mode policy lives in
:class:`headstart.surgery.TransferModel`, whose ``train()`` keeps every BatchNorm of the
pre-trained backbone in inference mode (running statistics fixed) whenever
``freeze_bn`` is set: during head training and during fine-tuning alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from headstart.zoo._backbone import Backbone


def set_trainable_inplace(module: nn.Module, trainable: bool) -> nn.Module:
    """Set ``requires_grad`` on every parameter of ``module`` (in place); returns it."""
    for p in module.parameters():
        p.requires_grad_(trainable)
    return module


def freeze_inplace(backbone: Backbone, except_blocks: Iterable[str] = ()) -> Backbone:
    """Freeze every block of ``backbone`` except the named ones (in place); returns it."""
    keep = set(except_blocks)
    unknown = keep - set(backbone.block_names)
    if unknown:
        raise ValueError(f"{backbone.spec.name}: unknown blocks {sorted(unknown)}")
    set_trainable_inplace(backbone, False)
    for name, block in backbone.blocks():
        if name in keep:
            set_trainable_inplace(block, True)
    return backbone


def bn_eval_inplace(module: nn.Module) -> int:
    """Put every BatchNorm layer of ``module`` in inference mode; returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
            n += 1
    return n


def top_blocks(backbone: Backbone, k: int | str) -> list[str]:
    """The names of the top ``k`` blocks (``"all"`` for every block), output side first."""
    names = list(reversed(backbone.block_names))
    if k == "all":
        return names
    k = int(k)
    if k < 0:
        raise ValueError(f"cannot unfreeze {k} blocks")
    return names[:k]
