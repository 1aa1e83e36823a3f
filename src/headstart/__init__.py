"""headstart: transfer learning from one command.

Reuse a pre-trained image or text model for a new task, offline, on a CPU::

    import headstart
    result = headstart.fit("my_images/", strategy="extract", out="model/")
    headstart.load("model/").predict(["new.jpg"])

Which source model and layer to start from: ``headstart.rank("my_images/")``.
"""

from headstart._fit import STRATEGIES, FitOptions, FitResult, fit
from headstart._pretrain import PretrainResult, pretrain
from headstart._version import __version__
from headstart.adapt import AdaptResult, adapt
from headstart.bundle import Predictor, load, load_bundle
from headstart.cache import FeatureStore
from headstart.compare import CompareResult, compare
from headstart.continual import ContinueResult, continue_
from headstart.data import Augment, DataError, LabeledData, read_data
from headstart.fewshot import ZeroShotResult, add_class, fewshot_eval, remove_class, zeroshot
from headstart.multitask import MultiTaskPredictor, MultiTaskResult, fit_multi, load_multitask
from headstart.select import Ranking, domain_shift, rank
from headstart.zoo import (
    BackboneSpec,
    UnknownModelError,
    WeightsUnavailableError,
    create_backbone,
    get_spec,
    list_specs,
)

__all__ = [
    "STRATEGIES",
    "AdaptResult",
    "Augment",
    "BackboneSpec",
    "CompareResult",
    "ContinueResult",
    "DataError",
    "FeatureStore",
    "FitOptions",
    "FitResult",
    "LabeledData",
    "MultiTaskPredictor",
    "MultiTaskResult",
    "Predictor",
    "PretrainResult",
    "Ranking",
    "UnknownModelError",
    "WeightsUnavailableError",
    "ZeroShotResult",
    "__version__",
    "adapt",
    "add_class",
    "compare",
    "continue_",
    "create_backbone",
    "domain_shift",
    "fewshot_eval",
    "fit",
    "fit_multi",
    "get_spec",
    "list_specs",
    "load",
    "load_bundle",
    "load_multitask",
    "pretrain",
    "rank",
    "read_data",
    "remove_class",
    "zeroshot",
]
