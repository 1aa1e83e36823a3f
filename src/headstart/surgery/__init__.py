"""Model surgery: cut at a block, freeze with a BatchNorm policy, attach a new head."""

from headstart.surgery._freeze import (
    bn_eval_inplace,
    freeze_inplace,
    set_trainable_inplace,
    top_blocks,
)
from headstart.surgery._model import TransferModel, cut, make_head

__all__ = [
    "TransferModel",
    "bn_eval_inplace",
    "cut",
    "freeze_inplace",
    "make_head",
    "set_trainable_inplace",
    "top_blocks",
]
