"""Training a backbone + head end to end on raw items (fine-tune stage, from scratch),
and predicting logits for raw items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._progress import track
from headstart.data._loader import iter_batches
from headstart.data._transforms import Augment
from headstart.surgery._model import TransferModel
from headstart.train._callbacks import Callback, EarlyStopping, History, ProgressBar
from headstart.train._engine import CrossEntropy, ItemStream, Objective, fit_stage
from headstart.train._lr_finder import RangeTest, lr_range_test
from headstart.train._schedule import Stage


def predict_logits(
    model: nn.Module,
    backbone: Any,
    items: Sequence[Any],
    modality: str,
    batch_size: int = 64,
    description: str | None = None,
) -> np.ndarray:
    """Logits for ``items`` (eval mode, no autograd), shape ``(N, n_classes)``."""
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    batches = iter_batches(backbone, items, modality, batch_size=batch_size)
    if description:
        batches = track(batches, (len(items) + batch_size - 1) // batch_size, description)
    with torch.inference_mode():
        for _, inputs in batches:
            out.append(model(inputs).float().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def item_validator(items: Sequence[Any], y: np.ndarray, modality: str):
    """``validate(model) -> {"val_loss", "val_acc"}`` on labelled raw items."""
    target = torch.from_numpy(np.asarray(y)).long()

    def validate(model: nn.Module) -> dict[str, float]:
        logits = torch.from_numpy(predict_logits(model, model.backbone, items, modality))
        loss = float(nn.functional.cross_entropy(logits, target))
        return {"val_loss": loss, "val_acc": float((logits.argmax(1) == target).float().mean())}

    return validate


def run_stage(
    model: TransferModel,
    stage: Stage,
    train: tuple[Sequence[Any], np.ndarray],
    val: tuple[Sequence[Any], np.ndarray],
    modality: str,
    augment: Augment | None = None,
    batch_size: int = 32,
    seed: int = 0,
    label_smoothing: float = 0.0,
    objective: Objective | None = None,
    extra_callbacks: Sequence[Callback] = (),
    resume: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` (in place) for one stage on raw items with the one loop
    (:func:`fit_stage`), early stopping on validation accuracy; the best epoch's weights
    are restored, where epoch 0 is the model as it entered (so a stage that does not help
    is undone). Without validation items the training items are monitored. Returns the
    per-epoch history, epoch 0 first. ``extra_callbacks`` run after history and early
    stopping (a :class:`~headstart.train.Checkpoint` goes there); ``resume`` continues
    from a checkpoint's loop state."""
    items, y = train
    val_items, y_val = val
    if len(val_items) == 0:  # no validation split: monitor the training data
        val_items, y_val = items, y
    history = History()
    callbacks: list[Callback] = [history, EarlyStopping(stage.patience, history), ProgressBar()]
    callbacks += list(extra_callbacks)
    stream = ItemStream(
        model.backbone,
        items,
        y,
        modality,
        batch_size,
        augment=augment if stage.augment else None,
        train=stage.augment,
    )
    fit_stage(
        model,
        stage,
        {"train": stream},
        objective or CrossEntropy(label_smoothing=label_smoothing),
        callbacks,
        item_validator(val_items, y_val, modality),
        seed=seed,
        resume=resume,
    )
    return history.rows


def find_lr(
    model: TransferModel,
    stage: Stage,
    train: tuple[Sequence[Any], np.ndarray],
    modality: str,
    augment: Augment | None = None,
    batch_size: int = 32,
    seed: int = 0,
    label_smoothing: float = 0.0,
) -> RangeTest:
    """The learning-rate range test (:func:`~headstart.train.lr_range_test`) for ``stage``
    on the training items, batched and augmented as :func:`run_stage` would."""
    stream = ItemStream(
        model.backbone,
        train[0],
        train[1],
        modality,
        batch_size,
        augment=augment if stage.augment else None,
        train=stage.augment,
    )
    return lr_range_test(
        model, stage, {"train": stream}, CrossEntropy(label_smoothing=label_smoothing), seed=seed
    )


__all__ = ["find_lr", "item_validator", "predict_logits", "run_stage"]
