"""``finetune``: head on cached features, then the top blocks at lower layer-wise rates."""

from headstart.methods._registry import register_method
from headstart.methods.finetune.config import FinetuneConfig
from headstart.methods.finetune.method import Finetune

register_method(
    "finetune",
    FinetuneConfig,
    Finetune,
    kind="transfer",
    summary="head on cached features, then the top blocks at layer-wise decaying rates",
)
