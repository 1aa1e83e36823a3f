"""Self-supervised pre-training on unlabelled data: ``headstart pretrain --objective``
(``simclr``: images; ``simcse``, ``mlm``: text)."""

from headstart.selfsup._losses import info_nce, nt_xent
from headstart.selfsup._mlm import MLM, MLMConfig, MLMHead, mask_tokens
from headstart.selfsup._objectives import (
    ObjectiveInfo,
    SimCLR,
    SimCLRConfig,
    SimCSE,
    SimCSEConfig,
    get_pretrain_objective,
    list_pretrain_objectives,
)
from headstart.selfsup._pretrain import pretrain_unlabelled, probe_accuracy

__all__ = [
    "MLM",
    "MLMConfig",
    "MLMHead",
    "ObjectiveInfo",
    "SimCLR",
    "SimCLRConfig",
    "SimCSE",
    "SimCSEConfig",
    "get_pretrain_objective",
    "info_nce",
    "list_pretrain_objectives",
    "mask_tokens",
    "nt_xent",
    "pretrain_unlabelled",
    "probe_accuracy",
]
