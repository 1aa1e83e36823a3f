"""``zeroshot``: classes from their names alone (label embeddings, no training)."""

from headstart.methods._registry import register_method
from headstart.methods.zeroshot.config import ZeroshotConfig
from headstart.methods.zeroshot.method import Zeroshot

register_method(
    "zeroshot",
    ZeroshotConfig,
    Zeroshot,
    kind="transfer",
    summary="zero-shot: cosine similarity to each class name's embedding (template), "
    "no example used; the training labels are ignored",
    modalities=("text",),
)
