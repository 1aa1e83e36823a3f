"""Domain adaptation and instance transfer: ``headstart adapt SOURCE TARGET``.

A model learned on a labelled source domain, moved to a target domain whose labels are
absent. Every method is a registered plug-in (:func:`register_adapt_method`; ``headstart
methods`` lists them with kind ``adapt``), the choice among them is made by label-free
validators (:mod:`headstart.adapt._validators`), and the target's labels, when it has
any, only score the result.
"""

from headstart.adapt import _methods  # noqa: F401, I001  (registers the built-in methods, first)
from headstart.adapt import _deep  # noqa: F401  (then the gradient-trained ones)
from headstart.adapt._adabn import adabn_backbone
from headstart.adapt._adapt import SCORING_NOTE, AdaptResult, adapt, target_accuracy
from headstart.adapt._choose import VALIDATORS, choose, score_all
from headstart.adapt._deep import cdan_map, dann_lambda, entropy_weights, grad_reverse, mcc_loss
from headstart.adapt._methods import coral_matrix
from headstart.adapt._registry import (
    AdaptMethodInfo,
    NotApplicable,
    get_adapt_method,
    list_adapt_methods,
    register_adapt_method,
)
from headstart.adapt._target import TargetData, read_target
from headstart.adapt._task import AdabnFeatures, AdaptTask, Candidate
from headstart.adapt._validators import (
    dev,
    domain_classifier_weights,
    effective_sample_size,
    information_maximization,
    iwcv,
    reverse_validation_hits,
    snd,
    target_entropy,
)
from headstart.adapt._weights import kliep_weights, kmm_weights

__all__ = [
    "SCORING_NOTE",
    "VALIDATORS",
    "AdabnFeatures",
    "AdaptMethodInfo",
    "AdaptResult",
    "AdaptTask",
    "Candidate",
    "NotApplicable",
    "TargetData",
    "adabn_backbone",
    "adapt",
    "cdan_map",
    "choose",
    "coral_matrix",
    "dann_lambda",
    "dev",
    "domain_classifier_weights",
    "effective_sample_size",
    "entropy_weights",
    "get_adapt_method",
    "grad_reverse",
    "information_maximization",
    "iwcv",
    "kliep_weights",
    "kmm_weights",
    "list_adapt_methods",
    "mcc_loss",
    "read_target",
    "register_adapt_method",
    "reverse_validation_hits",
    "score_all",
    "snd",
    "target_accuracy",
    "target_entropy",
]
