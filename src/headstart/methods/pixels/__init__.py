"""``pixels``: logistic regression on raw pixels, no pre-training."""

from headstart.methods._registry import register_method
from headstart.methods.pixels.config import PixelsConfig
from headstart.methods.pixels.method import DESCRIPTION, Pixels

register_method(
    "pixels", PixelsConfig, Pixels, kind="baseline", summary=DESCRIPTION, modalities=("image",)
)
