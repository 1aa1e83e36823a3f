"""headstart: transfer learning from one command.

Reuse a pre-trained image or text model for a new task, offline, on a CPU::

    import headstart
    result = headstart.fit("my_images/", strategy="extract", out="model/")
    headstart.load("model/").predict(["new.jpg"])
"""

__version__ = "0.1.0"

from headstart._fit import STRATEGIES, FitOptions, FitResult, fit
from headstart.bundle import Predictor, load_bundle
from headstart.cache import FeatureStore
from headstart.data import Augment, DataError, LabeledData, read_data
from headstart.zoo import (
    BackboneSpec,
    UnknownModelError,
    WeightsUnavailableError,
    create_backbone,
    get_spec,
    list_specs,
)

load = load_bundle

__all__ = [
    "STRATEGIES",
    "Augment",
    "BackboneSpec",
    "DataError",
    "FeatureStore",
    "FitOptions",
    "FitResult",
    "LabeledData",
    "Predictor",
    "UnknownModelError",
    "WeightsUnavailableError",
    "__version__",
    "create_backbone",
    "fit",
    "get_spec",
    "list_specs",
    "load",
    "load_bundle",
    "read_data",
]
