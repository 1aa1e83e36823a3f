"""Training: one loop (``fit_stage``) with streams, objectives and callbacks; heads on
cached features; schedules as data; checkpoints."""

from headstart.train._callbacks import Callback, EarlyStopping, History, LoopState, ProgressBar
from headstart.train._checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from headstart.train._engine import (
    Batch,
    CrossEntropy,
    ItemStream,
    Objective,
    StepOutput,
    Stream,
    TensorStream,
    fit_stage,
    matching_parameters,
    param_groups,
    prepare_stage_inplace,
)
from headstart.train._heads import fit_feature_head, fit_head_on_features, fit_logistic_head
from headstart.train._loop import item_validator, predict_logits, run_stage
from headstart.train._schedule import (
    Schedule,
    Stage,
    feature_head_schedule,
    finetune_schedule,
    scratch_schedule,
)

__all__ = [
    "Batch",
    "Callback",
    "Checkpoint",
    "CrossEntropy",
    "EarlyStopping",
    "History",
    "ItemStream",
    "LoopState",
    "Objective",
    "ProgressBar",
    "Schedule",
    "Stage",
    "StepOutput",
    "Stream",
    "TensorStream",
    "feature_head_schedule",
    "finetune_schedule",
    "fit_feature_head",
    "fit_head_on_features",
    "fit_logistic_head",
    "fit_stage",
    "item_validator",
    "load_checkpoint",
    "matching_parameters",
    "param_groups",
    "predict_logits",
    "prepare_stage_inplace",
    "run_stage",
    "save_checkpoint",
    "scratch_schedule",
]
