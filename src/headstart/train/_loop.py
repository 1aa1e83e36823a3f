"""Training a backbone + head end to end on raw items (fine-tune stage, from scratch)."""

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
from headstart.surgery._freeze import freeze_inplace
from headstart.surgery._model import TransferModel
from headstart.train._early import EarlyStopping
from headstart.train._schedule import Stage


def param_groups(model: TransferModel, stage: Stage) -> list[dict[str, Any]]:
    """Optimizer groups: the head at ``stage.lr``, each trainable block at its own rate."""
    groups = [{"name": "head", "params": list(model.head.parameters()), "lr": stage.lr}]
    for name, block in model.backbone.blocks():
        if name in stage.trainable:
            params = [p for p in block.parameters() if p.requires_grad]
            if params:
                groups.append({"name": name, "params": params, "lr": stage.block_lr(name)})
    return groups


def prepare_stage_inplace(model: TransferModel, stage: Stage) -> None:
    """Freeze every backbone block not trained in ``stage``; the head always trains."""
    freeze_inplace(model.backbone, except_blocks=stage.trainable)
    for p in model.head.parameters():
        p.requires_grad_(True)


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


def _validate(
    model: nn.Module, items: Sequence[Any], y: np.ndarray, modality: str
) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``model`` on labelled items."""
    logits = torch.from_numpy(predict_logits(model, model.backbone, items, modality))
    target = torch.from_numpy(np.asarray(y)).long()
    loss = float(nn.functional.cross_entropy(logits, target))
    return loss, float((logits.argmax(1) == target).float().mean())


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
) -> list[dict[str, Any]]:
    """Train ``model`` (in place) for one stage with early stopping on validation accuracy;
    the best epoch's weights are restored, where epoch 0 is the model as it entered (so a
    stage that does not help is undone). Returns the per-epoch history, epoch 0 first."""
    prepare_stage_inplace(model, stage)
    opt = torch.optim.AdamW(param_groups(model, stage), weight_decay=stage.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(stage.max_epochs, 1))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    stopper = EarlyStopping(stage.patience, start_epoch=0)
    rng = np.random.default_rng(seed)
    items, y = train
    val_items, y_val = val
    if len(val_items) == 0:  # no validation split: monitor the training data
        val_items, y_val = items, y
    steps = (len(items) + batch_size - 1) // batch_size
    yt = torch.from_numpy(np.asarray(y)).long()
    val_loss, val_acc = _validate(model, val_items, y_val, modality)
    history: list[dict[str, Any]] = [
        {
            "stage": stage.name,
            "epoch": 0,
            "train_loss": None,
            "train_acc": None,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": 0.0,
        }
    ]
    stopper.update(val_acc, val_loss, model)  # the entering model competes too
    for epoch in range(1, stage.max_epochs + 1):
        start = time.perf_counter()
        model.train()
        total, correct, count = 0.0, 0, 0
        order = rng.permutation(len(items))
        batches = iter_batches(
            model.backbone,
            items,
            modality,
            batch_size,
            train=stage.augment,
            augment=augment if stage.augment else None,
            order=order,
        )
        desc = f"{stage.name} epoch {epoch}/{stage.max_epochs}"
        for idx, inputs in track(batches, steps, desc):
            target = yt[idx]
            logits = model(inputs)
            loss = loss_fn(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == target).sum())
            count += len(idx)
        sched.step()
        val_loss, val_acc = _validate(model, val_items, y_val, modality)
        history.append(
            {
                "stage": stage.name,
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "train_acc": correct / max(count, 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        if stopper.update(val_acc, val_loss, model):
            break
    stopper.restore(model)
    for row in history:
        row["best"] = row["epoch"] == stopper.best_epoch
    return history
