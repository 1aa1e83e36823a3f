"""``setfit``: contrastive fine-tuning of the sentence encoder, then a logistic head."""

from headstart.methods._registry import register_method
from headstart.methods.setfit.config import SetfitConfig
from headstart.methods.setfit.method import Setfit

register_method(
    "setfit",
    SetfitConfig,
    Setfit,
    kind="transfer",
    summary="few-shot text (the SetFit recipe): sentence pairs from the labelled examples, "
    "cosine-similarity loss on the whole encoder, then a logistic head (C by k-fold)",
    modalities=("text",),
)
