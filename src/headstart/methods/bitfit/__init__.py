"""``bitfit``: parameter-efficient fine-tuning of the bias terms only."""

from headstart.methods._registry import register_method
from headstart.methods.bitfit.config import BitfitConfig
from headstart.methods.bitfit.method import Bitfit

register_method(
    "bitfit",
    BitfitConfig,
    Bitfit,
    kind="transfer",
    summary="head on cached features, then only the backbone's bias terms (0.1-0.6%)",
)
