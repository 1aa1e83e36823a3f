"""``small_cnn``: a small CNN from scratch, the image baseline that learns features."""

from headstart.methods._registry import register_method
from headstart.methods.small_cnn.config import SmallCnnConfig
from headstart.methods.small_cnn.method import DESCRIPTION, SmallCnn

register_method(
    "small_cnn",
    SmallCnnConfig,
    SmallCnn,
    kind="baseline",
    summary=DESCRIPTION,
    modalities=("image",),
)
