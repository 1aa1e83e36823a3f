"""``prototype``: nearest class centroid on cached features (SimpleShot), no training."""

from headstart.methods._registry import register_method
from headstart.methods.prototype.config import PrototypeConfig
from headstart.methods.prototype.method import Prototype

register_method(
    "prototype",
    PrototypeConfig,
    Prototype,
    kind="transfer",
    summary="few-shot: nearest class centroid of centred, L2-normalised cached features "
    "(SimpleShot) or cosine; classes can be added later (headstart add-class)",
)
