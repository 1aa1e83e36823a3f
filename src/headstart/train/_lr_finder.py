"""The learning-rate range test (Smith 2017, fastai's ``lr_find``), for ``--lr auto``.

A short run from the current weights with the rate growing geometrically each step, from
``lo`` to ``hi``; the training loss is smoothed and the test stops once it exceeds four
times its minimum (diverged). The suggestion is the rate at the smoothed minimum divided
by ten (the "minimum / 10" rule): the largest rate still safely on the descending side.
The model, its BatchNorm statistics and the global random state are restored afterwards,
so the test changes nothing but the rate the real run uses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.train._engine import Objective, Stream, param_groups, prepare_stage_inplace
from headstart.train._schedule import Stage


@dataclass(frozen=True)
class RangeTest:
    """The rates tried, the smoothed losses, and the suggestion."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    suggestion: float

    def to_dict(self) -> dict[str, Any]:
        return {"lrs": list(self.lrs), "losses": list(self.losses), "suggestion": self.suggestion}


def suggest_lr(lrs: list[float], losses: list[float], fallback: float) -> float:
    """``lr_at(argmin(losses)) / 10``; ``fallback`` when fewer than 3 points were taken or
    the loss never fell below its first value."""
    if len(losses) < 3 or min(losses) >= losses[0]:
        return fallback
    return lrs[int(np.argmin(losses))] / 10.0


def lr_range_test(
    model: nn.Module,
    stage: Stage,
    streams: Mapping[str, Stream],
    objective: Objective,
    steps: int = 30,
    lo: float = 1e-6,
    hi: float = 1e-1,
    smoothing: float = 0.7,
    seed: int = 0,
) -> RangeTest:
    """Run the range test for ``stage`` (its trainable blocks and rate multipliers; the
    top rate sweeps ``lo`` to ``hi`` over at most ``steps`` steps) on the first stream's
    batches. Restores ``model`` and the global RNG before returning."""
    saved = copy.deepcopy(model.state_dict())
    rng_state = torch.get_rng_state()
    was_training = model.training
    prepare_stage_inplace(model, replace(stage, lr=lo))
    groups = param_groups(model, replace(stage, lr=1.0))  # each group's lr is its multiplier
    mults = [g["lr"] for g in groups]
    optimizer = torch.optim.AdamW(groups, weight_decay=stage.weight_decay)
    names = list(streams)
    rng = np.random.default_rng(seed)
    factor = (hi / lo) ** (1.0 / max(steps - 1, 1))
    lrs: list[float] = []
    losses: list[float] = []
    avg = 0.0
    model.train()
    step = 0
    try:
        while step < steps:
            for batch in streams[names[0]].batches(rng):
                lr = lo * factor**step
                for g, m in zip(optimizer.param_groups, mults, strict=True):
                    g["lr"] = lr * m
                out = objective(model, {names[0]: batch})
                loss = sum(out.losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[union-attr]
                optimizer.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    step = steps
                    break
                avg = smoothing * avg + (1 - smoothing) * value  # bias-corrected below
                unbiased = avg / (1 - smoothing ** (step + 1))
                lrs.append(lr)
                losses.append(unbiased)
                step += 1
                if unbiased > 4 * min(losses) or step >= steps:
                    step = steps
                    break
    finally:
        model.load_state_dict(saved)
        torch.set_rng_state(rng_state)
        model.train(was_training)
    return RangeTest(tuple(lrs), tuple(losses), suggest_lr(lrs, losses, stage.lr))


__all__ = ["RangeTest", "lr_range_test", "suggest_lr"]
