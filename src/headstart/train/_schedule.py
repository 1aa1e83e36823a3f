"""Training schedules as data: which blocks train at which stage, at which learning rate.

A :class:`Schedule` is built up front from the backbone's block names, so it can be
printed, saved in the bundle, and restored exactly; nothing is decided mid-training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One training stage.

    ``trainable``: backbone blocks that train in this stage (the head always trains);
    ``params``: parameter-name patterns (:func:`fnmatch.fnmatch`, e.g. ``"*.bias"``) that
    also train, wherever they are in the backbone (BitFit: biases only);
    ``lr``: the head's learning rate; ``lr_mult``: ``(block or pattern, multiplier)``
    pairs scaling ``lr`` per optimizer group; ``on_features``: train the head alone on
    cached features (the backbone is frozen, so one extraction serves every epoch);
    ``augment``: use the training augmentation; ``warmup``: the fraction of the stage's
    steps over which every rate rises linearly from 0 before the per-step cosine decay
    (0.3 makes it a one-cycle schedule).
    """

    name: str
    trainable: tuple[str, ...] = ()
    lr: float = 1e-3
    lr_mult: tuple[tuple[str, float], ...] = ()
    max_epochs: int = 30
    patience: int = 5
    weight_decay: float = 1e-4
    on_features: bool = False
    augment: bool = True
    params: tuple[str, ...] = ()
    warmup: float = 0.0

    def lr_factor(self, step: int, total: int) -> float:
        """Multiplier of every rate at optimizer step ``step`` of ``total``: linear warm-up
        over the first ``warmup * total`` steps, then ``(1 + cos(pi * t)) / 2`` with ``t``
        going from 0 to 1 over the rest."""
        import math

        warm = int(self.warmup * total)
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(total - warm, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    def block_lr(self, block: str) -> float:
        return self.lr * dict(self.lr_mult).get(block, 1.0)


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [dataclasses.asdict(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        stages = []
        for s in d["stages"]:
            s = dict(s)
            s["trainable"] = tuple(s["trainable"])
            s["params"] = tuple(s.get("params", ()))  # bundles of 0.1 have none
            s["lr_mult"] = tuple((b, float(m)) for b, m in s["lr_mult"])
            stages.append(Stage(**s))
        return cls(tuple(stages))


def finetune_schedule(
    blocks: Sequence[str],
    unfreeze: int | str = 2,
    head_lr: float = 1e-3,
    lr: float = 1e-4,
    decay: float = 0.5,
    head_epochs: int = 50,
    epochs: int = 10,
    patience: int = 3,
    warmup: float = 0.0,
    gradual: bool = False,
) -> Schedule:
    """The head alone to convergence on cached features (frozen base), then the top
    ``unfreeze`` blocks (``"all"`` for every block) with the head, at ``lr`` for the top
    block and ``lr * decay**i`` for the block ``i`` places below it, with ``warmup``.

    ``gradual`` (ULMFiT's gradual unfreezing): one epoch with the top block, one more with
    the next block also unfrozen, and so on; the last stage, with every block of ``top``,
    gets what is left of ``epochs``.
    """
    names = list(reversed(blocks))
    top = names if unfreeze == "all" else names[: int(unfreeze)]
    head = Stage(
        "head", (), head_lr, (), head_epochs, max(patience, 5), on_features=True, augment=False
    )
    stages = [head]
    mult = tuple((b, decay**i) for i, b in enumerate(top))
    if gradual and len(top) > 1:
        for i in range(1, len(top)):
            part = tuple(top[:i])
            stages.append(Stage(f"unfreeze{i}", part, lr, mult[:i], 1, 1, warmup=warmup))
        rest = max(epochs - (len(top) - 1), 1)
        stages.append(Stage("finetune", tuple(top), lr, mult, rest, patience, warmup=warmup))
    elif top:
        stages.append(Stage("finetune", tuple(top), lr, mult, epochs, patience, warmup=warmup))
    return Schedule(tuple(stages))


def scratch_schedule(
    blocks: Sequence[str], lr: float = 1e-3, epochs: int = 30, patience: int = 5
) -> Schedule:
    """One stage: every block trains from random initialisation at ``lr``."""
    return Schedule((Stage("scratch", tuple(blocks), lr, (), epochs, patience),))


def feature_head_schedule(lr: float = 1e-3, epochs: int = 100, patience: int = 10) -> Schedule:
    """The extract path's MLP head: one head-only stage on cached features."""
    return Schedule((Stage("head", (), lr, (), epochs, patience, on_features=True, augment=False),))
