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
    ``augment``: use the training augmentation.
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
) -> Schedule:
    """Two stages: the head alone to convergence on cached features (frozen base), then the
    top ``unfreeze`` blocks (``"all"`` for every block) with the head, at ``lr`` for the top
    block and ``lr * decay**i`` for the block ``i`` places below it."""
    names = list(reversed(blocks))
    top = names if unfreeze == "all" else names[: int(unfreeze)]
    head = Stage(
        "head", (), head_lr, (), head_epochs, max(patience, 5), on_features=True, augment=False
    )
    stages = [head]
    if top:
        mult = tuple((b, decay**i) for i, b in enumerate(top))
        stages.append(Stage("finetune", tuple(top), lr, mult, epochs, patience))
    return Schedule(tuple(stages))


def scratch_schedule(
    blocks: Sequence[str], lr: float = 1e-3, epochs: int = 30, patience: int = 5
) -> Schedule:
    """One stage: every block trains from random initialisation at ``lr``."""
    return Schedule((Stage("scratch", tuple(blocks), lr, (), epochs, patience),))


def feature_head_schedule(lr: float = 1e-3, epochs: int = 100, patience: int = 10) -> Schedule:
    """The extract path's MLP head: one head-only stage on cached features."""
    return Schedule((Stage("head", (), lr, (), epochs, patience, on_features=True, augment=False),))
