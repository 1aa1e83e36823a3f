"""Multi-task learning on frozen features: one shared trunk, one head per task.

:func:`fit_multitask` trains a :class:`MultiTaskNet` with a weighting of the task losses
(``equal``, ``uncertainty``, ``pcgrad``, ``gradnorm``; missing labels masked);
:func:`compare_multitask` puts it beside single-task models on the same splits and
reports :math:`\\Delta_m` (:func:`delta_m`), flagging tasks that lost from sharing.
:func:`fit_multi` does it all from a table or several datasets and writes a bundle of
kind ``multitask`` (:func:`load_multitask`, or :func:`headstart.load`).
"""

from headstart.multitask._api import MultiTaskResult, fit_multi
from headstart.multitask._bundle import MultiTaskPredictor, load_multitask
from headstart.multitask._compare import compare_multitask
from headstart.multitask._data import TaskData, dataset_tasks, table_tasks
from headstart.multitask._metrics import delta_m, masked_accuracy, relative_gains
from headstart.multitask._registry import MultiTaskConfig, list_multitask_methods
from headstart.multitask._train import (
    GRADNORM_ALPHA,
    WEIGHTINGS,
    MultiTaskError,
    MultiTaskFit,
    MultiTaskNet,
    MultiTaskObjective,
    encode_tasks,
    fit_multitask,
    gradnorm_loss,
    masked_ce,
    pcgrad_combine,
)

__all__ = [
    "GRADNORM_ALPHA",
    "WEIGHTINGS",
    "MultiTaskConfig",
    "MultiTaskError",
    "MultiTaskFit",
    "MultiTaskNet",
    "MultiTaskObjective",
    "MultiTaskPredictor",
    "MultiTaskResult",
    "TaskData",
    "compare_multitask",
    "dataset_tasks",
    "delta_m",
    "encode_tasks",
    "fit_multi",
    "fit_multitask",
    "gradnorm_loss",
    "list_multitask_methods",
    "load_multitask",
    "masked_accuracy",
    "masked_ce",
    "pcgrad_combine",
    "relative_gains",
    "table_tasks",
]
