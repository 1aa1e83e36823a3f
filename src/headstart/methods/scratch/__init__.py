"""``scratch``: the same architecture from random weights (what transfer must beat)."""

from headstart.methods._registry import register_method
from headstart.methods.scratch.config import ScratchConfig
from headstart.methods.scratch.method import Scratch

register_method(
    "scratch",
    ScratchConfig,
    Scratch,
    kind="scratch",
    summary="the same architecture randomly initialised, every block trained "
    "(for at most 2x --epochs, patience at least 5)",
)
