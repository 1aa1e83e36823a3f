"""Training a backbone + head end to end on raw items (fine-tune stage, from scratch),
and predicting logits for raw items."""

from __future__ import annotations

import time
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
from headstart.train._engine import CrossEntropy, ItemStream, Objective, TensorStream, fit_stage
from headstart.train._lr_finder import RangeTest, lr_range_test
from headstart.train._prefix import (
    SuffixModel,
    activation_bytes,
    frozen_prefix,
    memory_budget,
    prefix_activations,
)
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
    precision: str = "fp32",
    notes: list[str] | None = None,
    cache_prefix: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model`` (in place) for one stage on raw items with the one loop
    (:func:`fit_stage`), early stopping on validation accuracy; the best epoch's weights
    are restored, where epoch 0 is the model as it entered (so a stage that does not help
    is undone). Without validation items the training items are monitored. Returns the
    per-epoch history, epoch 0 first. ``extra_callbacks`` run after history and early
    stopping (a :class:`~headstart.train.Checkpoint` goes there); ``resume`` continues
    from a checkpoint's loop state. ``precision``: ``auto``, ``fp32`` or ``bf16``
    (:mod:`headstart.train._precision`). With ``cache_prefix``, the blocks below the
    lowest trainable one run once (augmentation off) or under ``no_grad`` (augmentation
    on) (:mod:`headstart.train._prefix`). What was decided (precision, prefix) is
    appended to ``notes``."""
    items, y = train
    val_items, y_val = val
    if len(val_items) == 0:  # no validation split: monitor the training data
        val_items, y_val = items, y
    history = History()
    callbacks: list[Callback] = [history, EarlyStopping(stage.patience, history), ProgressBar()]
    callbacks += list(extra_callbacks)
    aug = augment if stage.augment else None
    stream: Any = ItemStream(model.backbone, items, y, modality, batch_size, aug, stage.augment)
    validate = item_validator(val_items, y_val, modality)
    net: nn.Module = model
    start = frozen_prefix(model, stage) if cache_prefix and objective is None else 0
    if start:
        net, stream, validate, note = _split_off_prefix(
            model, start, stage, stream, (val_items, y_val), aug is not None and aug.enabled
        )
        if notes is not None:
            notes.append(note)
    state = fit_stage(
        net,
        stage,
        {"train": stream},
        objective or CrossEntropy(label_smoothing=label_smoothing),
        callbacks,
        validate,
        seed=seed,
        resume=resume,
        precision=precision,
    )
    if notes is not None:
        choice = state.extra["precision"]
        notes.append(f"stage {stage.name} trained in {choice.used} ({choice.reason})")
    return history.rows


def _split_off_prefix(
    model: TransferModel,
    start: int,
    stage: Stage,
    stream: ItemStream,
    val: tuple[Sequence[Any], np.ndarray],
    augmented: bool,
) -> tuple[nn.Module, Any, Any, str]:
    """The model, stream, validator and a note for training only the blocks from
    ``start`` on (:mod:`headstart.train._prefix`): activations cached when not
    ``augmented`` and they fit the memory budget, else the prefix under ``no_grad``."""
    backbone = model.backbone
    names = backbone.block_names
    frozen = f"{names[0]}..{names[start - 1]}" if start > 1 else names[0]
    val_items, y_val = val
    same = val_items is stream.items
    n = len(stream.items) + (0 if same else len(val_items))
    need = n * activation_bytes(backbone, stream.items[0], stream.modality, start)
    budget = memory_budget()
    if augmented or need > budget:
        why = "augmentation on" if augmented else f"{need / 2**20:.0f} MiB > budget"
        note = f"stage {stage.name}: frozen blocks {frozen} run under no_grad each step ({why})"
        return (
            SuffixModel(model, start, raw=True),
            stream,
            item_validator(*val, stream.modality),
            note,
        )
    t = time.perf_counter()
    acts = prefix_activations(backbone, stream.items, stream.modality, start)
    val_acts = acts if same else prefix_activations(backbone, val_items, stream.modality, start)
    y = torch.from_numpy(np.asarray(stream.y)).long()
    note = (
        f"stage {stage.name}: frozen blocks {frozen} computed once for {n} items "
        f"({need / 2**20:.0f} MiB, {time.perf_counter() - t:.1f} s); the top blocks trained on them"
    )
    return (
        SuffixModel(model, start),
        TensorStream(acts, y, stream.batch_size),
        activation_validator(val_acts, y_val),
        note,
    )


def activation_validator(acts: torch.Tensor, y: np.ndarray, batch_size: int = 64):
    """``validate(model) -> {"val_loss", "val_acc"}`` on cached activations (a
    :class:`~headstart.train._prefix.SuffixModel`)."""
    target = torch.from_numpy(np.asarray(y)).long()

    def validate(model: nn.Module) -> dict[str, float]:
        with torch.inference_mode():
            logits = torch.cat(
                [model(acts[i : i + batch_size]).float() for i in range(0, len(acts), batch_size)]
            )
        loss = float(nn.functional.cross_entropy(logits, target))
        return {"val_loss": loss, "val_acc": float((logits.argmax(1) == target).float().mean())}

    return validate


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
