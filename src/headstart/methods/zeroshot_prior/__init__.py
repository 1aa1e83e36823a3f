"""``zeroshot_prior``: prototypes that start at the class names' embeddings and that the
labelled examples refine."""

from headstart.methods._registry import register_method
from headstart.methods.zeroshot_prior.config import ZeroshotPriorConfig
from headstart.methods.zeroshot_prior.method import ZeroshotPrior

register_method(
    "zeroshot_prior",
    ZeroshotPriorConfig,
    ZeroshotPrior,
    kind="transfer",
    summary="few-shot on zero-shot: each prototype is the mean of its examples and its "
    "class name's embedding (counted as --label-weight examples, chosen by leave-one-out)",
    modalities=("text",),
)
