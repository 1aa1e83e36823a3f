"""Epoch checkpoints that a killed run resumes from, exactly, with no pickle.

A checkpoint is a folder: ``tensors.safetensors`` (model, optimizer moments, the best
weights early stopping keeps, the torch RNG) and ``state.json`` (everything else: stage
and epoch, scheduler, the loop's shuffling RNG, callback states, and what the caller
adds in ``meta``). It is written atomically after every epoch, so a ``kill -9`` leaves
either the previous checkpoint or the new one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._io import atomic_dir, atomic_write_json
from headstart.train._callbacks import Callback, LoopState

TENSORS = "tensors.safetensors"
STATE = "state.json"


def _encode(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, tensors, f"{path}/{k}") for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [_encode(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj


def save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts / lists of tensors and JSON values) to ``folder``."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, tensors, "")
    with atomic_dir(folder) as tmp:
        save_file(tensors, str(tmp / TENSORS))
        atomic_write_json(tmp / STATE, encoded)


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The state :func:`save_checkpoint` wrote, or ``None`` when there is none."""
    from safetensors.torch import load_file

    if not (folder / STATE).is_file():
        return None
    tensors = load_file(str(folder / TENSORS))
    return _decode(json.loads((folder / STATE).read_text(encoding="utf-8")), tensors)


def rng_states() -> dict[str, Any]:
    """The global random states a training epoch draws from (torch, numpy, Python)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    p = states["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


class Checkpoint(Callback):
    """After every epoch, save what :func:`~headstart.train.fit_stage` needs to resume:
    the model, optimizer, scheduler, random states and the state of every callback of
    the loop (this one included, in order), plus ``meta``. Pass it last."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.meta = meta

    def on_epoch_end(self, state: LoopState, logs: dict[str, Any]) -> None:
        if state.epoch == 0:
            return
        save_checkpoint(
            self.folder,
            {
                "meta": self.meta,
                "epoch": state.epoch,
                "stop": state.stop,
                "model": state.model.state_dict(),
                "optimizer": state.optimizer.state_dict(),
                "scheduler": state.scheduler.state_dict(),
                "rng": state.extra["rng"].bit_generator.state,
                "global_rng": rng_states(),
                "callbacks": [cb.state_dict() for cb in state.callbacks],
            },
        )


__all__ = ["Checkpoint", "load_checkpoint", "rng_states", "save_checkpoint", "set_rng_states"]
