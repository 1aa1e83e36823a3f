"""Model surgery: cut at a block, freeze with a BatchNorm policy, attach a new head."""

from headstart.surgery._freeze import (
    bn_eval_inplace,
    freeze_inplace,
    set_trainable_inplace,
    top_blocks,
)
from headstart.surgery._heads import HeadType, build_head, describe_head, register_head
from headstart.surgery._model import TransferModel, cut, make_head

__all__ = [
    "HeadType",
    "TransferModel",
    "bn_eval_inplace",
    "build_head",
    "cut",
    "describe_head",
    "freeze_inplace",
    "make_head",
    "register_head",
    "set_trainable_inplace",
    "top_blocks",
]
