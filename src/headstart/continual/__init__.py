"""Continual learning: ``headstart continue BUNDLE NEW_DATA`` adds classes to a model
without forgetting the old ones (class-incremental steps on cached features).

Every method is a registered plug-in (:func:`register_continual_method`; ``headstart
methods`` lists them with kind ``continual``); the bundle carries what the methods need of
the past (:mod:`headstart.continual._state`); ACC, forgetting and BWT are pure functions
of the accuracy matrix (:mod:`headstart.continual._metrics`).
"""

from headstart.continual import _methods  # noqa: F401, I001  (registers the built-in methods)
from headstart.continual._continue import REPORT_NAME, ContinueResult, continue_
from headstart.continual._metrics import (
    average_accuracy,
    backward_transfer,
    continual_metrics,
    forgetting,
)
from headstart.continual._methods import HeadError, StepResult, StepTask, grow_head
from headstart.continual._registry import (
    ContinualMethodInfo,
    get_continual_method,
    list_continual_methods,
    register_continual_method,
)
from headstart.continual._sequence import (
    ContinualError,
    StepData,
    learn_step,
    matrix_array,
    run_sequence,
    start_state,
)
from headstart.continual._state import ContinualState, fisher_diagonal, update_memory

__all__ = [
    "REPORT_NAME",
    "ContinualError",
    "ContinualMethodInfo",
    "ContinualState",
    "ContinueResult",
    "HeadError",
    "StepData",
    "StepResult",
    "StepTask",
    "average_accuracy",
    "backward_transfer",
    "continual_metrics",
    "continue_",
    "fisher_diagonal",
    "forgetting",
    "get_continual_method",
    "grow_head",
    "learn_step",
    "list_continual_methods",
    "matrix_array",
    "register_continual_method",
    "run_sequence",
    "start_state",
    "update_memory",
]
