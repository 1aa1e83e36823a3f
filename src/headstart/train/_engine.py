"""The one training loop: ``fit_stage(model, stage, streams, objective, callbacks)``.

Every gradient-trained thing in headstart goes through :func:`fit_stage`: a head on cached
features, the end-to-end fine-tuning stage, training from scratch, and every method's
stages. What varies is passed in:

* **streams**: named sources of batches (:class:`TensorStream` over cached features,
  :class:`ItemStream` over raw items); the first one defines the epoch, the others are
  cycled alongside it, so a stage can draw source and target batches together;
* an **objective**: ``objective(model, batches) -> StepOutput`` with *named* loss terms
  (``{"ce": ...}``; a domain-adaptation method adds ``{"domain": ...}``); the loop sums
  them and logs each term per epoch;
* **callbacks** (:mod:`headstart.train._callbacks`): history, early stopping, progress,
  checkpoints;
* the **stage** (:class:`~headstart.train.Stage`): which blocks and which parameter-name
  patterns train, at which learning rates. Optimizer groups are built once, up front.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from headstart.data._loader import iter_batches
from headstart.data._transforms import Augment
from headstart.surgery._freeze import freeze_inplace
from headstart.train._callbacks import Callback, LoopState
from headstart.train._precision import PrecisionChoice, choose_precision
from headstart.train._schedule import Stage

# -- streams ------------------------------------------------------------------------------


@dataclass
class Batch:
    """Rows ``index`` of a stream: model ``inputs`` and, for labelled streams, ``target``."""

    index: np.ndarray
    inputs: Any
    target: torch.Tensor | None


class Stream(Protocol):
    def __len__(self) -> int: ...  # batches per epoch
    def batches(self, rng: np.random.Generator) -> Iterator[Batch]: ...


@dataclass
class TensorStream:
    """Mini-batches of an in-memory tensor (cached features), shuffled each epoch."""

    x: torch.Tensor
    y: torch.Tensor | None = None
    batch_size: int = 64

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def batches(self, rng: np.random.Generator) -> Iterator[Batch]:
        order = rng.permutation(len(self.x))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            t = torch.from_numpy(idx)
            yield Batch(idx, self.x[t], None if self.y is None else self.y[t])


@dataclass
class ItemStream:
    """Mini-batches of raw items (image paths, texts) collated by ``backbone``, with the
    training augmentation when ``augment`` is given; decoding overlaps compute."""

    backbone: Any
    items: Sequence[Any]
    y: np.ndarray | None
    modality: str
    batch_size: int = 32
    augment: Augment | None = None
    train: bool = True

    def __len__(self) -> int:
        return (len(self.items) + self.batch_size - 1) // self.batch_size

    def batches(self, rng: np.random.Generator) -> Iterator[Batch]:
        order = rng.permutation(len(self.items))
        yt = None if self.y is None else torch.from_numpy(np.asarray(self.y)).long()
        for idx, inputs in iter_batches(
            self.backbone,
            self.items,
            self.modality,
            self.batch_size,
            train=self.train,
            augment=self.augment,
            order=order,
        ):
            index = np.asarray(idx)
            yield Batch(index, inputs, None if yt is None else yt[torch.from_numpy(index)])


# -- objectives ---------------------------------------------------------------------------


@dataclass
class StepOutput:
    """What an objective returns for one step: named loss terms (summed by the loop), and
    the logits and targets of the labelled batch for the training accuracy."""

    losses: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None
    target: torch.Tensor | None = None


class Objective(Protocol):
    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput: ...


@dataclass
class CrossEntropy:
    """``{"ce": cross_entropy(model(x), y)}`` on the labelled stream ``stream``."""

    stream: str = "train"
    label_smoothing: float = 0.0

    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput:
        b = batches[self.stream]
        assert b.target is not None, f"stream {self.stream!r} has no labels"
        logits = model(b.inputs)
        loss = nn.functional.cross_entropy(logits, b.target, label_smoothing=self.label_smoothing)
        return StepOutput({"ce": loss}, logits, b.target)


# -- parameter groups ---------------------------------------------------------------------


def _backbone_and_head(model: nn.Module) -> tuple[Any, nn.Module]:
    """``(backbone, head)`` of a TransferModel; a bare module is all head."""
    return getattr(model, "backbone", None), getattr(model, "head", model)


def matching_parameters(module: nn.Module, patterns: Sequence[str]) -> list[tuple[str, Any]]:
    """``(name, parameter)`` for each parameter whose name matches one of the
    :func:`fnmatch.fnmatch` ``patterns`` (``"*.bias"``, ``"*norm*"``, ``"*lora_*"``)."""
    return [
        (n, p) for n, p in module.named_parameters() if any(fnmatch.fnmatch(n, q) for q in patterns)
    ]


def prepare_stage_inplace(model: nn.Module, stage: Stage) -> None:
    """Freeze every backbone parameter not trained in ``stage`` (not in its ``trainable``
    blocks, not matching its ``params`` patterns); the head always trains. In place."""
    backbone, head = _backbone_and_head(model)
    if backbone is not None:
        freeze_inplace(backbone, except_blocks=stage.trainable)
        for _, p in matching_parameters(backbone, stage.params):
            p.requires_grad_(True)
    for p in head.parameters():
        p.requires_grad_(True)


def param_groups(model: nn.Module, stage: Stage) -> list[dict[str, Any]]:
    """Optimizer groups, built once before training: the head at ``stage.lr``, each
    trainable block at its own rate (``stage.block_lr``), then the parameters matching
    each of ``stage.params`` (outside those blocks) at ``stage.block_lr(pattern)``."""
    backbone, head = _backbone_and_head(model)
    groups = [{"name": "head", "params": list(head.parameters()), "lr": stage.lr}]
    if backbone is None:
        return groups
    seen: set[int] = set()
    for name, block in backbone.blocks():
        if name in stage.trainable:
            params = [p for p in block.parameters() if p.requires_grad]
            seen.update(id(p) for p in params)
            if params:
                groups.append({"name": name, "params": params, "lr": stage.block_lr(name)})
    for pattern in stage.params:
        params = [p for _, p in matching_parameters(backbone, [pattern]) if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"name": pattern, "params": params, "lr": stage.block_lr(pattern)})
    return groups


# -- the loop -----------------------------------------------------------------------------

Validate = Callable[[nn.Module], dict[str, float]]  # -> {"val_loss": ..., "val_acc": ...}


def _call(callbacks: Sequence[Callback], hook: str, *args: Any) -> None:
    for cb in callbacks:
        getattr(cb, hook)(*args)


def fit_stage(
    model: nn.Module,
    stage: Stage,
    streams: Mapping[str, Stream],
    objective: Objective,
    callbacks: Sequence[Callback] = (),
    validate: Validate | None = None,
    seed: int = 0,
    evaluate_start: bool = True,
    resume: dict[str, Any] | None = None,
    precision: str | PrecisionChoice = "fp32",
) -> LoopState:
    """Train ``model`` (in place) for one ``stage``.

    Each epoch draws every batch of the first stream, zipped with batches of the other
    streams (cycled), calls ``objective``, sums its loss terms and steps AdamW (weight
    decay ``stage.weight_decay``), every rate scaled per step by
    :meth:`Stage.lr_factor` (warm-up, then cosine over ``stage.max_epochs`` epochs).
    After each epoch ``validate(model)`` gives ``val_loss`` / ``val_acc`` (the training
    loss and accuracy when ``validate`` is ``None``); callbacks see every epoch's logs.
    With ``evaluate_start`` the entering model is validated first as epoch 0.
    ``resume``: the loop state a :class:`~headstart.train.Checkpoint` saved, to continue
    after its epoch with the same optimizer, schedule and random state.
    ``precision``: ``fp32``, ``bf16`` (autocast of each step's forward pass and loss) or
    ``auto`` (:mod:`headstart.train._precision`: a probe step on a native-bf16 CPU); the
    choice is ``state.extra["precision"]``.
    """
    prepare_stage_inplace(model, stage)
    optimizer = torch.optim.AdamW(param_groups(model, stage), weight_decay=stage.weight_decay)
    names = list(streams)
    main = streams[names[0]]
    total = max(stage.max_epochs, 1) * max(len(main), 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: stage.lr_factor(step, total)
    )
    state = LoopState(model, stage, optimizer, scheduler, len(main), callbacks=list(callbacks))
    rng = np.random.default_rng(seed)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        rng.bit_generator.state = resume["rng"]
        state.epoch = int(resume["epoch"])
        state.stop = bool(resume.get("stop", False))
        for cb, cb_state in zip(callbacks, resume["callbacks"], strict=True):
            cb.load_state_dict(cb_state)
    state.extra["rng"] = rng
    if not isinstance(precision, PrecisionChoice):
        precision = choose_precision(precision, _probe_step(model, streams, objective, seed))
    state.extra["precision"] = precision
    _call(callbacks, "on_train_begin", state)
    if resume is None and evaluate_start:
        logs = {"train_loss": None, "train_acc": None, **_validate(model, validate), "seconds": 0.0}
        _call(callbacks, "on_epoch_end", state, logs)
    others = {n: _cycle(streams[n], rng) for n in names[1:]}
    while state.epoch < stage.max_epochs and not state.stop:
        state.epoch += 1
        start = time.perf_counter()
        _call(callbacks, "on_epoch_begin", state)
        model.train()
        sums: dict[str, float] = {}
        correct = count = 0
        for batch in main.batches(rng):
            batches = {names[0]: batch, **{n: next(it) for n, it in others.items()}}
            with precision.autocast():
                out = objective(model, batches)
            loss = sum(v.float() for v in out.losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            optimizer.step()
            scheduler.step()
            n = len(batch.index)
            for term, value in out.losses.items():
                sums[term] = sums.get(term, 0.0) + float(value.detach()) * n
            if out.logits is not None and out.target is not None:
                correct += int((out.logits.argmax(1) == out.target).sum())
            count += n
            _call(callbacks, "on_train_batch_end", state, {"loss": float(loss.detach())})
        logs: dict[str, Any] = {f"train_{t}": v / max(count, 1) for t, v in sums.items()}
        logs["train_loss"] = sum(sums.values()) / max(count, 1)
        logs["train_acc"] = correct / max(count, 1)
        logs.update(_validate(model, validate, logs))
        logs["seconds"] = time.perf_counter() - start
        _call(callbacks, "on_epoch_end", state, logs)
    _call(callbacks, "on_train_end", state)
    return state


def _probe_step(
    model: nn.Module, streams: Mapping[str, Stream], objective: Objective, seed: int
) -> Callable[[bool], float]:
    """``step(bf16) -> seconds`` of one forward + backward pass on a first batch of every
    stream (drawn with a generator of its own, so the run's order is untouched), run twice
    and the second timed; weights, gradients, BatchNorm statistics and torch's random
    state are restored after each, so probing changes nothing."""
    drawn: dict[str, Batch] = {}

    def step(bf16: bool) -> float:
        if not drawn:  # only when probed: drawing an item batch decodes it
            rng = np.random.default_rng(seed + 1)
            drawn.update({n: next(iter(s.batches(rng))) for n, s in streams.items()})
        batches = drawn
        saved, rng_state = copy.deepcopy(model.state_dict()), torch.get_rng_state()
        was_training = model.training
        model.train()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        seconds = 0.0
        for _ in range(2):
            t = time.perf_counter()
            with ctx:
                out = objective(model, batches)
            sum(v.float() for v in out.losses.values()).backward()  # type: ignore[union-attr]
            seconds = time.perf_counter() - t
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        model.train(was_training)
        torch.set_rng_state(rng_state)
        return seconds

    return step


def _validate(
    model: nn.Module, validate: Validate | None, logs: dict[str, Any] | None = None
) -> dict[str, float]:
    if validate is None:  # no validation data: monitor the training loss and accuracy
        logs = logs or {}
        return {"val_loss": logs.get("train_loss") or 0.0, "val_acc": logs.get("train_acc") or 0.0}
    was_training = model.training
    model.eval()
    result = validate(model)
    model.train(was_training)
    return result


def _cycle(stream: Stream, rng: np.random.Generator) -> Iterator[Batch]:
    while True:
        yield from stream.batches(rng)


__all__ = [
    "Batch",
    "CrossEntropy",
    "ItemStream",
    "Objective",
    "StepOutput",
    "Stream",
    "TensorStream",
    "fit_stage",
    "matching_parameters",
    "param_groups",
    "prepare_stage_inplace",
]
