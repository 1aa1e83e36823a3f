"""Callbacks: what happens around the training loop, as objects any loop can call.

Keras' design (``keras/src/callbacks/callback.py``): a callback overrides the hooks it
needs; the loop (:func:`headstart.train.fit_stage`) calls every hook of every callback in
order. The loop's state is passed as a :class:`LoopState`; a callback stops training by
setting ``state.stop = True``. Early stopping, the history, the progress bar and
checkpoints are callbacks, so a new method gets them by passing them, not by copying code.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from headstart._progress import console, is_quiet

if TYPE_CHECKING:
    import torch

    from headstart.train._schedule import Stage


@dataclass
class LoopState:
    """What the loop exposes to callbacks; ``epoch`` 0 is the model as it entered."""

    model: nn.Module
    stage: Stage
    optimizer: torch.optim.Optimizer
    scheduler: Any
    steps_per_epoch: int
    epoch: int = 0
    stop: bool = False
    callbacks: list[Any] = field(default_factory=list)  # every callback of the loop, in order
    extra: dict[str, Any] = field(default_factory=dict)  # RNG and other resumable state


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, state: LoopState) -> None: ...
    def on_epoch_begin(self, state: LoopState) -> None: ...
    def on_train_batch_end(self, state: LoopState, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, state: LoopState, logs: dict[str, Any]) -> None: ...
    def on_train_end(self, state: LoopState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly (see :class:`Checkpoint`)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class History(Callback):
    """One row per epoch: ``stage``, ``epoch``, each loss term as ``train_<term>``, the
    summed ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds``."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def on_epoch_end(self, state: LoopState, logs: dict[str, Any]) -> None:
        self.rows.append({"stage": state.stage.name, "epoch": state.epoch, **logs})

    def state_dict(self) -> dict[str, Any]:
        return {"rows": copy.deepcopy(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state["rows"])


class EarlyStopping(Callback):
    """Stop when validation has not improved for ``patience`` epochs; keep the best
    weights and restore them at the end.

    Better means a higher ``val_acc``, or an equal one with a lower ``val_loss``. When
    the loop validates the model *entering* the stage (``evaluate_start``, epoch 0), it
    competes too, so a stage that only makes things worse is undone. ``best_epoch`` is
    marked in the :class:`History` rows passed as ``history`` (``"best": True``).
    """

    def __init__(self, patience: int = 5, history: History | None = None) -> None:
        self.patience = patience
        self.history = history
        self.best: tuple[float, float] | None = None
        self.best_epoch = 0
        self.epoch = 0
        self._state: dict[str, Any] | None = None

    def update(
        self, val_acc: float, val_loss: float, model: nn.Module, epoch: int | None = None
    ) -> bool:
        """Record an epoch's validation (epochs count from 1 unless ``epoch`` is given);
        ``True`` when training should stop."""
        self.epoch = self.epoch + 1 if epoch is None else epoch
        epoch = self.epoch
        if self.best is None or (val_acc, -val_loss) > (self.best[0], -self.best[1]):
            self.best = (val_acc, val_loss)
            self.best_epoch = epoch
            self._state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def on_epoch_end(self, state: LoopState, logs: dict[str, Any]) -> None:
        if self.update(logs["val_acc"], logs["val_loss"], state.model, state.epoch):
            state.stop = True

    def on_train_end(self, state: LoopState) -> None:
        self.restore(state.model)
        if self.history is not None:
            for row in self.history.rows:
                if row["stage"] == state.stage.name:
                    row["best"] = row["epoch"] == self.best_epoch

    def restore(self, model: nn.Module) -> None:
        if self._state is not None:
            model.load_state_dict(self._state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "weights": self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = tuple(state["best"]) if state["best"] is not None else None  # type: ignore[assignment]
        self.best_epoch = int(state["best_epoch"])
        self.epoch = self.best_epoch
        self._state = state["weights"]


class ProgressBar(Callback):
    """A transient bar per epoch on stderr and, with ``lines``, a summary line after each
    epoch (silent with ``set_quiet``)."""

    def __init__(self, description: str | None = None, lines: bool = True) -> None:
        self.description = description
        self.lines = lines
        self._bar: Any = None
        self._task: Any = None
        self._start = 0.0

    def on_epoch_begin(self, state: LoopState) -> None:
        self._start = time.perf_counter()
        if is_quiet() or state.steps_per_epoch <= 1:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        desc = self.description or state.stage.name
        self._bar = Progress(
            TextColumn(f"{desc} epoch {state.epoch}/{state.stage.max_epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=state.steps_per_epoch)

    def on_train_batch_end(self, state: LoopState, logs: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def on_epoch_end(self, state: LoopState, logs: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.lines and not is_quiet() and state.epoch > 0 and state.steps_per_epoch > 1:
            console.print(
                f"{self.description or state.stage.name} epoch {state.epoch}: "
                f"val acc {logs['val_acc']:.3f}, loss {logs['train_loss']:.3f}",
                highlight=False,
            )


__all__ = ["Callback", "EarlyStopping", "History", "LoopState", "ProgressBar"]
