"""``extract``: the frozen backbone runs once, a new head trains on its cached features."""

from headstart.methods._registry import register_method
from headstart.methods.extract.config import ExtractConfig
from headstart.methods.extract.method import Extract

register_method(
    "extract",
    ExtractConfig,
    Extract,
    kind="transfer",
    summary="frozen backbone run once (features cached), new logistic-regression or MLP head",
)
