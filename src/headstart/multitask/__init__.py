"""Multi-task learning on frozen features: one shared trunk, one head per task.

:func:`fit_multitask` trains a :class:`MultiTaskNet` with a weighting of the task losses
(``equal``, ``uncertainty``, ``pcgrad``; missing labels masked); :func:`compare_multitask`
puts it beside single-task models on the same splits and reports :math:`\\Delta_m`
(:func:`delta_m`), flagging tasks that lost from sharing.
"""

from headstart.multitask._api import MultiTaskPredictor, MultiTaskResult, fit_multi, load_multitask
from headstart.multitask._compare import compare_multitask
from headstart.multitask._metrics import delta_m, masked_accuracy, relative_gains
from headstart.multitask._train import (
    WEIGHTINGS,
    MultiTaskError,
    MultiTaskFit,
    MultiTaskNet,
    MultiTaskObjective,
    encode_tasks,
    fit_multitask,
    masked_ce,
    pcgrad_combine,
)

__all__ = [
    "WEIGHTINGS",
    "MultiTaskError",
    "MultiTaskFit",
    "MultiTaskNet",
    "MultiTaskObjective",
    "MultiTaskPredictor",
    "MultiTaskResult",
    "compare_multitask",
    "delta_m",
    "encode_tasks",
    "fit_multi",
    "fit_multitask",
    "load_multitask",
    "masked_accuracy",
    "masked_ce",
    "pcgrad_combine",
    "relative_gains",
]
