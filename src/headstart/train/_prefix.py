"""The frozen lower part of a network when only its top blocks train.

When a stage trains only the top blocks of an image backbone (``finetune --unfreeze 2``),
the blocks below the lowest trainable one are a fixed function of the input: no
parameter of theirs trains, their BatchNorm layers stay in inference mode (the
``TransferModel(freeze_bn=True)`` policy) and they hold no dropout or drop-path. So:

* with augmentation **off**, their outputs are computed once (``torch.no_grad``, the
  evaluation transform, which is what training would see) for the training and the
  validation items, and every epoch trains and validates the top blocks on those cached
  activations (:class:`SuffixModel`), when they fit :func:`memory_budget`;
* with augmentation **on** (each epoch sees other pixels), the lower part still runs
  under ``torch.no_grad`` in each step (:class:`SuffixModel` with ``raw=True``), so no
  autograd bookkeeping is kept for it.

The results equal the uncached path's (the same loss and gradients, up to float
rounding: ``tests/unit/test_prefix.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from headstart.data._loader import iter_batches
from headstart.train._schedule import Stage

MEMORY_FRACTION = 0.25  # of the memory available now
_STOCHASTIC = ("Dropout", "DropPath", "DropBlock")


def frozen_prefix(model: nn.Module, stage: Stage) -> int:
    """How many leading blocks of ``model.backbone`` are a fixed function of the input
    during ``stage``: the index of the lowest trainable block; 0 when nothing can be
    split off (not an image backbone with ``stages``, BatchNorm not frozen, parameter
    patterns that train anywhere, or a stochastic layer in that part)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(backbone, "stages") or not hasattr(backbone, "pool"):
        return 0
    if not getattr(model, "freeze_bn", False) or stage.params:
        return 0
    names = list(backbone.block_names)
    trainable = [names.index(b) for b in stage.trainable if b in names]
    start = min(trainable, default=len(names))
    for block in list(backbone.stages)[:start]:
        for m in block.modules():
            p = getattr(m, "p", getattr(m, "drop_prob", 0.0))
            if any(k in type(m).__name__ for k in _STOCHASTIC) and p:
                return 0
    return start


class SuffixModel(nn.Module):
    """``model`` from block ``start`` of its backbone on: input the activations after
    block ``start - 1`` (or, with ``raw``, model inputs whose first ``start`` blocks run
    under ``torch.no_grad``). ``backbone``, ``head``, ``train()`` and the state dict are
    ``model``'s own, so the loop's parameter groups, BatchNorm policy, early stopping and
    checkpoints see the whole model."""

    def __init__(self, model: nn.Module, start: int, raw: bool = False) -> None:
        super().__init__()
        self.inner = model
        self.start = start
        self.raw = raw

    @property
    def backbone(self) -> Any:
        return self.inner.backbone

    @property
    def head(self) -> nn.Module:
        return self.inner.head

    @property
    def freeze_bn(self) -> bool:
        return bool(getattr(self.inner, "freeze_bn", False))

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.inner.state_dict(*args, **kwargs)

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        return self.inner.load_state_dict(state, strict=strict, assign=assign)

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stages = list(self.backbone.stages)
        if self.raw:
            with torch.no_grad():
                x = run_prefix(self.backbone, x, self.start)
        for stage in stages[self.start :]:
            x = stage(x)
        return self.head(self.backbone.pool(x))


def run_prefix(backbone: Any, x: torch.Tensor, start: int) -> torch.Tensor:
    """The activations of ``x`` after the first ``start`` blocks (channels-last)."""
    x = x.contiguous(memory_format=torch.channels_last)
    for stage in list(backbone.stages)[:start]:
        x = stage(x)
    return x


def activation_bytes(backbone: Any, item: Any, modality: str, start: int) -> int:
    """Bytes of one item's activations after ``start`` blocks (float32)."""
    with torch.no_grad():
        x = next(iter(iter_batches(backbone, [item], modality, batch_size=1)))[1]
        return int(run_prefix(backbone, x, start).numel()) * 4


def memory_budget() -> int:
    """Bytes the cached activations may take: :data:`MEMORY_FRACTION` of the memory
    available now (``MemAvailable``), 1 GiB where that cannot be read."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * MEMORY_FRACTION)
    except OSError:
        pass
    return 1 << 30


def prefix_activations(
    backbone: Any, items: Sequence[Any], modality: str, start: int, batch_size: int = 64
) -> torch.Tensor:
    """The activations of every item after the first ``start`` blocks, in order, from the
    evaluation transform (eval mode, ``torch.no_grad``): ``(N, C, H, W)``."""
    modes = [(m, m.training) for m in backbone.modules()]  # restored module by module:
    backbone.eval()  # ``train(True)`` would wake the frozen BatchNorm layers
    out: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for _, x in iter_batches(backbone, items, modality, batch_size=batch_size):
                out.append(run_prefix(backbone, x, start))
    finally:
        for m, mode in modes:
            m.training = mode
    return torch.cat(out).contiguous(memory_format=torch.channels_last)


__all__ = [
    "SuffixModel",
    "activation_bytes",
    "frozen_prefix",
    "memory_budget",
    "prefix_activations",
    "run_prefix",
]
