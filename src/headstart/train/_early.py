"""Early stopping that keeps the best weights seen (by validation accuracy, then loss)."""

from __future__ import annotations

import copy

from torch import nn


class EarlyStopping:
    """Call :meth:`update` after each epoch; it returns ``True`` when training should stop.

    An epoch is better when its validation accuracy is higher, or equal with a lower
    validation loss. Updates are numbered from ``start_epoch``: ``start_epoch=0`` lets the
    model *entering* a stage compete, so a stage that only makes things worse is undone.
    The best epoch's ``state_dict`` is kept in memory; :meth:`restore` loads it back.
    """

    def __init__(self, patience: int = 5, start_epoch: int = 1) -> None:
        self.patience = patience
        self.best: tuple[float, float] | None = None
        self.best_epoch = start_epoch - 1
        self.epoch = start_epoch - 1
        self._state: dict | None = None

    def update(self, val_acc: float, val_loss: float, model: nn.Module) -> bool:
        self.epoch += 1
        if self.best is None or (val_acc, -val_loss) > (self.best[0], -self.best[1]):
            self.best = (val_acc, val_loss)
            self.best_epoch = self.epoch
            self._state = copy.deepcopy(model.state_dict())
        return self.epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self._state is not None:
            model.load_state_dict(self._state)
