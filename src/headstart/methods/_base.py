"""What a method receives (:class:`FitContext`), returns (:class:`MethodResult`), and the
pieces most methods share: cached features, a schedule run stage by stage with
checkpoints, logits of a feature head.

A method never mutates what it is given: it asks the context for a *new* backbone
(:meth:`FitContext.backbone`) and builds its model around it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from headstart._errors import UserError
from headstart._progress import say
from headstart.cache._store import FeatureStore
from headstart.data._dataset import SPLITS, LabeledData
from headstart.surgery._model import TransferModel
from headstart.train._checkpoint import Checkpoint, load_checkpoint, set_rng_states
from headstart.train._heads import Selection, fit_head_on_features
from headstart.train._loop import find_lr, run_stage
from headstart.train._schedule import Schedule
from headstart.zoo._backbone import Backbone
from headstart.zoo._registry import create_backbone
from headstart.zoo._spec import BackboneSpec

if TYPE_CHECKING:
    from headstart._options import RunOptions


class FrozenBackboneError(UserError, ValueError):
    """A method that trains the backbone was asked to run on a frozen feature extractor."""


TRAINS_BACKBONE = ("scratch", "finetune", "bitfit", "lora")  # those calling trainable_backbone


@dataclass
class FitContext:
    """Everything a method may use: the data (split), the run options, the resolved
    source model spec, the feature cache, a dict to record timings in, and where to keep
    an epoch checkpoint (``None``: no checkpoints) and whether to resume from it."""

    data: LabeledData
    options: RunOptions
    spec: BackboneSpec
    store: FeatureStore
    timings: dict[str, float] = field(default_factory=dict)
    checkpoint_dir: Path | None = None
    resume: bool = False

    def backbone(self, pretrained: bool = True) -> Backbone:
        """A new backbone for the run's model, cut at ``options.layer``; the source
        task's classifier is never part of it."""
        t = time.perf_counter()
        o = self.options
        backbone = create_backbone(
            self.spec, pretrained=pretrained, layer=o.layer, weights=o.weights
        )
        backbone.pop_source_head_inplace()
        self.timings["load_model"] = self.timings.get("load_model", 0.0) + time.perf_counter() - t
        return backbone

    def trainable_backbone(self, method: str, pretrained: bool = True) -> Backbone:
        """:meth:`backbone` for a method that trains it (``method`` names it in the error):
        a frozen feature extractor (``spec.extra["frozen"]``: a TFLite graph with no
        weights to train, and no random form) stops with :class:`FrozenBackboneError`."""
        if self.spec.extra.get("frozen"):
            raise FrozenBackboneError(
                f"{method}: {self.spec.name} is a frozen feature extractor (no trainable "
                "weights, no random initialisation); use --strategy extract, or a trainable "
                "model (see `headstart models`)"
            )
        return self.backbone(pretrained=pretrained)

    def features(self, backbone: Backbone, splits: Sequence[str] = SPLITS) -> dict[str, np.ndarray]:
        """Features of each split from one cache lookup (one fingerprint, one read)."""
        t = time.perf_counter()
        data = self.data
        idx = {s: data.indices(s) for s in splits}  # type: ignore[arg-type]
        order = np.concatenate([idx[s] for s in splits])
        items = [data.items[i] for i in order]
        keys = [data.keys[i] for i in order]
        feats = self.store.features(backbone, items, keys, data.modality)
        bounds = np.cumsum([0] + [len(idx[s]) for s in splits])
        self.timings["extract_features"] = time.perf_counter() - t
        return {s: feats[bounds[k] : bounds[k + 1]] for k, s in enumerate(splits)}

    def labels(self, split: str) -> np.ndarray:
        return self.data.labels[self.data.indices(split)]  # type: ignore[arg-type]


@dataclass
class MethodResult:
    """What a method returns. ``model``: the trained network to bundle (``None`` for a
    baseline that is not a torch model); ``logits``: splits it already scored (the rest
    are scored by running ``model``); ``trainable``: trained parameters per stage;
    ``description``: what the model is, for reports (default: the source model);
    ``selection``: how the final setting was chosen (a refit model has trained on the
    validation split, and the selection's score is the honest estimate); ``notes``: what
    the method decided that a user must know (shown in the report); ``bundle``: entries the
    method adds to ``headstart.json`` (LoRA: ``"adapter"``, how its adapters are saved)."""

    model: nn.Module | None
    history: list[dict[str, Any]]
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    schedule: Schedule | None = None
    trainable: dict[str, int] = field(default_factory=dict)
    description: str | None = None
    selection: Selection | None = None
    notes: list[str] = field(default_factory=list)
    bundle: dict[str, Any] = field(default_factory=dict)


class Method:
    """Base class of a method: ``__init__`` stores the config; :meth:`fit` trains."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def fit(self, ctx: FitContext) -> MethodResult:
        raise NotImplementedError


def head_logits(head: nn.Module, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Logits of a feature head on each split's cached features."""
    head.eval()
    with torch.inference_mode():
        return {s: head(torch.from_numpy(f)).numpy() for s, f in features.items()}


def train_schedule(
    ctx: FitContext,
    model: TransferModel,
    schedule: Schedule,
    augment: Any,
    label_smoothing: float = 0.0,
    first: int = 0,
    precision: str = "fp32",
    notes: list[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Run ``schedule`` on ``model`` (in place), stage by stage: a stage ``on_features``
    fits the head on cached features; any other runs end to end on raw items. With a
    checkpoint folder, every end-to-end epoch is checkpointed, and ``ctx.resume``
    continues from the checkpoint (finished stages are not run again). Stages before
    ``first`` are taken as done (the caller ran them). ``precision`` and ``notes``: as
    :func:`~headstart.train.run_stage` (what each end-to-end stage ran in, and whether its
    frozen lower blocks were cached, is appended to ``notes``)."""
    data, o = ctx.data, ctx.options
    history: list[dict[str, Any]] = []
    trainable: dict[str, int] = {}
    start, resume = first, None
    saved = load_checkpoint(ctx.checkpoint_dir) if ctx.resume and ctx.checkpoint_dir else None
    if ctx.resume and saved is None:
        say(f"[yellow]--resume[/]: no checkpoint at {ctx.checkpoint_dir}; starting from the top")
    if saved is not None:
        if Schedule.from_dict(saved["meta"]["schedule"]) != schedule:
            raise ValueError(
                f"{ctx.checkpoint_dir}: the checkpoint was made with other options; "
                "run again without --resume"
            )
        start, resume = int(saved["meta"]["stage_index"]), saved
        name = schedule.stages[start].name
        say(f"resuming from {ctx.checkpoint_dir}: stage {name}, after epoch {saved['epoch']}")
        history, trainable = list(saved["meta"]["history"]), dict(saved["meta"]["trainable"])
        model.load_state_dict(saved["model"])
        set_rng_states(saved["global_rng"])
    train = data.take("train")[:2]
    val = data.take("val")[:2]
    for i, stage in enumerate(schedule.stages):
        if i < start:
            continue
        t = time.perf_counter()
        if stage.on_features:
            feats = ctx.features(model.backbone, ("train", "val"))
            t = time.perf_counter()
            history += fit_head_on_features(
                model.head, stage, feats["train"], train[1], feats["val"], val[1], o.seed
            ).history
            trainable[stage.name] = sum(p.numel() for p in model.head.parameters())
        else:
            extra = []
            if ctx.checkpoint_dir is not None:
                meta = {
                    "stage_index": i,
                    "schedule": schedule.to_dict(),
                    "history": history,
                    "trainable": trainable,
                }
                extra = [Checkpoint(ctx.checkpoint_dir, meta)]
            rows = run_stage(
                model,
                stage,
                train,
                val,
                data.modality,
                augment,
                o.batch_size,
                o.seed,
                label_smoothing=label_smoothing,
                extra_callbacks=extra,
                resume=resume if i == start else None,
                precision=precision,
                notes=notes,
            )
            history += rows
            trainable[stage.name] = model.trainable_parameters()
        ctx.timings[f"train_{stage.name}"] = time.perf_counter() - t
    return history, trainable


@dataclass
class EndToEnd:
    """What :func:`train_end_to_end` returns: the schedule actually run (with the found
    rate under ``lr="auto"``), its history, trained parameters per stage, the range
    test (or ``None``) and notes for the report."""

    schedule: Schedule
    history: list[dict[str, Any]]
    trainable: dict[str, int]
    range_test: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def result(self, model: nn.Module, selection: Selection | None = None) -> MethodResult:
        """The :class:`MethodResult` of this run for ``model``."""
        return MethodResult(
            model,
            self.history,
            {},
            self.schedule,
            self.trainable,
            selection=selection,
            notes=self.notes,
        )


def train_end_to_end(
    ctx: FitContext,
    model: TransferModel,
    make_schedule: Callable[[float], Schedule],
    lr: float | str,
    label_smoothing: float = 0.0,
    placeholder: float = 1e-4,
    after_head: Callable[[], None] | None = None,
    precision: str = "auto",
) -> EndToEnd:
    """Run ``make_schedule(lr)`` (stage 0: the head on cached features; then end-to-end
    stages) with :func:`train_schedule`. With ``lr="auto"`` the head stage runs first,
    then the learning-rate range test on stage 1 (:func:`~headstart.train.find_lr`)
    gives the rate, and the rest runs with ``make_schedule(found)``. ``after_head`` is
    called between the head stage and the end-to-end ones (LoRA injects its adapters
    there, so the head stage reads the source model's cached features). ``precision``
    of the end-to-end stages: ``auto``, ``fp32`` or ``bf16``
    (:mod:`headstart.train._precision`); the choice is in the notes."""
    o = ctx.options
    notes: list[str] = []
    kw: dict[str, Any] = {"precision": precision, "notes": notes}
    if lr != "auto" and after_head is None:
        schedule = make_schedule(float(lr))
        history, trainable = train_schedule(ctx, model, schedule, o.augment, label_smoothing, **kw)
        return EndToEnd(schedule, history, trainable, notes=notes)
    draft = make_schedule(placeholder if lr == "auto" else float(lr))
    if len(draft.stages) < 2:
        history, trainable = train_schedule(ctx, model, draft, o.augment, label_smoothing, **kw)
        return EndToEnd(draft, history, trainable, notes=notes)
    # the head stage, without checkpoints: a resumed run re-fits it (seconds) and then
    # loads the checkpoint's weights
    head_ctx = dataclasses.replace(ctx, checkpoint_dir=None, resume=False)
    first, trainable = train_schedule(
        head_ctx, model, Schedule(draft.stages[:1]), o.augment, label_smoothing
    )
    if after_head is not None:
        after_head()
    if lr != "auto":
        rest, more = train_schedule(ctx, model, draft, o.augment, label_smoothing, first=1, **kw)
        return EndToEnd(draft, first + rest, {**trainable, **more}, notes=notes)
    t = time.perf_counter()
    test = find_lr(
        model,
        draft.stages[1],
        ctx.data.take("train")[:2],
        ctx.data.modality,
        o.augment,
        o.batch_size,
        o.seed,
        label_smoothing,
    )
    ctx.timings["lr_range_test"] = time.perf_counter() - t
    say(f"--lr auto: range test over {len(test.lrs)} steps suggests {test.suggestion:.2g}")
    schedule = make_schedule(test.suggestion)
    rest, more = train_schedule(ctx, model, schedule, o.augment, label_smoothing, first=1, **kw)
    note = f"learning rate {test.suggestion:.2g}, from a range test ({len(test.lrs)} steps)"
    return EndToEnd(schedule, first + rest, {**trainable, **more}, test.to_dict(), [note, *notes])


def gained(history: Sequence[dict[str, Any]], stage_names: Sequence[str]) -> bool:
    """Whether the end-to-end stages ended better on validation than the head alone:
    the last stage's best epoch beats the first stage's epoch 0 (the model entering
    it: the head alone) in ``(val_acc, -val_loss)``."""
    first = [r for r in history if r.get("stage") == stage_names[0] and r.get("epoch") == 0]
    last = [r for r in history if r.get("stage") == stage_names[-1] and r.get("best")]
    if not first or not last:
        return True
    before, after = first[0], last[0]
    return (after["val_acc"], -after["val_loss"]) > (before["val_acc"], -before["val_loss"])


def keep_extract_unless_gained(
    ctx: FitContext, model: TransferModel, run: EndToEnd, method: str
) -> tuple[EndToEnd, Selection | None]:
    """When the end-to-end stages of ``run`` did not beat the head alone on validation
    (:func:`gained`), the backbone is back at its source weights (early stopping restored
    epoch 0), so the model *is* an ``extract`` model: refit its head the extract way
    (cross-validated ``C``, train + validation) and say so. Else ``run`` unchanged."""
    names = [s.name for s in run.schedule.stages if not s.on_features]
    if not names or gained(run.history, names) or not len(ctx.labels("val")):
        return run, None
    # back to the source weights exactly (gradual unfreezing may have kept an earlier stage)
    model.backbone.load_state_dict(ctx.backbone().state_dict())
    feats = ctx.features(model.backbone, ("train", "val"))
    fit = fit_head_on_features(
        model.head,
        run.schedule.stages[0],
        feats["train"],
        ctx.labels("train"),
        feats["val"],
        ctx.labels("val"),
        ctx.options.seed,
        refit=True,
        cv="auto",
    )
    note = (
        f"{method} did not beat the head alone on validation, so the extract model was kept "
        f"(its head refit on train + validation; {fit.selection.label} "
        f"{fit.selection.score:.1%})"
    )
    say(f"[yellow]{note}[/]")
    rows = [{**r, "stage": "extract"} for r in fit.history]
    kept = EndToEnd(
        run.schedule,
        run.history + rows,
        {**run.trainable, "extract": run.trainable.get(run.schedule.stages[0].name, 0)},
        run.range_test,
        [*run.notes, note],
    )
    return kept, fit.selection


__all__ = [
    "EndToEnd",
    "FitContext",
    "Method",
    "MethodResult",
    "gained",
    "head_logits",
    "keep_extract_unless_gained",
    "train_end_to_end",
    "train_schedule",
]
