"""Training: heads on cached features, staged fine-tuning, schedules as data."""

from headstart.train._early import EarlyStopping
from headstart.train._heads import fit_feature_head, fit_head_on_features, fit_logistic_head
from headstart.train._loop import param_groups, predict_logits, prepare_stage_inplace, run_stage
from headstart.train._schedule import (
    Schedule,
    Stage,
    feature_head_schedule,
    finetune_schedule,
    scratch_schedule,
)

__all__ = [
    "EarlyStopping",
    "Schedule",
    "Stage",
    "feature_head_schedule",
    "finetune_schedule",
    "fit_feature_head",
    "fit_head_on_features",
    "fit_logistic_head",
    "param_groups",
    "predict_logits",
    "prepare_stage_inplace",
    "run_stage",
    "scratch_schedule",
]
